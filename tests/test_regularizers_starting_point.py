"""L2, L2-SP, L1-SP, Group-Lasso-SP and L2-SP-Fisher against hand computations on tiny networks."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from lautum.models import TransferNet, small_cnn
from lautum.regularizers import (
    L1SP,
    L2,
    L2SP,
    GroupLassoSP,
    L2SPFisher,
    base_method,
    build_regularizer,
    head_parameters,
    layer_distances,
    normalised_fisher,
    penalized_parameters,
    snapshot,
)
from lautum.train import Term, TrainConfig, Trainer

def tiny_cnn(dtype=torch.float64, device="cpu") -> TransferNet:
    """conv(5x5, 2, no bias) → BN → … → conv(5x5, 4) → … → linear(64 → 3); head linear(3 → 4)."""
    return small_cnn(4, width=2, feature_dim=3).to(device=device, dtype=dtype)


def perturb(model: nn.Module, scale: float = 0.1) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))


# --------------------------------------------------------------------------- parameter sets


def test_kernels_exclude_biases_and_batchnorm():
    net = tiny_cnn()
    kernels = [n for n, _ in penalized_parameters(net)]
    assert kernels == ["features.0.weight", "features.4.weight", "features.8.weight"]
    every = [n for n, _ in penalized_parameters(net, "all")]
    assert every == [n for n, _ in net.named_parameters() if n.startswith("features.")]
    assert set(every) - set(kernels) == {"features.1.weight", "features.1.bias",  # BatchNorm γ, β
                                         "features.4.bias", "features.8.bias"}
    assert [n for n, _ in head_parameters(net)] == ["head.weight"]
    assert [n for n, _ in head_parameters(net, "all")] == ["head.weight", "head.bias"]
    named = dict(net.named_parameters())
    assert all(p is named[n] for n, p in penalized_parameters(net, "all") + head_parameters(net, "all"))


def test_bad_arguments():
    net = tiny_cnn()
    with pytest.raises(ValueError, match="which"):
        penalized_parameters(net, "weights")
    with pytest.raises(TypeError, match="TransferNet"):
        penalized_parameters(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=">= 0"):
        L2SP(net, -1.0, 0.0)
    with pytest.raises(KeyError, match="features.0.weight"):
        L2SP(net, 1.0, 0.0, reference={})
    with pytest.raises(KeyError, match="Fisher"):
        L2SPFisher(net, {}, 1.0, 0.0)


# --------------------------------------------------------------------------- values by hand


@pytest.mark.parametrize("which", ["kernels", "all"])
def test_l2_and_l2sp_by_hand(which):
    net = tiny_cnn()
    w0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    alpha, beta = 0.3, 0.07
    l2, l2sp = L2(net, alpha, beta, which), L2SP(net, alpha, beta, which)
    l2_default_beta = L2(net, alpha, which=which)
    perturb(net)
    shared = ["features.0.weight", "features.4.weight", "features.8.weight"]
    head = ["head.weight"]
    if which == "all":
        shared += ["features.1.weight", "features.1.bias", "features.4.bias", "features.8.bias"]
        head += ["head.bias"]
    p = {n: q.detach() for n, q in net.named_parameters()}
    head_sq = sum(float((p[n] ** 2).sum()) for n in head)
    expected_l2 = alpha / 2 * sum(float((p[n] ** 2).sum()) for n in shared) + beta / 2 * head_sq
    expected_sp = alpha / 2 * sum(float(((p[n] - w0[n]) ** 2).sum()) for n in shared) + beta / 2 * head_sq
    assert l2().item() == pytest.approx(expected_l2, rel=1e-12)
    assert l2sp().item() == pytest.approx(expected_sp, rel=1e-12)
    assert l2_default_beta().item() == pytest.approx(
        expected_l2 + (alpha - beta) / 2 * head_sq, rel=1e-12)
    parts = l2sp.parts()
    assert parts.head.item() == pytest.approx(beta / 2 * head_sq, rel=1e-12)
    assert (parts.shared + parts.head).item() == pytest.approx(expected_sp, rel=1e-12)


def test_l1sp_by_hand():
    net = tiny_cnn()
    w0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    reg, exact = L1SP(net, 0.2, 0.05), L1SP(net, 0.2, 0.05, smoothing=0.0)
    perturb(net)
    p = {n: q.detach() for n, q in net.named_parameters()}
    shared = ["features.0.weight", "features.4.weight", "features.8.weight"]
    l1 = sum(float((p[n] - w0[n]).abs().sum()) for n in shared)
    head = 0.05 / 2 * float((p["head.weight"] ** 2).sum())
    n_weights = sum(p[n].numel() for n in shared)
    assert exact().item() == pytest.approx(0.2 * l1 + head, rel=1e-12)
    # sqrt(x² + 1e-16) ≤ |x| + 1e-8: the official smoothing adds at most α·1e-8 per weight.
    assert 0 <= reg().item() - exact().item() <= 0.2 * 1e-8 * n_weights + 1e-15


def test_group_lasso_groups_and_weights():
    net = tiny_cnn()
    w0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    reg = GroupLassoSP(net, 0.4, 0.0, smoothing=0.0)
    # conv1 (2, 1, 5, 5): 2 groups of 25; conv2 (4, 2, 5, 5): 4 of 50; linear (3, 64): 3 of 64.
    assert reg.groups() == [("features.0.weight", 2, 25), ("features.4.weight", 4, 50), ("features.8.weight", 3, 64)]
    assert len(GroupLassoSP(net, 0.4, 0.0, "all").groups()) == 7  # + BN γ, β and two biases (groups of size 1)
    perturb(net)
    expected = 0.0
    for name, p in net.named_parameters():
        if name in ("features.0.weight", "features.4.weight", "features.8.weight"):
            for c in range(p.shape[0]):  # one group per output channel: its fan-in weights
                d = (p[c].detach() - w0[name][c]).flatten()
                expected += math.sqrt(d.numel()) * float(d.norm())
    assert reg().item() == pytest.approx(0.4 * expected, rel=1e-12)
    # a displacement of one output channel only costs sqrt(p_g) * its norm
    with torch.no_grad():
        for n, q in net.named_parameters():
            q.copy_(w0[n])
        net.features[4].weight[1] += 0.5  # 50 weights moved by 0.5: norm 0.5 * sqrt(50)
    assert reg().item() == pytest.approx(0.4 * math.sqrt(50) * 0.5 * math.sqrt(50), rel=1e-12)


def test_fisher_penalty_by_hand_and_reduces_to_l2sp():
    net = tiny_cnn()
    w0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    fisher = {n: torch.rand_like(p) for n, p in net.named_parameters()}
    reg = L2SPFisher(net, fisher, 0.3, 0.02)
    ones = L2SPFisher(net, {n: torch.ones_like(p) for n, p in net.named_parameters()}, 0.3, 0.02)
    plain = L2SP(net, 0.3, 0.02)
    clipped = L2SPFisher(net, fisher, 0.3, 0.02, clip=0.5)
    perturb(net)
    p = {n: q.detach() for n, q in net.named_parameters()}
    shared = ["features.0.weight", "features.4.weight", "features.8.weight"]
    head = 0.01 * float((p["head.weight"] ** 2).sum())
    expected = 0.15 * sum(float((fisher[n] * (p[n] - w0[n]) ** 2).sum()) for n in shared) + head
    expected_clip = 0.15 * sum(float((fisher[n].clamp(max=0.5) * (p[n] - w0[n]) ** 2).sum()) for n in shared) + head
    assert reg().item() == pytest.approx(expected, rel=1e-12)
    assert clipped().item() == pytest.approx(expected_clip, rel=1e-12)
    assert ones().item() == pytest.approx(plain().item(), rel=1e-12)
    fisher["features.0.weight"].mul_(0)  # the buffers are copies
    assert reg().item() == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- L2-SP specifics


def test_l2sp_is_zero_at_reference_and_its_gradient_is_alpha_displacement():
    net = tiny_cnn()
    alpha = 0.25
    reg = L2SP(net, alpha, 0.0)
    assert reg().item() == 0.0
    w0 = {n: reg.reference(n).clone() for n in reg.parameter_names}
    perturb(net)
    net.zero_grad()
    reg().backward()
    for name, p in net.named_parameters():
        if name in w0:
            torch.testing.assert_close(p.grad, alpha * (p.detach() - w0[name]), rtol=1e-12, atol=1e-15)
        else:  # biases, BatchNorm, head (β = 0): untouched
            assert p.grad is None


def test_detach_pitfall_reference_is_a_copy():
    net = tiny_cnn()
    # Even handed the model's own tensors detached (shared storage), the penalty clones them.
    shared_storage = {n: p.detach() for n, p in net.named_parameters()}
    regs = [L2SP(net, 1.0, 0.0), L2SP(net, 1.0, 0.0, reference=shared_storage),
            L1SP(net, 1.0, 0.0), GroupLassoSP(net, 1.0, 0.0)]
    for reg in regs:
        for name, p in zip(reg.parameter_names, [dict(net.named_parameters())[n] for n in reg.parameter_names],
                           strict=True):
            assert reg.reference(name).data_ptr() != p.data_ptr()
    x, y = torch.randn(8, 1, 28, 28, dtype=torch.float64), torch.randint(0, 4, (8,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    assert all(reg().item() > 0 for reg in regs)
    # what the pitfall would have given: a "reference" that moved with the weights
    naive = sum(float(((p.detach() - shared_storage[n]) ** 2).sum()) for n, p in net.named_parameters())
    assert naive == 0.0


def test_module_owns_no_parameters_only_buffers():
    net = tiny_cnn()
    reg = L2SPFisher(net, {n: torch.ones_like(p) for n, p in net.named_parameters()}, 0.1, 0.01)
    assert list(reg.parameters()) == []
    keys = set(reg.state_dict())
    assert keys == {f"{prefix}__{n.replace('.', '__')}" for prefix in ("w0", "fisher")
                    for n in ("features.0.weight", "features.4.weight", "features.8.weight")}
    assert list(L2(net, 0.1).state_dict()) == []
    text = repr(L2SP(net, 0.1, 0.01))
    assert "alpha=0.1" in text and "beta=0.01" in text and "which='kernels'" in text
    assert L2SP(net, 0.1, 0.01, "all").describe() == {
        "method": "l2sp", "alpha": 0.1, "beta": 0.01, "which": "all", "tensors": 7,
        "weights": sum(p.numel() for n, p in net.named_parameters() if n.startswith("features.")),
        "head_tensors": 2, "head_weights": 3 * 4 + 4}


def test_reference_from_a_pretrained_copy_or_state_dict():
    pretrained = tiny_cnn()
    net = copy.deepcopy(pretrained)
    perturb(net)  # fine-tuning already moved away from the pre-trained weights
    by_module = L2SP(net, 0.5, 0.0, reference=pretrained)
    by_state = L2SP(net, 0.5, 0.0, reference=pretrained.state_dict())
    expected = 0.25 * sum(float(((p.detach() - q.detach()) ** 2).sum()) for (n, p), q in
                          zip(net.named_parameters(), pretrained.parameters(), strict=True)
                          if n in ("features.0.weight", "features.4.weight", "features.8.weight"))
    assert by_module().item() == pytest.approx(expected, rel=1e-12)
    assert by_state().item() == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- autograd, dtype, device


@pytest.mark.parametrize("cls", [L2, L2SP, L1SP, GroupLassoSP, L2SPFisher])
def test_gradcheck(cls):
    features = nn.Sequential(nn.Conv2d(1, 2, 2), nn.Flatten(), nn.Linear(8, 2))
    net = TransferNet(features, 2, 3).double()
    args = ({n: torch.rand_like(p) for n, p in net.named_parameters()},) if cls is L2SPFisher else ()
    reg = cls(net, *args, 0.3, 0.2, "all")
    perturb(net, 0.5)  # away from w0, where L1/group norms are smooth
    params = [p for _, p in reg._shared + reg._head]
    assert torch.autograd.gradcheck(lambda *ps: reg(), params, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("cls", [L2, L2SP, L1SP, GroupLassoSP, L2SPFisher])
def test_dtype_and_device_preserved(cls, device, dtype):
    net = tiny_cnn(dtype=dtype, device=device)
    args = ({n: torch.ones_like(p) for n, p in net.named_parameters()},) if cls is L2SPFisher else ()
    reg = cls(net, *args, 0.1, 0.01)
    perturb(net)
    value = reg()
    assert value.shape == () and value.dtype == dtype and value.device.type == device.type
    assert all(b.dtype == dtype and b.device.type == device.type for b in reg.buffers())
    # .to() moves the buffers (the trainer calls term.module.to(device))
    assert all(b.dtype == torch.float64 for b in reg.to(torch.float64).buffers())


# --------------------------------------------------------------------------- in the trainer


def test_trainer_with_l2sp_stays_closer_to_the_starting_point():
    x, y = torch.rand(48, 1, 28, 28), torch.randint(0, 4, (48,))
    start = small_cnn(4, width=2, feature_dim=8)
    kernels = ["features.0.weight", "features.4.weight", "features.8.weight"]
    w0 = {n: p.detach().clone() for n, p in start.named_parameters() if n in kernels}

    def distance(model):
        return sum(float(((model.state_dict()[n] - w0[n]) ** 2).sum()) for n in kernels) ** 0.5

    config = TrainConfig(epochs=2, batch_size=16, lr=0.1, device="cpu", progress=False)
    plain = copy.deepcopy(start)
    Trainer(plain, config).fit((x, y))
    regularized = copy.deepcopy(start)
    term = Term("l2sp", L2SP(regularized, alpha=1.0, beta=0.01), inputs=lambda ctx: ())
    hist = Trainer(regularized, config, [term]).fit((x, y))
    assert hist.steps[0]["l2sp"] > 0  # β head term; the SP term starts at 0
    assert 0 < distance(regularized) < distance(plain)


# --------------------------------------------------------------------------- factory and w0 bookkeeping


def test_factory_builds_each_method_and_ignores_the_freeze_suffix():
    net = tiny_cnn()
    expected = {"l2": L2, "l2sp": L2SP, "l1sp": L1SP, "gl-sp": GroupLassoSP, "l2-freeze": L2, "l2sp-freeze": L2SP}
    for method, cls in expected.items():
        reg = build_regularizer(method, net, 0.1, 0.01, which="all")
        assert type(reg) is cls and reg.alpha == 0.1 and reg.beta == 0.01 and reg.which == "all"
    fisher = {n: torch.ones_like(p) for n, p in penalized_parameters(net)}
    assert type(build_regularizer("l2sp-fisher", net, 0.1, 0.01, fisher=fisher)) is L2SPFisher
    assert base_method("l2sp-freeze") == "l2sp" and base_method("gl-sp") == "gl-sp"
    with pytest.raises(ValueError, match="Fisher"):
        build_regularizer("l2sp-fisher", net, 0.1, 0.01)
    with pytest.raises(ValueError, match="unknown method 'sgd'"):
        build_regularizer("sgd", net, 0.1, 0.01)


def test_snapshot_is_a_copy_and_layer_distances_measure_the_move():
    net = tiny_cnn()
    w0 = snapshot(net)
    assert not any(n.startswith("head.") for n in w0)
    assert all(w0[n].data_ptr() != p.data_ptr() for n, p in net.named_parameters() if n in w0)
    with torch.no_grad():
        net.features[0].weight.add_(1.0)  # every entry moves by 1
    d = layer_distances(net, w0)
    k = net.features[0].weight
    assert d["dist/features.0.weight"] == pytest.approx(math.sqrt(k.numel()))
    assert d["reldist/features.0.weight"] == pytest.approx(math.sqrt(k.numel()) / w0["features.0.weight"].norm().item())
    assert d["dist/features.4.weight"] == 0.0
    assert "dist/features.1.weight" not in d  # BatchNorm γ is 1-D: skipped with kernels_only
    assert "dist/features.1.weight" in layer_distances(net, w0, kernels_only=False)


def test_normalised_fisher_has_mean_one():
    f, mean = normalised_fisher({"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([[3.0, 6.0]])})
    assert mean == 3.0
    assert torch.cat([v.flatten() for v in f.values()]).mean().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="zero"):
        normalised_fisher({"a": torch.zeros(3)})

"""Channel-form Lautum / MI regularizers: naive reference, sign, gradients, numerics, trainer."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from lautum.bench.regularizers import format_regularizer_benchmark, run_regularizer_benchmark
from lautum.models import TransferNet, small_cnn
from lautum.regularizers.alignment import MKMMD
from lautum.regularizers.consistency import TemporalEnsembling, rampup_weight
from lautum.regularizers.information import (
    LautumRegularizer,
    MutualInformationRegularizer,
    PenultimateInputs,
    channel_layer,
    channel_surrogate_terms,
    first_layer_preactivations,
    initial_noise_var,
    subsample_rows,
)
from lautum.train import Term, TrainConfig, Trainer

REGS = [LautumRegularizer, MutualInformationRegularizer]


# -- naive reference ---------------------------------------------------------------------
def naive_preactivations(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Rows of H by explicit patch extraction (unfold) times the flattened kernel."""
    w = layer.weight.to(torch.float64)
    x = x.to(torch.float64)
    if isinstance(layer, nn.Linear):
        return x.reshape(x.shape[0], -1) @ w.T
    patches = F.unfold(x, layer.kernel_size, dilation=layer.dilation, padding=layer.padding,
                       stride=layer.stride)  # (B, C*kh*kw, L), L in row-major position order
    patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])  # (B*L, C*kh*kw)
    return patches @ w.reshape(w.shape[0], -1).T


def naive_terms(h: torch.Tensor, noise_var: float, ridge: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Lautum, MI) from torch.cov and torch.logdet, float64."""
    h = h.to(torch.float64)
    k = h.shape[1]
    cov = torch.cov(h.T).reshape(k, k)
    eps = ridge * torch.trace(cov) / k
    s = (cov + eps * torch.eye(k, dtype=torch.float64)) / noise_var
    mi = 0.5 * torch.logdet(torch.eye(k, dtype=torch.float64) + s)
    return torch.trace(s) - mi, mi


def _conv(dtype=torch.float64, **kw):
    return nn.Conv2d(2, 3, 3, dtype=dtype, **kw)


# -- values against the reference -------------------------------------------------------
@pytest.mark.parametrize("ridge", [0.0, 1e-3, 0.1])
def test_linear_matches_naive_reference(ridge):
    layer = nn.Linear(5, 4, dtype=torch.float64)
    x = torch.randn(20, 5, dtype=torch.float64)
    lautum, mi = naive_terms(naive_preactivations(layer, x), 0.7, ridge)
    assert torch.allclose(LautumRegularizer(layer, noise_var=0.7, ridge=ridge)(x), lautum, rtol=1e-10)
    assert torch.allclose(MutualInformationRegularizer(layer, noise_var=0.7, ridge=ridge)(x), mi, rtol=1e-10)


@pytest.mark.parametrize("conv_kw", [{}, {"stride": 2, "padding": 1}, {"dilation": 2, "padding": 2}])
def test_conv_matches_unfold_reference(conv_kw):
    layer = _conv(**conv_kw)
    x = torch.randn(3, 2, 9, 8, dtype=torch.float64)
    lautum, mi = naive_terms(naive_preactivations(layer, x), 2.0, 1e-3)
    reg = LautumRegularizer(layer, noise_var=2.0, max_positions=None)
    assert torch.allclose(reg(x), lautum, rtol=1e-10)
    assert torch.allclose(MutualInformationRegularizer(layer, noise_var=2.0, max_positions=None)(x), mi, rtol=1e-10)
    assert reg.last_terms.num_samples == naive_preactivations(layer, x).shape[0]


def test_bias_is_ignored_and_gets_no_gradient():
    with_bias = _conv()
    no_bias = _conv(bias=False)
    with torch.no_grad():
        no_bias.weight.copy_(with_bias.weight)
        with_bias.bias.fill_(5.0)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    v = LautumRegularizer(with_bias)(x)
    assert torch.allclose(v, LautumRegularizer(no_bias)(x), rtol=1e-12)
    v.backward()
    assert with_bias.weight.grad is not None and with_bias.bias.grad is None


def test_linear_first_layer_flattens_images():
    layer = nn.Linear(2 * 4 * 4, 6, dtype=torch.float64)
    x = torch.randn(10, 2, 4, 4, dtype=torch.float64)
    lautum, _ = naive_terms(naive_preactivations(layer, x), 1.0, 1e-3)
    assert torch.allclose(LautumRegularizer(layer)(x), lautum, rtol=1e-10)


@pytest.mark.parametrize("cls", REGS)
def test_last_terms_are_the_bound_terms(cls):
    layer = _conv()
    x = torch.randn(2, 2, 7, 7, dtype=torch.float64)
    reg = cls(layer, noise_var=0.5)
    v = reg(x)
    t = reg.last_terms
    assert not t.lautum.requires_grad and not t.trace_s.requires_grad
    assert torch.allclose(t.lautum, t.trace_s - 0.5 * t.logdet, rtol=1e-12)
    assert torch.allclose(t.mutual_information, 0.5 * t.logdet, rtol=1e-12)
    assert torch.allclose(v.detach(), t.lautum if cls is LautumRegularizer else t.mutual_information)
    assert t.ridge > 0 and t.num_samples == 2 * 25


@pytest.mark.parametrize("cls", REGS)
def test_sign_flips_the_value(cls):
    layer = _conv()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    plus, minus = cls(layer, sign=+1)(x), cls(layer, sign=-1)(x)
    assert plus > 0 and torch.equal(plus, -minus)


# -- gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", REGS)
@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_gradcheck_wrt_weight(cls, kind):
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64) if kind == "conv" else torch.randn(6, 4, dtype=torch.float64)
    template = _conv(bias=False) if kind == "conv" else nn.Linear(4, 3, bias=False, dtype=torch.float64)

    def value(w):
        layer = _conv(bias=False) if kind == "conv" else nn.Linear(4, 3, bias=False, dtype=torch.float64)
        del layer.weight
        layer.weight = w  # a plain tensor in place of the parameter, so gradcheck can perturb it
        return cls(layer, noise_var=0.8, ridge=1e-3, sign=-1)(x)

    w = template.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(value, (w,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("cls", REGS)
def test_gradient_reaches_the_first_layer_of_a_model(cls):
    model = small_cnn(10, width=4, feature_dim=8)
    x = torch.rand(4, 1, 28, 28)
    cls(model.first_layer())(x).backward()
    assert model.first_layer().weight.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("features.0."))
    assert list(cls(model.first_layer()).parameters()) == [] and cls(model.first_layer()).state_dict() == {}


# -- subsampling ------------------------------------------------------------------------------
def test_subsampling_is_a_deterministic_coprime_stride():
    layer = _conv(bias=False)  # 8x8 input, 3x3 kernel: 36 positions per image
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    reg = LautumRegularizer(layer, max_positions=40)
    v1, v2 = reg(x), reg(x)
    assert torch.equal(v1, v2)
    # N = 144, ceil(144 / 40) = 4 shares a factor with 36, so is 5 (coprime): rows 0, 5, ..., 140.
    h = naive_preactivations(layer, x)
    assert reg.last_terms.num_samples == 29
    assert torch.allclose(v1, naive_terms(h[::5], 1.0, 1e-3)[0], rtol=1e-10)
    assert torch.allclose(LautumRegularizer(layer, max_positions=None)(x), naive_terms(h, 1.0, 1e-3)[0], rtol=1e-10)


@pytest.mark.parametrize("conv_kw", [{}, {"stride": 2, "padding": 1}, {"dilation": 2, "padding": "same"},
                                     {"padding": 2, "padding_mode": "reflect"}, {"groups": 2, "padding": 1}])
def test_gathered_patches_equal_the_subsampled_convolution(conv_kw):
    layer = nn.Conv2d(2, 4, 3, dtype=torch.float64, **conv_kw)
    x = torch.randn(3, 2, 9, 8, dtype=torch.float64)
    full, period = first_layer_preactivations(layer, x)
    for max_rows in (7, 50, 10_000):
        sub, p = first_layer_preactivations(layer, x, max_rows)
        assert p == period and torch.allclose(sub, subsample_rows(full, max_rows, period), rtol=0, atol=1e-12)


def test_subsample_rows_hits_every_position_once_per_period():
    rows = subsample_rows(torch.arange(36 * 40)[:, None], 36 * 4, period=36).flatten()
    assert len(rows) <= 36 * 4
    assert sorted((rows[:36] % 36).tolist()) == list(range(36))
    assert torch.equal(subsample_rows(torch.arange(5)[:, None], None), torch.arange(5)[:, None])


# -- dtype, device, numerics ------------------------------------------------------------------
@pytest.mark.parametrize("cls", REGS)
def test_dtype_and_device_preserved(cls, device, dtype):
    layer = _conv(dtype=dtype).to(device)
    x = torch.randn(3, 2, 6, 6, dtype=dtype, device=device)
    v = cls(layer)(x)
    assert v.dtype == dtype and v.device == device and v.ndim == 0
    v.backward()
    assert layer.weight.grad.dtype == dtype and torch.isfinite(layer.weight.grad).all()
    ref = cls(_conv(dtype=torch.float64).to(device).requires_grad_(False))
    ref.layer.weight.data.copy_(layer.weight.detach().to(torch.float64))
    assert torch.allclose(v.double(), ref(x.double()), rtol=1e-4)


def test_cpu_autocast_keeps_full_precision():
    layer = nn.Conv2d(1, 4, 3)
    x = torch.randn(2, 1, 8, 8)
    plain = LautumRegularizer(layer)(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = LautumRegularizer(layer)(x)
    assert auto.dtype == torch.float32 and torch.allclose(auto, plain, rtol=1e-6)


@pytest.mark.parametrize("cls", REGS)
@pytest.mark.parametrize("ridge", [0.0, 1e-3])
def test_rank_deficient_batch_stays_finite(cls, ridge):
    layer = nn.Linear(8, 6, dtype=torch.float64)  # k = 6 > B = 3: Sigma_H has rank <= 2
    x = torch.randn(3, 8, dtype=torch.float64)
    v = cls(layer, ridge=ridge, noise_var=1e-3)(x)
    v.backward()
    assert torch.isfinite(v) and torch.isfinite(layer.weight.grad).all()
    constant = torch.ones(4, 8, dtype=torch.float64)  # Sigma_H = 0
    assert cls(layer, ridge=ridge)(constant).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kw", [{"sign": 0}, {"sign": 2}, {"sign": True}, {"sign": 1.5}, {"noise_var": 0.0},
                                {"noise_var": -1.0}, {"noise_var": math.nan}, {"ridge": -1e-3},
                                {"max_positions": 1}, {"max_positions": 2.5}])
def test_bad_arguments_raise_value_error(kw):
    with pytest.raises(ValueError):
        LautumRegularizer(_conv(), **kw)


def test_bad_layer_and_shapes_raise():
    with pytest.raises(TypeError):
        LautumRegularizer(nn.Conv1d(2, 3, 3))
    with pytest.raises(ValueError, match="B, C, H, W"):
        LautumRegularizer(_conv())(torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 2"):
        LautumRegularizer(nn.Linear(3, 2))(torch.randn(1, 3))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), log_scale=st.floats(-3.0, 2.0), noise_var=st.floats(1e-2, 1e2),
       n=st.integers(2, 12))
def test_lautum_dominates_mi_which_is_nonnegative(seed, log_scale, noise_var, n):
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(5, 4, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(10.0**log_scale * torch.randn(4, 5, generator=g, dtype=torch.float64))
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    lautum = LautumRegularizer(layer, noise_var=noise_var)(x).item()
    mi = MutualInformationRegularizer(layer, noise_var=noise_var)(x).item()
    assert mi >= 0.0
    assert lautum >= mi - 1e-12 * max(1.0, abs(lautum))


# -- channel probe: initial noise variance and the channel surrogate terms -----------------------
def gaussian_channel_terms(cov_h: np.ndarray, noise_var: float, ridge: float) -> tuple[float, float, float]:
    """(tr S, I, L) of the Gaussian channel Y = H + N from the eigenvalues of S (NumPy, float64)."""
    k = cov_h.shape[0]
    s = (cov_h + ridge * np.trace(cov_h) / k * np.eye(k)) / noise_var
    lam = np.linalg.eigvalsh(s)
    mi = 0.5 * np.log1p(lam).sum()
    return float(lam.sum()), float(mi), float(lam.sum() - mi)


def test_initial_noise_var_by_hand_on_a_one_by_one_conv():
    # H = 2 * pixel values 0, 1, 2, 3 (one image, four positions): unbiased variance 4 * 5/3; bias ignored.
    layer = nn.Conv2d(1, 1, 1, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.bias.fill_(7.0)
    x = torch.arange(4.0, dtype=torch.float64).reshape(1, 1, 2, 2)
    assert initial_noise_var(layer, x) == pytest.approx(20 / 3, rel=1e-15)
    # with to_input: the map is applied first (here a doubling, so four times the variance)
    assert initial_noise_var(layer, x, lambda t: 2 * t) == pytest.approx(80 / 3, rel=1e-15)


def test_initial_noise_var_is_the_mean_eigenvalue_of_the_preactivation_covariance():
    g = torch.Generator().manual_seed(3)
    layer = _conv(stride=2, padding=1)
    x = torch.randn(5, 2, 9, 9, generator=g, dtype=torch.float64)
    h = naive_preactivations(layer, x).detach().numpy()  # every position, no subsampling
    expected = np.linalg.eigvalsh(np.cov(h, rowvar=False)).mean()
    assert initial_noise_var(layer, x) == pytest.approx(expected, rel=1e-12)
    assert layer.weight.grad is None


@pytest.mark.parametrize("ridge", [0.0, 1e-3, 0.1])
def test_channel_surrogate_terms_match_the_closed_form_gaussian_channel(ridge):
    # Linear layer: H = X W^T, so Sigma_H = W Sigma_X W^T exactly for the sample covariance of X.
    g = torch.Generator().manual_seed(4)
    layer = nn.Linear(5, 3, dtype=torch.float64)
    x = torch.randn(40, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g, dtype=torch.float64)
    w = layer.weight.detach().numpy()
    cov_h = w @ np.cov(x.numpy(), rowvar=False) @ w.T
    t = channel_surrogate_terms(layer, x, noise_var=0.3, ridge=ridge)
    tr, mi, lautum = gaussian_channel_terms(cov_h, 0.3, ridge)
    assert t.trace_s.item() == pytest.approx(tr, rel=1e-10)
    assert t.mutual_information.item() == pytest.approx(mi, rel=1e-10)
    assert t.lautum.item() == pytest.approx(lautum, rel=1e-10)
    assert t.logdet.item() == pytest.approx(2 * mi, rel=1e-10)
    assert t.ridge.item() == pytest.approx(ridge * np.trace(cov_h) / 3, rel=1e-10, abs=0.0)
    assert t.num_samples == 40
    # no gradient: detached float64 values, nothing reaches the layer
    assert not t.lautum.requires_grad and t.lautum.dtype == torch.float64 and layer.weight.grad is None


def test_channel_surrogate_terms_converge_to_the_population_channel():
    # x ~ N(0, Sigma_X): the population channel has S = W Sigma_X W^T / sigma^2 (no ridge).
    g = torch.Generator().manual_seed(5)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-1.0, 0.3, 0.7]], dtype=torch.float64)
    x = torch.randn(200_000, 3, generator=g, dtype=torch.float64) @ a.T
    layer = nn.Linear(3, 2, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0, 0.5], [0.2, 0.0, 1.0]]))
    w = layer.weight.detach().numpy()
    cov_h = w @ (a @ a.T).numpy() @ w.T
    t = channel_surrogate_terms(layer, x, noise_var=2.0, ridge=0.0, max_positions=None)
    tr, mi, lautum = gaussian_channel_terms(cov_h, 2.0, 0.0)
    assert t.num_samples == 200_000
    for got, want in ((t.trace_s, tr), (t.mutual_information, mi), (t.lautum, lautum)):
        assert got.item() == pytest.approx(want, rel=2e-2)
    # sigma_n^2 at "initialization" is the population mean eigenvalue of Sigma_H
    assert initial_noise_var(layer, x) == pytest.approx(np.trace(cov_h) / 2, rel=2e-2)


def test_channel_surrogate_terms_equal_the_regularizer_terms_and_subsample_like_it():
    g = torch.Generator().manual_seed(6)
    layer = _conv()
    x = torch.randn(30, 2, 28, 28, generator=g, dtype=torch.float64)  # 30 * 26 * 26 = 20280 positions
    t = channel_surrogate_terms(layer, x, noise_var=0.5, ridge=1e-3)
    reg = LautumRegularizer(layer, noise_var=0.5, ridge=1e-3, max_positions=16384)
    reg(x)
    assert all(torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
               for a, b in zip(t, reg.last_terms, strict=True))
    assert t.num_samples <= 16384
    h = subsample_rows(naive_preactivations(layer, x).detach(), 16384, period=26 * 26)
    tr, mi, lautum = gaussian_channel_terms(np.cov(h.numpy(), rowvar=False), 0.5, 1e-3)
    assert (t.trace_s.item(), t.lautum.item()) == pytest.approx((tr, lautum), rel=1e-9)
    # to_input is applied before the layer
    assert channel_surrogate_terms(layer, x, 0.5, 1e-3, to_input=lambda v: v[:10]).num_samples == 10 * 26 * 26


def test_penultimate_inputs_are_what_the_last_linear_reads():
    g = torch.Generator().manual_seed(7)
    torch.manual_seed(0)
    net = small_cnn(10, width=4, feature_dim=8).to(torch.float64).eval()
    x = torch.randn(3, 1, 28, 28, generator=g, dtype=torch.float64)
    pen = PenultimateInputs(net)
    assert pen.layer is net.features[-2] and pen(x).shape == (3, 4 * 2 * 4 * 4)
    # Linear then ReLU on the trunk's output is the whole feature extractor
    assert torch.equal(torch.relu(pen.layer(pen(x))), net.features(x))
    layer, to_input = channel_layer(net, "penultimate")
    assert layer is pen.layer and torch.equal(to_input(x), pen(x))
    # its channel: rows are images, H = trunk(x) W^T
    h, period = first_layer_preactivations(layer, to_input(x))
    assert period == 1 and torch.allclose(h, pen(x) @ layer.weight.T)
    first, identity = channel_layer(net)
    assert first is net.first_layer() and identity(x) is x


def test_channel_layer_rejects_networks_without_a_penultimate_linear():
    convs = TransferNet(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten()), 2 * 26 * 26, 3)
    with pytest.raises(ValueError, match="penultimate"):
        PenultimateInputs(convs)
    with pytest.raises(ValueError, match="penultimate"):
        channel_layer(convs, "penultimate")
    with pytest.raises(ValueError, match="first"):
        channel_layer(convs, "last")


# -- in the trainer ----------------------------------------------------------------------------
def test_one_epoch_trainer_run_logs_every_regularizer():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(48, 1, 28, 28, generator=g), torch.randint(0, 4, (48,), generator=g)
    xu = torch.rand(40, 1, 28, 28, generator=g)
    model = small_cnn(4, width=4, feature_dim=8)
    first = model.first_layer()
    terms = [
        Term("lautum", LautumRegularizer(first, noise_var=0.1), lambda c: (c.x_unlabeled,), 0.01),
        Term("mi", MutualInformationRegularizer(first, sign=-1), lambda c: (c.x_unlabeled,), 0.01),
        Term("mkmmd", MKMMD(), lambda c: (c.features["source"], c.features_unlabeled), 1.0),
        Term("te", TemporalEnsembling(len(xu), 4), lambda c: (c.logits_unlabeled, c.idx_unlabeled),
             functools.partial(rampup_weight, ramp_steps=2, w_max=3.0)),
    ]
    cfg = TrainConfig(epochs=1, batch_size=16, unlabeled_batch_size=16, device="cpu", progress=False)
    hist = Trainer(model, cfg, terms=terms).fit({"source": (x, y)}, unlabeled=xu)
    assert len(hist.steps) == 3
    for row in hist.steps:
        for name in ("lautum", "mi", "mkmmd", "te"):
            assert math.isfinite(row[name]) and f"weight/{name}" in row
    assert hist.steps[0]["lautum"] > 0 and hist.steps[0]["mi"] < 0
    assert hist.steps[0]["te"] == 0.0  # no sample has a target at its first visit
    assert [r["weight/te"] for r in hist.steps] == [rampup_weight(s, 2, 3.0) for s in range(3)]


def test_benchmark_smoke():
    r = run_regularizer_benchmark("cpu", batch_size=4, unlabeled_batch_size=4, steps=1, repeats=1, warmup=0, pool=8)
    assert set(r["ratio"]) == {"lautum", "mi", "mkmmd", "temporal_ensembling"}
    assert all(t > 0 for t in r["seconds"].values()) and set(r["goal_met"]) == {"lautum", "mkmmd"}
    text = format_regularizer_benchmark(r)
    assert "lautum" in text and "goal" in text

"""estimate_fisher: the true Fisher diagonal, against multinomial logistic regression and brute force."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lautum.models import TransferNet, small_cnn
from lautum.regularizers import L2SPFisher, estimate_fisher


def logistic_regression(d: int = 5, k: int = 4) -> TransferNet:
    net = TransferNet(nn.Flatten(), d, k).double()
    with torch.no_grad():
        net.head.weight.normal_()
        net.head.bias.normal_()
    return net


def test_true_fisher_of_logistic_regression_is_analytic():
    net = logistic_regression()
    x = torch.randn(37, 5, dtype=torch.float64)
    fisher = estimate_fisher(net, x, which="all", include_head=True, batch_size=8)
    p = torch.softmax(net(x), dim=1).detach()  # (m, K)
    v = p * (1 - p)
    # F[W_kj] = (1/m) Σ_i p_ik (1 - p_ik) x_ij², F[b_k] = (1/m) Σ_i p_ik (1 - p_ik)
    torch.testing.assert_close(fisher["head.weight"], v.T @ x**2 / len(x), rtol=0, atol=1e-10)
    torch.testing.assert_close(fisher["head.bias"], v.mean(0), rtol=0, atol=1e-10)
    assert set(estimate_fisher(net, x, include_head=True)) == {"head.weight"}  # kernels: no bias
    assert estimate_fisher(net, x) == {}  # Flatten has no parameters


def test_empirical_fisher_of_logistic_regression_is_analytic():
    net = logistic_regression()
    x, y = torch.randn(20, 5, dtype=torch.float64), torch.randint(0, 4, (20,))
    fisher = estimate_fisher(net, x, include_head=True, kind="empirical", y=y)
    residual = nn.functional.one_hot(y, 4).double() - torch.softmax(net(x), dim=1).detach()
    torch.testing.assert_close(fisher["head.weight"], residual.T**2 @ x**2 / len(x), rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="labels"):
        estimate_fisher(net, x, kind="empirical")


def test_sampled_fisher_is_reproducible_and_unbiased_in_shape():
    net = logistic_regression()
    x = torch.randn(10, 5, dtype=torch.float64)
    a = estimate_fisher(net, x, include_head=True, kind="sampled", generator=torch.Generator().manual_seed(1))
    b = estimate_fisher(net, x, include_head=True, kind="sampled", generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a["head.weight"], b["head.weight"], rtol=0, atol=0)
    assert a["head.weight"].shape == (4, 5) and (a["head.weight"] >= 0).all()


def test_cnn_fisher_matches_a_per_sample_per_class_loop():
    net = small_cnn(3, width=2, feature_dim=4).double()
    with torch.no_grad():  # non-trivial BatchNorm running statistics (the Fisher uses eval mode)
        net.features[1].running_mean.uniform_(-0.2, 0.2)
        net.features[1].running_var.uniform_(0.5, 1.5)
    net.train()
    x = torch.randn(5, 1, 28, 28, dtype=torch.float64)
    fisher = estimate_fisher(net, x, which="all", include_head=True, batch_size=2)
    assert net.training  # the mode is restored
    net.eval()
    params = dict(net.named_parameters())
    brute = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(len(x)):
        logp = torch.log_softmax(net(x[i:i + 1]), dim=1)[0]
        for k in range(3):
            grads = torch.autograd.grad(logp[k], list(params.values()), retain_graph=True)
            for n, g in zip(params, grads, strict=True):
                brute[n] += logp[k].exp().detach() * g**2 / len(x)
    assert set(fisher) == set(params)
    for n in params:
        torch.testing.assert_close(fisher[n], brute[n], rtol=1e-9, atol=1e-12)
    # feeding it to the penalty
    reg = L2SPFisher(net, fisher, 1.0, 0.0)
    assert reg().item() == 0.0


def test_fisher_keeps_dtype_and_device(device, dtype):
    net = small_cnn(3, width=2, feature_dim=4).to(device=device, dtype=dtype)
    fisher = estimate_fisher(net, torch.randn(4, 1, 28, 28), include_head=True)
    assert list(fisher) == ["features.0.weight", "features.4.weight", "features.8.weight", "head.weight"]
    for n, p in net.named_parameters():
        if n in fisher:
            assert fisher[n].shape == p.shape and fisher[n].dtype == dtype and fisher[n].device.type == device.type
            assert (fisher[n] >= 0).all()


def test_bad_arguments():
    net = logistic_regression()
    with pytest.raises(ValueError, match="kind"):
        estimate_fisher(net, torch.randn(2, 5), include_head=True, kind="diagonal")
    with pytest.raises(ValueError, match="batch_size"):
        estimate_fisher(net, torch.randn(2, 5), include_head=True, batch_size=0)

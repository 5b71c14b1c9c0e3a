"""Tests for lautum.toy_models: closed forms of chapters 2 and 3, Monte Carlo cross-checks."""

from __future__ import annotations

import math

import pytest
import torch

from lautum import info
from lautum.toy_models import (
    AnchoredChannelToy,
    BernoulliGibbs,
    GaussianGibbsTransfer,
    GaussianMeanEstimation,
    GaussianTransfer,
    gaussian_kl,
    gaussian_target_lautum,
    gaussian_target_mutual_information,
)

F64 = torch.float64
Z_MC = 5.0  # Monte Carlo checks: within 5 standard errors


@pytest.mark.parametrize(
    ("n", "gen", "i1", "l1"),
    [(10, 0.2, 0.052680, 0.058431), (100, 0.02, 0.005025, 0.005076), (1000, 0.002, 0.000500, 0.000501)],
)
def test_gaussian_mean_erm_table(n, gen, i1, l1):
    """Chapter 2's Gaussian mean example, d = sigma = 1."""
    m = GaussianMeanEstimation(n=n)
    assert m.expected_gap().item() == pytest.approx(gen, abs=1e-15)
    assert m.mi_per_sample().item() == pytest.approx(i1, abs=5e-7)
    assert m.lautum_per_sample().item() == pytest.approx(l1, abs=5e-7)
    assert m.mi_per_sample().item() == pytest.approx(0.5 * math.log(n / (n - 1)), abs=1e-12)
    assert m.lautum_per_sample().item() == pytest.approx(1 / (n - 1) - 0.5 * math.log(n / (n - 1)), abs=1e-12)
    assert math.isinf(m.mutual_information().item()) and math.isinf(m.lautum_information().item())


def test_noisy_mean_values():
    """Chapter 2's Gibbs example: n = 10, s = 0.5, d = sigma = 1."""
    m = GaussianMeanEstimation(n=10, noise_var=0.25)
    assert m.expected_gap().item() == pytest.approx(0.2)
    assert m.mutual_information().item() == pytest.approx(0.168236, abs=5e-7)
    assert m.lautum_information().item() == pytest.approx(0.231764, abs=5e-7)
    assert m.mi_per_sample().item() == pytest.approx(0.014494, abs=5e-7)
    assert m.lautum_per_sample().item() == pytest.approx(0.014918, abs=5e-7)
    snr = 1 / (10 * 0.25)
    assert (m.mutual_information() + m.lautum_information()).item() == pytest.approx(snr, abs=1e-12)


@pytest.mark.parametrize("dim", [1, 2, 5])
@pytest.mark.parametrize("n", [1, 10, 300])
def test_gaussian_gibbs_identity_is_exact(dim, n):
    m = GaussianMeanEstimation.gibbs(n=n, gamma=1.0, prior_std=10.0, dim=dim)
    identity = (m.mutual_information() + m.lautum_information()) / 1.0
    assert abs(identity - m.expected_gap()).item() < 1e-10
    assert abs(m.expected_gap() - dim * m.snr() / 1.0).item() < 1e-12


def test_gaussian_gibbs_values():
    """Chapter 2's example at d = 2: 0.39801 (closed form)."""
    m = GaussianMeanEstimation.gibbs(n=10, gamma=1.0, prior_std=10.0)
    assert m.expected_gap().item() == pytest.approx(0.19900498, abs=5e-9)
    assert m.mutual_information().item() == pytest.approx(0.090746, abs=5e-7)
    assert m.lautum_information().item() == pytest.approx(0.108259, abs=5e-7)
    m2 = GaussianMeanEstimation.gibbs(n=10, gamma=1.0, prior_std=10.0, dim=2)
    assert m2.expected_gap().item() == pytest.approx(0.39801, abs=5e-6)


@pytest.mark.parametrize(
    "model",
    [
        GaussianMeanEstimation(n=10),
        GaussianMeanEstimation(n=7, dim=3, noise_var=0.3, scale=0.8, data_mean=1.5),
        GaussianMeanEstimation.gibbs(n=10, gamma=1.0, prior_std=10.0, dim=2),
    ],
)
def test_gaussian_mean_monte_carlo(model):
    g = torch.Generator().manual_seed(1)
    est = model.monte_carlo_gap(200_000, g)
    assert abs(est.value - model.expected_gap()) <= Z_MC * est.stderr


def test_loss_cgf_matches_monte_carlo():
    m = GaussianMeanEstimation(n=5, noise_var=0.2, scale=0.9, data_mean=1.0)
    lam = 0.1
    g = torch.Generator().manual_seed(2)
    zbar = 1.0 + torch.randn(400_000, generator=g, dtype=F64) / math.sqrt(5)
    w = 0.9 * zbar + math.sqrt(0.2) * torch.randn(400_000, generator=g, dtype=F64)
    z = 1.0 + torch.randn(400_000, generator=g, dtype=F64)
    loss = (w - z).square()
    samples = torch.exp(lam * (loss - loss.mean()))
    mc = samples.mean()
    se = samples.std() / math.sqrt(samples.numel())
    assert abs(mc - torch.exp(m.loss_cgf(torch.tensor(lam, dtype=F64)))) <= Z_MC * se


def test_bernoulli_gap_two_routes_and_monte_carlo():
    m = BernoulliGibbs(10, 0.3, 5.0)
    assert abs(m.expected_gap() - m.expected_gap_direct()).item() < 1e-14
    joint = m.joint_wz()
    assert joint.sum().item() == pytest.approx(1.0, abs=1e-14)
    assert joint.sum(1).tolist() == pytest.approx([0.7, 0.3], abs=1e-14)
    est = m.monte_carlo_gap(100_000, torch.Generator().manual_seed(3))
    assert abs(est.value - m.expected_gap()) <= Z_MC * est.stderr


def test_bernoulli_no_nan_at_large_gamma():
    m = BernoulliGibbs(200, 0.45, 50.0)
    assert torch.isfinite(m.posterior()).all()
    assert m.expected_gap().item() == pytest.approx(0.011208, abs=5e-7)
    m2 = BernoulliGibbs(400, 0.5, 5000.0)
    lt = m2.lautum_information()
    assert torch.isfinite(lt)  # the pmf route underflows to inf here
    assert math.isinf(info.lautum_information(m2.joint_wk()).item())
    gap_identity = (m2.mutual_information() + lt) / 5000.0
    assert abs(gap_identity - m2.expected_gap()).item() < 1e-10


@pytest.mark.parametrize(("n", "theta", "gamma"), [(10, 0.3, 5.0), (50, 0.3, 20.0), (7, 0.8, 0.3)])
def test_bernoulli_log_domain_matches_info_module(n, theta, gamma):
    m = BernoulliGibbs(n, theta, gamma)
    assert abs(m.lautum_information() - info.lautum_information(m.joint_wk())).item() < 1e-12
    assert abs(m.lautum_per_sample() - info.lautum_information(m.joint_wz())).item() < 1e-12
    assert abs(m.mutual_information() - info.mutual_information(m.joint_wk())).item() < 1e-12
    assert abs(m.mi_per_sample() - info.mutual_information(m.joint_wz())).item() < 1e-12


@pytest.mark.parametrize("n", [721, 1000, 5000])
def test_bernoulli_large_n_stays_finite(n):
    """The binomial pmf underflows at large n; the log-domain sums must stay finite and exact."""
    m = BernoulliGibbs(n, 0.3, 5.0)
    s = m.summary()
    assert all(math.isfinite(v) for v in s.values())
    assert abs(s["gap"] - s["gibbs_identity"]) < 1e-10
    assert s["gap"] <= s["lautum_full_sample"] and s["gap"] <= s["bu_zou_veeravalli"]
    assert abs(m.log_joint_wz().exp() - m.joint_wz()).max().item() < 1e-14


def test_transfer_identities_section_3_5():
    """Chapter 3's transfer-model checks."""
    m = GaussianTransfer(n=5, noise_var=0.25, target_mean=0.5, target_var=1.44)
    assert m.mi_per_sample().item() == pytest.approx(0.0465452, abs=5e-8)
    assert m.kl_source_target().item() == pytest.approx(0.1163493, abs=5e-8)
    assert m.kl_target_source().item() == pytest.approx(0.1626784, abs=5e-8)
    assert m.target_lautum().item() == pytest.approx(0.0846743, abs=5e-8)
    lhs_a, lhs_b = m.kl_joint_to_target_product(), m.kl_target_product_to_joint()
    assert lhs_a.item() == pytest.approx(0.1628945461, abs=5e-11)
    assert lhs_b.item() == pytest.approx(0.2473527439, abs=5e-11)
    assert abs(lhs_a - (m.mi_per_sample() + m.kl_source_target())).item() < 1e-12
    assert abs(lhs_b - (m.kl_target_source() + m.target_lautum())).item() < 1e-12
    same = GaussianTransfer(n=5, noise_var=0.25)
    assert same.target_lautum().item() == pytest.approx(0.0510158, abs=5e-8)
    assert abs(same.target_lautum() - same.lautum_per_sample()).item() < 1e-12
    assert abs(same.target_mutual_information() - same.mi_per_sample()).item() < 1e-12


def test_transfer_gap_monte_carlo():
    m = GaussianTransfer(n=5, noise_var=0.25, target_mean=0.5, target_var=1.44)
    est = m.monte_carlo_transfer_gap(400_000, torch.Generator().manual_seed(4))
    assert abs(est.value - m.expected_transfer_gap()) <= Z_MC * est.stderr


def _random_spd(d, g):
    a = torch.randn(d, d, generator=g, dtype=F64)
    return a @ a.T + d * torch.eye(d, dtype=F64)


def test_cross_forms_vector_case():
    """Vector (W, X): the cross forms reduce to L and I at M = Sigma_X, and satisfy both identities."""
    g = torch.Generator().manual_seed(5)
    dw, dx = 3, 2
    cov = _random_spd(dw + dx, g)
    cw, cwx, cx = cov[:dw, :dw], cov[:dw, dw:], cov[dw:, dw:]
    zero = torch.zeros(dx, dtype=F64)
    assert abs(gaussian_target_lautum(cw, cwx, cx, zero, cx) - info.gaussian_lautum_information(cov, dw)) < 1e-10
    assert abs(gaussian_target_mutual_information(cw, cwx, cx, zero, cx) - info.gaussian_mutual_information(cov, dw)) < 1e-10
    delta = torch.randn(dx, generator=g, dtype=F64)
    ct = _random_spd(dx, g) / 2
    mw, mx = torch.randn(dw, generator=g, dtype=F64), torch.randn(dx, generator=g, dtype=F64)
    mean_joint = torch.cat([mw, mx])
    mean_prod = torch.cat([mw, mx + delta])
    cov_prod = torch.block_diag(cw, ct)
    d_tt = gaussian_kl(mx + delta, ct, mx, cx)  # D(mu'||mu)
    d_st = gaussian_kl(mx, cx, mx + delta, ct)  # D(mu||mu')
    lt = gaussian_target_lautum(cw, cwx, cx, delta, ct)
    assert abs(gaussian_kl(mean_prod, cov_prod, mean_joint, cov) - (d_tt + lt)) < 1e-10
    assert abs(gaussian_kl(mean_joint, cov, mean_prod, cov_prod) - (info.gaussian_mutual_information(cov, dw) + d_st)) < 1e-10


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(6)
    m0, m1 = torch.randn(4, generator=g, dtype=F64), torch.randn(4, generator=g, dtype=F64)
    c0, c1 = _random_spd(4, g), _random_spd(4, g)
    ref = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(m0, c0), torch.distributions.MultivariateNormal(m1, c1)
    )
    assert abs(gaussian_kl(m0, c0, m1, c1) - ref) < 1e-10


def test_gibbs_transfer_section_3_6():
    m = GaussianGibbsTransfer()
    assert m.posterior_variance == pytest.approx(0.2493766, abs=5e-8)
    assert m.expected_target_gap().item() == pytest.approx(0.1197007, abs=5e-8)
    mi, lt = m.conditional_mutual_information(), m.conditional_lautum_information()
    assert mi.item() == pytest.approx(0.0346793, abs=5e-8)
    assert lt.item() == pytest.approx(0.0371412, abs=5e-8)
    assert abs((mi + lt) / (m.gamma * m.alpha) - m.expected_target_gap()).item() < 1e-10
    est = m.monte_carlo_target_gap(400_000, torch.Generator().manual_seed(7))
    assert abs(est.value - m.expected_target_gap()) <= Z_MC * est.stderr


@pytest.mark.parametrize(
    "make",
    [
        lambda: GaussianMeanEstimation(n=0),
        lambda: GaussianMeanEstimation(n=5, noise_var=-1.0),
        lambda: BernoulliGibbs(10, 1.0, 1.0),
        lambda: BernoulliGibbs(10, 0.3, 0.0),
        lambda: GaussianTransfer(n=1, noise_var=0.0),
        lambda: GaussianGibbsTransfer(alpha=0.0),
        lambda: AnchoredChannelToy((1.0,), (1.0,), sign=0),
        lambda: AnchoredChannelToy((1.0,), (1.0, 2.0)),
    ],
)
def test_invalid_parameters_raise(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("penalty", ["lautum", "mi"])
@pytest.mark.parametrize("sign", [1, -1])
def test_anchored_channel_toy_is_stationary_and_global(penalty, sign):
    toy = AnchoredChannelToy((1.0, -0.5, 2.0), (0.2, 0.6, 0.1), noise_var=1.0, lam=0.5, sign=sign, penalty=penalty)
    w = toy.solution()
    assert torch.isfinite(w).all()
    x = w.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(toy.objective(x), x)
    assert grad.abs().max() < 1e-6
    trial = w + 0.5 * torch.randn(500, 3, dtype=F64)
    assert (toy.objective(trial) >= toy.objective(w) - 1e-12).all()
    if sign == 1:
        assert (w.abs() <= torch.tensor([1.0, 0.5, 2.0], dtype=F64)).all()
    else:
        assert (w.abs() >= torch.tensor([1.0, 0.5, 2.0], dtype=F64)).all()


def test_anchored_channel_toy_maximized_lautum_is_unbounded():
    toy = AnchoredChannelToy((1.0, 1.0), (0.2, 2.0), noise_var=1.0, lam=0.5, sign=-1)
    assert toy.unbounded().tolist() == [False, True]
    w = toy.solution()
    assert math.isfinite(w[0].item()) and math.isinf(w[1].item())
    far = torch.tensor([[1.0, 1e3]], dtype=F64)
    assert toy.objective(far).item() < -1e3
    mi = AnchoredChannelToy((1.0, 1.0), (0.2, 2.0), noise_var=1.0, lam=0.5, sign=-1, penalty="mi")
    assert torch.isfinite(mi.solution()).all()

"""Tests for lautum.bounds: known values, the inequalities on exact toy models, dtype/device."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lautum import bounds
from lautum.toy_models import BernoulliGibbs, GaussianMeanEstimation, GaussianTransfer

SETTINGS = settings(max_examples=40, deadline=None)

# the worked example of chapter 2 (notebooks/02-generalization-bounds.ipynb): (n, theta, gamma) -> gen, XR, Bu, Lautum-indiv, Lautum-full, n I_1, I
BERNOULLI_ROWS = [
    ((10, 0.3, 5.0), (0.052164, 0.07573, 0.07116, 0.06984, 0.27029, 0.1013, 0.1147)),
    ((50, 0.3, 20.0), (0.002101, 0.01358, 0.01306, 0.01272, 0.10855, 0.0171, 0.0184)),
    ((200, 0.45, 50.0), (0.011208, 0.02125, 0.01850, 0.01847, 0.43578, 0.1369, 0.1806)),
]


@pytest.mark.parametrize(("params", "row"), BERNOULLI_ROWS)
def test_bernoulli_gibbs_table(params, row):
    gen, xr, bu, lind, lfull, n_i1, i_full = row
    n, theta, gamma = params
    m = BernoulliGibbs(n, theta, gamma)
    mi, lt = m.mutual_information(), m.lautum_information()
    i1, l1 = m.mi_per_sample(), m.lautum_per_sample()
    assert m.expected_gap().item() == pytest.approx(gen, abs=5e-7)
    assert bounds.xu_raginsky(mi, n, m.sigma).bound.item() == pytest.approx(xr, abs=5e-6)
    assert bounds.bu_zou_veeravalli(i1, m.sigma).bound.item() == pytest.approx(bu, abs=5e-6)
    assert bounds.lautum_per_sample(l1, m.sigma).bound.item() == pytest.approx(lind, abs=5e-6)
    assert bounds.lautum_full_sample(lt, m.sigma).bound.item() == pytest.approx(lfull, abs=5e-6)
    assert (n * i1).item() == pytest.approx(n_i1, abs=5e-5)
    assert mi.item() == pytest.approx(i_full, abs=5e-5)
    # the ordering chapter 2 derives
    g = m.expected_gap()
    assert g <= bounds.lautum_per_sample(l1, m.sigma).bound
    assert g <= bounds.bu_zou_veeravalli(i1, m.sigma).bound <= bounds.xu_raginsky(mi, n, m.sigma).bound
    assert n * i1 <= mi
    assert g <= bounds.gibbs_sub_gaussian_bound(n, m.sigma, gamma)
    assert bounds.gibbs_sub_gaussian_bound(n, m.sigma, gamma).item() == pytest.approx(gamma / (2 * n))


def test_gibbs_identity_row1():
    r = bounds.gibbs_generalization(0.114705, 0.146113, 5.0)
    assert r.gap.item() == pytest.approx(0.052164, abs=1e-6)
    assert r.mutual_information.item() == 0.114705 and r.gamma.item() == 5.0


@pytest.mark.parametrize(("n", "expected"), [(10, 0.58499), (100, 0.15004), (1000, 0.04545)])
def test_bu_cgf_gaussian_mean_table(n, expected):
    """Chapter 2's Bernoulli example, the Bu CGF column."""
    m = GaussianMeanEstimation(n=n)
    r = bounds.bu_zou_veeravalli_cgf(m.mi_per_sample(), m.loss_cgf, m.cgf_lambda_max())
    assert r.bound.item() == pytest.approx(expected, abs=5e-6)
    assert r.bound > m.expected_gap()


def test_cgf_bound_with_gaussian_cgf_equals_sub_gaussian_bound():
    """With psi = lambda^2 sigma^2 / 2 the infimum is sqrt(2 sigma^2 I)."""
    sigma, mi = 0.7, 0.3
    r = bounds.bu_zou_veeravalli_cgf(mi, lambda lam: lam**2 * sigma**2 / 2, 1e3)
    assert r.bound.item() == pytest.approx(math.sqrt(2 * sigma**2 * mi), rel=1e-9)


def test_decoupling_and_per_sample_average():
    assert bounds.decoupling_bound(0.5, 1.0).bound.item() == pytest.approx(1.0)
    per = torch.tensor([[0.01, 0.04], [0.0, 0.09]], dtype=torch.float64)
    r = bounds.bu_zou_veeravalli(per, 0.5, sample_dim=-1)
    expected = torch.sqrt(2 * 0.25 * per).mean(-1)
    torch.testing.assert_close(r.bound, expected)
    assert r.information is not None and r.bound.shape == (2,)


def test_min_bound_picks_the_smaller_term_and_survives_infinite_lautum():
    r = bounds.bounded_loss_min_bound(0.02, math.inf, 1.0)
    assert r.bound.item() == pytest.approx(math.sqrt(0.02 / 2))
    assert math.isinf(bounds.lautum_per_sample(math.inf, 0.5).bound.item())
    r2 = bounds.bounded_loss_min_bound(0.02, 0.01, 2.0)
    assert r2.bound.item() == pytest.approx(2 / math.sqrt(2) * math.sqrt(0.01))


def test_transfer_bounds_known_values():
    a = bounds.wu_transfer_bound(0.0465452, 0.1163493, 0.5)
    b = bounds.lautum_transfer_bound(0.1626784, 0.0846743, 0.5)
    assert a.bound.item() == pytest.approx(math.sqrt(0.1628945 / 2), abs=1e-7)
    assert b.bound.item() == pytest.approx(math.sqrt(0.2473527 / 2), abs=1e-7)
    assert b.information.item() == 0.0846743 and b.divergence.item() == 0.1626784


@pytest.mark.parametrize(
    "call",
    [
        lambda: bounds.xu_raginsky(-0.1, 10, 0.5),
        lambda: bounds.xu_raginsky(0.1, 0, 0.5),
        lambda: bounds.bu_zou_veeravalli(0.1, -1.0),
        lambda: bounds.gibbs_generalization(0.1, 0.1, 0.0),
        lambda: bounds.lautum_transfer_bound(-1.0, 0.1, 0.5),
        lambda: bounds.bu_zou_veeravalli_cgf(0.1, lambda x: x, math.inf),
    ],
)
def test_invalid_inputs_raise_actionable_errors(call):
    with pytest.raises(ValueError):
        call()


def test_dtype_and_device_preserved(device, dtype):
    mi = torch.tensor([0.1, 0.2], dtype=dtype, device=device)
    for r in (
        bounds.xu_raginsky(mi, 10, 0.5),
        bounds.bu_zou_veeravalli(mi, 0.5),
        bounds.lautum_per_sample(mi, 0.5),
        bounds.lautum_full_sample(mi, 0.5),
        bounds.bounded_loss_min_bound(mi, mi, 1.0),
        bounds.wu_transfer_bound(mi, 0.1, 0.5),
        bounds.lautum_transfer_bound(0.1, mi, 0.5),
        bounds.decoupling_bound(mi, 1.0),
    ):
        assert r.bound.dtype == dtype and r.bound.device.type == device.type
    g = bounds.gibbs_generalization(mi, mi, 2.0)
    assert g.gap.dtype == dtype and g.gap.device.type == device.type
    dv = bounds.donsker_varadhan(mi, torch.tensor([0.5, 0.5], dtype=dtype, device=device), mi / mi.sum())
    assert dv.value.dtype == dtype and dv.value.device.type == device.type


@SETTINGS
@given(
    q=st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
    p=st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
    f=st.lists(st.floats(-5.0, 5.0), min_size=3, max_size=3),
)
def test_donsker_varadhan_is_a_lower_bound_attained_at_the_log_ratio(q, p, f):
    q = torch.tensor(q, dtype=torch.float64)
    q = q / q.sum()
    p = torch.tensor(p, dtype=torch.float64)
    p = p / p.sum()
    kl = (q * (q / p).log()).sum()
    assert bounds.donsker_varadhan(torch.tensor(f, dtype=torch.float64), q, p).value <= kl + 1e-12
    assert bounds.donsker_varadhan((q / p).log() + 3.0, q, p).value.item() == pytest.approx(kl.item(), abs=1e-12)


@SETTINGS
@given(n=st.integers(1, 60), theta=st.floats(0.02, 0.98), gamma=st.floats(0.05, 80.0))
def test_bernoulli_gibbs_every_bound_holds_and_identity_is_exact(n, theta, gamma):
    m = BernoulliGibbs(n, theta, gamma)
    g = m.expected_gap()
    mi, lt = m.mutual_information(), m.lautum_information()
    i1, l1 = m.mi_per_sample(), m.lautum_per_sample()
    tol = 1e-12
    assert abs(bounds.gibbs_generalization(mi, lt, gamma).gap - g) <= 1e-10
    assert abs(g - m.expected_gap_direct()) <= 1e-12
    assert g >= -tol
    assert g <= bounds.xu_raginsky(mi, n, 0.5).bound + tol
    assert g <= bounds.bu_zou_veeravalli(i1, 0.5).bound + tol
    assert g <= bounds.lautum_per_sample(l1, 0.5).bound + tol
    assert g <= bounds.lautum_full_sample(lt, 0.5).bound + tol
    assert g <= bounds.bounded_loss_min_bound(i1, l1, 1.0).bound + tol
    assert g <= bounds.gibbs_sub_gaussian_bound(n, 0.5, gamma) + tol
    assert n * i1 <= mi + 1e-12


@SETTINGS
@given(
    n=st.integers(2, 500),
    scale=st.floats(0.1, 1.5),
    noise_var=st.floats(0.0, 2.0),
    data_mean=st.floats(-2.0, 2.0),
    dim=st.integers(1, 3),
)
def test_gaussian_mean_cgf_bounds_hold(n, scale, noise_var, data_mean, dim):
    m = GaussianMeanEstimation(n=n, dim=dim, scale=scale, noise_var=noise_var, data_mean=data_mean)
    g = m.expected_gap()
    mi_b = bounds.bu_zou_veeravalli_cgf(m.mi_per_sample(), m.loss_cgf, m.cgf_lambda_max()).bound
    lt_b = bounds.bu_zou_veeravalli_cgf(
        m.lautum_per_sample(), lambda lam: m.loss_cgf(lam, "joint"), m.cgf_lambda_max("joint")
    ).bound
    assert g <= mi_b + 1e-12
    assert g <= lt_b + 1e-12


@SETTINGS
@given(
    n=st.integers(1, 50),
    noise_var=st.floats(0.01, 2.0),
    scale=st.floats(0.2, 1.5),
    target_mean=st.floats(-2.0, 2.0),
    target_var=st.floats(0.2, 3.0),
    loss_width=st.floats(0.3, 3.0),
)
def test_gaussian_transfer_both_bounds_hold(n, noise_var, scale, target_mean, target_var, loss_width):
    m = GaussianTransfer(
        n=n, noise_var=noise_var, scale=scale, target_mean=target_mean, target_var=target_var, loss_width=loss_width
    )
    gap = m.expected_transfer_gap().abs()
    a = bounds.wu_transfer_bound(m.mi_per_sample(), m.kl_source_target(), m.sigma).bound
    b = bounds.lautum_transfer_bound(m.kl_target_source(), m.target_lautum(), m.sigma).bound
    assert gap <= a + 1e-12
    assert gap <= b + 1e-12

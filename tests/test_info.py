"""Tests for lautum.info against independent references, closed forms and properties.

References used: scipy.stats.entropy, explicit Python sums, numeric integration on a
grid, Monte Carlo (asserted within 5 standard errors), and the values of
the closed forms of chapter 1 (notebooks/01-lautum-information.ipynb).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lautum.info as info

PROPS = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------- helpers


def bsc_joint(p: float, delta: float) -> np.ndarray:
    px = np.array([1 - p, p])
    w = np.array([[1 - delta, delta], [delta, 1 - delta]])
    return px[:, None] * w


def gauss2(rho: float) -> np.ndarray:
    return np.array([[1.0, rho], [rho, 1.0]])


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d + 2))
    return a @ a.T / (d + 2) + 0.05 * np.eye(d)


def hand_mi_lautum(pxy: np.ndarray) -> tuple[float, float]:
    """Explicit double loop with the 0 log 0 conventions (independent of the module)."""
    px, py = pxy.sum(1), pxy.sum(0)
    mi = lautum = 0.0
    for i in range(pxy.shape[0]):
        for j in range(pxy.shape[1]):
            joint, prod = pxy[i, j], px[i] * py[j]
            if joint > 0:
                mi += joint * math.log(joint / prod)
            if prod > 0:
                lautum += math.inf if joint == 0 else prod * math.log(prod / joint)
    return mi, lautum


def as_pmf(a: np.ndarray) -> np.ndarray:
    return a / a.sum()


# Joint pmfs with zeros allowed (so inf cases occur), shapes up to 4 x 4.
pmf2d = st.tuples(st.integers(1, 4), st.integers(1, 4)).flatmap(
    lambda s: arrays(np.float64, s, elements=st.one_of(st.just(0.0), st.floats(1e-6, 1))).filter(lambda a: a.sum() > 1e-3).map(as_pmf)
)
# Strictly positive joint pmfs (finite L).
pos_pmf2d = st.tuples(st.integers(2, 4), st.integers(2, 4)).flatmap(
    lambda s: arrays(np.float64, s, elements=st.floats(0.01, 1)).map(as_pmf)
)
seeds = st.integers(0, 2**32 - 1)


# --------------------------------------------------------------------------- references


def test_entropy_and_kl_match_scipy():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(6), size=5)
    q = rng.dirichlet(np.ones(6), size=5)
    p[0, :2] = 0.0
    p[0] /= p[0].sum()
    np.testing.assert_allclose(info.entropy(p).numpy(), scipy.stats.entropy(p, axis=1), rtol=1e-13)
    np.testing.assert_allclose(info.entropy(p, base=2).numpy(), scipy.stats.entropy(p, base=2, axis=1), rtol=1e-13)
    np.testing.assert_allclose(info.kl_divergence(p, q).numpy(), scipy.stats.entropy(p, q, axis=1), rtol=1e-12)
    assert float(info.kl_divergence([0.5, 0.5], [1.0, 0.0])) == math.inf
    assert float(info.kl_divergence([1.0, 0.0], [0.5, 0.5])) == pytest.approx(math.log(2), abs=1e-15)


@given(pmf2d)
@PROPS
def test_mi_and_lautum_match_hand_sums(pxy):
    mi, lautum = hand_mi_lautum(pxy)
    assert float(info.mutual_information(pxy)) == pytest.approx(mi, abs=1e-12)
    got = float(info.lautum_information(pxy))
    assert got == pytest.approx(lautum, abs=1e-12) if math.isfinite(lautum) else got == math.inf


@pytest.mark.parametrize(
    ("p", "delta", "mi", "lautum"),
    [(0.5, 0.1, 0.368064, 0.510826), (0.3, 0.2, 0.163662, 0.185684), (0.1, 0.01, 0.286312, 0.524267), (0.5, 0.5, 0.0, 0.0)],
)
def test_bsc_table(p, delta, mi, lautum):
    pxy = bsc_joint(p, delta)
    w = [[1 - delta, delta], [delta, 1 - delta]]
    assert float(info.mutual_information(pxy)) == pytest.approx(mi, abs=1e-6)
    assert float(info.lautum_information(pxy)) == pytest.approx(lautum, abs=1e-6)
    assert float(info.mutual_information_channel([1 - p, p], w)) == pytest.approx(mi, abs=1e-6)
    assert float(info.lautum_information_channel([1 - p, p], w)) == pytest.approx(lautum, abs=1e-6)
    if p == 0.5:  # closed forms for a uniform input
        h = -delta * math.log(delta) - (1 - delta) * math.log(1 - delta)
        assert float(info.mutual_information(pxy)) == pytest.approx(math.log(2) - h, abs=1e-14)
        assert float(info.lautum_information(pxy)) == pytest.approx(0.5 * math.log(1 / (4 * delta * (1 - delta))), abs=1e-14)


def test_dit_fixture_bits():
    p = np.array([3, 1, 1, 3, 1, 3, 3, 1], dtype=float).reshape(2, 2, 2) / 16
    m0, m1, m2 = p.sum((1, 2)), p.sum((0, 2)), p.sum((0, 1))
    prod = m0[:, None, None] * m1[None, :, None] * m2[None, None, :]
    total = float(info.kl_divergence(prod.ravel(), p.ravel(), base=2))
    assert total == pytest.approx(0.2075187496, abs=1e-10)
    assert total == pytest.approx(0.5 * math.log2(4 / 3), abs=1e-14)
    assert float(info.lautum_information(p.sum(2), base=2)) == pytest.approx(0.0, abs=1e-15)


def test_neither_dominates_matrix():
    m = as_pmf(np.array([[0.7388, 0.0996], [0.0955, 0.0662]]))
    mi, lautum = float(info.mutual_information(m)), float(info.lautum_information(m))
    assert mi == pytest.approx(0.034150, abs=1e-6)
    assert lautum == pytest.approx(0.030346, abs=1e-6)
    assert lautum < mi
    bsc = bsc_joint(0.5, 0.1)
    assert float(info.mutual_information(bsc)) < float(info.lautum_information(bsc))


def test_chain_rule_fixture():
    b = np.arange(2.0)
    p = as_pmf(1 + 4 * b[:, None, None] + 2 * b[None, :, None] + b[None, None, :])
    r = info.lautum_chain_rule(p)
    assert float(r.total) == pytest.approx(0.00959024, abs=1e-8)
    assert float(r.marginal + r.conditional) == pytest.approx(float(r.total), abs=1e-15)
    assert float(r.marginal + r.naive) == pytest.approx(0.00926367, abs=1e-8)
    assert float(r.marginal) == pytest.approx(0.00155619, abs=1e-8)
    assert abs(float(r.marginal + r.naive) - float(r.total)) > 1e-4  # the naive rule fails


# --------------------------------------------------------------------------- infinite cases


def test_lautum_infinite_cases():
    px = np.array([0.2, 0.3, 0.5])
    same = np.diag(px)  # Y = X
    assert float(info.lautum_information(same)) == math.inf
    assert float(info.mutual_information(same)) == pytest.approx(scipy.stats.entropy(px), abs=1e-14)
    f = np.array([[0.2, 0.0], [0.0, 0.3], [0.0, 0.5]])  # Y = f(X), non-constant
    assert float(info.lautum_information(f)) == math.inf
    eps = 0.3
    bec = [[1 - eps, eps, 0.0], [0.0, eps, 1 - eps]]
    assert float(info.lautum_information_channel([0.5, 0.5], bec)) == math.inf
    assert float(info.lautum_information(0.5 * np.array(bec))) == math.inf
    assert float(info.mutual_information_channel([0.5, 0.5], bec)) == pytest.approx((1 - eps) * math.log(2), abs=1e-14)
    assert float(info.mutual_information_channel([0.5, 0.5], bec)) == pytest.approx(0.485203, abs=1e-6)
    # an unused input symbol does not make L infinite (0 * inf = 0)
    assert math.isfinite(float(info.lautum_information_channel([1.0, 0.0], [[0.5, 0.5], [1.0, 0.0]])))
    # Gaussian: canonical correlation 1 -> inf; singular marginal -> nan
    assert float(info.gaussian_lautum_information(gauss2(1.0), 1)) == math.inf
    assert float(info.gaussian_mutual_information(gauss2(1.0), 1)) == math.inf
    assert math.isnan(float(info.gaussian_lautum_information(np.zeros((2, 2)), 1)))


def test_histogram_plugin_is_infinite_on_empty_cells():
    x = torch.tensor([0, 1, 1, 0, 1])
    y = x.clone()
    phat = info.joint_histogram(x, y, 2, 2)
    assert phat.sum().item() == pytest.approx(1.0)
    assert float(info.lautum_information(phat)) == math.inf


# --------------------------------------------------------------------------- discrete properties


@given(pmf2d)
@PROPS
def test_nonnegative_symmetric(pxy):
    for fn in (info.mutual_information, info.lautum_information):
        v, vt = float(fn(pxy)), float(fn(pxy.T))
        assert v >= 0.0
        assert vt == v or vt == pytest.approx(v, rel=1e-12, abs=1e-14)


@given(pmf2d)
@PROPS
def test_zero_iff_independent_and_pinsker(pxy):
    px, py = pxy.sum(1), pxy.sum(0)
    outer = np.outer(px, py)
    assert float(info.lautum_information(outer)) <= 1e-14
    assert float(info.mutual_information(outer)) <= 1e-14
    tv = 0.5 * np.abs(pxy - outer).sum()
    # Pinsker, both directions: L and I are >= 2 TV^2, so > 0 unless P_XY = P_X P_Y
    assert float(info.lautum_information(pxy)) >= 2 * tv**2 - 1e-14
    assert float(info.mutual_information(pxy)) >= 2 * tv**2 - 1e-14


@given(pmf2d, seeds, st.integers(1, 4))
@PROPS
def test_data_processing(pxy, seed, nz):
    w = np.random.default_rng(seed).dirichlet(0.5 * np.ones(nz), size=pxy.shape[1])  # Y -> Z
    pxz = pxy @ w
    for fn in (info.lautum_information, info.mutual_information):
        before, after = float(fn(pxy)), float(fn(pxz))
        assert after <= before * (1 + 1e-12) + 1e-14


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), seeds, st.booleans())
@PROPS
def test_chain_rule_exact(nx, ny, nz, seed, sparse):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(nx * ny * nz)).reshape(nx, ny, nz)
    if sparse:
        p = p * (rng.random(p.shape) > 0.3)
        if p.sum() == 0:
            p[0, 0, 0] = 1.0
        p = as_pmf(p)
    r = info.lautum_chain_rule(p)
    total = float(info.lautum_information(p.reshape(nx, ny * nz)))
    assert float(r.total) == total or float(r.total) == pytest.approx(total, rel=1e-12, abs=1e-14)
    assert float(r.marginal + r.conditional) == pytest.approx(total, rel=1e-10, abs=1e-13)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), seeds)
@PROPS
def test_naive_chain_rule_holds_when_x_independent_of_z(nx, ny, nz, seed):
    rng = np.random.default_rng(seed)
    px = rng.dirichlet(np.ones(nx))
    pz = rng.dirichlet(np.ones(nz))
    y_given_xz = rng.dirichlet(np.ones(ny), size=(nx, nz))  # (nx, nz, ny)
    p = np.einsum("x,z,xzy->xyz", px, pz, y_given_xz)
    r = info.lautum_chain_rule(p)
    assert float(r.marginal) == pytest.approx(0.0, abs=1e-14)
    assert float(r.naive) == pytest.approx(float(r.total), rel=1e-10, abs=1e-13)


@given(pos_pmf2d)
@PROPS
def test_jeffreys_and_channel_forms(pxy):
    px, py = pxy.sum(1), pxy.sum(0)
    outer = np.outer(px, py)
    density = np.log(pxy / outer)
    jeffreys = float((pxy * density).sum() - (outer * density).sum())  # E_joint i - E_prod i
    mi, lautum = float(info.mutual_information(pxy)), float(info.lautum_information(pxy))
    assert mi + lautum == pytest.approx(jeffreys, rel=1e-10, abs=1e-13)
    assert float(info.jeffreys_information(pxy)) == pytest.approx(jeffreys, rel=1e-10, abs=1e-13)
    w = pxy / px[:, None]
    assert float(info.lautum_information_channel(px, w)) == pytest.approx(lautum, rel=1e-10, abs=1e-13)
    assert float(info.mutual_information_channel(px, w)) == pytest.approx(mi, rel=1e-10, abs=1e-13)
    dens = info.information_density(pxy).numpy()
    np.testing.assert_allclose(dens, density, rtol=1e-12, atol=1e-13)
    chi2 = ((pxy - outer) ** 2 / outer).sum()
    assert float(info.chi_square_information(pxy)) == pytest.approx(chi2, rel=1e-12, abs=1e-15)


@given(st.integers(1, 4), st.integers(2, 4), seeds, st.floats(0, 1))
@PROPS
def test_convex_in_channel(nx, ny, seed, lam):
    rng = np.random.default_rng(seed)
    px = rng.dirichlet(np.ones(nx))
    w1, w2 = rng.dirichlet(np.ones(ny), size=nx), rng.dirichlet(np.ones(ny), size=nx)
    mix = float(info.lautum_information_channel(px, lam * w1 + (1 - lam) * w2))
    ends = lam * float(info.lautum_information_channel(px, w1)) + (1 - lam) * float(info.lautum_information_channel(px, w2))
    assert mix <= ends * (1 + 1e-12) + 1e-14


def test_local_equivalence_series():
    """I and L against their power series in u = P/Q - 1, with the rigorous tail bound (K = 4)."""
    px, py = np.array([0.3, 0.7]), np.array([0.2, 0.8])
    q = np.outer(px, py)
    a, b = np.array([1 / 0.3, -1 / 0.7]), np.array([1 / 0.2, -1 / 0.8])
    h = np.outer(a, b) / 10  # zero row/column means under q: marginals are kept
    for eps in (1e-1, 1e-2, 1e-3, 1e-4):
        u = eps * h
        p = q * (1 + u)
        m = {k: (q * u**k).sum() for k in (2, 3, 4)}
        m5, umax = (q * np.abs(u) ** 5).sum(), np.abs(u).max()
        assert umax < 1
        assert float(info.chi_square_information(p)) == pytest.approx(m[2], rel=1e-9)
        mi, lautum = float(info.mutual_information(p)), float(info.lautum_information(p))
        if eps >= 1e-3:  # below this the float64 rounding (~1e-21 here) exceeds the tail bound
            assert abs(mi - (m[2] / 2 - m[3] / 6 + m[4] / 12)) <= m5 / (20 * (1 - umax))
            assert abs(lautum - (m[2] / 2 - m[3] / 3 + m[4] / 4)) <= m5 / (5 * (1 - umax))
        else:  # relative accuracy stays ~1e-12 for nearly independent pairs
            assert mi == pytest.approx(m[2] / 2 - m[3] / 6 + m[4] / 12, rel=1e-10)
            assert lautum == pytest.approx(m[2] / 2 - m[3] / 3 + m[4] / 4, rel=1e-10)


def test_near_independence_relative_accuracy_float32():
    q = np.outer([0.3, 0.7], [0.2, 0.8])
    p = q * (1 + 1e-2 * np.outer([1 / 0.3, -1 / 0.7], [1 / 0.2, -1 / 0.8]) / 10)
    exact = float(info.lautum_information(p))
    got = float(info.lautum_information(torch.tensor(p, dtype=torch.float32)))
    assert got == pytest.approx(exact, rel=1e-3)


# --------------------------------------------------------------------------- Monte Carlo


def test_discrete_monte_carlo_within_5se():
    pxy = torch.tensor(bsc_joint(0.3, 0.2))
    dens = info.information_density(pxy)
    n = 200_000
    gen = torch.Generator().manual_seed(3)
    cells = torch.multinomial(pxy.flatten(), n, replacement=True, generator=gen)
    est = info.mutual_information_mc(dens.flatten()[cells])
    assert abs(float(est.value) - float(info.mutual_information(pxy))) < 5 * float(est.stderr)
    xs = torch.multinomial(pxy.sum(1), n, replacement=True, generator=gen)
    ys = torch.multinomial(pxy.sum(0), n, replacement=True, generator=gen)
    est = info.lautum_information_mc(dens[xs, ys])
    assert abs(float(est.value) - float(info.lautum_information(pxy))) < 5 * float(est.stderr)


def test_gaussian_monte_carlo_within_5se():
    rng = np.random.default_rng(7)
    cov = random_spd(rng, 5)
    n = 200_000
    z = torch.distributions.MultivariateNormal(torch.zeros(5, dtype=torch.float64), torch.tensor(cov)).sample((n,))
    x, y = z[:, :3], z[:, 3:]
    y_ghost = y[torch.randperm(n)]  # a permutation pairs X with an (almost) independent Y
    est_i = info.mutual_information_mc(info.gaussian_information_density(x, y, cov))
    est_l = info.lautum_information_mc(info.gaussian_information_density(x, y_ghost, cov))
    assert abs(float(est_i.value) - float(info.gaussian_mutual_information(cov, 3))) < 5 * float(est_i.stderr)
    assert abs(float(est_l.value) - float(info.gaussian_lautum_information(cov, 3))) < 5 * float(est_l.stderr)


# --------------------------------------------------------------------------- Gaussian


def test_gaussian_scalar_values_and_numeric_integration():
    cov = gauss2(0.5)
    mi, lautum = float(info.gaussian_mutual_information(cov, 1)), float(info.gaussian_lautum_information(cov, 1))
    assert mi == pytest.approx(0.14384103622589, abs=1e-13)
    assert lautum == pytest.approx(0.18949229710744, abs=1e-13)
    assert mi + lautum == pytest.approx(1 / 3, abs=1e-14)
    # numeric integration on a grid (the integrands are smooth and decay like Gaussians)
    t = np.linspace(-12, 12, 2401)
    dt = t[1] - t[0]
    xx, yy = np.meshgrid(t, t, indexing="ij")
    rho = 0.5
    log_joint = -(xx**2 - 2 * rho * xx * yy + yy**2) / (2 * (1 - rho**2)) - np.log(2 * np.pi * np.sqrt(1 - rho**2))
    log_prod = -(xx**2 + yy**2) / 2 - np.log(2 * np.pi)
    dens = log_joint - log_prod
    assert (np.exp(log_joint) * dens).sum() * dt**2 == pytest.approx(mi, abs=1e-9)
    assert -(np.exp(log_prod) * dens).sum() * dt**2 == pytest.approx(lautum, abs=1e-9)
    np.testing.assert_allclose(
        info.gaussian_information_density(torch.tensor(xx[::50, ::50, None]), torch.tensor(yy[::50, ::50, None]), cov).numpy(),
        dens[::50, ::50],
        atol=1e-10,
    )


@pytest.mark.parametrize(("rho", "ratio"), [(0.01, 1.0001), (0.1, 1.0101), (0.5, 1.3174), (0.9, 4.1341), (0.99, 24.147)])
def test_gaussian_lautum_to_mi_ratio(rho, ratio):
    cov = gauss2(rho)
    r = float(info.gaussian_lautum_information(cov, 1) / info.gaussian_mutual_information(cov, 1))
    assert r == pytest.approx(ratio, abs=0.6 * 10 ** -(len(str(ratio).split(".")[1])))


def _numpy_forms(cov: np.ndarray, p: int) -> dict[str, tuple[float, float]]:
    """Independent NumPy/SciPy versions of the three forms (explicit solves are fine here)."""
    d = cov.shape[0]
    sx, sxy, sy = cov[:p, :p], cov[:p, p:], cov[p:, p:]
    mi_ld = 0.5 * (np.linalg.slogdet(sx)[1] + np.linalg.slogdet(sy)[1] - np.linalg.slogdet(cov)[1])
    cov0 = np.zeros_like(cov)
    cov0[:p, :p], cov0[p:, p:] = sx, sy
    lautum_tr = 0.5 * (np.trace(np.linalg.solve(cov, cov0)) - d) - mi_ld
    import scipy.linalg

    isx = scipy.linalg.inv(scipy.linalg.sqrtm(sx)).real
    isy = scipy.linalg.inv(scipy.linalg.sqrtm(sy)).real
    rho = np.linalg.svd(isx @ sxy @ isy, compute_uv=False)
    mi_cca = -0.5 * np.log1p(-(rho**2)).sum()
    lautum_cca = (rho**2 / (1 - rho**2) + 0.5 * np.log1p(-(rho**2))).sum()
    return {"kl": (mi_ld, lautum_tr), "cca": (mi_cca, lautum_cca), "rho": rho}


@given(seeds, st.integers(1, 4), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_gaussian_forms_agree(seed, p, q):
    cov = random_spd(np.random.default_rng(seed), p + q)
    ref = _numpy_forms(cov, p)
    values = {m: (float(info.gaussian_mutual_information(cov, p, method=m)), float(info.gaussian_lautum_information(cov, p, method=m))) for m in info.GAUSSIAN_METHODS}
    scale = 1 + max(abs(v) for pair in values.values() for v in pair)
    for m, (mi, lautum) in values.items():
        assert mi == pytest.approx(ref["kl"][0], abs=1e-10 * scale), m
        assert lautum == pytest.approx(ref["kl"][1], abs=1e-10 * scale), m
        assert mi == pytest.approx(ref["cca"][0], abs=1e-10 * scale), m
        assert lautum == pytest.approx(ref["cca"][1], abs=1e-10 * scale), m
        assert lautum >= mi - 1e-12  # Gaussian: L >= I
    rho = info.canonical_correlations(cov, p).numpy()
    np.testing.assert_allclose(rho, ref["rho"][: min(p, q)], atol=1e-10)


def test_gaussian_channel_values_and_joint_form():
    h = np.array([[1, 0.5, 0], [0, 1, -1]])
    sx, sn = np.diag([1, 2, 0.5]), np.eye(2)
    mi, lautum = info.gaussian_channel_information(h, sx, sn)
    assert float(lautum) == pytest.approx(2.9761536, abs=1e-7)
    assert float(mi) == pytest.approx(1.0238464, abs=1e-7)
    assert float(mi + lautum) == pytest.approx(4.0, abs=1e-13)
    # same numbers from the joint covariance of (X, Y = HX + N)
    rng = np.random.default_rng(0)
    sn2 = random_spd(rng, 2)
    for noise in (sn, sn2):
        joint = np.block([[sx, sx @ h.T], [h @ sx, h @ sx @ h.T + noise]])
        mi, lautum = info.gaussian_channel_information(h, sx, noise)
        assert float(mi) == pytest.approx(float(info.gaussian_mutual_information(joint, 3)), abs=1e-12)
        assert float(lautum) == pytest.approx(float(info.gaussian_lautum_information(joint, 3)), abs=1e-12)
    for snr, value in [(0.1, 0.0523449), (1.0, 0.6534264), (10.0, 8.8010524)]:
        assert float(info.gaussian_channel_information([[1.0]], [[snr]], [[1.0]]).lautum) == pytest.approx(value, abs=1e-7)


# --------------------------------------------------------------------------- plug-in estimators


def test_plugin_needs_batch_larger_than_p_plus_q():
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    assert float(info.gaussian_lautum_from_samples(x, y)) == math.inf
    assert float(info.gaussian_mi_from_samples(x, y)) == math.inf
    assert math.isfinite(float(info.gaussian_lautum_from_samples(x, y, ridge=1e-3)))
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    assert math.isfinite(float(info.gaussian_lautum_from_samples(x, y)))


def test_plugin_null_bias_is_pq_over_2b():
    p, q, b, reps = 3, 2, 500, 10_000
    mi, lautum = [], []
    for _ in range(5):
        x = torch.randn(reps // 5, b, p, dtype=torch.float64)
        y = torch.randn(reps // 5, b, q, dtype=torch.float64)
        mi.append(info.gaussian_mi_from_samples(x, y))
        lautum.append(info.gaussian_lautum_from_samples(x, y))
    target = p * q / (2 * b)
    assert float(torch.cat(mi).mean()) == pytest.approx(target, rel=0.05)
    assert float(torch.cat(lautum).mean()) == pytest.approx(target, rel=0.05)


def test_plugin_consistent_on_gaussian_data():
    rho, n = 0.5, 200_000
    x = torch.randn(n, dtype=torch.float64)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, dtype=torch.float64)
    # delta method: sd(I_hat) ~ rho / sqrt(n); sd(L_hat) ~ |dL/drho| (1 - rho^2) / sqrt(n)
    sd_i = rho / math.sqrt(n)
    sd_l = (2 * rho / (1 - rho**2) ** 2 - rho / (1 - rho**2)) * (1 - rho**2) / math.sqrt(n)
    assert float(info.gaussian_mi_from_samples(x, y)) == pytest.approx(0.14384103622589, abs=5 * sd_i)
    assert float(info.gaussian_lautum_from_samples(x, y)) == pytest.approx(0.18949229710744, abs=5 * sd_l)


# --------------------------------------------------------------------------- dtype / device / batching


def test_dtype_and_device_preserved(dtype, device):
    kw = {"dtype": dtype, "device": device}
    pxy = torch.tensor(bsc_joint(0.3, 0.2), **kw)
    pxyz = torch.full((2, 2, 2), 1 / 8, **kw)
    cov = torch.tensor(gauss2(0.5), **kw)
    x, y = torch.randn(50, 2, **kw), torch.randn(50, 1, **kw)
    outs = [
        info.entropy(pxy[0] * 2),
        info.kl_divergence(pxy[0] * 2, pxy[1] * 2),
        info.mutual_information(pxy),
        info.lautum_information(pxy),
        info.jeffreys_information(pxy),
        info.chi_square_information(pxy),
        info.information_density(pxy),
        info.mutual_information_channel(pxy.sum(1), pxy / pxy.sum(1, keepdim=True)),
        info.lautum_information_channel(pxy.sum(1), pxy / pxy.sum(1, keepdim=True)),
        *info.lautum_chain_rule(pxyz),
        info.canonical_correlations(cov, 1),
        info.gaussian_mutual_information(cov, 1),
        info.gaussian_lautum_information(cov, 1),
        *info.gaussian_channel_information(cov[:1, :1], cov[:1, :1], cov[:1, :1]),
        info.gaussian_information_density(x[:, :1], y, cov),
        *info.mutual_information_mc(x[:, 0]),
        *info.lautum_information_mc(x[:, 0]),
        info.joint_sample_covariance(x, y),
        info.gaussian_mi_from_samples(x, y),
        info.gaussian_lautum_from_samples(x, y),
    ]
    for out in outs:
        assert out.dtype == dtype and out.device.type == device.type
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert float(info.lautum_information(pxy)) == pytest.approx(0.185684, abs=1e-6 + tol)
    assert float(info.gaussian_lautum_information(cov, 1)) == pytest.approx(0.18949229710744, abs=tol)
    assert info.joint_histogram(torch.tensor([0, 1], device=device), torch.tensor([1, 1], device=device), 2, 2).device.type == device.type


def test_array_likes_become_float64_cpu_tensors():
    out = info.lautum_information([[1, 1], [1, 2]] / np.float64(5))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.device.type == "cpu"
    assert info.lautum_information(np.full((2, 2), 0.25, dtype=np.float32)).dtype == torch.float32
    assert info.mutual_information([[1, 0], [0, 1]]).dtype == torch.float64  # ints -> float64
    assert info.kl_divergence(torch.tensor([0.5, 0.5], dtype=torch.float32), [0.25, 0.75]).dtype == torch.float32


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        info.lautum_information([0.5, 0.5])
    with pytest.raises(ValueError):
        info.gaussian_lautum_information(np.eye(3), 3)
    with pytest.raises(ValueError):
        info.lautum_chain_rule(np.full((2, 2), 0.25))
    with pytest.raises(ValueError):
        info.gaussian_lautum_information(np.eye(3), 1, method="inverse")


def test_batched_equals_loop():
    rng = np.random.default_rng(5)
    pxy = torch.tensor(rng.dirichlet(np.ones(12), size=(2, 3)).reshape(2, 3, 3, 4))
    pxy[0, 1, 0, 0] = 0.0  # one batch element with an infinite L
    pxy = pxy / pxy.sum((-2, -1), keepdim=True)
    for fn in (info.mutual_information, info.lautum_information, info.jeffreys_information, info.chi_square_information):
        batched = fn(pxy)
        assert batched.shape == (2, 3)
        loop = torch.stack([torch.stack([fn(pxy[i, j]) for j in range(3)]) for i in range(2)])
        torch.testing.assert_close(batched, loop, rtol=1e-13, atol=1e-15)
    assert float(info.lautum_information(pxy)[0, 1]) == math.inf
    pxyz = torch.tensor(rng.dirichlet(np.ones(8), size=4).reshape(4, 2, 2, 2))
    batched = info.lautum_chain_rule(pxyz)
    for k in range(4):
        single = info.lautum_chain_rule(pxyz[k])
        for a, b in zip(batched, single, strict=True):
            torch.testing.assert_close(a[k], b, rtol=1e-13, atol=1e-15)
    px = pxy.sum(-1)
    w = pxy / px.unsqueeze(-1)
    torch.testing.assert_close(info.lautum_information_channel(px[1], w[1]), info.lautum_information(pxy[1]), rtol=1e-12, atol=1e-15)
    covs = torch.tensor(np.stack([random_spd(rng, 5) for _ in range(6)])).reshape(2, 3, 5, 5)
    for m in info.GAUSSIAN_METHODS:
        for fn in (info.gaussian_mutual_information, info.gaussian_lautum_information):
            batched = fn(covs, 2, method=m)
            loop = torch.stack([torch.stack([fn(covs[i, j], 2, method=m) for j in range(3)]) for i in range(2)])
            torch.testing.assert_close(batched, loop, rtol=1e-12, atol=1e-14)
    rho = info.canonical_correlations(covs, 2)
    assert rho.shape == (2, 3, 2)
    hs = torch.randn(4, 2, 3, dtype=torch.float64)
    sx, sn = covs[0, :, :3, :3], covs[1, :, 3:, 3:]
    res = info.gaussian_channel_information(hs[:3], sx, sn)
    for k in range(3):
        single = info.gaussian_channel_information(hs[k], sx[k], sn[k])
        torch.testing.assert_close(res.lautum[k], single.lautum, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(res.mutual[k], single.mutual, rtol=1e-12, atol=1e-14)
    x, y = torch.randn(3, 40, 2, dtype=torch.float64), torch.randn(3, 40, 2, dtype=torch.float64)
    batched = info.gaussian_lautum_from_samples(x, y, ridge=1e-3)
    loop = torch.stack([info.gaussian_lautum_from_samples(x[k], y[k], ridge=1e-3) for k in range(3)])
    torch.testing.assert_close(batched, loop, rtol=1e-12, atol=1e-14)

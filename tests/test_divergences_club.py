"""CLUB (lautum.estimators): closed forms on jointly Gaussian data, dtype/device, errors."""

from __future__ import annotations

import math

import pytest
import torch

from lautum.estimators import CLUB, club_upper_bound, gaussian_log_likelihood
from lautum.info import gaussian_lautum_information, gaussian_mutual_information

F64 = torch.float64


def gaussian_pair(n, rho=0.5):
    x = torch.randn(n, 1, dtype=F64)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, 1, dtype=F64)
    return x, y


def test_exact_conditional_gives_mi_plus_lautum():
    """With q = p(y|x), CLUB = I + L (chapter "Measuring discrepancy", lautum.estimators): 1/3 nats at rho = 0.5."""
    rho, n = 0.5, 200_000
    x, y = gaussian_pair(n, rho)
    mu, logvar = rho * x, torch.full_like(x, math.log(1 - rho**2))
    est = club_upper_bound(y, mu, logvar).item()
    cov = torch.tensor([[1, rho], [rho, 1]], dtype=F64)
    truth = (gaussian_mutual_information(cov, 1) + gaussian_lautum_information(cov, 1)).item()
    assert truth == pytest.approx(1 / 3, abs=1e-12)
    # per-sample terms have sd < 1.5 here, so 5 SE < 0.02
    assert est == pytest.approx(truth, abs=0.02)


def test_misspecified_mean_closed_form():
    """q = N(beta x, s^2): CLUB = beta rho / s^2 (0.25 at beta = .5, s^2 = 1, rho = .5)."""
    x, y = gaussian_pair(200_000)
    est = club_upper_bound(y, 0.5 * x, torch.zeros_like(x)).item()
    assert est == pytest.approx(0.25, abs=0.01)


def test_all_pairs_matches_the_quadratic_definition():
    y = torch.randn(7, 2, dtype=F64)
    mu, logvar = torch.randn(7, 2, dtype=F64), torch.randn(7, 2, dtype=F64)
    pos = gaussian_log_likelihood(y, mu, logvar).mean()
    neg = torch.stack([gaussian_log_likelihood(y, mu[i].expand(7, 2), logvar[i].expand(7, 2)).mean() for i in range(7)]).mean()
    assert club_upper_bound(y, mu, logvar).item() == pytest.approx((pos - neg).item(), abs=1e-12)
    # pairs="shuffle": the product term pairs x_i with y_perm(i), perm drawn from the generator
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    shuffled = (pos - gaussian_log_likelihood(y[perm], mu, logvar).mean()).item()
    g = torch.Generator().manual_seed(0)
    assert club_upper_bound(y, mu, logvar, pairs="shuffle", generator=g).item() == pytest.approx(shuffled, abs=1e-12)


def test_shuffled_pairs_estimate_mi_plus_lautum_on_gaussians():
    """CLUBSample (pairs="shuffle") with q = p(y|x) on a bivariate Gaussian of correlation rho.

    Its product term pairs x_i with an independent y_perm(i), so its expectation is the
    all-pairs one: I + L = rho^2 / (1 - rho^2) (1/3 nats at rho = 0.5), not
    I = -log(1 - rho^2) / 2 (0.144 nats): an upper bound of I whose slack is L. The Monte
    Carlo standard error is measured from repeated seeded draws (data and permutation).
    """
    rho, n, draws = 0.5, 10_000, 30
    g = torch.Generator().manual_seed(0)
    estimates = []
    for _ in range(draws):
        x = torch.randn(n, 1, generator=g, dtype=F64)
        y = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, 1, generator=g, dtype=F64)
        mu, logvar = rho * x, torch.full_like(x, math.log(1 - rho**2))
        estimates.append(club_upper_bound(y, mu, logvar, pairs="shuffle", generator=g).item())
    est = torch.tensor(estimates, dtype=F64)
    mean, se = est.mean().item(), est.std().item() / math.sqrt(draws)
    mi = -0.5 * math.log(1 - rho**2)
    cov = torch.tensor([[1, rho], [rho, 1]], dtype=F64)
    assert gaussian_mutual_information(cov, 1).item() == pytest.approx(mi, abs=1e-12)
    truth = (gaussian_mutual_information(cov, 1) + gaussian_lautum_information(cov, 1)).item()
    assert truth == pytest.approx(rho**2 / (1 - rho**2), abs=1e-12)
    assert 0 < se < 0.01  # a real spread, small enough to tell I + L from I
    assert abs(mean - truth) < 5 * se
    assert mean - 5 * se > mi  # above the true MI, by the Lautum information


def test_fitted_club_upper_bounds_the_true_mi():
    """Y = A X + N with independent noise: the diagonal Gaussian q family holds p(y|x)."""
    n = 4000
    cov_x = torch.tensor([[1.0, 0.3], [0.3, 1.0]], dtype=F64)
    A = torch.tensor([[0.6, 0.0], [0.2, 0.5]], dtype=F64)
    noise = torch.tensor([0.5, 0.7], dtype=F64)
    x = torch.randn(n, 2, dtype=F64) @ torch.linalg.cholesky(cov_x).T
    y = x @ A.T + torch.randn(n, 2, dtype=F64) * noise.sqrt()
    cov = torch.cat([torch.cat([cov_x, cov_x @ A.T], 1), torch.cat([A @ cov_x, A @ cov_x @ A.T + torch.diag(noise)], 1)])
    mi = gaussian_mutual_information(cov, 2).item()
    lautum = gaussian_lautum_information(cov, 2).item()
    club = CLUB(2, 2)
    history = club.fit(x, y, steps=100, lr=0.1)
    assert history[-1] < history[0]
    with torch.no_grad():
        terms = club_upper_bound(y, *club.q_params(x), reduction="none")
    est, se = terms.mean().item(), terms.std().item() / math.sqrt(n)
    assert est == pytest.approx(club(x, y).item(), abs=1e-12)
    assert est - 4 * se > mi  # an upper bound of I, by the margin L
    assert abs(est - (mi + lautum)) < 4 * se  # and an estimate of I + L (q is well specified)


def test_dtype_and_device_are_preserved(device, dtype):
    club = CLUB(3, 2, hidden=8).to(device=device, dtype=dtype)
    x = torch.randn(10, 3, device=device, dtype=dtype)
    y = torch.randn(10, 2, device=device, dtype=dtype)
    for out in (club(x, y), club(x, y, pairs="shuffle"), club.learning_loss(x, y)):
        assert out.shape == () and out.dtype == dtype and out.device.type == device.type
    out.backward()


def test_bounded_logvar_is_tanh_limited():
    club = CLUB(1, 1, bounded_logvar=True)
    _, logvar = club.q_params(torch.linspace(-100, 100, 5)[:, None])
    assert logvar.abs().max() <= 1.0


def test_errors_are_actionable():
    with pytest.raises(ValueError, match="shape of y"):
        club_upper_bound(torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="two samples"):
        club_upper_bound(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="pairs"):
        club_upper_bound(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), pairs="some")
    with pytest.raises(ValueError, match="pair up"):
        CLUB(1, 1).fit(torch.zeros(3, 1), torch.zeros(4, 1), steps=1)

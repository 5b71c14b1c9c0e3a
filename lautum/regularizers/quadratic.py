r"""Closed forms for L2, L2-SP and early stopping on a quadratic objective.

Near its minimiser :math:`\hat w` a smooth loss is
:math:`J(w)\approx J(\hat w)+\frac12(w-\hat w)^\top H(w-\hat w)`, with
:math:`H=Q\Lambda Q^\top` positive semi-definite. Everything here is exact for
that quadratic (and hence for least squares):

* the L2-SP optimum :math:`w^\star=(H+\alpha I)^{-1}(H\hat w+\alpha w^0)`, which
  keeps the fraction :math:`\lambda_i/(\lambda_i+\alpha)` of the move from
  :math:`w^0` to :math:`\hat w` along eigendirection :math:`i`
  (:func:`l2sp_quadratic_optimum`, :func:`l2sp_spectral_filter`);
* plain L2, the same with :math:`w^0=0` (:func:`l2_quadratic_optimum`);
* gradient descent from :math:`w^0` with step :math:`\eta` for :math:`\tau` steps,
  which keeps the fraction :math:`1-(1-\eta\lambda_i)^\tau`
  (:func:`gd_quadratic_iterate`, :func:`gd_spectral_filter`), matched by
  L2-SP with :math:`\alpha\approx1/(\tau\eta)` (:func:`early_stopping_alpha`).

The derivations are standard (Goodfellow, Bengio and Courville, *Deep
Learning*, 2016, §7.1.1 and §7.8), re-centred at :math:`w^0` as in Li,
Grandvalet and Davoine (ICML 2018, §4). All functions are torch functions that
keep the dtype and device of their tensor inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "l2sp_quadratic_optimum",
    "l2_quadratic_optimum",
    "l2sp_spectral_filter",
    "gd_spectral_filter",
    "gd_quadratic_iterate",
    "early_stopping_alpha",
    "matching_alpha",
]


def _identity_like(H: Tensor) -> Tensor:
    return torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)


def l2sp_quadratic_optimum(H: Tensor, w_hat: Tensor, w0: Tensor, alpha: float) -> Tensor:
    r"""Minimiser of :math:`\frac12(w-\hat w)^\top H(w-\hat w)+\frac\alpha2\lVert w-w^0\rVert^2`.

    .. math::

        w^\star = (H+\alpha I)^{-1}(H\hat w+\alpha w^0)

    Parameters
    ----------
    H : Tensor, shape (d, d)
        Symmetric positive semi-definite Hessian.
    w_hat, w0 : Tensor, shape (d,)
        Unregularised optimum and starting point.
    alpha : float
        Must be > 0 unless ``H`` is non-singular.

    >>> H = torch.diag(torch.tensor([1.0, 0.0]))
    >>> l2sp_quadratic_optimum(H, torch.tensor([2.0, 2.0]), torch.tensor([1.0, 1.0]), alpha=1.0)
    tensor([1.5000, 1.0000])
    """
    rhs = H @ w_hat + alpha * w0
    return torch.linalg.solve(H + alpha * _identity_like(H), rhs)


def l2_quadratic_optimum(H: Tensor, w_hat: Tensor, alpha: float) -> Tensor:
    r"""Minimiser with plain L2 (decay to 0): :math:`(H+\alpha I)^{-1}H\hat w`.

    >>> H = torch.diag(torch.tensor([1.0, 0.0]))
    >>> l2_quadratic_optimum(H, torch.tensor([2.0, 2.0]), alpha=1.0)  # the flat direction goes to 0
    tensor([1., 0.])
    """
    return l2sp_quadratic_optimum(H, w_hat, torch.zeros_like(w_hat), alpha)


def l2sp_spectral_filter(lam: Tensor, alpha: float) -> Tensor:
    r"""Fraction :math:`\lambda/(\lambda+\alpha)` of the move :math:`w^0\to\hat w` kept along eigenvalue :math:`\lambda`.

    >>> l2sp_spectral_filter(torch.tensor([0.0, 1.0, 3.0]), alpha=1.0)
    tensor([0.0000, 0.5000, 0.7500])
    """
    return lam / (lam + alpha)


def gd_spectral_filter(lam: Tensor, eta: float, tau: int) -> Tensor:
    r"""Fraction :math:`1-(1-\eta\lambda)^\tau` kept by :math:`\tau` gradient steps of size :math:`\eta` from :math:`w^0`.

    >>> gd_spectral_filter(torch.tensor([0.0, 0.5]), eta=1.0, tau=2)
    tensor([0.0000, 0.7500])
    """
    return 1 - (1 - eta * lam) ** tau


def gd_quadratic_iterate(H: Tensor, w_hat: Tensor, w0: Tensor, eta: float, tau: int) -> Tensor:
    r"""The iterate :math:`w^{(\tau)}` of gradient descent on :math:`\frac12(w-\hat w)^\top H(w-\hat w)` from :math:`w^0`.

    .. math::

        w^{(\tau)} = w^0 + Q\,[I-(I-\eta\Lambda)^\tau]\,Q^\top(\hat w-w^0)

    >>> H = torch.diag(torch.tensor([0.5, 0.0]))
    >>> gd_quadratic_iterate(H, torch.tensor([1.0, 1.0]), torch.zeros(2), eta=1.0, tau=2)
    tensor([0.7500, 0.0000])
    """
    lam, Q = torch.linalg.eigh(H)
    return w0 + Q @ (gd_spectral_filter(lam, eta, tau) * (Q.T @ (w_hat - w0)))


def early_stopping_alpha(eta: float, tau: int) -> float:
    r"""The L2-SP strength :math:`\alpha\approx1/(\tau\eta)` that mimics :math:`\tau` steps of size :math:`\eta`.

    With heavy-ball momentum :math:`\mu` use ``eta / (1 - mu)`` as the step.

    >>> early_stopping_alpha(0.01, 1000)
    0.1
    """
    return 1.0 / (tau * eta)


def matching_alpha(lam: Tensor, eta: float, tau: int) -> Tensor:
    r"""The :math:`\alpha` at which both filters agree exactly at eigenvalue :math:`\lambda`.

    Solves :math:`(1-\eta\lambda)^\tau=\alpha/(\lambda+\alpha)`:
    :math:`\alpha=\lambda\rho/(1-\rho)` with :math:`\rho=(1-\eta\lambda)^\tau`;
    it tends to :math:`1/(\tau\eta)` as :math:`\eta\lambda\to0`.

    >>> round(matching_alpha(torch.tensor(1e-6, dtype=torch.float64), 0.01, 1000).item(), 4)
    0.1
    """
    rho = (1 - eta * lam) ** tau
    return lam * rho / (1 - rho)

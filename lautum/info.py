r"""Entropy, KL divergence, mutual information and Lautum information.

Lautum information [1]_ swaps the arguments of the
divergence that defines mutual information:

.. math::

    I(X;Y) = D(P_{XY}\,\|\,P_X \otimes P_Y), \qquad
    L(X;Y) = D(P_X \otimes P_Y\,\|\,P_{XY}).

Every function here is written in torch, is batched over leading dimensions,
keeps the dtype and device of its tensor inputs (array-likes become float64
CPU tensors), and returns nats unless ``base`` is given (``base=2`` for bits).

Conventions (discrete): :math:`0 \log 0 = 0`, :math:`0 \log(0/q) = 0` and
:math:`p \log(p/0) = +\infty` for :math:`p > 0`. So :func:`lautum_information`
is ``inf`` as soon as some cell has :math:`P(x)P(y) > 0 = P(x, y)`
(e.g. :math:`L(X;X)` for non-constant :math:`X`), although the mutual
information stays finite.

Gaussian functions take a joint covariance whose first ``dx`` coordinates are
:math:`X`; they use Cholesky factors and triangular solves, never an explicit
inverse, and return ``inf`` when a canonical correlation is one (the joint is
singular while the marginals are not) and ``nan`` when a marginal covariance is
singular.

References
----------
.. [1] D. P. Palomar and S. Verdú, "Lautum information", IEEE Trans. Inf.
   Theory 54(3):964-975, 2008.
.. [2] T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed.,
   Wiley, 2006.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "entropy",
    "kl_divergence",
    "mutual_information",
    "lautum_information",
    "jeffreys_information",
    "chi_square_information",
    "information_density",
    "mutual_information_channel",
    "lautum_information_channel",
    "LautumChainRule",
    "lautum_chain_rule",
    "joint_histogram",
    "canonical_correlations",
    "gaussian_mutual_information",
    "gaussian_lautum_information",
    "GaussianChannelInformation",
    "gaussian_channel_information",
    "gaussian_information_density",
    "MonteCarloEstimate",
    "mutual_information_mc",
    "lautum_information_mc",
    "joint_sample_covariance",
    "gaussian_mi_from_samples",
    "gaussian_lautum_from_samples",
]

GAUSSIAN_METHODS = ("whitened", "kl", "cca")


# --------------------------------------------------------------------------- helpers


def _as_tensors(*xs) -> list[Tensor]:
    """Convert inputs to floating tensors sharing one dtype and device.

    The device is that of the first tensor input (CPU if there is none). The
    dtype is the promotion of the floating tensor inputs; if none is floating,
    NumPy floating arrays keep their dtype and anything else becomes float64.
    """
    tensors = [x for x in xs if isinstance(x, Tensor)]
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"inputs live on different devices: {sorted(map(str, devices))}")
    device = tensors[0].device if tensors else torch.device("cpu")
    converted = []
    for x in xs:
        if isinstance(x, Tensor):
            converted.append(x)
        else:
            arr = np.asarray(x)
            if arr.dtype not in (np.float32, np.float64):
                arr = arr.astype(np.float64)
            converted.append(torch.as_tensor(arr))
    floating_inputs = [t for t in tensors if t.is_floating_point()]
    pool = floating_inputs or [t for t in converted if t.is_floating_point()]
    dtype = torch.float64
    if pool:
        dtype = pool[0].dtype
        for t in pool[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
    return [t.to(device=device, dtype=dtype) for t in converted]


def _in_base(value: Tensor, base: float | None) -> Tensor:
    return value if base is None else value / math.log(base)


def _kl_terms(p: Tensor, q: Tensor) -> Tensor:
    r"""Pointwise :math:`p\log(p/q) - p + q \ge 0` with the 0-log-0 conventions.

    For pmfs the ``- p + q`` parts sum to zero, so the sum of the terms is
    :math:`D(p\|q)`; being non-negative term by term it cannot round below 0.
    Where :math:`p/q\in(1/2,2)` the log-ratio is ``log1p((p - q) / q)``, so that
    nearly independent pairs keep their relative accuracy (the naive
    ``p log p - p log q`` loses it to cancellation). Both branches are fed safe
    values, so gradients are finite wherever the term is.
    """
    p, q = torch.broadcast_tensors(p, q)
    pos = (p > 0) & (q > 0)
    one = torch.ones((), dtype=p.dtype, device=p.device)
    ps, qs = torch.where(pos, p, one), torch.where(pos, q, one)
    diff = ps - qs
    ratio = ps / qs
    near = (ratio > 0.5) & (ratio < 2.0)
    log_ratio = torch.where(
        near,
        torch.log1p(torch.where(near, diff / qs, torch.zeros_like(diff))),
        torch.log(ps) - torch.log(qs),
    )
    inf = torch.full_like(p, math.inf)
    t = torch.where(pos, ps * log_ratio - diff, torch.where(p > 0, inf, q))  # p>0=q: inf; p=0: q
    t = torch.where(torch.isnan(p) | torch.isnan(q), torch.full_like(p, math.nan), t)
    return t.clamp_min(0.0)


def _check_joint(pxy: Tensor, ndim: int = 2) -> None:
    if pxy.ndim < ndim:
        raise ValueError(f"expected a joint pmf with at least {ndim} dimensions, got shape {tuple(pxy.shape)}")


def _product(pxy: Tensor) -> Tensor:
    px = pxy.sum(-1)
    py = pxy.sum(-2)
    return px.unsqueeze(-1) * py.unsqueeze(-2)


def _where_positive(weight: Tensor, value: Tensor) -> Tensor:
    """``weight * value`` with ``0 * anything = 0`` (the value may be inf or nan there)."""
    return torch.where(weight > 0, weight * value, torch.zeros_like(value))


# --------------------------------------------------------------------------- discrete


def entropy(p, base: float | None = None) -> Tensor:
    r"""Shannon entropy of a pmf over the last dimension.

    .. math::

        H(p) = -\sum_i p_i \log p_i, \qquad 0 \log 0 = 0.

    Parameters
    ----------
    p : tensor or array-like, shape (..., n)
        Probability mass functions (each sums to one; not renormalized).
    base : float, optional
        Logarithm base (``2`` for bits); natural log (nats) by default.

    Returns
    -------
    Tensor, shape (...)
        The entropies, on ``p``'s device and in its dtype.

    References
    ----------
    .. [1] Cover & Thomas (2006), ch. 2.

    Examples
    --------
    >>> float(entropy([0.25, 0.25, 0.25, 0.25], base=2))
    2.0
    """
    (p,) = _as_tensors(p)
    return _in_base(-torch.special.xlogy(p, p).sum(-1), base)


def kl_divergence(p, q, base: float | None = None) -> Tensor:
    r"""Kullback-Leibler divergence between pmfs over the last dimension.

    .. math::

        D(p\|q) = \sum_i p_i \log\frac{p_i}{q_i}
                = \sum_i \Big(p_i \log\frac{p_i}{q_i} - p_i + q_i\Big),

    with :math:`0\log(0/q)=0` and :math:`p\log(p/0)=\infty` for :math:`p>0`. The
    second form (equal for normalized inputs) is non-negative term by term, so
    the result never rounds below zero.

    Parameters
    ----------
    p, q : tensor or array-like, shape (..., n)
        Pmfs, broadcast against each other; both must sum to one.
    base : float, optional
        Logarithm base; nats by default.

    Returns
    -------
    Tensor, shape (...)
        :math:`D(p\|q)`; ``inf`` where ``q`` misses mass of ``p``.

    Examples
    --------
    >>> round(float(kl_divergence([0.5, 0.5], [0.9, 0.1])), 10)
    0.5108256238
    >>> float(kl_divergence([0.5, 0.5], [1.0, 0.0]))
    inf
    """
    p, q = _as_tensors(p, q)
    return _in_base(_kl_terms(p, q).sum(-1), base)


def mutual_information(pxy, base: float | None = None) -> Tensor:
    r"""Mutual information of a joint pmf over the last two dimensions.

    .. math::

        I(X;Y) = D(P_{XY}\|P_X\otimes P_Y)
               = \sum_{x,y} P(x,y)\log\frac{P(x,y)}{P(x)P(y)}.

    Parameters
    ----------
    pxy : tensor or array-like, shape (..., nx, ny)
        Joint pmf(s); rows index :math:`x`, columns :math:`y`.
    base : float, optional
        Logarithm base; nats by default.

    Returns
    -------
    Tensor, shape (...)
        :math:`I(X;Y)`, always finite.

    References
    ----------
    .. [1] Cover & Thomas (2006), sec. 2.4.

    Examples
    --------
    Binary symmetric channel with crossover 0.1 and a uniform input:

    >>> pxy = [[0.45, 0.05], [0.05, 0.45]]
    >>> round(float(mutual_information(pxy)), 6)
    0.368064
    """
    (pxy,) = _as_tensors(pxy)
    _check_joint(pxy)
    return _in_base(_kl_terms(pxy, _product(pxy)).sum((-2, -1)), base)


def lautum_information(pxy, base: float | None = None) -> Tensor:
    r"""Lautum information of a joint pmf over the last two dimensions.

    .. math::

        L(X;Y) = D(P_X\otimes P_Y\|P_{XY})
               = \sum_{x,y} P(x)P(y)\log\frac{P(x)P(y)}{P(x,y)}.

    It is ``inf`` exactly when some cell has :math:`P(x)P(y)>0=P(x,y)`.

    Parameters
    ----------
    pxy : tensor or array-like, shape (..., nx, ny)
        Joint pmf(s).
    base : float, optional
        Logarithm base; nats by default.

    Returns
    -------
    Tensor, shape (...)
        :math:`L(X;Y)\in[0,\infty]`.

    References
    ----------
    .. [1] Palomar & Verdú (2008).

    Examples
    --------
    BSC(0.1) with a uniform input: :math:`L=\tfrac12\log\frac{1}{4\delta(1-\delta)}`.

    >>> pxy = [[0.45, 0.05], [0.05, 0.45]]
    >>> round(float(lautum_information(pxy)), 6)
    0.510826
    >>> float(lautum_information([[0.5, 0.0], [0.0, 0.5]]))  # L(X;X)
    inf
    """
    (pxy,) = _as_tensors(pxy)
    _check_joint(pxy)
    return _in_base(_kl_terms(_product(pxy), pxy).sum((-2, -1)), base)


def jeffreys_information(pxy, base: float | None = None) -> Tensor:
    r"""Jeffreys information :math:`I + L`, the symmetrized divergence.

    .. math::

        J(X;Y) = I(X;Y) + L(X;Y)
               = \sum_{x,y}\big(P(x,y) - P(x)P(y)\big)\log\frac{P(x,y)}{P(x)P(y)}
               = \mathbb E_{P_{XY}}\imath - \mathbb E_{P_X\otimes P_Y}\imath.

    Parameters
    ----------
    pxy : tensor or array-like, shape (..., nx, ny)
        Joint pmf(s).
    base : float, optional
        Logarithm base; nats by default.

    Returns
    -------
    Tensor, shape (...)

    Examples
    --------
    >>> round(float(jeffreys_information([[0.45, 0.05], [0.05, 0.45]])), 6)
    0.87889
    """
    (pxy,) = _as_tensors(pxy)
    _check_joint(pxy)
    prod = _product(pxy)
    return _in_base((_kl_terms(pxy, prod) + _kl_terms(prod, pxy)).sum((-2, -1)), base)


def chi_square_information(pxy) -> Tensor:
    r""":math:`\chi^2` divergence of the joint from the product of its marginals.

    .. math::

        \chi^2(P_{XY}\|P_X\otimes P_Y) = \sum_{x,y}\frac{(P(x,y)-P(x)P(y))^2}{P(x)P(y)}.

    Under weak dependence :math:`I\approx L\approx\tfrac12\chi^2`.

    Parameters
    ----------
    pxy : tensor or array-like, shape (..., nx, ny)

    Returns
    -------
    Tensor, shape (...)

    Examples
    --------
    >>> round(float(chi_square_information([[0.45, 0.05], [0.05, 0.45]])), 12)
    0.64
    """
    (pxy,) = _as_tensors(pxy)
    _check_joint(pxy)
    prod = _product(pxy)
    ratio = torch.where(prod > 0, (pxy - prod).square() / prod, torch.zeros_like(prod))
    return ratio.sum((-2, -1))


def information_density(pxy) -> Tensor:
    r"""Information density :math:`\imath(x,y)=\log\frac{P(x,y)}{P(x)P(y)}` on every cell.

    Then :math:`I=\mathbb E_{P_{XY}}\imath` and :math:`L=-\mathbb E_{P_X\otimes P_Y}\imath`.

    Parameters
    ----------
    pxy : tensor or array-like, shape (..., nx, ny)

    Returns
    -------
    Tensor, shape (..., nx, ny)
        ``-inf`` where :math:`P(x,y)=0<P(x)P(y)`; ``nan`` where both vanish.

    Examples
    --------
    >>> info = information_density([[0.45, 0.05], [0.05, 0.45]])
    >>> round(float(info[0, 0]), 10), round(float(info[0, 1]), 10)
    (0.5877866649, -1.6094379124)
    """
    (pxy,) = _as_tensors(pxy)
    _check_joint(pxy)
    return torch.log(pxy) - torch.log(_product(pxy))


def mutual_information_channel(px, channel, base: float | None = None) -> Tensor:
    r"""Mutual information from an input pmf and a channel (expected-divergence form).

    .. math::

        I(X;Y) = \sum_x P_X(x)\, D\big(P_{Y|X=x}\,\|\,P_Y\big),
        \qquad P_Y(y) = \sum_x P_X(x) W(y|x).

    Parameters
    ----------
    px : tensor or array-like, shape (..., nx)
        Input pmf.
    channel : tensor or array-like, shape (..., nx, ny)
        Row-stochastic transition matrix :math:`W(y|x)`.
    base : float, optional

    Returns
    -------
    Tensor, shape (...)

    Examples
    --------
    Binary erasure channel, erasure 0.3, uniform input: :math:`(1-\epsilon)\log 2`.

    >>> bec = [[0.7, 0.3, 0.0], [0.0, 0.3, 0.7]]
    >>> round(float(mutual_information_channel([0.5, 0.5], bec)), 6)
    0.485203
    """
    px, w = _as_tensors(px, channel)
    py = (px.unsqueeze(-1) * w).sum(-2)
    div = _kl_terms(w, py.unsqueeze(-2)).sum(-1)
    return _in_base(_where_positive(px, div).sum(-1), base)


def lautum_information_channel(px, channel, base: float | None = None) -> Tensor:
    r"""Lautum information from an input pmf and a channel (expected-divergence form).

    .. math::

        L(X;Y) = \sum_x P_X(x)\, D\big(P_Y\,\|\,P_{Y|X=x}\big),
        \qquad P_Y(y) = \sum_x P_X(x) W(y|x).

    Parameters
    ----------
    px : tensor or array-like, shape (..., nx)
        Input pmf.
    channel : tensor or array-like, shape (..., nx, ny)
        Row-stochastic transition matrix :math:`W(y|x)`.
    base : float, optional

    Returns
    -------
    Tensor, shape (...)
        ``inf`` as soon as an input with :math:`P_X(x)>0` cannot produce an
        output that :math:`P_Y` charges (e.g. every erasure channel).

    References
    ----------
    .. [1] Palomar & Verdú (2008).

    Examples
    --------
    >>> bsc = [[0.9, 0.1], [0.1, 0.9]]
    >>> round(float(lautum_information_channel([0.5, 0.5], bsc)), 6)
    0.510826
    >>> bec = [[0.7, 0.3, 0.0], [0.0, 0.3, 0.7]]
    >>> float(lautum_information_channel([0.5, 0.5], bec))
    inf
    """
    px, w = _as_tensors(px, channel)
    py = (px.unsqueeze(-1) * w).sum(-2)
    div = _kl_terms(py.unsqueeze(-2), w).sum(-1)
    return _in_base(_where_positive(px, div).sum(-1), base)


class LautumChainRule(NamedTuple):
    """Terms of the Lautum chain rule for a joint pmf of :math:`(X, Y, Z)`."""

    total: Tensor
    """:math:`L(X;Y,Z)`."""
    marginal: Tensor
    """:math:`L(X;Z)`."""
    conditional: Tensor
    r""":math:`\mathbb E_{P_X\otimes P_Z} D(P_{Y|Z}\|P_{Y|X,Z})`; ``marginal + conditional == total``."""
    naive: Tensor
    r""":math:`\mathbb E_{Z} L(X;Y|Z=z)`; ``marginal + naive`` is *not* the total unless :math:`X\perp Z`."""


def lautum_chain_rule(pxyz, base: float | None = None) -> LautumChainRule:
    r"""The exact chain rule for Lautum information, and the naive (false) one.

    .. math::

        L(X;Y,Z) = L(X;Z) + \mathbb E_{(x,z)\sim P_X\otimes P_Z}
                   D\big(P_{Y|Z=z}\,\|\,P_{Y|X=x,Z=z}\big),

    the divergence chain rule applied to :math:`P_X P_Z P_{Y|Z}` against
    :math:`P_{XZ}P_{Y|XZ}`. The mutual-information analogue
    :math:`L(X;Z) + \mathbb E_Z L(X;Y|Z=z)` (field ``naive``) differs in general.

    Parameters
    ----------
    pxyz : tensor or array-like, shape (..., nx, ny, nz)
        Joint pmf of :math:`(X, Y, Z)`.
    base : float, optional

    Returns
    -------
    LautumChainRule
        ``(total, marginal, conditional, naive)``, each of shape (...).

    Examples
    --------
    The fixture :math:`P(x,y,z)\propto 1+4x+2y+z` on :math:`\{0,1\}^3`:

    >>> import torch
    >>> b = torch.arange(2.0, dtype=torch.float64)
    >>> p = 1 + 4 * b[:, None, None] + 2 * b[None, :, None] + b[None, None, :]
    >>> r = lautum_chain_rule(p / p.sum())
    >>> [round(float(v), 8) for v in r]
    [0.00959024, 0.00155619, 0.00803405, 0.00770748]
    """
    (p,) = _as_tensors(pxyz)
    _check_joint(p, 3)
    total = lautum_information(p.flatten(-2))
    pxz = p.sum(-2)  # (..., nx, nz)
    marginal = lautum_information(pxz)
    px = pxz.sum(-1)
    pz = pxz.sum(-2)
    pyz = p.sum(-3)  # (..., ny, nz)
    zero = torch.zeros((), dtype=p.dtype, device=p.device)
    y_given_z = torch.where(pz.unsqueeze(-2) > 0, pyz / pz.unsqueeze(-2), zero)
    y_given_xz = torch.where(pxz.unsqueeze(-2) > 0, p / pxz.unsqueeze(-2), zero)
    div = _kl_terms(y_given_z.unsqueeze(-3), y_given_xz).sum(-2)  # (..., nx, nz)
    weight = px.unsqueeze(-1) * pz.unsqueeze(-2)
    conditional = _where_positive(weight, div).sum((-2, -1))
    pxy_given_z = p.movedim(-1, -3)  # (..., nz, nx, ny)
    pz_b = pz[..., :, None, None]
    pxy_given_z = torch.where(pz_b > 0, pxy_given_z / pz_b, zero)
    naive = _where_positive(pz, lautum_information(pxy_given_z)).sum(-1)
    return LautumChainRule(*(_in_base(v, base) for v in (total, marginal, conditional, naive)))


def joint_histogram(x, y, nx: int, ny: int, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Empirical joint pmf (plug-in estimate) of integer samples, batched.

    .. math::

        \hat P(a,b) = \frac1n\sum_{i=1}^n \mathbf 1\{x_i=a,\,y_i=b\}.

    Plugged into :func:`lautum_information` it is ``inf`` whenever an empty cell
    has both marginals occupied, which is the typical small-sample outcome.

    Parameters
    ----------
    x, y : integer tensor or array-like, shape (..., n)
        Samples with values in ``range(nx)`` and ``range(ny)``.
    nx, ny : int
        Alphabet sizes.
    dtype : torch.dtype, default ``torch.float64``

    Returns
    -------
    Tensor, shape (..., nx, ny)
        On ``x``'s device.

    Examples
    --------
    >>> joint_histogram([0, 0, 1, 1], [0, 1, 1, 1], 2, 2).tolist()
    [[0.25, 0.25], [0.0, 0.5]]
    """
    x = torch.as_tensor(x)
    y = torch.as_tensor(y, device=x.device)
    x, y = torch.broadcast_tensors(x.long(), y.long())
    idx = x * ny + y
    counts = torch.zeros(*idx.shape[:-1], nx * ny, dtype=dtype, device=idx.device)
    counts.scatter_add_(-1, idx, torch.ones_like(idx, dtype=dtype))
    return (counts / idx.shape[-1]).reshape(*idx.shape[:-1], nx, ny)


# --------------------------------------------------------------------------- Gaussian


def _split(cov: Tensor, dx: int) -> tuple[Tensor, Tensor, Tensor]:
    d = cov.shape[-1]
    if cov.ndim < 2 or cov.shape[-2] != d:
        raise ValueError(f"cov must be (..., d, d), got shape {tuple(cov.shape)}")
    if not 0 < dx < d:
        raise ValueError(f"need 0 < dx < d, got dx={dx}, d={d}")
    return cov[..., :dx, :dx], cov[..., :dx, dx:], cov[..., dx:, dx:]


def _whitened_cross(cov: Tensor, dx: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r""":math:`C = L_X^{-1}\Sigma_{XY}L_Y^{-\top}` (singular values: canonical correlations)."""
    sxx, sxy, syy = _split(cov, dx)
    lx, info_x = torch.linalg.cholesky_ex(sxx)
    ly, info_y = torch.linalg.cholesky_ex(syy)
    a = torch.linalg.solve_triangular(lx, sxy, upper=False)
    c = torch.linalg.solve_triangular(ly, a.mT, upper=False).mT
    bad = (info_x > 0) | (info_y > 0)
    return c, lx, ly, bad


def _finish(value: Tensor, singular: Tensor, bad: Tensor) -> Tensor:
    value = torch.where(singular, torch.full_like(value, math.inf), value.clamp_min(0.0))
    return torch.where(bad, torch.full_like(value, math.nan), value)


def _gaussian_information(cov: Tensor, dx: int, method: str) -> tuple[Tensor, Tensor]:
    """(I, L) in nats by one of three algebraically equal forms."""
    if method not in GAUSSIAN_METHODS:
        raise ValueError(f"method must be one of {GAUSSIAN_METHODS}, got {method!r}")
    c, lx, ly, bad = _whitened_cross(cov, dx)
    if method == "whitened":
        eye = torch.eye(dx, dtype=cov.dtype, device=cov.device)
        r, info = torch.linalg.cholesky_ex(eye - c @ c.mT)  # whitened Sigma_{X|Y}
        mi = -torch.log(torch.diagonal(r, dim1=-2, dim2=-1)).sum(-1)
        t = torch.linalg.solve_triangular(r, c, upper=False)
        lautum = t.square().sum((-2, -1)) - mi  # tr((I-CC^T)^{-1}CC^T) - I
        singular = info > 0
    elif method == "kl":
        d = cov.shape[-1]
        chol, info = torch.linalg.cholesky_ex(cov)
        logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        logdet0 = 2 * (
            torch.log(torch.diagonal(lx, dim1=-2, dim2=-1)).sum(-1)
            + torch.log(torch.diagonal(ly, dim1=-2, dim2=-1)).sum(-1)
        )
        mi = 0.5 * (logdet0 - logdet)
        l0 = torch.zeros_like(cov)
        l0[..., :dx, :dx] = lx
        l0[..., dx:, dx:] = ly
        trace = torch.linalg.solve_triangular(chol, l0, upper=False).square().sum((-2, -1))
        lautum = 0.5 * (trace - d) - mi  # tr(Sigma^{-1} Sigma_0) = ||L^{-1} L_0||_F^2
        singular = info > 0
    else:  # "cca"
        rho2 = torch.linalg.svdvals(c).clamp(0.0, 1.0).square()
        singular = (rho2 >= 1).any(-1)
        rho2 = torch.where(rho2 >= 1, torch.zeros_like(rho2), rho2)
        log1m = torch.log1p(-rho2)
        mi = -0.5 * log1m.sum(-1)
        lautum = (rho2 / (1 - rho2) + 0.5 * log1m).sum(-1)
    return _finish(mi, singular, bad), _finish(lautum, singular, bad)


def canonical_correlations(cov, dx: int) -> Tensor:
    r"""Canonical correlations of a jointly Gaussian (or any) covariance.

    .. math::

        \rho_1\ge\dots\ge\rho_{\min(p,q)} \text{ are the singular values of }
        \Sigma_X^{-1/2}\Sigma_{XY}\Sigma_Y^{-1/2},

    computed as those of :math:`L_X^{-1}\Sigma_{XY}L_Y^{-\top}` with Cholesky
    factors :math:`\Sigma_X=L_XL_X^\top`, :math:`\Sigma_Y=L_YL_Y^\top`.

    Parameters
    ----------
    cov : tensor or array-like, shape (..., p + q, p + q)
        Joint covariance, the first ``dx = p`` coordinates being :math:`X`.
    dx : int
        Dimension :math:`p` of :math:`X`.

    Returns
    -------
    Tensor, shape (..., min(p, q))
        Descending, clipped to :math:`[0, 1]`; ``nan`` if a marginal is singular.

    References
    ----------
    .. [1] H. Hotelling, "Relations between two sets of variates", Biometrika, 1936.

    Examples
    --------
    >>> canonical_correlations([[1.0, 0.5], [0.5, 1.0]], dx=1).tolist()
    [0.5]
    """
    (cov,) = _as_tensors(cov)
    c, _, _, bad = _whitened_cross(cov, dx)
    rho = torch.linalg.svdvals(c).clamp(0.0, 1.0)
    return torch.where(bad.unsqueeze(-1), torch.full_like(rho, math.nan), rho)


def gaussian_mutual_information(cov, dx: int, base: float | None = None, method: str = "whitened") -> Tensor:
    r"""Mutual information of jointly Gaussian :math:`(X, Y)` from the joint covariance.

    .. math::

        I(X;Y) = \frac12\log\frac{\det\Sigma_X\det\Sigma_Y}{\det\Sigma}
               = -\frac12\sum_i\log(1-\rho_i^2).

    Parameters
    ----------
    cov : tensor or array-like, shape (..., p + q, p + q)
        Joint covariance :math:`\Sigma`, the first ``dx`` coordinates being :math:`X`.
    dx : int
        Dimension :math:`p` of :math:`X`.
    base : float, optional
        Logarithm base; nats by default.
    method : {"whitened", "kl", "cca"}
        ``"whitened"`` (default): :math:`-\tfrac12\log\det(I-CC^\top)` with
        :math:`C=L_X^{-1}\Sigma_{XY}L_Y^{-\top}`, by Cholesky; ``"kl"``: the
        log-det ratio above; ``"cca"``: the canonical-correlation sum.

    Returns
    -------
    Tensor, shape (...)
        ``inf`` if a canonical correlation is one (the joint is singular),
        ``nan`` if a marginal covariance is singular.

    References
    ----------
    .. [1] Cover & Thomas (2006), sec. 8.5; Palomar & Verdú (2008).

    Examples
    --------
    >>> import torch
    >>> cov = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    >>> round(float(gaussian_mutual_information(cov, dx=1)), 12)
    0.143841036226
    """
    (cov,) = _as_tensors(cov)
    return _in_base(_gaussian_information(cov, dx, method)[0], base)


def gaussian_lautum_information(cov, dx: int, base: float | None = None, method: str = "whitened") -> Tensor:
    r"""Lautum information of jointly Gaussian :math:`(X, Y)` from the joint covariance.

    With :math:`\Sigma_0=\mathrm{blkdiag}(\Sigma_X,\Sigma_Y)` and canonical
    correlations :math:`\rho_i`,

    .. math::

        L(X;Y) = D\big(\mathcal N(0,\Sigma_0)\,\|\,\mathcal N(0,\Sigma)\big)
               = \frac12\big[\mathrm{tr}(\Sigma^{-1}\Sigma_0) - p - q\big] - I(X;Y)
               = \sum_i\Big[\frac{\rho_i^2}{1-\rho_i^2} + \frac12\log(1-\rho_i^2)\Big].

    Always :math:`L\ge I` for Gaussians.

    Parameters
    ----------
    cov : tensor or array-like, shape (..., p + q, p + q)
        Joint covariance, the first ``dx`` coordinates being :math:`X`.
    dx : int
        Dimension :math:`p` of :math:`X`.
    base : float, optional
        Logarithm base; nats by default.
    method : {"whitened", "kl", "cca"}
        ``"whitened"`` (default): :math:`\|R^{-1}C\|_F^2 - I` with
        :math:`RR^\top = I - CC^\top` (no cancellation); ``"kl"``: the
        trace/log-det form above with :math:`\mathrm{tr}(\Sigma^{-1}\Sigma_0)
        =\|L^{-1}L_0\|_F^2`; ``"cca"``: the canonical-correlation sum.

    Returns
    -------
    Tensor, shape (...)
        ``inf`` if a canonical correlation is one, ``nan`` if a marginal is singular.

    References
    ----------
    .. [1] Palomar & Verdú (2008).

    Examples
    --------
    >>> import torch
    >>> cov = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    >>> round(float(gaussian_lautum_information(cov, dx=1)), 12)
    0.189492297107
    >>> float(gaussian_lautum_information([[1.0, 1.0], [1.0, 1.0]], dx=1))
    inf
    """
    (cov,) = _as_tensors(cov)
    return _in_base(_gaussian_information(cov, dx, method)[1], base)


class GaussianChannelInformation(NamedTuple):
    """Mutual and Lautum information of a Gaussian channel."""

    mutual: Tensor
    lautum: Tensor


def gaussian_channel_information(H, cov_x, cov_n, base: float | None = None) -> GaussianChannelInformation:
    r"""Mutual and Lautum information of the Gaussian channel :math:`Y = HX + N`.

    With :math:`M = H\Sigma_XH^\top\Sigma_N^{-1}` (eigenvalues :math:`\lambda_i`,
    :math:`\rho_i^2=\lambda_i/(1+\lambda_i)`),

    .. math::

        I = \frac12\log\det(I+M), \qquad L = \mathrm{tr}\,M - \frac12\log\det(I+M),
        \qquad I + L = \mathrm{tr}\,M.

    Computed on the similar symmetric matrix :math:`G=L_N^{-1}H\Sigma_XH^\top L_N^{-\top}`
    (:math:`\Sigma_N=L_NL_N^\top`), so :math:`\Sigma_X` may be singular.

    Parameters
    ----------
    H : tensor or array-like, shape (..., m, n)
        Channel matrix.
    cov_x : tensor or array-like, shape (..., n, n)
        Input covariance (positive semi-definite).
    cov_n : tensor or array-like, shape (..., m, m)
        Noise covariance (positive definite; ``nan`` results otherwise).
    base : float, optional

    Returns
    -------
    GaussianChannelInformation
        ``(mutual, lautum)``, each of shape (...).

    References
    ----------
    .. [1] Palomar & Verdú (2008); Cover & Thomas (2006), sec. 9.4.

    Examples
    --------
    Scalar channel at snr 1: :math:`L = 1 - \tfrac12\log 2`.

    >>> i, l = gaussian_channel_information([[1.0]], [[1.0]], [[1.0]])
    >>> round(float(i), 7), round(float(l), 7)
    (0.3465736, 0.6534264)
    """
    h, sx, sn = _as_tensors(H, cov_x, cov_n)
    ln, info_n = torch.linalg.cholesky_ex(sn)
    a = h @ sx @ h.mT
    b = torch.linalg.solve_triangular(ln, a, upper=False)
    g = torch.linalg.solve_triangular(ln, b.mT, upper=False).mT
    g = 0.5 * (g + g.mT)
    trace = torch.diagonal(g, dim1=-2, dim2=-1).sum(-1)
    eye = torch.eye(g.shape[-1], dtype=g.dtype, device=g.device)
    r, _ = torch.linalg.cholesky_ex(eye + g)
    mi = torch.log(torch.diagonal(r, dim1=-2, dim2=-1)).sum(-1).clamp_min(0.0)
    lautum = (trace - mi).clamp_min(0.0)
    bad = info_n > 0
    nan = torch.full_like(mi, math.nan)
    mi, lautum = torch.where(bad, nan, mi), torch.where(bad, nan, lautum)
    return GaussianChannelInformation(_in_base(mi, base), _in_base(lautum, base))


def gaussian_information_density(x, y, cov) -> Tensor:
    r"""Information density of a zero-mean jointly Gaussian pair at given points.

    .. math::

        \imath(x,y) = \log\frac{\varphi_\Sigma(x,y)}{\varphi_{\Sigma_X}(x)\,\varphi_{\Sigma_Y}(y)}
        = -\frac12\Big(z^\top\Sigma^{-1}z - x^\top\Sigma_X^{-1}x - y^\top\Sigma_Y^{-1}y\Big)
          -\frac12\log\frac{\det\Sigma}{\det\Sigma_X\det\Sigma_Y},

    with :math:`z=(x,y)`. Averaged over joint samples it estimates :math:`I`;
    minus its average over product samples estimates :math:`L`
    (see :func:`mutual_information_mc`, :func:`lautum_information_mc`).

    Parameters
    ----------
    x : tensor or array-like, shape (..., p)
        Points for :math:`X` (the first ``p`` coordinates of ``cov``).
    y : tensor or array-like, shape (..., q)
        Points for :math:`Y`.
    cov : tensor or array-like, shape (p + q, p + q)
        Joint covariance (positive definite).

    Returns
    -------
    Tensor, shape (...)

    Examples
    --------
    >>> cov = [[1.0, 0.5], [0.5, 1.0]]
    >>> round(float(gaussian_information_density([0.0], [0.0], cov)), 12)  # -log(1-rho^2)/2
    0.143841036226
    """
    x, y, cov = _as_tensors(x, y, cov)
    dx = x.shape[-1]
    sxx, _, syy = _split(cov, dx)

    def quad_and_logdet(s: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        chol = torch.linalg.cholesky(s)
        w = torch.linalg.solve_triangular(chol, v.unsqueeze(-1), upper=False).squeeze(-1)
        return w.square().sum(-1), 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)

    batch = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    x = x.expand(*batch, x.shape[-1])
    y = y.expand(*batch, y.shape[-1])
    qz, ldz = quad_and_logdet(cov, torch.cat([x, y], dim=-1))
    qx, ldx = quad_and_logdet(sxx, x)
    qy, ldy = quad_and_logdet(syy, y)
    return -0.5 * (qz - qx - qy) - 0.5 * (ldz - ldx - ldy)


class MonteCarloEstimate(NamedTuple):
    """A Monte Carlo mean and its standard error :math:`s/\\sqrt n`."""

    value: Tensor
    stderr: Tensor


def _mc_mean(samples: Tensor) -> MonteCarloEstimate:
    n = samples.shape[-1]
    if n < 2:
        raise ValueError("need at least two Monte Carlo samples")
    return MonteCarloEstimate(samples.mean(-1), samples.std(-1) / math.sqrt(n))


def mutual_information_mc(density_joint) -> MonteCarloEstimate:
    r"""Monte Carlo estimate of :math:`I=\mathbb E_{P_{XY}}\imath` and its standard error.

    .. math::

        \hat I = \frac1n\sum_{k=1}^n\imath(X_k,Y_k),\quad (X_k,Y_k)\sim P_{XY}
        \text{ i.i.d.},\qquad \widehat{\mathrm{se}} = \frac{s_n}{\sqrt n}.

    Parameters
    ----------
    density_joint : tensor or array-like, shape (..., n)
        Information density evaluated at ``n`` joint samples.

    Returns
    -------
    MonteCarloEstimate
        ``(value, stderr)``, each of shape (...).

    Examples
    --------
    >>> est = mutual_information_mc([0.0, 1.0, 2.0, 3.0])
    >>> float(est.value), round(float(est.stderr), 6)
    (1.5, 0.645497)
    """
    (d,) = _as_tensors(density_joint)
    return _mc_mean(d)


def lautum_information_mc(density_product) -> MonteCarloEstimate:
    r"""Monte Carlo estimate of :math:`L=-\mathbb E_{P_X\otimes P_Y}\imath` and its standard error.

    .. math::

        \hat L = -\frac1n\sum_{k=1}^n\imath(\bar X_k,\bar Y_k),\quad
        (\bar X_k,\bar Y_k)\sim P_X\otimes P_Y \text{ i.i.d.}

    Product samples can be drawn independently or by pairing joint samples of
    :math:`X` with an independent sample (or a derangement) of :math:`Y`.

    Parameters
    ----------
    density_product : tensor or array-like, shape (..., n)
        Information density evaluated at ``n`` product (ghost) samples.

    Returns
    -------
    MonteCarloEstimate
        ``(value, stderr)``, each of shape (...).

    Examples
    --------
    >>> float(lautum_information_mc([-1.0, -2.0]).value)
    1.5
    """
    (d,) = _as_tensors(density_product)
    est = _mc_mean(d)
    return MonteCarloEstimate(-est.value, est.stderr)


# --------------------------------------------------------------------------- plug-in from samples


def _as_samples(v: Tensor) -> Tensor:
    return v.unsqueeze(-1) if v.ndim == 1 else v


def joint_sample_covariance(x, y, ridge: float = 0.0) -> Tensor:
    r"""Unbiased sample covariance of :math:`[X, Y]`, optionally with a relative ridge.

    .. math::

        \hat\Sigma = \frac1{B-1}\sum_{b=1}^B (z_b-\bar z)(z_b-\bar z)^\top
        + \lambda\,\frac{\mathrm{tr}\,\hat\Sigma}{p+q}\,I,\qquad z_b=(x_b,y_b).

    Parameters
    ----------
    x : tensor or array-like, shape (..., B, p) or (B,)
    y : tensor or array-like, shape (..., B, q) or (B,)
    ridge : float, default 0
        :math:`\lambda`, relative to the mean variance (scale-free).

    Returns
    -------
    Tensor, shape (..., p + q, p + q)
    """
    x, y = _as_tensors(x, y)
    x, y = _as_samples(x), _as_samples(y)
    batch = torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    z = torch.cat([x.expand(*batch, *x.shape[-2:]), y.expand(*batch, *y.shape[-2:])], dim=-1)
    n = z.shape[-2]
    if n < 2:
        raise ValueError("need at least two samples")
    zc = z - z.mean(-2, keepdim=True)
    cov = zc.mT @ zc / (n - 1)
    cov = 0.5 * (cov + cov.mT)
    if ridge:
        d = cov.shape[-1]
        scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1)
        cov = cov + ridge * scale[..., None, None] * torch.eye(d, dtype=cov.dtype, device=cov.device)
    return cov


def _plugin(x, y, ridge: float, base: float | None) -> tuple[Tensor, Tensor]:
    x, y = _as_tensors(x, y)
    x, y = _as_samples(x), _as_samples(y)
    p, q, n = x.shape[-1], y.shape[-1], x.shape[-2]
    cov = joint_sample_covariance(x, y, ridge=ridge)
    mi, lautum = _gaussian_information(cov, p, "whitened")
    if ridge == 0 and n <= p + q:  # rank(cov) <= n - 1 < p + q: a sample canonical correlation is 1
        mi, lautum = torch.full_like(mi, math.inf), torch.full_like(lautum, math.inf)
    return _in_base(mi, base), _in_base(lautum, base)


def gaussian_mi_from_samples(x, y, ridge: float = 0.0, base: float | None = None) -> Tensor:
    r"""Gaussian plug-in estimate of :math:`I(X;Y)` from paired samples.

    .. math::

        \hat I = -\frac12\sum_i\log(1-\hat\rho_i^2),

    :math:`\hat\rho_i` being the canonical correlations of
    :func:`joint_sample_covariance` (``ridge`` included). Consistent for
    Gaussian data only (for other data it is the information of the Gaussian
    with the same covariance, with no bound in either direction).

    Requirements and bias:

    * The batch must satisfy :math:`B > p+q`: otherwise the sample covariance is
      singular, some :math:`\hat\rho_i=1` and, with ``ridge=0``, the result is ``inf``.
    * Under independence :math:`2B\hat I\approx\chi^2_{pq}`, so
      :math:`\mathbb E\hat I\approx pq/(2B)` (Bartlett: :math:`pq/(2(B-1-(p+q+1)/2))`).

    Parameters
    ----------
    x : tensor or array-like, shape (..., B, p) or (B,)
    y : tensor or array-like, shape (..., B, q) or (B,)
    ridge : float, default 0
        Relative ridge :math:`\lambda` (see :func:`joint_sample_covariance`).
    base : float, optional

    Returns
    -------
    Tensor, shape (...)

    References
    ----------
    .. [1] T. W. Anderson, *An Introduction to Multivariate Statistical
       Analysis*, 3rd ed., Wiley, 2003, ch. 12.

    Examples
    --------
    >>> x = [[1.0], [2.0], [3.0]]
    >>> float(gaussian_mi_from_samples(x, [[0.0], [1.0], [0.0]]))
    0.0
    >>> float(gaussian_mi_from_samples([[1.0], [2.0]], [[0.0], [1.0]]))  # B <= p + q
    inf
    """
    return _plugin(x, y, ridge, base)[0]


def gaussian_lautum_from_samples(x, y, ridge: float = 0.0, base: float | None = None) -> Tensor:
    r"""Gaussian plug-in estimate of :math:`L(X;Y)` from paired samples.

    .. math::

        \hat L = \sum_i\Big[\frac{\hat\rho_i^2}{1-\hat\rho_i^2} + \frac12\log(1-\hat\rho_i^2)\Big],

    the canonical correlations :math:`\hat\rho_i` coming from
    :func:`joint_sample_covariance`.

    * Needs :math:`B > p+q` (``inf`` otherwise when ``ridge=0``), and is stiff as
      :math:`\hat\rho\to1` (:math:`\partial L/\partial\rho^2=(1-\rho^2)^{-2}-\tfrac1{2(1-\rho^2)}`).
    * Under independence its bias is, like :math:`\hat I`'s, about :math:`pq/(2B)`.

    Parameters
    ----------
    x : tensor or array-like, shape (..., B, p) or (B,)
    y : tensor or array-like, shape (..., B, q) or (B,)
    ridge : float, default 0
        Relative ridge :math:`\lambda` (see :func:`joint_sample_covariance`).
    base : float, optional

    Returns
    -------
    Tensor, shape (...)

    Examples
    --------
    >>> x = [[1.0], [2.0], [3.0]]
    >>> float(gaussian_lautum_from_samples(x, [[0.0], [1.0], [0.0]]))
    0.0
    """
    return _plugin(x, y, ridge, base)[1]

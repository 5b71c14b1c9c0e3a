"""Maximum mean discrepancy with (multiple) Gaussian kernels.

Three layers, as elsewhere in ``lautum``: the pure estimator :func:`mmd2`, the
population value between two Gaussians :func:`gaussian_mmd2` (for checks), and the
thin module :class:`MultipleKernelMMD` whose ``forward`` returns a scalar.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._utils import as_float_tensors

__all__ = [
    "DAN_EXPONENTS",
    "ZeroBandwidthError",
    "dan_bandwidths",
    "gaussian_kernel",
    "mmd2",
    "gaussian_mmd2",
    "MultipleKernelMMD",
]

#: Bandwidth exponents of the DAN-style family: ``sigma_u**2 = 2**u * base`` for these ``u``
#: (five kernels, as in the Transfer-Learning-Library's DAN example).
DAN_EXPONENTS: tuple[int, ...] = (-3, -2, -1, 0, 1)


class ZeroBandwidthError(ValueError):
    """The bandwidth heuristic of :func:`dan_bandwidths` gave 0, so no Gaussian kernel can be set.

    Raised when the base :math:`\\bar d^2` (mean or median squared distance between
    distinct points of the pooled sample) is 0 for some problem: with ``"mean"`` that
    is when all points coincide (e.g. features collapsed to one point), with
    ``"median"`` when at least half the pairs coincide. Pass explicit bandwidths
    (``sigma``) to avoid it. A :class:`ValueError`, so ``except ValueError`` still
    catches it.
    """


def _as_samples(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() == 1:
        return x[:, None]
    if x.dim() == 0:
        raise ValueError(
            f"{name} must have shape (..., n_samples, n_features) (or (n_samples,) for 1-D data); "
            f"got a scalar."
        )
    return x


def _sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances, shape (..., m, n), clamped at 0."""
    d = (x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :] - 2.0 * x @ y.mT
    return d.clamp_min(0.0)


def dan_bandwidths(
    x,
    y,
    exponents: Sequence[float] = DAN_EXPONENTS,
    heuristic: str = "mean",
) -> torch.Tensor:
    r"""DAN-style family of Gaussian bandwidths from the pooled sample (detached).

    .. math::

        \sigma_u^2 = 2^{u}\, \bar d^2, \qquad u \in \texttt{exponents},

    where :math:`\bar d^2` is the mean (``heuristic="mean"``, as the
    Transfer-Learning-Library's DAN) or the median (``"median"``, the median
    heuristic of Gretton et al., 2012) of the squared distances between distinct
    points of the pooled sample :math:`x \cup y`. Long et al. (2015) choose the
    kernels of DAN as a geometric family around such a base; the exact constants of
    the paper's family vary between implementations.

    Parameters
    ----------
    x : array-like, shape (..., m, d) or (m,)
    y : array-like, shape (..., n, d) or (n,)
    exponents : sequence of float, default ``(-3, -2, -1, 0, 1)``
    heuristic : {"mean", "median"}, default "mean"

    Returns
    -------
    sigma : torch.Tensor, shape (..., len(exponents))
        Bandwidths :math:`\sigma_u` (not squared) for each problem, without gradient.

    Raises
    ------
    ZeroBandwidthError
        The base :math:`\bar d^2` is 0 for some problem (with ``"mean"``: all its
        points coincide).

    Examples
    --------
    Two points at distance 2 have mean squared distance 4, so :math:`\sigma_0=2`:

    >>> dan_bandwidths([[0.0]], [[2.0]], exponents=(0, 2)).tolist()
    [2.0, 4.0]
    >>> dan_bandwidths([[1.0], [1.0]], [[1.0]])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lautum.divergences.mmd.ZeroBandwidthError: all points coincide, so the bandwidth heuristic gives 0; ...
    """
    x, y = as_float_tensors(x, y, names=("x", "y"))
    x, y = _as_samples(x, "x"), _as_samples(y, "y")
    batch = torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    z = torch.cat(
        [x.expand(*batch, *x.shape[-2:]), y.expand(*batch, *y.shape[-2:])], dim=-2
    ).detach()
    N = z.shape[-2]
    if N < 2:
        raise ValueError("need at least two points in x and y together to set a bandwidth.")
    d = _sq_dists(z, z)
    off = d[..., ~torch.eye(N, dtype=torch.bool, device=z.device)]
    if heuristic == "mean":
        base = off.mean(-1)
    elif heuristic == "median":
        base = off.median(-1).values
    else:
        raise ValueError(f"heuristic must be 'mean' or 'median', got {heuristic!r}.")
    if not bool((base > 0).all()):
        what = "all points coincide" if heuristic == "mean" else "at least half of the pairs of points coincide"
        raise ZeroBandwidthError(f"{what}, so the bandwidth heuristic gives 0; pass sigma explicitly.")
    exps = torch.as_tensor(list(exponents), dtype=z.dtype, device=z.device)
    return torch.sqrt(base[..., None] * 2.0**exps)


def _sigmas_and_weights(sigma, weights, x, y):
    if sigma is None:
        sigma = dan_bandwidths(x, y)  # (..., U)
    elif isinstance(sigma, torch.Tensor) and sigma.dim() > 1:
        sigma = sigma.to(dtype=x.dtype, device=x.device)  # per-problem bandwidths (..., U)
    else:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1)
    U = sigma.shape[-1] if sigma.dim() else 1
    if sigma.numel() == 0 or bool((sigma <= 0).any()):
        raise ValueError(f"sigma must hold one or more positive bandwidths, got {sigma.tolist()}.")
    if weights is None:
        weights = torch.full((U,), 1.0 / U, dtype=x.dtype, device=x.device)
    else:
        weights = torch.as_tensor(weights, dtype=x.dtype, device=x.device).reshape(-1)
        if weights.shape != (U,):
            raise ValueError(
                f"weights has {weights.numel()} entries but there are {U} bandwidths."
            )
    return sigma, weights


def gaussian_kernel(x, y, sigma=1.0, weights=None) -> torch.Tensor:
    r"""Gram matrix of a weighted sum of Gaussian kernels.

    .. math::

        k(x, y) = \sum_u \beta_u \exp\!\Big(-\frac{\lVert x-y\rVert^2}{2\sigma_u^2}\Big)

    Parameters
    ----------
    x : array-like, shape (..., m, d) or (m,)
    y : array-like, shape (..., n, d) or (n,)
    sigma : float or sequence of float, default 1.0
        Bandwidths :math:`\sigma_u`.
    weights : sequence of float, optional
        :math:`\beta_u`; default equal weights :math:`1/U` (a convex combination, as DAN).

    Returns
    -------
    K : torch.Tensor, shape (..., m, n)

    Examples
    --------
    >>> round(gaussian_kernel([[0.0]], [[1.0]], sigma=1.0).item(), 6)  # exp(-1/2)
    0.606531
    """
    x, y = as_float_tensors(x, y, names=("x", "y"))
    x, y = _as_samples(x, "x"), _as_samples(y, "y")
    sigma, weights = _sigmas_and_weights(sigma, weights, x, y)
    return _kernel(_sq_dists(x, y), sigma, weights)


def _kernel(d2: torch.Tensor, sigma: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    gam = 1.0 / (2.0 * sigma**2)  # (U,) or (..., U)
    if gam.dim() > 1:
        gam = gam[..., None, None, :]
    return (weights * torch.exp(-d2[..., None] * gam)).sum(-1)


def mmd2(x, y, sigma=None, *, weights=None, unbiased: bool = False) -> torch.Tensor:
    r"""Squared maximum mean discrepancy between two samples, Gaussian (multi-)kernel.

    .. math::

        \mathrm{MMD}^2_k(P, Q) = \mathbb E\,k(x, x') + \mathbb E\,k(y, y') - 2\,\mathbb E\,k(x, y),
        \qquad k = \sum_u \beta_u k_{\sigma_u},\quad
        k_\sigma(x, y) = e^{-\lVert x-y\rVert^2 / (2\sigma^2)} .

    The biased (V-statistic) estimator averages each Gram matrix over all entries;
    it is non-negative and exceeds :math:`\mathrm{MMD}^2` in expectation by
    :math:`(k(x,x) - \mathbb E k(x,x'))/m + (k(y,y) - \mathbb E k(y,y'))/n`. The unbiased
    (U-statistic) estimator drops the diagonals of the within-sample Gram matrices and
    divides by :math:`m(m-1)` and :math:`n(n-1)`; it can be negative (Gretton et al., 2012,
    Lemma 6 and eq. 3). Unequal sample sizes are allowed. With several bandwidths this
    is the multi-kernel MMD of DAN (Long et al., 2015) with weights :math:`\beta_u`.

    Parameters
    ----------
    x : array-like, shape (..., m, d) or (m,)
        Sample from :math:`P`. Sets device and dtype (POT style). Leading dimensions
        are a batch of independent problems (broadcast against ``y``'s).
    y : array-like, shape (..., n, d) or (n,)
        Sample from :math:`Q`.
    sigma : float, sequence of float or tensor, optional
        Bandwidths :math:`\sigma_u`. Default: :func:`dan_bandwidths` of the pooled
        sample (five kernels, :math:`\sigma_u^2 = 2^u\bar d^2`, :math:`u=-3,\dots,1`),
        computed without gradient.
    weights : sequence of float, optional
        Kernel weights :math:`\beta_u`; default :math:`1/U` each (so :math:`k(x,x)=1`).
        Pass ones to get the plain sum of kernels used by some libraries.
    unbiased : bool, default False
        U-statistic (True) or V-statistic (False). The U-statistic needs :math:`m, n \ge 2`.

    Returns
    -------
    torch.Tensor, shape (...)
        The estimate per problem, differentiable with respect to ``x`` and ``y``.

    References
    ----------
    Gretton, Borgwardt, Rasch, Schölkopf & Smola, "A Kernel Two-Sample Test", JMLR 13, 2012.
    Long, Cao, Wang & Jordan, "Learning Transferable Features with Deep Adaptation
    Networks", ICML 2015.

    Examples
    --------
    One point each, at distance 1: :math:`2 - 2e^{-1/2}`.

    >>> round(mmd2([[0.0]], [[1.0]], sigma=1.0).item(), 10)
    0.7869386806
    >>> mmd2([[0.0], [1.0]], [[0.0], [1.0]], sigma=1.0).item()  # identical samples, biased
    0.0
    """
    x, y = as_float_tensors(x, y, names=("x", "y"))
    x, y = _as_samples(x, "x"), _as_samples(y, "y")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"x has {x.shape[-1]} features per sample but y has {y.shape[-1]}; they must match."
        )
    m, n = x.shape[-2], y.shape[-2]
    if m == 0 or n == 0:
        raise ValueError("x and y must each hold at least one sample.")
    sigma, weights = _sigmas_and_weights(sigma, weights, x, y)
    kxx = _kernel(_sq_dists(x, x), sigma, weights)
    kyy = _kernel(_sq_dists(y, y), sigma, weights)
    kxy = _kernel(_sq_dists(x, y), sigma, weights)
    if unbiased:
        if m < 2 or n < 2:
            raise ValueError(
                f"the unbiased estimator needs at least 2 samples on each side (got m={m}, n={n}); "
                "use unbiased=False."
            )
        txx = (kxx.sum((-2, -1)) - kxx.diagonal(dim1=-2, dim2=-1).sum(-1)) / (m * (m - 1))
        tyy = (kyy.sum((-2, -1)) - kyy.diagonal(dim1=-2, dim2=-1).sum(-1)) / (n * (n - 1))
    else:
        txx = kxx.mean((-2, -1))
        tyy = kyy.mean((-2, -1))
    return txx + tyy - 2.0 * kxy.mean((-2, -1))


def gaussian_mmd2(
    mean_x, cov_x, mean_y, cov_y, sigma=1.0, *, weights=None, sample_sizes: tuple[int, int] | None = None
) -> torch.Tensor:
    r"""Population :math:`\mathrm{MMD}^2` between two Gaussians under Gaussian kernels.

    For :math:`X\sim\mathcal N(a, A)`, :math:`Y\sim\mathcal N(b, B)` in
    :math:`\mathbb R^d` and :math:`k_s(x,y)=e^{-\lVert x-y\rVert^2/(2s^2)}`,

    .. math::

        \mathrm{MMD}^2 = \mathcal K(a, a, 2A) + \mathcal K(b, b, 2B) - 2\,\mathcal K(a, b, A + B),
        \qquad
        \mathcal K(a, b, C) = \det(I + C/s^2)^{-1/2}
            \exp\!\big(-\tfrac12 (a-b)^\top (C + s^2 I)^{-1} (a-b)\big),

    because :math:`\mathbb E\,k_s(X, Y) = \mathcal K(a, b, A + B)` for independent
    Gaussians (:math:`X-Y\sim\mathcal N(a-b, A+B)`). Several bandwidths combine linearly with ``weights``.

    With ``sample_sizes=(m, n)`` it returns instead the expectation of the biased
    (V-statistic) estimator :func:`mmd2` on samples of those sizes,

    .. math::

        \mathbb E\,\widehat{\mathrm{MMD}}{}^2_V = \mathrm{MMD}^2
            + \frac{k(x,x) - \mathbb E\,k(x,x')}{m} + \frac{k(y,y) - \mathbb E\,k(y,y')}{n},

    (the unbiased estimator's expectation is :math:`\mathrm{MMD}^2` itself).

    Parameters
    ----------
    mean_x, mean_y : array-like, shape (d,)
    cov_x, cov_y : array-like, shape (d, d)
    sigma : float or sequence of float, default 1.0
    weights : sequence of float, optional
        Default :math:`1/U` each, as in :func:`mmd2`.
    sample_sizes : (int, int), optional
        :math:`(m, n)`: return the V-statistic's expectation at these sizes.

    Returns
    -------
    torch.Tensor, shape ()

    Examples
    --------
    Unit variances, means 0.5 apart, :math:`s=1`:
    :math:`2\sqrt{s^2/(s^2+2)}\,(1-e^{-\delta^2/(2(s^2+2))})`.

    >>> round(gaussian_mmd2([0.0], [[1.0]], [0.5], [[1.0]], sigma=1.0).item(), 7)
    0.047124
    >>> round(gaussian_mmd2([0.0], [[1.0]], [0.5], [[1.0]], sigma=[0.5, 1, 2],
    ...                     weights=[1, 1, 1]).item(), 7)  # sum of three kernels
    0.1168197
    >>> round(gaussian_mmd2([0, 0], [[1, 0], [0, 1]], [0.5, 0], [[1.5, 0], [0, 0.7]],
    ...                     sample_sizes=(200, 200)).item(), 7)  # E of the V-statistic
    0.0350272
    """
    mean_x, cov_x, mean_y, cov_y = as_float_tensors(
        mean_x, cov_x, mean_y, cov_y, names=("mean_x", "cov_x", "mean_y", "cov_y")
    )
    mean_x, mean_y = mean_x.reshape(-1), mean_y.reshape(-1)
    d = mean_x.shape[0]
    for name, c in (("cov_x", cov_x), ("cov_y", cov_y)):
        if c.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}) to match the means; got {tuple(c.shape)}.")
    if mean_y.shape[0] != d:
        raise ValueError(f"mean_x has {d} entries but mean_y has {mean_y.shape[0]}.")
    sigma, weights = _sigmas_and_weights(sigma, weights, mean_x[None], mean_y[None])
    eye = torch.eye(d, dtype=mean_x.dtype, device=mean_x.device)

    def expect(a, b, c):
        out = 0.0
        for s, w in zip(sigma, weights, strict=True):
            s2 = s**2
            diff = a - b
            quad = diff @ torch.linalg.solve(c + s2 * eye, diff)
            out = out + w * torch.exp(-0.5 * quad - 0.5 * torch.logdet(eye + c / s2))
        return out

    kxx = expect(mean_x, mean_x, 2 * cov_x)
    kyy = expect(mean_y, mean_y, 2 * cov_y)
    value = kxx + kyy - 2 * expect(mean_x, mean_y, cov_x + cov_y)
    if sample_sizes is not None:
        m, n = (int(t) for t in sample_sizes)
        if m < 1 or n < 1:
            raise ValueError(f"sample_sizes must be positive, got {sample_sizes}.")
        k0 = weights.sum()  # k(x, x)
        value = value + (k0 - kxx) / m + (k0 - kyy) / n
    return value


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in torch.as_tensor(values, dtype=torch.float64).reshape(-1))


class MultipleKernelMMD(nn.Module):
    r"""Multi-kernel MMD² loss (DAN's MK-MMD), a thin module over :func:`mmd2`.

    ``forward(x, y)`` returns the scalar :math:`\widehat{\mathrm{MMD}}^2_k(x, y)`. With
    ``sigma=None`` the bandwidths are recomputed from each batch (detached) with
    :func:`dan_bandwidths`.

    Parameters
    ----------
    sigma : float or sequence of float, optional
        Fixed bandwidths; default per-batch DAN family.
    weights : sequence of float, optional
        Kernel weights; default equal, summing to one.
    unbiased : bool, default False
        The V-statistic (default, non-negative, what DAN trains on) or the U-statistic.
    exponents : sequence of float, default ``(-3, -2, -1, 0, 1)``
        Exponents of the per-batch family (used when ``sigma`` is None).
    heuristic : {"mean", "median"}, default "mean"

    Examples
    --------
    >>> loss = MultipleKernelMMD(sigma=[1.0])
    >>> round(loss(torch.zeros(1, 1), torch.ones(1, 1)).item(), 6)
    0.786939
    """

    def __init__(
        self,
        sigma=None,
        weights=None,
        unbiased: bool = False,
        exponents: Sequence[float] = DAN_EXPONENTS,
        heuristic: str = "mean",
    ) -> None:
        super().__init__()
        # Kept as Python floats (float64), so float64 use is not rounded through float32.
        self.sigma = None if sigma is None else _floats(sigma)
        self.weights = None if weights is None else _floats(weights)
        self.unbiased = unbiased
        self.exponents = tuple(exponents)
        if heuristic not in ("mean", "median"):
            raise ValueError(f"heuristic must be 'mean' or 'median', got {heuristic!r}.")
        self.heuristic = heuristic

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        sigma = (
            self.sigma
            if self.sigma is not None
            else dan_bandwidths(x, y, exponents=self.exponents, heuristic=self.heuristic)
        )
        return mmd2(x, y, sigma, weights=self.weights, unbiased=self.unbiased)

    def extra_repr(self) -> str:
        sig = "per-batch DAN family" if self.sigma is None else str(self.sigma)
        return f"sigma={sig}, unbiased={self.unbiased}"

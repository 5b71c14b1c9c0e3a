"""Toy learning problems whose generalization gap and information terms are exact.

Each model computes, in torch float64 and by enumeration or closed form, the true
expected generalization (or transfer) gap together with every information term a
bound of :mod:`lautum.bounds` needs, so that a chapter can plot the truth against
the bound and assert the inequality. Each also has a cheap Monte Carlo estimate of
its gap, to cross-check the closed form.

Models (derived in the book's chapters ``notebooks/02-generalization-bounds.ipynb`` and
``notebooks/03-transfer-bounds.ipynb``):

* :class:`GaussianMeanEstimation`: :math:`W=a\\bar Z+\\sqrt v\\,\\xi` with Gaussian
  data and squared loss; :math:`a=1,v=0` is ERM, :math:`v>0` a noisy mean, and
  :meth:`GaussianMeanEstimation.gibbs` the Gibbs posterior under a Gaussian prior.
* :class:`BernoulliGibbs`: a one-bit Gibbs classifier on Bernoulli labels with the
  0-1 loss, everything a finite sum over :math:`K=\\sum_iZ_i`.
* :class:`GaussianTransfer`: the jointly Gaussian weights--data model with a shifted
  Gaussian target and a bounded loss, where both transfer identities hold exactly.
* :class:`GaussianGibbsTransfer`: a Gibbs posterior trained on source and target
  samples, whose target gap is :math:`(I+L)/(\\gamma\\alpha)` conditionally on the source.

Information terms come from :mod:`lautum.info`; :func:`gaussian_kl` and the
target-evaluated cross forms :func:`gaussian_target_lautum` and
:func:`gaussian_target_mutual_information` live here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lautum import info
from lautum.info import MonteCarloEstimate

__all__ = [
    "gaussian_kl",
    "gaussian_target_lautum",
    "gaussian_target_mutual_information",
    "GaussianMeanEstimation",
    "BernoulliGibbs",
    "GaussianTransfer",
    "GaussianGibbsTransfer",
    "AnchoredChannelToy",
]

F64 = torch.float64


def _t(x) -> Tensor:
    return torch.as_tensor(x, dtype=F64)


def _cov2(var_w, cov_wz, var_z) -> Tensor:
    """The 2x2 covariance of a scalar pair, as a float64 tensor."""
    return torch.stack(
        [torch.stack([_t(var_w), _t(cov_wz)]), torch.stack([_t(cov_wz), _t(var_z)])]
    )


def _mc(samples: Tensor) -> MonteCarloEstimate:
    return MonteCarloEstimate(samples.mean(), samples.std() / math.sqrt(samples.numel()))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# --------------------------------------------------------------------------- Gaussian algebra
def _logdet_chol(cov: Tensor) -> tuple[Tensor, Tensor]:
    chol = torch.linalg.cholesky(cov)
    return chol, 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)


def gaussian_kl(mean0, cov0, mean1, cov1) -> Tensor:
    """KL divergence between two multivariate Gaussians, in nats.

    .. math::

        D(\\mathcal N(m_0,\\Sigma_0)\\|\\mathcal N(m_1,\\Sigma_1))=\\tfrac12\\big[
        \\mathrm{tr}(\\Sigma_1^{-1}\\Sigma_0)+(m_1-m_0)^\\top\\Sigma_1^{-1}(m_1-m_0)
        -d+\\log\\tfrac{\\det\\Sigma_1}{\\det\\Sigma_0}\\big]

    (Cover & Thomas 2006), by Cholesky factors and triangular solves.

    Parameters
    ----------
    mean0, mean1 : Tensor, shape (..., d)
    cov0, cov1 : Tensor, shape (..., d, d)
        Positive definite covariances (``torch.linalg.cholesky`` raises otherwise).

    Returns
    -------
    Tensor, shape (...)
        Same dtype and device as ``cov0``.

    Examples
    --------
    The source and target of the book's chapter ``notebooks/03-transfer-bounds.ipynb``:
    :math:`D(\\mathcal N(0,1)\\|\\mathcal N(0.5,1.44))`:

    >>> m0, c0 = torch.zeros(1, dtype=torch.float64), torch.eye(1, dtype=torch.float64)
    >>> m1, c1 = torch.full((1,), 0.5, dtype=torch.float64), 1.44 * torch.eye(1, dtype=torch.float64)
    >>> print(f"{gaussian_kl(m0, c0, m1, c1).item():.7f}")
    0.1163493
    """
    mean0, cov0, mean1, cov1 = (torch.as_tensor(x) for x in (mean0, cov0, mean1, cov1))
    d = cov0.shape[-1]
    chol1, logdet1 = _logdet_chol(cov1)
    _, logdet0 = _logdet_chol(cov0)
    # tr(S1^{-1} S0) = ||L1^{-1} L0||_F^2 and the Mahalanobis term by one solve each
    l0 = torch.linalg.cholesky(cov0)
    trace = torch.linalg.solve_triangular(chol1, l0, upper=False).square().sum((-2, -1))
    diff = (mean1 - mean0).unsqueeze(-1)
    maha = torch.linalg.solve_triangular(chol1, diff, upper=False).square().sum((-2, -1))
    return (0.5 * (trace + maha - d + logdet1 - logdet0)).clamp_min(0.0)


def _cross_terms(cov_w, cov_wx, cov_x, target_mean_shift, target_cov):
    cov_w, cov_wx, cov_x, delta, cov_t = (
        torch.as_tensor(x) for x in (cov_w, cov_wx, cov_x, target_mean_shift, target_cov)
    )
    # A = S_WX S_X^{-1} via a Cholesky solve (no explicit inverse)
    chol_x = torch.linalg.cholesky(cov_x)
    a = torch.cholesky_solve(cov_wx.mT, chol_x).mT
    cov_w_given_x = cov_w - a @ cov_wx.mT
    second_moment = cov_t + delta.unsqueeze(-1) * delta.unsqueeze(-2)  # M = S_t + d d^T
    spread = a @ second_moment @ a.mT
    return cov_w, cov_w_given_x, spread


def _trace_solve(cov: Tensor, rhs: Tensor) -> Tensor:
    chol = torch.linalg.cholesky(cov)
    return torch.diagonal(torch.cholesky_solve(rhs, chol), dim1=-2, dim2=-1).sum(-1)


def gaussian_target_lautum(cov_w, cov_wx, cov_x, target_mean_shift, target_cov) -> Tensor:
    """Lautum channel form evaluated at target inputs, for jointly Gaussian :math:`(W,X)`.

    With :math:`(W,X)` jointly Gaussian under the source, :math:`A=\\Sigma_{WX}\\Sigma_X^{-1}`,
    :math:`\\Sigma_{W|X}=\\Sigma_W-A\\Sigma_{XW}` and a target law of :math:`X` with mean
    shifted by :math:`\\delta` and covariance :math:`\\Sigma_t` (:math:`M=\\Sigma_t+\\delta\\delta^\\top`),

    .. math::

        L_t(W;X)=\\mathbb E_{x\\sim\\mu'}D(P_W\\|P_{W|X=x})
        =\\tfrac12\\Big[\\log\\tfrac{\\det\\Sigma_{W|X}}{\\det\\Sigma_W}-d_w
        +\\mathrm{tr}(\\Sigma_{W|X}^{-1}\\Sigma_W)+\\mathrm{tr}(\\Sigma_{W|X}^{-1}AMA^\\top)\\Big].

    With :math:`M=\\Sigma_X` it is :math:`L(W;X)`. This cross form is this project's
    reading of "Lautum between the weights and the target data" ([RECONSTRUCTED]; chapter
    ``notebooks/03-transfer-bounds.ipynb``, "The weights–target-data Gaussian model"); it needs
    :math:`\\Sigma_X^{-1}` (a :math:`d_x\\times d_x` solve).

    Parameters
    ----------
    cov_w : Tensor, shape (..., dw, dw)
    cov_wx : Tensor, shape (..., dw, dx)
    cov_x : Tensor, shape (..., dx, dx)
        Source joint covariance blocks (the joint must be positive definite).
    target_mean_shift : Tensor, shape (..., dx)
        Target mean minus source mean of :math:`X`.
    target_cov : Tensor, shape (..., dx, dx)

    Examples
    --------
    The reference point of the book's chapter ``notebooks/03-transfer-bounds.ipynb``: :math:`\\mathrm{Var}W=0.45`,
    :math:`\\mathrm{Cov}(W,Z_1)=0.2`,
    source :math:`\\mathcal N(0,1)`, target :math:`\\mathcal N(0.5,1.44)`:

    >>> f = lambda v: torch.tensor([[v]], dtype=torch.float64)
    >>> lt = gaussian_target_lautum(f(0.45), f(0.2), f(1.0), torch.tensor([0.5], dtype=torch.float64), f(1.44))
    >>> print(f"{lt.item():.7f}")
    0.0846743
    """
    cov_w, cov_w_given_x, spread = _cross_terms(cov_w, cov_wx, cov_x, target_mean_shift, target_cov)
    dw = cov_w.shape[-1]
    _, logdet_c = _logdet_chol(cov_w_given_x)
    _, logdet_w = _logdet_chol(cov_w)
    value = 0.5 * (
        logdet_c - logdet_w - dw + _trace_solve(cov_w_given_x, cov_w) + _trace_solve(cov_w_given_x, spread)
    )
    return value.clamp_min(0.0)


def gaussian_target_mutual_information(cov_w, cov_wx, cov_x, target_mean_shift, target_cov) -> Tensor:
    """Mutual-information channel form evaluated at target inputs (Gaussian cross form).

    .. math::

        I_t(W;X)=\\mathbb E_{x\\sim\\mu'}D(P_{W|X=x}\\|P_W)
        =\\tfrac12\\Big[\\log\\tfrac{\\det\\Sigma_W}{\\det\\Sigma_{W|X}}-d_w
        +\\mathrm{tr}(\\Sigma_W^{-1}\\Sigma_{W|X})+\\mathrm{tr}(\\Sigma_W^{-1}AMA^\\top)\\Big],

    notation as in :func:`gaussian_target_lautum` ([RECONSTRUCTED] cross form, chapter
    ``notebooks/03-transfer-bounds.ipynb``); :math:`I(W;X)` when :math:`M=\\Sigma_X`.

    Examples
    --------
    With the target equal to the source this is :math:`I(W;Z_1)=-\\tfrac12\\log(1-0.2^2/0.45)`:

    >>> f = lambda v: torch.tensor([[v]], dtype=torch.float64)
    >>> it = gaussian_target_mutual_information(f(0.45), f(0.2), f(1.0), torch.zeros(1, dtype=torch.float64), f(1.0))
    >>> print(f"{it.item():.7f}")
    0.0465452
    """
    cov_w, cov_w_given_x, spread = _cross_terms(cov_w, cov_wx, cov_x, target_mean_shift, target_cov)
    dw = cov_w.shape[-1]
    _, logdet_c = _logdet_chol(cov_w_given_x)
    _, logdet_w = _logdet_chol(cov_w)
    value = 0.5 * (logdet_w - logdet_c - dw + _trace_solve(cov_w, cov_w_given_x) + _trace_solve(cov_w, spread))
    return value.clamp_min(0.0)


# --------------------------------------------------------------------------- mean estimation
@dataclass(frozen=True)
class GaussianMeanEstimation:
    """Linear-Gaussian mean estimation: :math:`W=a\\bar Z+\\sqrt v\\,\\xi` under squared loss.

    Data :math:`Z_i\\sim\\mathcal N(m,\\sigma^2I_d)` i.i.d., :math:`\\xi\\sim\\mathcal N(0,I_d)`,
    loss :math:`\\ell(w,z)=\\|w-z\\|^2`. Per coordinate,
    :math:`\\mathrm{Cov}(W,Z_i)=a\\sigma^2/n`, so

    .. math::

        \\overline{\\mathrm{gen}}=\\frac{2ad\\sigma^2}{n},\\qquad
        I(W;S)=I(W;\\bar Z)=\\tfrac d2\\log(1+\\mathsf{snr}),\\quad
        L(W;S)=d[\\mathsf{snr}-\\tfrac12\\log(1+\\mathsf{snr})],\\quad
        \\mathsf{snr}=\\frac{a^2\\sigma^2}{nv}.

    ERM (:math:`a=1`, :math:`v=0`) has :math:`I(W;S)=L(W;S)=\\infty` yet finite
    per-sample terms :math:`I(W;Z_i)=\\frac d2\\log\\frac n{n-1}` (the book's chapter
    ``notebooks/02-generalization-bounds.ipynb``, "Toy model 2: Gaussian mean estimation").

    Parameters
    ----------
    n : int
        Training-set size (``>= 1``).
    dim : int
        Dimension :math:`d`.
    sigma : float
        Data standard deviation per coordinate.
    scale : float
        :math:`a`.
    noise_var : float
        :math:`v\\ge0`.
    data_mean : float
        :math:`m` (same in every coordinate; the gap does not depend on it).

    Examples
    --------
    >>> erm = GaussianMeanEstimation(n=10)
    >>> print(f"{erm.expected_gap().item():.3f} {erm.mi_per_sample().item():.6f} {erm.lautum_per_sample().item():.6f}")
    0.200 0.052680 0.058431
    """

    n: int
    dim: int = 1
    sigma: float = 1.0
    scale: float = 1.0
    noise_var: float = 0.0
    data_mean: float = 0.0

    def __post_init__(self) -> None:
        _check(int(self.n) >= 1, f"n must be >= 1, got {self.n}")
        _check(int(self.dim) >= 1, f"dim must be >= 1, got {self.dim}")
        _check(self.sigma > 0, f"sigma must be > 0, got {self.sigma}")
        _check(self.noise_var >= 0, f"noise_var must be >= 0, got {self.noise_var}")

    @classmethod
    def gibbs(
        cls,
        n: int,
        gamma: float,
        prior_std: float = 10.0,
        dim: int = 1,
        sigma: float = 1.0,
        data_mean: float = 0.0,
    ) -> GaussianMeanEstimation:
        """Gibbs posterior :math:`\\propto\\mathcal N(0,\\sigma_0^2I)(w)\\,e^{-\\gamma L_S(w)}`.

        It is :math:`W=a\\bar Z+\\sqrt v\\,\\xi` with :math:`v=(\\sigma_0^{-2}+2\\gamma)^{-1}`,
        :math:`a=2\\gamma v` (chapter ``notebooks/02-generalization-bounds.ipynb``, "The Gaussian Gibbs algorithm").

        Examples
        --------
        >>> m = GaussianMeanEstimation.gibbs(n=10, gamma=1.0, prior_std=10.0)
        >>> print(f"{m.expected_gap().item():.8f} {m.mutual_information().item():.6f} {m.lautum_information().item():.6f}")
        0.19900498 0.090746 0.108259
        """
        _check(gamma > 0, f"gamma must be > 0, got {gamma}")
        _check(prior_std > 0, f"prior_std must be > 0, got {prior_std}")
        v = 1.0 / (prior_std**-2 + 2.0 * gamma)
        return cls(n=n, dim=dim, sigma=sigma, scale=2.0 * gamma * v, noise_var=v, data_mean=data_mean)

    # -- second moments (per coordinate)
    @property
    def var_w(self) -> float:
        """Variance of each coordinate of W."""
        return self.scale**2 * self.sigma**2 / self.n + self.noise_var

    @property
    def cov_wz(self) -> float:
        """Covariance of a coordinate of W with the same coordinate of one sample Z_i."""
        return self.scale * self.sigma**2 / self.n

    def expected_gap(self) -> Tensor:
        """:math:`\\mathbb E[L_\\mu(W)-L_S(W)]=2ad\\sigma^2/n`."""
        return _t(2.0 * self.dim * self.cov_wz)

    def snr(self) -> Tensor:
        """:math:`a^2\\sigma^2/(nv)` (``inf`` when :math:`v=0`)."""
        if self.noise_var == 0:
            return _t(math.inf)
        return _t(self.scale**2 * self.sigma**2 / (self.n * self.noise_var))

    def _full(self) -> tuple[Tensor, Tensor]:
        if self.noise_var == 0 and self.scale != 0:
            return _t(math.inf), _t(math.inf)
        sx = self.sigma**2 / self.n
        cov = _cov2(self.var_w, self.scale * sx, sx)  # (W, Zbar) per coordinate
        return self.dim * info.gaussian_mutual_information(cov, 1), self.dim * info.gaussian_lautum_information(cov, 1)

    def mutual_information(self) -> Tensor:
        """:math:`I(W;S)=I(W;\\bar Z)` (``inf`` for ERM)."""
        return self._full()[0]

    def lautum_information(self) -> Tensor:
        """:math:`L(W;S)=L(W;\\bar Z)` (``inf`` for ERM)."""
        return self._full()[1]

    def _per_sample_cov(self) -> Tensor:
        return _cov2(self.var_w, self.cov_wz, self.sigma**2)

    def mi_per_sample(self) -> Tensor:
        """:math:`I(W;Z_i)`, the same for every :math:`i`."""
        return self.dim * info.gaussian_mutual_information(self._per_sample_cov(), 1)

    def lautum_per_sample(self) -> Tensor:
        """:math:`L(W;Z_i)`, the same for every :math:`i`."""
        return self.dim * info.gaussian_lautum_information(self._per_sample_cov(), 1)

    # -- loss distribution
    def _diff_moments(self, under: str) -> tuple[float, float]:
        """Mean and variance of one coordinate of :math:`W-Z` under the product or the joint."""
        mean = (self.scale - 1.0) * self.data_mean
        if under == "product":
            return mean, self.var_w + self.sigma**2
        if under == "joint":
            return mean, self.var_w + self.sigma**2 - 2 * self.cov_wz
        raise ValueError(f"under must be 'product' or 'joint', got {under!r}")

    def loss_cgf(self, lam: Tensor, under: Literal["product", "joint"] = "product") -> Tensor:
        """Upper-tail CGF :math:`\\log\\mathbb Ee^{\\lambda(\\ell-\\mathbb E\\ell)}` of the squared loss.

        Each coordinate of :math:`W-Z` is :math:`\\mathcal N(m_\\Delta,s^2)`, so the loss is
        a scaled noncentral chi-square:
        :math:`d\\,[-\\tfrac12\\log(1-2\\lambda s^2)+\\lambda m_\\Delta^2/(1-2\\lambda s^2)-\\lambda(s^2+m_\\Delta^2)]`
        for :math:`0\\le\\lambda<1/(2s^2)`. ``under="product"`` feeds the
        Bu--Zou--Veeravalli CGF bound, ``under="joint"`` the Lautum one.
        """
        m, s2 = self._diff_moments(under)
        lam = torch.as_tensor(lam, dtype=F64)
        one_minus = 1 - 2 * lam * s2
        return self.dim * (-0.5 * torch.log(one_minus) + lam * m**2 / one_minus - lam * (s2 + m**2))

    def cgf_lambda_max(self, under: Literal["product", "joint"] = "product") -> float:
        """End :math:`1/(2s^2)` of the CGF's domain."""
        return 1.0 / (2.0 * self._diff_moments(under)[1])

    def summary(self) -> dict[str, float]:
        """The gap and every applicable bound, as floats (one row of a table).

        The squared loss is not sub-Gaussian, so only the CGF bounds apply:
        ``bu_cgf`` (:func:`lautum.bounds.bu_zou_veeravalli_cgf`, product CGF) and
        ``lautum_cgf`` (:func:`lautum.bounds.lautum_per_sample_cgf`, joint CGF).
        """
        from lautum import bounds

        i1, l1 = self.mi_per_sample(), self.lautum_per_sample()
        return {
            "n": self.n,
            "gap": self.expected_gap().item(),
            "I": self.mutual_information().item(),
            "L": self.lautum_information().item(),
            "I_1": i1.item(),
            "L_1": l1.item(),
            "bu_cgf": bounds.bu_zou_veeravalli_cgf(i1, self.loss_cgf, self.cgf_lambda_max()).bound.item(),
            "lautum_cgf": bounds.lautum_per_sample_cgf(
                l1, lambda lam: self.loss_cgf(lam, "joint"), self.cgf_lambda_max("joint")
            ).bound.item(),
        }

    def monte_carlo_gap(self, num_draws: int, generator: torch.Generator | None = None) -> MonteCarloEstimate:
        """Monte Carlo estimate of the gap, with its standard error.

        Draws :math:`\\bar Z` and :math:`W`; uses :math:`L_\\mu(W)=\\|W-m\\|^2+d\\sigma^2` and
        :math:`L_S(W)=\\|W-\\bar Z\\|^2+\\frac1n\\sum_i\\|Z_i-\\bar Z\\|^2`, whose last term is
        independent of :math:`(\\bar Z,W)` with mean :math:`d\\sigma^2(n-1)/n` and is
        replaced by that mean (a conditional expectation: unbiased, lower variance).
        """
        shape = (num_draws, self.dim)
        zbar = self.data_mean + self.sigma / math.sqrt(self.n) * torch.randn(shape, generator=generator, dtype=F64)
        w = self.scale * zbar + math.sqrt(self.noise_var) * torch.randn(shape, generator=generator, dtype=F64)
        pop = (w - self.data_mean).square().sum(-1) + self.dim * self.sigma**2
        emp = (w - zbar).square().sum(-1) + self.dim * self.sigma**2 * (self.n - 1) / self.n
        return _mc(pop - emp)


# --------------------------------------------------------------------------- Bernoulli Gibbs
@dataclass(frozen=True)
class BernoulliGibbs:
    """One-bit Gibbs classifier on Bernoulli labels (book chapter ``notebooks/02-generalization-bounds.ipynb``).

    :math:`Z_i\\sim\\mathrm{Bern}(\\theta)`, hypotheses :math:`w\\in\\{0,1\\}` (predict the
    constant label :math:`w`), 0-1 loss :math:`\\ell(w,z)=\\mathbf 1[w\\ne z]`, uniform
    prior, :math:`P(w|S)\\propto e^{-\\gamma L_S(w)}`. With :math:`K=\\sum_iZ_i`,
    :math:`L_S(0)=K/n`, :math:`L_S(1)=1-K/n` and
    :math:`P(W=1|K)=\\mathrm{sigmoid}(\\gamma(2K/n-1))`; everything is a finite sum over
    :math:`K\\sim\\mathrm{Bin}(n,\\theta)` and, per sample, over
    :math:`K-Z_1\\sim\\mathrm{Bin}(n-1,\\theta)`. The loss lies in :math:`[0,1]`, so it is
    :math:`\\tfrac12`-sub-Gaussian under every law (:attr:`sigma`).

    Examples
    --------
    >>> m = BernoulliGibbs(n=10, theta=0.3, gamma=5.0)
    >>> print(f"{m.expected_gap().item():.6f} {m.mutual_information().item():.6f} {m.lautum_information().item():.6f}")
    0.052164 0.114705 0.146113
    >>> print(f"{m.mi_per_sample().item():.7f} {m.lautum_per_sample().item():.7f}")
    0.0101273 0.0097561
    """

    n: int
    theta: float
    gamma: float

    sigma = 0.5
    loss_range = 1.0

    def __post_init__(self) -> None:
        _check(int(self.n) >= 1, f"n must be >= 1, got {self.n}")
        _check(0 < self.theta < 1, f"theta must be in (0, 1), got {self.theta}")
        _check(self.gamma > 0, f"gamma must be > 0, got {self.gamma}")

    @staticmethod
    def _log_binomial_pmf(n: int, p: float) -> Tensor:
        k = torch.arange(n + 1, dtype=F64)
        logc = torch.lgamma(_t(n + 1.0)) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
        return logc + k * math.log(p) + (n - k) * math.log1p(-p)

    def _log_posterior(self) -> Tensor:
        k = torch.arange(self.n + 1, dtype=F64)
        logit = self.gamma * (2 * k / self.n - 1)  # gamma * (L_S(0) - L_S(1))
        return torch.stack([F.logsigmoid(-logit), F.logsigmoid(logit)], dim=-1)

    def posterior(self) -> Tensor:
        """:math:`P(W=w\\mid K=k)`, shape (n+1, 2), as logistics (no :math:`1-p` round-off)."""
        return self._log_posterior().exp()

    def log_joint_wk(self) -> Tensor:
        """:math:`\\log P(K=k,W=w)`, shape (n+1, 2), finite at any :math:`n` and :math:`\\gamma`."""
        return self._log_binomial_pmf(self.n, self.theta).unsqueeze(-1) + self._log_posterior()

    def log_joint_wz(self) -> Tensor:
        """:math:`\\log P(Z_1=z,W=w)`, shape (2, 2) (rows :math:`z`), by log-sum-exp over :math:`K-Z_1`."""
        log_post = self._log_posterior()
        log_rest = self._log_binomial_pmf(self.n - 1, self.theta).unsqueeze(-1)
        z0 = math.log1p(-self.theta) + torch.logsumexp(log_rest + log_post[:-1], 0)
        z1 = math.log(self.theta) + torch.logsumexp(log_rest + log_post[1:], 0)
        return torch.stack([z0, z1])

    def joint_wk(self) -> Tensor:
        """:math:`P(K=k,W=w)`, shape (n+1, 2); :math:`K` is sufficient, so :math:`I(W;S)=I(W;K)`."""
        return self.log_joint_wk().exp()

    def joint_wz(self) -> Tensor:
        """:math:`P(Z_1=z,W=w)`, shape (2, 2) (rows :math:`z`)."""
        return self.log_joint_wz().exp()

    @staticmethod
    def _information_from_log_joint(log_joint: Tensor) -> tuple[Tensor, Tensor]:
        """:math:`(I, L)` from a log-joint, summing only cells of positive weight.

        At large :math:`n` or :math:`\\gamma` some probabilities underflow (to zero or to
        subnormals whose products vanish); on the pmf, ``info.mutual_information`` and
        ``info.lautum_information`` then see :math:`p\\log(p/0)` and return ``inf`` for a
        finite quantity. In the log domain every ratio stays finite. Where nothing
        underflows the two routes agree to ~1e-15 (tested).
        """
        log_px = torch.logsumexp(log_joint, 1, keepdim=True)
        log_py = torch.logsumexp(log_joint, 0, keepdim=True)
        log_prod = log_px + log_py
        ratio = log_joint - log_prod  # information density, finite
        joint, prod = log_joint.exp(), log_prod.exp()
        mi = torch.where(joint > 0, joint * ratio, torch.zeros_like(ratio)).sum()
        lautum = torch.where(prod > 0, -prod * ratio, torch.zeros_like(ratio)).sum()
        return mi.clamp_min(0.0), lautum.clamp_min(0.0)

    def mutual_information(self) -> Tensor:
        """:math:`I(W;S)=I(W;K)` (log domain; equals ``info.mutual_information(joint_wk())``
        wherever nothing underflows)."""
        return self._information_from_log_joint(self.log_joint_wk())[0]

    def lautum_information(self) -> Tensor:
        """:math:`L(W;S)=L(W;K)` (log domain, as :meth:`mutual_information`)."""
        return self._information_from_log_joint(self.log_joint_wk())[1]

    def mi_per_sample(self) -> Tensor:
        """:math:`I(W;Z_i)`."""
        return self._information_from_log_joint(self.log_joint_wz())[0]

    def lautum_per_sample(self) -> Tensor:
        """:math:`L(W;Z_i)`."""
        return self._information_from_log_joint(self.log_joint_wz())[1]

    def expected_gap(self) -> Tensor:
        """:math:`\\mathbb E_{P_W\\otimes\\mu}\\ell-\\mathbb E_{P_{WZ_1}}\\ell` from :meth:`joint_wz`."""
        joint = self.joint_wz()
        pz, pw = joint.sum(1), joint.sum(0)
        disagree = 1 - torch.eye(2, dtype=F64)
        return ((pz.unsqueeze(1) * pw.unsqueeze(0) - joint) * disagree).sum()

    def expected_gap_direct(self) -> Tensor:
        """The same gap as :math:`\\sum_kP(k)\\sum_wP(w|k)[L_\\mu(w)-L_S(w)]` (a second route)."""
        k = torch.arange(self.n + 1, dtype=F64)
        pop = torch.tensor([self.theta, 1 - self.theta], dtype=F64)  # L_mu(0), L_mu(1)
        emp = torch.stack([k / self.n, 1 - k / self.n], dim=-1)
        return (self.joint_wk() * (pop - emp)).sum()

    def summary(self) -> dict[str, float]:
        """The gap, the information terms and every bound of chapter 2, as floats."""
        from lautum import bounds

        mi, lt = self.mutual_information(), self.lautum_information()
        i1, l1 = self.mi_per_sample(), self.lautum_per_sample()
        s = self.sigma
        return {
            "n": self.n,
            "gap": self.expected_gap().item(),
            "I": mi.item(),
            "L": lt.item(),
            "I_1": i1.item(),
            "L_1": l1.item(),
            "gibbs_identity": bounds.gibbs_generalization(mi, lt, self.gamma).gap.item(),
            "xu_raginsky": bounds.xu_raginsky(mi, self.n, s).bound.item(),
            "bu_zou_veeravalli": bounds.bu_zou_veeravalli(i1, s).bound.item(),
            "lautum_per_sample": bounds.lautum_per_sample(l1, s).bound.item(),
            "lautum_full_sample": bounds.lautum_full_sample(lt, s).bound.item(),
            "min_bound": bounds.bounded_loss_min_bound(i1, l1, self.loss_range).bound.item(),
            "gibbs_corollary": bounds.gibbs_sub_gaussian_bound(self.n, s, self.gamma).item(),
        }

    def monte_carlo_gap(self, num_draws: int, generator: torch.Generator | None = None) -> MonteCarloEstimate:
        """Monte Carlo gap: draw :math:`S`, then :math:`W`, average :math:`L_\\mu(W)-L_S(W)`."""
        z = (torch.rand((num_draws, self.n), generator=generator, dtype=F64) < self.theta).to(F64)
        k = z.sum(-1)
        p1 = torch.sigmoid(self.gamma * (2 * k / self.n - 1))
        w = (torch.rand(num_draws, generator=generator, dtype=F64) < p1).to(F64)
        pop = torch.where(w == 1, 1 - self.theta, self.theta)
        emp = torch.where(w == 1, 1 - k / self.n, k / self.n)
        return _mc(pop - emp)


# --------------------------------------------------------------------------- transfer
@dataclass(frozen=True)
class GaussianTransfer:
    """Jointly Gaussian weights--data transfer model with a bounded loss.

    Source :math:`\\mu=\\mathcal N(m_s,\\sigma_s^2)`, target :math:`\\mu'=\\mathcal N(m_t,\\sigma_t^2)`,
    :math:`n` source samples, :math:`W=a\\bar Z+\\sqrt v\\,\\xi` (scalar), and the loss
    :math:`\\ell(w,z)=1-e^{-(w-z)^2/(2c)}\\in[0,1]` (:math:`\\tfrac12`-sub-Gaussian under
    every law). The transfer gap
    :math:`\\mathbb E[L_{\\mu'}(W)-L_S(W)]=\\mathbb E_{P_W\\otimes\\mu'}\\ell-\\mathbb E_{P_{WZ_1}}\\ell`
    is exact because :math:`\\mathbb Ee^{-X^2/(2c)}=\\sqrt{c/(c+s^2)}\\,e^{-m^2/(2(c+s^2))}` for
    :math:`X\\sim\\mathcal N(m,s^2)`. Both identities

    .. math::

        D(P_{WZ_i}\\|P_W\\otimes\\mu')=I(W;Z_i)+D(\\mu\\|\\mu'),\\qquad
        D(P_W\\otimes\\mu'\\|P_{WZ_i})=D(\\mu'\\|\\mu)+L_t(W;Z_i)

    can be checked with :func:`gaussian_kl` on the 2-D laws (chapter ``notebooks/03-transfer-bounds.ipynb``,
    "A jointly Gaussian weights–data model").

    Examples
    --------
    >>> m = GaussianTransfer(n=5, noise_var=0.25, target_mean=0.5, target_var=1.44)
    >>> print(f"{m.kl_joint_to_target_product().item():.10f} {m.kl_target_product_to_joint().item():.10f}")
    0.1628945461 0.2473527439
    """

    n: int
    noise_var: float = 0.25
    scale: float = 1.0
    source_mean: float = 0.0
    source_var: float = 1.0
    target_mean: float = 0.0
    target_var: float = 1.0
    loss_width: float = 1.0

    sigma = 0.5
    loss_range = 1.0

    def __post_init__(self) -> None:
        _check(int(self.n) >= 1, f"n must be >= 1, got {self.n}")
        _check(self.noise_var > 0 or self.n > 1, "noise_var = 0 with n = 1 makes W = a Z_1: every term is infinite")
        _check(self.source_var > 0 and self.target_var > 0, "source_var and target_var must be > 0")
        _check(self.loss_width > 0, f"loss_width must be > 0, got {self.loss_width}")

    # -- moments
    @property
    def mean_w(self) -> float:
        """Mean of W."""
        return self.scale * self.source_mean

    @property
    def var_w(self) -> float:
        """Variance of W."""
        return self.scale**2 * self.source_var / self.n + self.noise_var

    @property
    def cov_wz(self) -> float:
        """Covariance of W with one source sample Z_i."""
        return self.scale * self.source_var / self.n

    def joint_mean_cov(self) -> tuple[Tensor, Tensor]:
        """Mean and covariance of :math:`(W,Z_1)` under the source joint."""
        return _t([self.mean_w, self.source_mean]), _cov2(self.var_w, self.cov_wz, self.source_var)

    def target_product_mean_cov(self) -> tuple[Tensor, Tensor]:
        """Mean and covariance of :math:`P_W\\otimes\\mu'`."""
        return _t([self.mean_w, self.target_mean]), torch.diag(_t([self.var_w, self.target_var]))

    # -- divergences and information
    def kl_source_target(self) -> Tensor:
        """:math:`D(\\mu\\|\\mu')`."""
        return gaussian_kl(
            _t([self.source_mean]), _t([[self.source_var]]), _t([self.target_mean]), _t([[self.target_var]])
        )

    def kl_target_source(self) -> Tensor:
        """:math:`D(\\mu'\\|\\mu)`."""
        return gaussian_kl(
            _t([self.target_mean]), _t([[self.target_var]]), _t([self.source_mean]), _t([[self.source_var]])
        )

    def mi_per_sample(self) -> Tensor:
        """Source :math:`I(W;Z_i)`."""
        return info.gaussian_mutual_information(self.joint_mean_cov()[1], 1)

    def lautum_per_sample(self) -> Tensor:
        """Source :math:`L(W;Z_i)`."""
        return info.gaussian_lautum_information(self.joint_mean_cov()[1], 1)

    def _cross_args(self) -> tuple[Tensor, ...]:
        return (
            _t([[self.var_w]]),
            _t([[self.cov_wz]]),
            _t([[self.source_var]]),
            _t([self.target_mean - self.source_mean]),
            _t([[self.target_var]]),
        )

    def target_lautum(self) -> Tensor:
        """:math:`L_t(W;Z_i)=\\mathbb E_{z\\sim\\mu'}D(P_W\\|P_{W|Z_i=z})`."""
        return gaussian_target_lautum(*self._cross_args())

    def target_mutual_information(self) -> Tensor:
        """:math:`I_t(W;Z_i)=\\mathbb E_{z\\sim\\mu'}D(P_{W|Z_i=z}\\|P_W)`."""
        return gaussian_target_mutual_information(*self._cross_args())

    def kl_joint_to_target_product(self) -> Tensor:
        """:math:`D(P_{WZ_1}\\|P_W\\otimes\\mu')`, directly from the 2-D Gaussians."""
        m0, c0 = self.joint_mean_cov()
        m1, c1 = self.target_product_mean_cov()
        return gaussian_kl(m0, c0, m1, c1)

    def kl_target_product_to_joint(self) -> Tensor:
        """:math:`D(P_W\\otimes\\mu'\\|P_{WZ_1})`, directly from the 2-D Gaussians."""
        m0, c0 = self.target_product_mean_cov()
        m1, c1 = self.joint_mean_cov()
        return gaussian_kl(m0, c0, m1, c1)

    def summary(self) -> dict[str, float]:
        """The transfer gap, every term, and Bounds A (Wu et al.) and B (Lautum), as floats."""
        from lautum import bounds

        i1, d_st, d_ts, lt = self.mi_per_sample(), self.kl_source_target(), self.kl_target_source(), self.target_lautum()
        return {
            "n": self.n,
            "shift": self.target_mean - self.source_mean,
            "gap": self.expected_transfer_gap().item(),
            "I_1": i1.item(),
            "L_1": self.lautum_per_sample().item(),
            "L_t": lt.item(),
            "I_t": self.target_mutual_information().item(),
            "D_source_target": d_st.item(),
            "D_target_source": d_ts.item(),
            "bound_A_wu": bounds.wu_transfer_bound(i1, d_st, self.sigma).bound.item(),
            "bound_B_lautum": bounds.lautum_transfer_bound(d_ts, lt, self.sigma).bound.item(),
        }

    # -- the gap
    def _expected_kernel(self, mean: float, var: float) -> Tensor:
        c = self.loss_width**2
        return _t(math.sqrt(c / (c + var)) * math.exp(-(mean**2) / (2 * (c + var))))

    def expected_transfer_gap(self) -> Tensor:
        """:math:`\\mathbb E[L_{\\mu'}(W)-L_S(W)]` for the bounded loss, in closed form."""
        prod = self._expected_kernel(self.mean_w - self.target_mean, self.var_w + self.target_var)
        joint = self._expected_kernel(
            self.mean_w - self.source_mean, self.var_w + self.source_var - 2 * self.cov_wz
        )
        return joint - prod  # E[1 - k] under product minus under joint

    def monte_carlo_transfer_gap(
        self, num_draws: int, generator: torch.Generator | None = None
    ) -> MonteCarloEstimate:
        """Monte Carlo transfer gap from draws of :math:`(Z_1,\\sum_{i>1}Z_i,\\xi,Z')`."""
        g = lambda: torch.randn(num_draws, generator=generator, dtype=F64)  # noqa: E731
        z1 = self.source_mean + math.sqrt(self.source_var) * g()
        rest = (self.n - 1) * self.source_mean + math.sqrt((self.n - 1) * self.source_var) * g()
        w = self.scale * (z1 + rest) / self.n + math.sqrt(self.noise_var) * g()
        z_target = self.target_mean + math.sqrt(self.target_var) * g()
        c = self.loss_width**2
        loss = lambda a, b: 1 - torch.exp(-(a - b).square() / (2 * c))  # noqa: E731
        return _mc(loss(w, z_target) - loss(w, z1))


@dataclass(frozen=True)
class GaussianGibbsTransfer:
    """Gibbs posterior trained on source and target samples (book chapter ``notebooks/03-transfer-bounds.ipynb``).

    Source :math:`\\mathcal N(m_s,\\sigma^2)` (:math:`n_s` samples), target
    :math:`\\mathcal N(m_t,\\sigma^2)` (:math:`n_t` samples), squared loss, prior
    :math:`\\mathcal N(0,\\sigma_0^2)` and
    :math:`P(w|S_s,S_t)\\propto\\pi(w)e^{-\\gamma[\\alpha L_{S_t}(w)+(1-\\alpha)L_{S_s}(w)]}`:
    :math:`W=a[\\alpha\\bar Z_t+(1-\\alpha)\\bar Z_s]+\\sqrt v\\,\\xi` with
    :math:`v=(\\sigma_0^{-2}+2\\gamma)^{-1}`, :math:`a=2\\gamma v`. The derived identity

    .. math::

        \\mathbb E[L_{\\mu_t}(W)-L_{S_t}(W)]=\\frac{I(W;S_t|S_s)+L(W;S_t|S_s)}{\\gamma\\alpha}
        =\\frac{2a\\alpha\\sigma^2}{n_t}

    is this project's (the normalization of Bu, Aminian, Toni, Rodrigues & Wornell
    2022 is not known to us).

    Examples
    --------
    >>> m = GaussianGibbsTransfer()
    >>> print(f"{m.expected_target_gap().item():.7f} {m.conditional_mutual_information().item():.7f} {m.conditional_lautum_information().item():.7f}")
    0.1197007 0.0346793 0.0371412
    """

    n_source: int = 20
    n_target: int = 5
    source_mean: float = 0.0
    target_mean: float = 1.0
    sigma: float = 1.0
    prior_std: float = 10.0
    gamma: float = 2.0
    alpha: float = 0.3

    def __post_init__(self) -> None:
        _check(self.n_source >= 1 and self.n_target >= 1, "n_source and n_target must be >= 1")
        _check(0 < self.alpha <= 1, f"alpha must be in (0, 1], got {self.alpha}")
        _check(self.gamma > 0 and self.prior_std > 0 and self.sigma > 0, "gamma, prior_std, sigma must be > 0")

    @property
    def posterior_variance(self) -> float:
        """:math:`v=(\\sigma_0^{-2}+2\\gamma)^{-1}`."""
        return 1.0 / (self.prior_std**-2 + 2.0 * self.gamma)

    @property
    def scale(self) -> float:
        """:math:`a=2\\gamma v`."""
        return 2.0 * self.gamma * self.posterior_variance

    def expected_target_gap(self) -> Tensor:
        """:math:`2a\\alpha\\sigma^2/n_t`."""
        return _t(2.0 * self.scale * self.alpha * self.sigma**2 / self.n_target)

    def _conditional_cov(self) -> Tensor:
        """Covariance of :math:`(W,\\bar Z_t)` given :math:`S_s` (it does not depend on :math:`S_s`)."""
        b = self.scale * self.alpha
        sx = self.sigma**2 / self.n_target
        return _cov2(b**2 * sx + self.posterior_variance, b * sx, sx)

    def conditional_mutual_information(self) -> Tensor:
        """:math:`I(W;S_t|S_s)=I(W;\\bar Z_t|S_s)`."""
        return info.gaussian_mutual_information(self._conditional_cov(), 1)

    def conditional_lautum_information(self) -> Tensor:
        """:math:`L(W;S_t|S_s)=\\mathbb E_{S_s}L(W;S_t|S_s=s)` (the same for every :math:`s`)."""
        return info.gaussian_lautum_information(self._conditional_cov(), 1)

    def monte_carlo_target_gap(
        self, num_draws: int, generator: torch.Generator | None = None
    ) -> MonteCarloEstimate:
        """Monte Carlo estimate of the target gap (sufficient statistics, as in
        :meth:`GaussianMeanEstimation.monte_carlo_gap`)."""
        g = lambda: torch.randn(num_draws, generator=generator, dtype=F64)  # noqa: E731
        zt = self.target_mean + self.sigma / math.sqrt(self.n_target) * g()
        zs = self.source_mean + self.sigma / math.sqrt(self.n_source) * g()
        w = self.scale * (self.alpha * zt + (1 - self.alpha) * zs) + math.sqrt(self.posterior_variance) * g()
        pop = (w - self.target_mean).square() + self.sigma**2
        emp = (w - zt).square() + self.sigma**2 * (self.n_target - 1) / self.n_target
        return _mc(pop - emp)


# --------------------------------------------------------------------------- channel regularizer toy
@dataclass(frozen=True)
class AnchoredChannelToy:
    """What the sign and :math:`\\sigma_n^2` of the channel regularizer do, in closed form.

    One linear neuron per principal direction of the target inputs: the first-layer
    weight along direction :math:`j` is :math:`w_j`, the target variance there
    :math:`\\tau_j^2`, so :math:`\\Sigma_H=\\mathrm{diag}(w_j^2\\tau_j^2)` and
    :math:`S=\\mathrm{diag}(u_j)`, :math:`u_j=w_j^2\\tau_j^2/\\sigma_n^2`. The source loss is
    replaced by its quadratic model around the source solution :math:`w^{\\rm src}` (unit
    curvature), and the objective is

    .. math::

        F(w)=\\tfrac12\\|w-w^{\\rm src}\\|^2+s\\,\\lambda\\,\\mathcal R(w),\\qquad
        \\mathcal R\\in\\{\\mathcal L_{\\rm Lautum},\\mathcal L_{\\rm MI}\\},\\ s=\\pm1,

    evaluated with :func:`lautum.channel.channel_information_from_covariance`. It
    separates over directions. With :math:`s=-1` the Lautum objective is unbounded below
    as soon as :math:`\\lambda\\tau_j^2/\\sigma_n^2\\ge\\tfrac12` (the penalty is linear in the
    SNR); the MI objective never is (the penalty is logarithmic).

    Parameters
    ----------
    source_weights : tuple of float
        :math:`w^{\\rm src}_j`.
    target_var : tuple of float
        :math:`\\tau_j^2>0`, same length.
    noise_var : float
        :math:`\\sigma_n^2`.
    lam : float
        :math:`\\lambda\\ge0`.
    sign : int
        :math:`s\\in\\{+1,-1\\}`; ``+1`` minimizes the information (the bound's direction).
    penalty : {"lautum", "mi"}

    Examples
    --------
    Minimizing Lautum shrinks most where the target varies most:

    >>> toy = AnchoredChannelToy((1.0, 1.0), (0.1, 2.0), noise_var=1.0, lam=0.5)
    >>> print([round(v, 4) for v in toy.solution().tolist()])
    [0.9487, 0.439]
    """

    source_weights: tuple[float, ...]
    target_var: tuple[float, ...]
    noise_var: float = 1.0
    lam: float = 0.1
    sign: int = 1
    penalty: Literal["lautum", "mi"] = "lautum"

    def __post_init__(self) -> None:
        _check(len(self.source_weights) == len(self.target_var), "source_weights and target_var differ in length")
        _check(all(t > 0 for t in self.target_var), "target_var must be > 0")
        _check(self.noise_var > 0, f"noise_var must be > 0, got {self.noise_var}")
        _check(self.lam >= 0, f"lam must be >= 0, got {self.lam}")
        _check(self.sign in (1, -1), f"sign must be +1 or -1, got {self.sign}")
        _check(self.penalty in ("lautum", "mi"), f"penalty must be 'lautum' or 'mi', got {self.penalty!r}")

    def _per_direction(self, w: Tensor) -> Tensor:
        """Objective per direction; ``w`` of shape (..., k)."""
        from lautum.channel import channel_information_from_covariance

        w0 = _t(self.source_weights)
        tau2 = _t(self.target_var)
        cov = (w.square() * tau2).unsqueeze(-1).unsqueeze(-1)  # (..., k, 1, 1): one channel per direction
        r = channel_information_from_covariance(cov, self.noise_var)
        reg = r.lautum if self.penalty == "lautum" else r.mutual_information
        return 0.5 * (w - w0).square() + self.sign * self.lam * reg

    def objective(self, w: Tensor) -> Tensor:
        """:math:`F(w)` for ``w`` of shape (..., k)."""
        return self._per_direction(torch.as_tensor(w, dtype=F64)).sum(-1)

    def unbounded(self) -> Tensor:
        """Per direction: is :math:`F` unbounded below (maximized Lautum with :math:`\\lambda\\tau^2/\\sigma_n^2\\ge\\frac12`)?"""
        c = _t(self.target_var) / self.noise_var
        if self.sign == -1 and self.penalty == "lautum":
            return self.lam * c >= 0.5
        return torch.zeros_like(c, dtype=torch.bool)

    def solution(self, grid_size: int = 801, refine: int = 45) -> Tensor:
        """Global minimizer per direction (``inf`` where unbounded), by grid plus golden section.

        A search box containing the minimizer follows from the stationarity condition:
        :math:`|w|\\le|w^{\\rm src}|` for :math:`s=+1`,
        :math:`|w|\\le|w^{\\rm src}|/(1-2\\lambda c)` (Lautum) and
        :math:`|w|\\le|w^{\\rm src}|+\\lambda\\sqrt c/2` (MI) for :math:`s=-1`,
        :math:`c=\\tau^2/\\sigma_n^2`.
        """
        w0 = _t(self.source_weights)
        c = _t(self.target_var) / self.noise_var
        bad = self.unbounded()
        if self.sign == 1:
            box = w0.abs()
        elif self.penalty == "lautum":
            box = torch.where(bad, w0.abs(), w0.abs() / (1 - 2 * self.lam * c).clamp_min(1e-12))
        else:
            box = w0.abs() + self.lam * c.sqrt() / 2
        box = 1.05 * box + 1e-6
        unit = torch.linspace(-1, 1, grid_size, dtype=F64)
        grid = unit.unsqueeze(-1) * box  # (grid, k)
        values = self._per_direction(grid)
        best = grid.gather(0, values.argmin(0, keepdim=True)).squeeze(0)
        step = 2 * box / (grid_size - 1)
        lo, hi = best - step, best + step
        ratio = (math.sqrt(5) - 1) / 2
        for _ in range(refine):
            x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
            left = self._per_direction(x1) < self._per_direction(x2)
            hi = torch.where(left, x2, hi)
            lo = torch.where(left, lo, x1)
        sol = 0.5 * (lo + hi)
        return torch.where(bad, torch.full_like(sol, math.inf), sol)

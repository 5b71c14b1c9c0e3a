"""Information-theoretic bounds on the expected generalization and transfer gaps.

Every bound is a pure function that returns a small frozen result object holding the
bound *and* the terms it was built from, so that a table or a figure can show both.
Inputs may be Python floats or tensors; tensors broadcast, and the result keeps the
dtype and device of the tensor inputs (Python floats become float64 on the CPU).
All information quantities are in nats.

Setting (Xu & Raginsky 2017): a training set :math:`S=(Z_1,\\dots,Z_n)\\sim\\mu^{\\otimes n}`,
an algorithm :math:`P_{W|S}`, a loss :math:`\\ell(w,z)`, and the expected gap

.. math::

    \\overline{\\mathrm{gen}} = \\mathbb E[L_\\mu(W)-L_S(W)]
    = \\frac1n\\sum_i\\big(\\mathbb E_{P_W\\otimes\\mu}\\ell-\\mathbb E_{P_{WZ_i}}\\ell\\big),

a *product-minus-joint* difference. Donsker--Varadhan with the product as reference
gives mutual-information (MI) bounds; with the joint as reference it gives Lautum
bounds. Bounds on the target-minus-source *transfer* gap replace :math:`\\mu` in the
product by the target law :math:`\\mu'`.

References: Donsker & Varadhan (1983); Xu & Raginsky (2017); Bu, Zou & Veeravalli
(2020); Palomar & Verdu (2008); Aminian et al. (2021); Wu, Manton, Aickelin & Zhu
(2020); Wang & Mao (2023). Which statements are standard and which are this
project's own derivations is recorded in each docstring.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "DonskerVaradhanResult",
    "DecouplingBound",
    "XuRaginskyBound",
    "PerSampleBound",
    "BoundedLossMinBound",
    "CGFBound",
    "GibbsGeneralization",
    "TransferBound",
    "donsker_varadhan",
    "decoupling_bound",
    "xu_raginsky",
    "bu_zou_veeravalli",
    "bu_zou_veeravalli_cgf",
    "lautum_per_sample",
    "lautum_full_sample",
    "lautum_per_sample_cgf",
    "bounded_loss_min_bound",
    "gibbs_generalization",
    "gibbs_sub_gaussian_bound",
    "wu_transfer_bound",
    "lautum_transfer_bound",
]

Number = float | int | Tensor


# --------------------------------------------------------------------------- helpers
def _as_tensors(*values: Number) -> tuple[Tensor, ...]:
    """Convert to tensors on a common device with a common floating dtype.

    Tensor inputs decide the dtype (their promoted floating type) and the device;
    Python numbers alone give float64 on the CPU.
    """
    tensors = [v for v in values if isinstance(v, Tensor)]
    if tensors:
        device = tensors[0].device
        dtype = tensors[0].dtype
        for t in tensors[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
        if not dtype.is_floating_point:
            dtype = torch.float64
    else:
        device, dtype = torch.device("cpu"), torch.float64
    return tuple(torch.as_tensor(v, dtype=dtype, device=device) for v in values)


def _check_nonnegative(name: str, value: Tensor) -> None:
    if torch.any(value < 0):
        raise ValueError(
            f"{name} must be >= 0 (got min {value.min().item():.3g}); an information "
            "or divergence term is never negative. A tiny negative value usually means "
            "round-off: clamp it with .clamp_min(0) before calling."
        )


def _check_positive(name: str, value: Tensor) -> None:
    if torch.any(value <= 0):
        raise ValueError(f"{name} must be > 0 (got min {value.min().item():.3g}).")


def _per_sample_mean(values: Tensor, sample_dim: int | None) -> Tensor:
    """Average over the sample axis, or nothing when the samples are exchangeable."""
    return values if sample_dim is None else values.mean(dim=sample_dim)


# --------------------------------------------------------------------------- results
class DonskerVaradhanResult(NamedTuple):
    """Value of the Donsker--Varadhan objective for one test function.

    Attributes
    ----------
    value : Tensor
        :math:`\\mathbb E_Q f-\\log\\mathbb E_P e^f`, a lower bound on :math:`D(Q\\|P)`.
    mean_q : Tensor
        :math:`\\mathbb E_Q f`.
    log_mgf_p : Tensor
        :math:`\\log\\mathbb E_P e^f`.
    """

    value: Tensor
    mean_q: Tensor
    log_mgf_p: Tensor


class DecouplingBound(NamedTuple):
    """:math:`|\\mathbb E_Pf-\\mathbb E_Qf|\\le\\sqrt{2\\sigma^2D(P\\|Q)}`, with its terms."""

    bound: Tensor
    divergence: Tensor
    sigma: Tensor


class XuRaginskyBound(NamedTuple):
    """:math:`\\sqrt{2\\sigma^2I(W;S)/n}`, with its terms."""

    bound: Tensor
    mutual_information: Tensor
    n: Tensor
    sigma: Tensor


class PerSampleBound(NamedTuple):
    """:math:`\\frac1n\\sum_i\\sqrt{2\\sigma^2 D_i}` for a per-sample information :math:`D_i`.

    ``information`` holds the per-sample terms as given (``I(W;Z_i)`` or
    ``L(W;Z_i)``); ``sigma`` is the sub-Gaussian parameter under the reference law
    (the product for MI, the joint for Lautum).
    """

    bound: Tensor
    information: Tensor
    sigma: Tensor


class BoundedLossMinBound(NamedTuple):
    """:math:`\\frac M{\\sqrt2\\,n}\\sum_i\\sqrt{\\min\\{I(W;Z_i),L(W;Z_i)\\}}`, with its terms."""

    bound: Tensor
    mutual_information: Tensor
    lautum_information: Tensor
    loss_range: Tensor


class CGFBound(NamedTuple):
    """The CGF form of the per-sample bound, with its terms."""

    bound: Tensor
    information: Tensor
    lambda_max: Tensor


class GibbsGeneralization(NamedTuple):
    """The exact Gibbs gap :math:`(I+L)/\\gamma`, with its terms."""

    gap: Tensor
    mutual_information: Tensor
    lautum_information: Tensor
    gamma: Tensor


class TransferBound(NamedTuple):
    """A bound on the target-minus-source transfer gap, with its two terms.

    ``information`` is the algorithm-dependent term per sample (``I(W;Z_i)`` for
    Wu et al., the target-evaluated Lautum ``L_t(W;Z_i)`` for the Lautum bound);
    ``divergence`` the domain term (``D(mu||mu')`` or ``D(mu'||mu)``).
    """

    bound: Tensor
    information: Tensor
    divergence: Tensor
    sigma: Tensor


# --------------------------------------------------------------------------- DV
def donsker_varadhan(f: Tensor, q: Tensor, p: Tensor) -> DonskerVaradhanResult:
    """Donsker--Varadhan objective on a finite alphabet.

    .. math::

        D(Q\\|P)=\\sup_f\\big\\{\\mathbb E_Qf-\\log\\mathbb E_Pe^f\\big\\},

    the supremum attained at :math:`f^\\star=\\log(dQ/dP)+c` (Donsker & Varadhan 1983;
    Wang & Mao 2023, Lemma 3.1). Every :math:`f` gives a lower bound, which is the
    whole engine of the information bounds in this module.

    Parameters
    ----------
    f : Tensor, shape (..., m)
        Test function on the ``m`` atoms (finite where ``p > 0``).
    q, p : Tensor, shape (..., m)
        Probability vectors (each sums to one over the last dimension).

    Returns
    -------
    DonskerVaradhanResult

    Examples
    --------
    With :math:`f=\\log(q/p)` the objective equals :math:`D(Q\\|P)`:

    >>> q = torch.tensor([0.7, 0.3], dtype=torch.float64)
    >>> p = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> exact = (q * (q / p).log()).sum()
    >>> r = donsker_varadhan((q / p).log(), q, p)
    >>> print(f"{r.value.item():.10f} {exact.item():.10f}")
    0.0822828785 0.0822828785
    """
    f, q, p = _as_tensors(f, q, p)
    mean_q = torch.where(q > 0, q * f, torch.zeros_like(f)).sum(-1)
    log_mgf = torch.logsumexp(torch.where(p > 0, f + p.log(), torch.full_like(f, -math.inf)), -1)
    return DonskerVaradhanResult(mean_q - log_mgf, mean_q, log_mgf)


def decoupling_bound(divergence: Number, sigma: Number) -> DecouplingBound:
    """Decoupling lemma: a change of measure paid for with a KL divergence.

    If :math:`f` is :math:`\\sigma`-sub-Gaussian under :math:`Q`, then

    .. math::

        |\\mathbb E_Pf-\\mathbb E_Qf|\\le\\sqrt{2\\sigma^2D(P\\|Q)}.

    With :math:`P=P_{XY}`, :math:`Q=P_X\\otimes P_Y` the divergence is the mutual
    information (Xu & Raginsky 2017, Lemma 1); with the roles swapped,
    :math:`P=P_X\\otimes P_Y`, :math:`Q=P_{XY}`, it is the Lautum information and
    :math:`f` must be sub-Gaussian under the **joint** (Palomar & Verdu 2008 for
    :math:`L`; the swap is derived in chapter 2).

    Parameters
    ----------
    divergence : float or Tensor
        :math:`D(P\\|Q)\\ge0` in nats (``inf`` gives an infinite bound).
    sigma : float or Tensor
        Sub-Gaussian parameter of :math:`f` under :math:`Q`, ``> 0``.

    Examples
    --------
    >>> print(f"{decoupling_bound(0.5, 1.0).bound.item():.6f}")
    1.000000
    """
    divergence, sigma = _as_tensors(divergence, sigma)
    _check_nonnegative("divergence", divergence)
    _check_positive("sigma", sigma)
    return DecouplingBound(torch.sqrt(2 * sigma**2 * divergence), divergence, sigma)


# --------------------------------------------------------------------------- MI bounds
def xu_raginsky(mi: Number, n: Number, sigma: Number) -> XuRaginskyBound:
    """Xu--Raginsky bound on the expected generalization gap.

    If :math:`\\ell(w,Z)` is :math:`\\sigma`-sub-Gaussian under :math:`\\mu` for every
    :math:`w` (a loss in :math:`[a,b]` has :math:`\\sigma=(b-a)/2`), then

    .. math::

        |\\overline{\\mathrm{gen}}|\\le\\sqrt{\\frac{2\\sigma^2 I(W;S)}{n}}
        \\qquad\\text{(Xu \\& Raginsky 2017, Thm. 1).}

    Parameters
    ----------
    mi : float or Tensor
        :math:`I(W;S)` in nats, ``>= 0``.
    n : int or Tensor
        Number of training samples, ``> 0``.
    sigma : float or Tensor
        Sub-Gaussian parameter of the loss under :math:`\\mu`.

    Examples
    --------
    Row 1 of the Bernoulli Gibbs table (the book's chapter ``notebooks/02-generalization-bounds.ipynb``,
    "Toy model 1: a Bernoulli Gibbs classifier"):

    >>> print(f"{xu_raginsky(0.114705, 10, 0.5).bound.item():.5f}")
    0.07573
    """
    mi, n, sigma = _as_tensors(mi, n, sigma)
    _check_nonnegative("mi", mi)
    _check_positive("n", n)
    _check_positive("sigma", sigma)
    return XuRaginskyBound(torch.sqrt(2 * sigma**2 * mi / n), mi, n, sigma)


def _per_sample_decoupling(div_name: str, divergence: Number, sigma_name: str, sigma: Number,
                           sample_dim: int | None) -> PerSampleBound:
    # Decoupling applied to each sample, then averaged: (1/n) sum_i sqrt(2 sigma^2 D_i).
    info, sigma = _as_tensors(divergence, sigma)
    _check_nonnegative(div_name, info)
    _check_positive(sigma_name, sigma)
    terms = torch.sqrt(2 * sigma**2 * info)
    return PerSampleBound(_per_sample_mean(terms, sample_dim), info, sigma)


def bu_zou_veeravalli(
    mi_per_sample: Number, sigma: Number, *, sample_dim: int | None = None
) -> PerSampleBound:
    """Individual-sample MI bound of Bu, Zou & Veeravalli.

    If :math:`\\ell(\\bar W,\\bar Z)` is :math:`\\sigma`-sub-Gaussian under
    :math:`P_W\\otimes\\mu`, then

    .. math::

        |\\overline{\\mathrm{gen}}|\\le\\frac1n\\sum_{i=1}^n\\sqrt{2\\sigma^2 I(W;Z_i)}
        \\qquad\\text{(Bu, Zou \\& Veeravalli 2020, Prop. 1).}

    It is never looser than :func:`xu_raginsky`, since
    :math:`\\sum_i I(W;Z_i)\\le I(W;S)` for i.i.d. data.

    Parameters
    ----------
    mi_per_sample : float or Tensor
        :math:`I(W;Z_i)` in nats. With ``sample_dim=None`` (default) the samples are
        taken as exchangeable (every :math:`I(W;Z_i)` equal), so the average is the
        term itself and any shape is a batch shape.
    sigma : float or Tensor
        Sub-Gaussian parameter under the product :math:`P_W\\otimes\\mu`.
    sample_dim : int, optional
        The dimension indexing :math:`i`, averaged over.

    Examples
    --------
    >>> print(f"{bu_zou_veeravalli(0.0101273, 0.5).bound.item():.5f}")
    0.07116
    """
    return _per_sample_decoupling("mi_per_sample", mi_per_sample, "sigma", sigma, sample_dim)


def _golden_section_min(
    objective: Callable[[Tensor], Tensor], lo: Tensor, hi: Tensor, iterations: int = 200
) -> Tensor:
    """Minimum value of a unimodal function on ``(lo, hi)``, elementwise, by golden section."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = lo.clone(), hi.clone()
    c = b - ratio * (b - a)
    d = a + ratio * (b - a)
    fc, fd = objective(c), objective(d)
    for _ in range(iterations):
        left = fc < fd
        b = torch.where(left, d, b)
        a = torch.where(left, a, c)
        c_new = b - ratio * (b - a)
        d_new = a + ratio * (b - a)
        c, d = c_new, d_new
        fc, fd = objective(c), objective(d)
    return torch.minimum(fc, fd)


def bu_zou_veeravalli_cgf(
    mi_per_sample: Number,
    cgf: Callable[[Tensor], Tensor],
    lambda_max: Number,
    *,
    sample_dim: int | None = None,
) -> CGFBound:
    """Bu--Zou--Veeravalli bound with a cumulant generating function (CGF).

    If :math:`\\log\\mathbb E_{P_W\\otimes\\mu}e^{\\lambda(\\ell-\\mathbb E\\ell)}\\le\\psi(\\lambda)`
    on :math:`[0,b)` (the loss's upper-tail CGF, which dominates the lower tail for
    the chi-square losses used here), then

    .. math::

        \\overline{\\mathrm{gen}}\\le\\frac1n\\sum_i\\inf_{\\lambda\\in(0,b)}
        \\frac{I(W;Z_i)+\\psi(\\lambda)}{\\lambda}
        \\qquad\\text{(Bu, Zou \\& Veeravalli 2020, Thm. 1).}

    :math:`\\lambda\\mapsto(I+\\psi(\\lambda))/\\lambda` is unimodal for convex
    :math:`\\psi` with :math:`\\psi(0)=\\psi'(0)=0`, so a golden-section search finds
    the infimum (to ~1e-12 relative).

    Parameters
    ----------
    mi_per_sample : float or Tensor
        :math:`I(W;Z_i)`; see :func:`bu_zou_veeravalli` for ``sample_dim``.
    cgf : callable
        :math:`\\psi`, applied elementwise to a tensor of :math:`\\lambda` values of
        the broadcast shape of ``mi_per_sample`` and ``lambda_max``.
    lambda_max : float or Tensor
        :math:`b`, the end of the CGF's domain (``inf`` is not allowed: pass a
        finite value beyond which the infimum cannot lie).

    Examples
    --------
    Gaussian mean estimation, :math:`n=10`, :math:`d=\\sigma=1`
    (chapter ``notebooks/02-generalization-bounds.ipynb``, "Toy model 2"): :math:`s^2=1.1`,
    :math:`\\psi(\\lambda)=-\\tfrac12\\log(1-2\\lambda s^2)-\\lambda s^2`.

    >>> s2 = 1.1
    >>> psi = lambda lam: -0.5 * torch.log1p(-2 * lam * s2) - lam * s2
    >>> r = bu_zou_veeravalli_cgf(0.5 * math.log(10 / 9), psi, 1 / (2 * s2))
    >>> print(f"{r.bound.item():.5f}")
    0.58499
    """
    info, lambda_max = _as_tensors(mi_per_sample, lambda_max)
    _check_nonnegative("mi_per_sample", info)
    _check_positive("lambda_max", lambda_max)
    if not torch.all(torch.isfinite(lambda_max)):
        raise ValueError("lambda_max must be finite; pass the CGF's domain end or a large value.")
    info_b, lmax_b = torch.broadcast_tensors(info, lambda_max)
    tiny = torch.finfo(info_b.dtype).eps
    lo = lmax_b * tiny
    hi = lmax_b * (1 - tiny)

    def objective(lam: Tensor) -> Tensor:
        return (info_b + cgf(lam)) / lam

    per_sample = _golden_section_min(objective, lo, hi)
    return CGFBound(_per_sample_mean(per_sample, sample_dim), info, lambda_max)


# --------------------------------------------------------------------------- Lautum
def lautum_per_sample(
    lautum_per_sample: Number, sigma_joint: Number, *, sample_dim: int | None = None
) -> PerSampleBound:
    """Individual-sample Lautum bound.

    If :math:`\\ell(W,Z_i)` is :math:`\\sigma_J`-sub-Gaussian under the **joint**
    :math:`P_{WZ_i}`, decoupling with the joint as reference gives

    .. math::

        |\\overline{\\mathrm{gen}}|\\le\\frac1n\\sum_{i=1}^n\\sqrt{2\\sigma_J^2 L(W;Z_i)},
        \\qquad L(W;Z_i)=D(P_W\\otimes\\mu\\|P_{WZ_i})

    (Palomar & Verdu 2008 define :math:`L`; the bounded-loss form is the
    same-domain case of Wang & Mao 2023, Cor. 5.1; derived in chapter 2).

    Parameters
    ----------
    lautum_per_sample : float or Tensor
        :math:`L(W;Z_i)` in nats (may be ``inf``); ``sample_dim`` as in
        :func:`bu_zou_veeravalli`.
    sigma_joint : float or Tensor
        Sub-Gaussian parameter under the joint (``(b-a)/2`` for a loss in ``[a,b]``).

    Examples
    --------
    >>> print(f"{lautum_per_sample(0.0097561, 0.5).bound.item():.5f}")
    0.06984
    """
    return _per_sample_decoupling("lautum_per_sample", lautum_per_sample, "sigma_joint", sigma_joint, sample_dim)


def lautum_per_sample_cgf(
    lautum_per_sample: Number,
    cgf_joint: Callable[[Tensor], Tensor],
    lambda_max: Number,
    *,
    sample_dim: int | None = None,
) -> CGFBound:
    """Individual-sample Lautum bound with the loss's CGF under the **joint**.

    Donsker--Varadhan with :math:`Q=P_{WZ_i}`, :math:`P=P_W\\otimes\\mu` and test
    function :math:`\\lambda\\ell` gives, for
    :math:`\\log\\mathbb E_{P_{WZ_i}}e^{\\lambda(\\ell-\\mathbb E\\ell)}\\le\\psi_J(\\lambda)` on :math:`[0,b)`,

    .. math::

        \\overline{\\mathrm{gen}}\\le\\frac1n\\sum_i\\inf_{\\lambda\\in(0,b)}
        \\frac{L(W;Z_i)+\\psi_J(\\lambda)}{\\lambda}

    (this project's derivation, chapter 2; the Lautum mirror of
    :func:`bu_zou_veeravalli_cgf`). Unbounded losses such as the squared loss need
    this form: they are not sub-Gaussian.

    Examples
    --------
    Gaussian mean ERM at :math:`n=10`: under the joint :math:`W-Z_1\\sim\\mathcal N(0,0.9)`.

    >>> s2 = 0.9
    >>> psi = lambda lam: -0.5 * torch.log1p(-2 * lam * s2) - lam * s2
    >>> lt = 1 / 9 - 0.5 * math.log(10 / 9)
    >>> print(f"{lautum_per_sample_cgf(lt, psi, 1 / (2 * s2)).bound.item():.5f}")
    0.50787
    """
    return bu_zou_veeravalli_cgf(lautum_per_sample, cgf_joint, lambda_max, sample_dim=sample_dim)


def lautum_full_sample(lautum: Number, sigma_joint: Number) -> PerSampleBound:
    """Full-sample Lautum bound, :math:`|\\overline{\\mathrm{gen}}|\\le\\sqrt{2\\sigma_J^2L(W;S)}`.

    Here :math:`\\sigma_J` is the sub-Gaussian parameter of the **empirical risk**
    :math:`L_S(W)` under the joint :math:`P_{WS}`. Unlike Xu--Raginsky there is no
    :math:`1/n`: under the joint the :math:`n` losses are dependent through
    :math:`W`, so for a loss in :math:`[a,b]` only :math:`\\sigma_J=(b-a)/2` is
    guaranteed.

    Examples
    --------
    >>> print(f"{lautum_full_sample(0.146113, 0.5).bound.item():.5f}")
    0.27029
    """
    info, sigma = _as_tensors(lautum, sigma_joint)
    _check_nonnegative("lautum", info)
    _check_positive("sigma_joint", sigma)
    return PerSampleBound(torch.sqrt(2 * sigma**2 * info), info, sigma)


def bounded_loss_min_bound(
    mi_per_sample: Number,
    lautum_per_sample: Number,
    loss_range: Number = 1.0,
    *,
    sample_dim: int | None = None,
) -> BoundedLossMinBound:
    """Per-sample :math:`\\min\\{I,L\\}` bound for a loss with values in :math:`[0,M]`.

    A bounded loss is :math:`M/2`-sub-Gaussian under the product *and* under the
    joint, so both decouplings apply to each sample and the smaller term wins:

    .. math::

        |\\overline{\\mathrm{gen}}|\\le\\frac{M}{\\sqrt2\\,n}\\sum_{i=1}^n
        \\sqrt{\\min\\{I(W;Z_i),L(W;Z_i)\\}}

    (same-domain case of Wang & Mao 2023, Cor. 5.1).

    Parameters
    ----------
    mi_per_sample, lautum_per_sample : float or Tensor
        :math:`I(W;Z_i)` and :math:`L(W;Z_i)` (``sample_dim`` as in
        :func:`bu_zou_veeravalli`).
    loss_range : float or Tensor
        :math:`M`, the width of the loss's range.

    Examples
    --------
    >>> r = bounded_loss_min_bound(0.0101273, 0.0097561, 1.0)
    >>> print(f"{r.bound.item():.5f}")
    0.06984
    """
    mi, lt, m = _as_tensors(mi_per_sample, lautum_per_sample, loss_range)
    _check_nonnegative("mi_per_sample", mi)
    _check_nonnegative("lautum_per_sample", lt)
    _check_positive("loss_range", m)
    terms = m / math.sqrt(2) * torch.sqrt(torch.minimum(mi, lt))
    return BoundedLossMinBound(_per_sample_mean(terms, sample_dim), mi, lt, m)


# --------------------------------------------------------------------------- Gibbs
def gibbs_generalization(mi: Number, lautum: Number, gamma: Number) -> GibbsGeneralization:
    """Exact expected gap of the Gibbs algorithm.

    For :math:`P_{W|S}(w)\\propto\\pi(w)e^{-\\gamma L_S(w)}` (any prior :math:`\\pi`,
    any loss, inverse temperature :math:`\\gamma>0`),

    .. math::

        \\overline{\\mathrm{gen}}=\\frac{I(W;S)+L(W;S)}{\\gamma}\\ge0,

    an identity, not a bound (Aminian, Bu, Toni, Rodrigues & Wornell 2021, who state
    it as a symmetrized KL; the proof in chapter 2 is this project's).

    Examples
    --------
    >>> print(f"{gibbs_generalization(0.114705, 0.146113, 5.0).gap.item():.6f}")
    0.052164
    """
    mi, lt, gamma = _as_tensors(mi, lautum, gamma)
    _check_nonnegative("mi", mi)
    _check_nonnegative("lautum", lt)
    _check_positive("gamma", gamma)
    return GibbsGeneralization((mi + lt) / gamma, mi, lt, gamma)


def gibbs_sub_gaussian_bound(n: Number, sigma: Number, gamma: Number) -> Tensor:
    """Corollary of the Gibbs identity and Xu--Raginsky: :math:`\\overline{\\mathrm{gen}}\\le2\\sigma^2\\gamma/n`.

    From :math:`\\gamma\\,\\overline{\\mathrm{gen}}=I+L\\ge I` and
    :math:`\\overline{\\mathrm{gen}}\\le\\sqrt{2\\sigma^2I/n}`:
    :math:`\\overline{\\mathrm{gen}}^2\\le2\\sigma^2\\gamma\\,\\overline{\\mathrm{gen}}/n`.
    Derived in chapter 2; whether Aminian et al. state it is not known to us.

    Examples
    --------
    >>> print(f"{gibbs_sub_gaussian_bound(10, 0.5, 5.0).item():.3f}")
    0.250
    """
    n, sigma, gamma = _as_tensors(n, sigma, gamma)
    _check_positive("n", n)
    _check_positive("sigma", sigma)
    _check_positive("gamma", gamma)
    return 2 * sigma**2 * gamma / n


# --------------------------------------------------------------------------- transfer
def wu_transfer_bound(
    mi_per_sample: Number,
    kl_source_target: Number,
    sigma: Number,
    *,
    sample_dim: int | None = None,
) -> TransferBound:
    """MI transfer bound of Wu, Manton, Aickelin & Zhu ("Bound A").

    With source :math:`\\mu`, target :math:`\\mu'` and the transfer gap
    :math:`\\mathbb E[L_{\\mu'}(W)-L_S(W)]`: if :math:`\\ell` is
    :math:`\\sigma`-sub-Gaussian under :math:`P_W\\otimes\\mu'`,

    .. math::

        |\\mathbb E[L_{\\mu'}(W)-L_S(W)]|\\le\\frac1n\\sum_i
        \\sqrt{2\\sigma^2\\big(I(W;Z_i)+D(\\mu\\|\\mu')\\big)},

    from the identity
    :math:`D(P_{WZ_i}\\|P_W\\otimes\\mu')=I(W;Z_i)+D(\\mu\\|\\mu')`
    (Wu et al. 2020; constants re-derived in chapter 3).

    Parameters
    ----------
    mi_per_sample : float or Tensor
        Source :math:`I(W;Z_i)` (``sample_dim`` as in :func:`bu_zou_veeravalli`).
    kl_source_target : float or Tensor
        :math:`D(\\mu\\|\\mu')` (``inf`` when the source is not absolutely continuous
        with respect to the target: the bound is then vacuous).
    sigma : float or Tensor
        Sub-Gaussian parameter under :math:`P_W\\otimes\\mu'`.

    Examples
    --------
    The jointly Gaussian model of the book's chapter ``notebooks/03-transfer-bounds.ipynb`` at its reference point
    (:math:`I=0.0465452`, :math:`D(\\mu\\|\\mu')=0.1163493`), loss in [0, 1]:

    >>> print(f"{wu_transfer_bound(0.0465452, 0.1163493, 0.5).bound.item():.6f}")
    0.285390
    """
    mi, kl, sigma = _as_tensors(mi_per_sample, kl_source_target, sigma)
    _check_nonnegative("mi_per_sample", mi)
    _check_nonnegative("kl_source_target", kl)
    _check_positive("sigma", sigma)
    terms = torch.sqrt(2 * sigma**2 * (mi + kl))
    return TransferBound(_per_sample_mean(terms, sample_dim), mi, kl, sigma)


def lautum_transfer_bound(
    kl_target_source: Number,
    target_lautum: Number,
    sigma_joint: Number,
    *,
    sample_dim: int | None = None,
) -> TransferBound:
    """Lautum transfer bound with the target-evaluated Lautum term ("Bound B").

    If :math:`\\ell(W,Z_i)` is :math:`\\sigma_J`-sub-Gaussian under the source joint
    :math:`P_{WZ_i}` (automatic for a bounded loss), decoupling with
    :math:`P=P_W\\otimes\\mu'` and :math:`Q=P_{WZ_i}` and the identity

    .. math::

        D(P_W\\otimes\\mu'\\|P_{WZ_i})=D(\\mu'\\|\\mu)+L_t(W;Z_i),\\qquad
        L_t(W;Z_i)=\\mathbb E_{z\\sim\\mu'}D(P_W\\|P_{W|Z_i=z}),

    give

    .. math::

        |\\mathbb E[L_{\\mu'}(W)-L_S(W)]|\\le\\frac1n\\sum_i
        \\sqrt{2\\sigma_J^2\\big(D(\\mu'\\|\\mu)+L_t(W;Z_i)\\big)}.

    This is this project's derivation (chapter 3), a reading of "a Lautum
    regularizer relating the weights to the target data" (Jakubovitz, Rodrigues &
    Giryes 2019), whose own theorem is unknown to us. :math:`L_t=L(W;Z_i)` when
    :math:`\\mu'=\\mu`.

    Parameters
    ----------
    kl_target_source : float or Tensor
        :math:`D(\\mu'\\|\\mu)` (note the order: target first).
    target_lautum : float or Tensor
        :math:`L_t(W;Z_i)` (``sample_dim`` as in :func:`bu_zou_veeravalli`).
    sigma_joint : float or Tensor
        Sub-Gaussian parameter under the source joint.

    Examples
    --------
    The jointly Gaussian model of the book's chapter ``notebooks/03-transfer-bounds.ipynb`` at its reference point:
    :math:`D(\\mu'\\|\\mu)=0.1626784`, :math:`L_t=0.0846743`:

    >>> print(f"{lautum_transfer_bound(0.1626784, 0.0846743, 0.5).bound.item():.6f}")
    0.351676
    """
    kl, lt, sigma = _as_tensors(kl_target_source, target_lautum, sigma_joint)
    _check_nonnegative("kl_target_source", kl)
    _check_nonnegative("target_lautum", lt)
    _check_positive("sigma_joint", sigma)
    terms = torch.sqrt(2 * sigma**2 * (kl + lt))
    return TransferBound(_per_sample_mean(terms, sample_dim), lt, kl, sigma)

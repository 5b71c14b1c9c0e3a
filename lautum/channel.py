"""The Gaussian-channel ("channel form") Lautum and mutual-information regularizers.

The experiments' regularizer ([RECONSTRUCTED]; the book's chapter ``notebooks/03-transfer-bounds.ipynb``,
"From bound to regularizer"):
take the first-layer pre-activations :math:`H\\in\\mathbb R^{N\\times k}` of a network on
an unlabeled **target** batch (every convolution position a sample, no bias), their
centered covariance :math:`\\hat\\Sigma_H` (:math:`=W\\hat\\Sigma_tW^\\top` on patches), and
treat :math:`Y=H+N`, :math:`N\\sim\\mathcal N(0,\\sigma_n^2I_k)`, as a Gaussian channel.
With :math:`S=\\hat\\Sigma_H/\\sigma_n^2`,

.. math::

    \\mathcal L_{\\rm Lautum}=\\mathrm{tr}\\,S-\\tfrac12\\log\\det(I+S),\\qquad
    \\mathcal L_{\\rm MI}=\\tfrac12\\log\\det(I+S),\\qquad
    \\mathcal L_{\\rm Lautum}+\\mathcal L_{\\rm MI}=\\mathrm{tr}\\,S,

the Lautum and mutual information of that channel (Palomar & Verdu 2008). Both grow
with every eigenvalue of :math:`S`; the Lautum term with slope in :math:`[\\tfrac12,1)`
(an energy, close to weight decay along the target's high-variance directions), the MI
term with slope :math:`\\tfrac1{2(1+\\lambda)}` (it saturates). Which sign the paper
uses is unknown (chapter ``notebooks/03-transfer-bounds.ipynb``, "The sign question"); these
functions return the quantities and the regularizer modules take the sign as an explicit
argument (default :math:`+1`, minimize).

Everything is computed in float64 with a Cholesky factor of :math:`I+S` (always
positive definite, so no ridge is *needed*) and returned in the input's dtype, with
gradients flowing back to :math:`H`. Cost: :math:`O(Nk^2+k^3)`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "ChannelInformation",
    "channel_information_from_covariance",
    "channel_information",
    "channel_lautum",
    "channel_mutual_information",
]


class ChannelInformation(NamedTuple):
    """Mutual and Lautum information of the channel :math:`Y=H+N`, and :math:`\\mathrm{tr}\\,S`."""

    mutual_information: Tensor
    lautum: Tensor
    snr_trace: Tensor


def _check_scalars(noise_var: float, ridge: float) -> None:
    if not noise_var > 0:
        raise ValueError(
            f"noise_var must be > 0 (got {noise_var}); it is the channel noise "
            "variance sigma_n^2 that sets the SNR scale (a common choice: the mean "
            "eigenvalue of the pre-activation covariance at initialization)."
        )
    if not ridge >= 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")


def channel_information_from_covariance(
    cov_h: Tensor, noise_var: float, ridge: float = 0.0
) -> ChannelInformation:
    """Channel-form :math:`I` and :math:`L` from a pre-activation covariance.

    Parameters
    ----------
    cov_h : Tensor, shape (..., k, k)
        Positive semi-definite covariance :math:`\\Sigma_H`.
    noise_var : float
        :math:`\\sigma_n^2>0`.
    ridge : float
        Added to the diagonal of :math:`\\Sigma_H` before scaling (default 0; a
        positive ridge adds ``k * ridge / noise_var`` to ``snr_trace``).

    Returns
    -------
    ChannelInformation
        Fields of shape (...), in the dtype of ``cov_h`` (computed in float64).

    Examples
    --------
    The book's chapter ``notebooks/01-lautum-information.ipynb``, "The Gaussian channel": :math:`H\\Sigma_XH^\\top` for
    :math:`H=\\begin{pmatrix}1&.5&0\\\\0&1&-1\\end{pmatrix}`, :math:`\\Sigma_X=\\mathrm{diag}(1,2,.5)`:

    >>> cov = torch.tensor([[1.5, 1.0], [1.0, 2.5]], dtype=torch.float64)
    >>> r = channel_information_from_covariance(cov, noise_var=1.0)
    >>> print(f"{r.lautum.item():.7f} {r.mutual_information.item():.7f} {r.snr_trace.item():.1f}")
    2.9761536 1.0238464 4.0
    """
    _check_scalars(noise_var, ridge)
    out_dtype = cov_h.dtype
    cov = cov_h.to(torch.float64)
    k = cov.shape[-1]
    eye = torch.eye(k, dtype=torch.float64, device=cov.device)
    snr = (cov + ridge * eye) / noise_var
    snr = 0.5 * (snr + snr.mT)
    chol, info = torch.linalg.cholesky_ex(eye + snr)
    if torch.any(info > 0):
        raise ValueError(
            "I + S is not positive definite: the covariance has a negative eigenvalue "
            "below -noise_var (is it a covariance? are there NaNs in the activations?)."
        )
    mi = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # = 1/2 logdet(I + S)
    trace = torch.diagonal(snr, dim1=-2, dim2=-1).sum(-1)
    lautum = trace - mi
    return ChannelInformation(mi.to(out_dtype), lautum.to(out_dtype), trace.to(out_dtype))


def channel_information(h: Tensor, noise_var: float, ridge: float = 0.0) -> ChannelInformation:
    """Channel-form :math:`I` and :math:`L` from a batch of pre-activations.

    Uses the centered sample covariance
    :math:`\\hat\\Sigma_H=\\frac1{N-1}(H-\\bar H)^\\top(H-\\bar H)`.

    Parameters
    ----------
    h : Tensor, shape (..., N, k)
        Pre-activations: ``N`` samples (target images x spatial positions) of ``k``
        channels. ``N >= 2``.
    noise_var : float
        :math:`\\sigma_n^2>0`.
    ridge : float
        See :func:`channel_information_from_covariance`.

    Returns
    -------
    ChannelInformation
        Shape (...), dtype of ``h``; differentiable with respect to ``h``.

    Examples
    --------
    Two samples :math:`\\pm1`: :math:`\\hat\\Sigma_H=2`, so at :math:`\\sigma_n^2=2` the
    SNR is 1 and :math:`L=1-\\tfrac12\\log2`:

    >>> h = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    >>> r = channel_information(h, noise_var=2.0)
    >>> print(f"{r.lautum.item():.7f} {r.mutual_information.item():.7f}")
    0.6534264 0.3465736
    """
    if h.ndim < 2:
        raise ValueError(f"h must have shape (..., N, k), got {tuple(h.shape)}")
    n = h.shape[-2]
    if n < 2:
        raise ValueError(f"need at least two samples to form a covariance, got N={n}")
    if not torch.all(torch.isfinite(h)):
        raise ValueError("h contains NaN or inf: check the forward pass before the regularizer.")
    hd = h.to(torch.float64)
    centered = hd - hd.mean(dim=-2, keepdim=True)
    cov = centered.mT @ centered / (n - 1)
    r = channel_information_from_covariance(cov, noise_var, ridge)
    return ChannelInformation(*(v.to(h.dtype) for v in r))


def channel_lautum(h: Tensor, noise_var: float, ridge: float = 0.0) -> Tensor:
    """:math:`\\mathrm{tr}\\,S-\\tfrac12\\log\\det(I+S)`, :math:`S=\\hat\\Sigma_H/\\sigma_n^2`.

    See :func:`channel_information` for the arguments.

    Examples
    --------
    >>> h = torch.tensor([[1.0], [-1.0]])
    >>> channel_lautum(h, noise_var=2.0)
    tensor(0.6534)
    """
    return channel_information(h, noise_var, ridge).lautum


def channel_mutual_information(h: Tensor, noise_var: float, ridge: float = 0.0) -> Tensor:
    """:math:`\\tfrac12\\log\\det(I+S)`, :math:`S=\\hat\\Sigma_H/\\sigma_n^2`.

    See :func:`channel_information` for the arguments.

    Examples
    --------
    >>> h = torch.tensor([[1.0], [-1.0]])
    >>> channel_mutual_information(h, noise_var=2.0)
    tensor(0.3466)
    """
    return channel_information(h, noise_var, ridge).mutual_information

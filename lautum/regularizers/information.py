r"""The channel-form Lautum and mutual-information regularizers (first layer, target batch).

Status [RECONSTRUCTED]: the Lautum paper [1]_ and its
extension [2]_ propose a regularizer that "relates the
network weights to the target data", but their exact formula and its **sign** are
**unknown** (only the abstracts could be read). What this module computes is the
book's reading, derived in chapter 3 ("From bound to regularizer",
``notebooks/03-transfer-bounds.ipynb``), as its first candidate form:

Take the pre-activations of a network's first layer, **without its bias**, on an
unlabeled **target** batch, with every convolution position a sample:
:math:`H\in\mathbb R^{N\times k}` (:math:`k` output channels). Model
:math:`Y=H+N`, :math:`N\sim\mathcal N(0,\sigma_n^2I_k)`, as a Gaussian channel whose
input covariance is the centered batch covariance :math:`\hat\Sigma_H`
(:math:`=W\hat\Sigma_tW^\top` on the input patches). With

.. math::

    S=\frac{\hat\Sigma_H+\varepsilon I_k}{\sigma_n^2},\qquad
    \varepsilon=\rho\,\frac{\mathrm{tr}\,\hat\Sigma_H}{k},

the Lautum and mutual information of that channel [3]_ are

.. math::

    \mathcal L_{\rm Lautum}=\mathrm{tr}\,S-\tfrac12\log\det(I+S),\qquad
    \mathcal L_{\rm MI}=\tfrac12\log\det(I+S),

and the regularizers return :math:`s\,\mathcal L` with an explicit sign
:math:`s\in\{+1,-1\}` (added to the source loss with a weight :math:`\lambda`).

* :math:`s=+1` (default, **minimize**) is the direction of the transfer bound of
  chapter 3 (Bound B: the algorithm-dependent term is a Lautum information evaluated
  at target points, so it should shrink) and of every Donsker-Varadhan bound.
* :math:`s=-1` (**maximize**) is the reading of an AI-written summary of the 2023
  extension ("maximizing Lautum information and minimizing mutual information"),
  weak evidence; maximizing :math:`\mathcal L_{\rm Lautum}` is unbounded (it is linear
  in the SNR) unless the weights are normalized. Report it as an ablation.

Assumptions of the Gaussian channel model: the pre-activations are treated as
Gaussian with the batch covariance (exact only for Gaussian data, so the values
are surrogates, not information of the real network, which is deterministic and
has infinite :math:`I` and :math:`L`); positions within an image are treated as
independent samples; the noise is white with variance :math:`\sigma_n^2` (a free
scale: the book takes the mean eigenvalue of :math:`\hat\Sigma_H` at
initialization, then frozen). For a Gaussian channel :math:`L\ge I\ge0`.

**Channel probe.** The experiments also *measure* these channel terms on held-out
target inputs, for every method, regularized or not: :func:`channel_layer` picks the
probed layer (the first layer, or the penultimate Linear of the small CNN through
:class:`PenultimateInputs`), :func:`initial_noise_var` sets :math:`\sigma_n^2` at
initialization (then frozen), and :func:`channel_surrogate_terms` returns
:math:`\mathrm{tr}\,S`, :math:`I` and :math:`L` without gradient. What they report is
a *channel surrogate* of the Lautum term (the Lautum information of the fixed-weight
input→pre-activation channel with Gaussian noise), not the term of the transfer bound.

Cost: one first-layer forward on the target batch, an :math:`N\times k` covariance in
float64 and a :math:`k\times k` Cholesky factor (:func:`lautum.channel.channel_information`),
:math:`O(Nk^2+k^3)`; ``max_positions`` bounds :math:`N`.

References
----------
.. [1] D. Jakubovitz, R. Giryes and M. R. D. Rodrigues, "Lautum regularization for
   semi-supervised transfer learning", ICCV Workshops 2019, pp. 763-767
   (arXiv:1904.01670). Bib key ``jakubovitz2019lautum``.
.. [2] D. Jakubovitz, D. Uliel, M. R. D. Rodrigues and R. Giryes, "An
   information-theoretic approach to semi-supervised transfer learning",
   arXiv:2306.06731, 2023. Bib key ``jakubovitz2023information``.
.. [3] D. P. Palomar and S. Verdu, "Lautum information", IEEE Trans. Inf. Theory
   54(3):964-975, 2008. Bib key ``palomar2008lautum``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lautum.channel import channel_information

__all__ = [
    "ChannelTerms",
    "first_layer_preactivations",
    "subsample_rows",
    "LautumRegularizer",
    "MutualInformationRegularizer",
    "PenultimateInputs",
    "channel_layer",
    "initial_noise_var",
    "channel_surrogate_terms",
]


class ChannelTerms(NamedTuple):
    """The channel's terms at the last call (detached float64 scalars, plus the sample count).

    ``lautum = trace_s - logdet / 2`` and ``mutual_information = logdet / 2``, both
    *before* the sign is applied; ``ridge`` is the absolute :math:`\\varepsilon` used.
    """

    trace_s: Tensor
    logdet: Tensor
    mutual_information: Tensor
    lautum: Tensor
    ridge: Tensor
    num_samples: int


def _coprime_step(n: int, max_rows: int, period: int) -> int:
    step = max(1, math.ceil(n / max_rows))
    while math.gcd(step, period) != 1:
        step += 1
    return step


def subsample_rows(h: Tensor, max_rows: int | None, period: int = 1) -> Tensor:
    """Keep at most ``max_rows`` rows of ``h`` with a deterministic stride (no RNG).

    Rows ``0, s, 2s, ...`` are kept, where ``s`` is the smallest integer
    :math:`\\ge N/\\text{max\\_rows}` that is coprime with ``period`` (the number of
    positions per image, :math:`H'W'`). Coprimality keeps the kept rows from
    aliasing onto a fixed subset of columns of every image: over :math:`H'W'`
    consecutive kept rows, each position within an image is hit once.

    Parameters
    ----------
    h : Tensor, shape (N, k)
    max_rows : int or None
        ``None`` keeps every row.
    period : int, default 1

    Returns
    -------
    Tensor, shape (ceil(N / s), k)
        A strided view of ``h``.

    Examples
    --------
    >>> subsample_rows(torch.arange(10.0)[:, None], 4, period=2).flatten().tolist()
    [0.0, 3.0, 6.0, 9.0]
    """
    n = h.shape[0]
    if max_rows is None or n <= max_rows:
        return h
    return h[:: _coprime_step(n, max_rows, period)]


def _conv_rows(layer: nn.Conv2d, x: Tensor, max_rows: int | None) -> tuple[Tensor, int]:
    w = layer.weight
    if max_rows is not None and layer.groups == 1:
        kh, kw = layer.kernel_size
        (sh, sw), (dh, dw) = layer.stride, layer.dilation
        pad = layer._reversed_padding_repeated_twice  # (left, right, top, bottom), also for "same"
        out_h = (x.shape[2] + pad[2] + pad[3] - dh * (kh - 1) - 1) // sh + 1
        out_w = (x.shape[3] + pad[0] + pad[1] - dw * (kw - 1) - 1) // sw + 1
        period = out_h * out_w
        n = x.shape[0] * period
        if n > max_rows:
            if any(pad):
                x = F.pad(x, pad, mode="constant" if layer.padding_mode == "zeros" else layer.padding_mode)
            # Gather only the kept positions' patches: the cost is O(max_rows * C * kh * kw)
            # instead of a convolution (and its backward) over every position.
            rows = torch.arange(0, n, _coprime_step(n, max_rows, period), device=x.device)
            b, pos = rows // period, rows % period
            dy = torch.arange(kh, device=x.device) * dh
            dx = torch.arange(kw, device=x.device) * dw
            top = (pos // out_w * sh)[:, None, None, None] + dy[None, None, :, None]
            left = (pos % out_w * sw)[:, None, None, None] + dx[None, None, None, :]
            chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            patches = x[b[:, None, None, None], chan, top, left]  # (M, C, kh, kw)
            return patches.reshape(len(rows), -1) @ w.reshape(w.shape[0], -1).T, period
    out = layer._conv_forward(x, w, None)  # honours padding_mode, stride, dilation, groups
    period = out.shape[-2] * out.shape[-1]
    h = out.permute(0, 2, 3, 1).reshape(-1, out.shape[1])
    return subsample_rows(h, max_rows, period), period


def first_layer_preactivations(layer: nn.Module, x: Tensor, max_rows: int | None = None) -> tuple[Tensor, int]:
    """Pre-activations of ``layer`` on ``x`` without the bias, one row per sample.

    Parameters
    ----------
    layer : nn.Conv2d or nn.Linear
    x : Tensor, shape (B, C, H, W) for a Conv2d; (B, d) or (B, ...) with
        ``prod(...) == in_features`` for a Linear (images are flattened).
    max_rows : int or None, default None
        Keep at most this many rows, as :func:`subsample_rows` does (same rows). For
        a Conv2d (``groups=1``) only the kept positions are computed, from their
        gathered input patches, so the cost does not grow with the image size.

    Returns
    -------
    h : Tensor, shape (rows, k): for a Conv2d the rows are the positions in
        (image, row, column) order (:math:`BH'W'` of them before subsampling), for a
        Linear the images; in the layer's dtype, computed outside autocast.
    period : int
        Rows per image (:math:`H'W'`, or 1).
    """
    w = layer.weight
    x = x.to(device=w.device, dtype=w.dtype)
    with torch.autocast(device_type=w.device.type, enabled=False):
        if isinstance(layer, nn.Conv2d):
            if x.ndim != 4:
                raise ValueError(f"a Conv2d regularizer needs x of shape (B, C, H, W), got {tuple(x.shape)}")
            return _conv_rows(layer, x, max_rows)
        if isinstance(layer, nn.Linear):
            d = layer.in_features
            if x.ndim == 2 and x.shape[1] == d:
                flat = x
            elif x.ndim > 2 and x[0].numel() == d:
                flat = x.reshape(x.shape[0], d)
            else:
                raise ValueError(f"a Linear({d}, ...) regularizer needs x of shape (B, {d}), got {tuple(x.shape)}")
            return subsample_rows(F.linear(flat, w), max_rows, 1), 1
    raise TypeError(f"layer must be an nn.Conv2d or nn.Linear, got {type(layer).__name__}")


class _ChannelRegularizer(nn.Module):
    _quantity = ""

    def __init__(self, layer: nn.Module, *, noise_var: float = 1.0, ridge: float = 1e-3, sign: int = +1,
                 max_positions: int | None = 4096) -> None:
        super().__init__()
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            raise TypeError(
                f"layer must be an nn.Conv2d or nn.Linear (e.g. TransferNet.first_layer()), got {type(layer).__name__}"
            )
        if isinstance(sign, bool) or sign not in (1, -1):
            raise ValueError(f"sign must be +1 (minimize, the bound's direction) or -1 (maximize), got {sign!r}")
        if not (isinstance(noise_var, (int, float)) and math.isfinite(noise_var) and noise_var > 0):
            raise ValueError(f"noise_var must be a finite float > 0, got {noise_var!r}")
        if not (isinstance(ridge, (int, float)) and math.isfinite(ridge) and ridge >= 0):
            raise ValueError(f"ridge must be a finite float >= 0 (relative to tr(Sigma_H)/k), got {ridge!r}")
        if max_positions is not None and (isinstance(max_positions, bool) or int(max_positions) != max_positions
                                          or max_positions < 2):
            raise ValueError(f"max_positions must be None or an int >= 2, got {max_positions!r}")
        # A tuple, not an attribute: the layer is *not* a submodule, so this module has
        # no parameters of its own and its state_dict does not duplicate the model's.
        self._layer = (layer,)
        self.noise_var = float(noise_var)
        self.ridge = float(ridge)
        self.sign = int(sign)
        self.max_positions = None if max_positions is None else int(max_positions)
        self.last_terms: ChannelTerms | None = None

    @property
    def layer(self) -> nn.Module:
        """The regularized layer (held by reference)."""
        return self._layer[0]

    def forward(self, x: Tensor) -> Tensor:
        h, _ = first_layer_preactivations(self.layer, x, self.max_positions)
        if h.shape[0] < 2:
            raise ValueError(f"need at least 2 samples (images x positions) for a covariance, got {h.shape[0]}")
        k = h.shape[1]
        # Relative ridge eps = rho * tr(Sigma_H) / k, kept in the graph so the value is a
        # smooth function of the weights (tr Sigma_H = sum of the column variances).
        ridge = self.ridge * h.to(torch.float64).var(dim=0).sum() / k if self.ridge > 0 else 0.0
        r = channel_information(h, self.noise_var, ridge)
        with torch.no_grad():
            mi = r.mutual_information.detach().to(torch.float64)
            self.last_terms = ChannelTerms(
                trace_s=r.snr_trace.detach().to(torch.float64),
                logdet=2.0 * mi,
                mutual_information=mi,
                lautum=r.lautum.detach().to(torch.float64),
                ridge=torch.as_tensor(ridge, dtype=torch.float64).detach(),
                num_samples=int(h.shape[0]),
            )
        value = r.lautum if self._quantity == "lautum" else r.mutual_information
        return self.sign * value

    def extra_repr(self) -> str:
        return (f"layer={self.layer.__class__.__name__}(out={self.layer.weight.shape[0]}), "
                f"noise_var={self.noise_var}, ridge={self.ridge} (relative), sign={self.sign:+d}, "
                f"max_positions={self.max_positions}")


class LautumRegularizer(_ChannelRegularizer):
    r"""Channel-form Lautum information of a first layer on an unlabeled target batch.

    .. math::

        \mathcal R_{\rm Lautum}(W; x) = s\Big(\mathrm{tr}\,S-\tfrac12\log\det(I_k+S)\Big),\qquad
        S=\frac{\hat\Sigma_H+\varepsilon I_k}{\sigma_n^2},\quad
        \varepsilon=\rho\,\frac{\mathrm{tr}\,\hat\Sigma_H}{k},

    where :math:`H=\mathrm{layer}(x)-b` (no bias) has one row per image and
    convolution position, :math:`\hat\Sigma_H=\frac1{N-1}(H-\bar H)^\top(H-\bar H)`
    is its centered covariance, and :math:`s` is ``sign``. This is the book's
    reconstruction: the paper's exact regularizer and its sign are **unknown**; see
    the module docstring and chapter 3, "From bound to regularizer".

    Parameters
    ----------
    layer : nn.Conv2d or nn.Linear
        The layer whose weights are regularized, usually ``model.first_layer()``;
        held by reference (not a submodule), and the gradient flows to
        ``layer.weight`` (never to its bias, which does not enter :math:`\hat\Sigma_H`).
    noise_var : float, default 1.0
        Channel noise variance :math:`\sigma_n^2>0`; it only sets the SNR scale.
    ridge : float, default 1e-3
        **Relative** ridge :math:`\rho\ge0`: the absolute value
        :math:`\varepsilon=\rho\,\mathrm{tr}\hat\Sigma_H/k` is added to the diagonal of
        :math:`\hat\Sigma_H` (for numerical stability) and passed as ``ridge`` to
        :func:`lautum.channel.channel_information`. It is part of the objective
        (differentiated, not detached) and inflates :math:`\mathrm{tr}\,S` by the factor
        :math:`1+\rho`. :math:`I+S` is positive definite even for a rank-deficient
        batch (:math:`N\le k`), so the value is finite for any ``ridge >= 0``.
    sign : {+1, -1}, default +1
        +1 minimizes the Lautum term (the direction of the book's Bound B);
        -1 maximizes it (the AI summary's reading; unbounded without weight
        normalization).
    max_positions : int or None, default 4096
        At most this many rows of :math:`H` are used, taken with a deterministic
        stride (:func:`subsample_rows`); ``None`` uses all.

    Attributes
    ----------
    last_terms : ChannelTerms or None
        Detached :math:`\mathrm{tr}\,S`, :math:`\log\det(I+S)`, :math:`I`, :math:`L`
        (unsigned), the absolute ridge and :math:`N` of the last call, for logging.

    Shapes
    ------
    ``forward(x)``: ``x`` of shape (B, C, H, W) for a Conv2d, (B, d) for a Linear;
    returns a scalar in the layer's dtype (computed in float64, outside autocast).

    References
    ----------
    Jakubovitz, Giryes & Rodrigues, ICCVW 2019 (``jakubovitz2019lautum``) and
    Jakubovitz, Uliel, Rodrigues & Giryes, arXiv:2306.06731 (``jakubovitz2023information``):
    the regularizer, formula unknown. Palomar & Verdu, IEEE TIT 2008
    (``palomar2008lautum``): Lautum information, Gaussian channel.

    Examples
    --------
    Identity weights and four points :math:`\pm e_1, \pm e_2`: :math:`\hat\Sigma_H=\frac23I_2`,
    so with :math:`\sigma_n^2=\frac23` and no ridge :math:`S=I_2`,
    :math:`L=2-\tfrac12\log4=2-\log2` and :math:`I=\log 2`:

    >>> layer = nn.Linear(2, 2, bias=False, dtype=torch.float64)
    >>> _ = nn.init.eye_(layer.weight)
    >>> x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    >>> reg = LautumRegularizer(layer, noise_var=2 / 3, ridge=0.0)
    >>> round(reg(x).item(), 10), round(2 - math.log(2), 10)
    (1.3068528194, 1.3068528194)
    >>> round(LautumRegularizer(layer, noise_var=2 / 3, ridge=0.0, sign=-1)(x).item(), 10)
    -1.3068528194
    >>> reg.last_terms.trace_s.item(), round(reg.last_terms.mutual_information.item(), 10)
    (2.0, 0.6931471806)
    """

    _quantity = "lautum"


class MutualInformationRegularizer(_ChannelRegularizer):
    r"""Channel-form mutual information of a first layer on an unlabeled target batch.

    .. math::

        \mathcal R_{\rm MI}(W; x) = \frac s2\log\det(I_k+S),\qquad
        S=\frac{\hat\Sigma_H+\varepsilon I_k}{\sigma_n^2},\quad
        \varepsilon=\rho\,\frac{\mathrm{tr}\,\hat\Sigma_H}{k},

    with :math:`H`, :math:`\hat\Sigma_H`, :math:`\rho` and :math:`s` exactly as in
    :class:`LautumRegularizer` (same arguments, same ``last_terms``). The 2023
    extension (``jakubovitz2023information``) adds an MI regularizer; its formula
    and sign are **unknown**, and this is the book's reconstruction
    (:math:`\tfrac12\log\det(I+S)`, minimized by default; chapter 3 derives it). Its
    slope :math:`\partial I/\partial\lambda_i=\frac1{2(1+\lambda_i)}` fades at high SNR,
    whereas the Lautum term's stays in :math:`[\tfrac12,1)`: for a Gaussian channel
    :math:`L\ge I\ge 0`.

    Parameters
    ----------
    layer, noise_var, ridge, sign, max_positions
        See :class:`LautumRegularizer`.

    References
    ----------
    Jakubovitz, Uliel, Rodrigues & Giryes, arXiv:2306.06731 (``jakubovitz2023information``);
    Palomar & Verdu, IEEE TIT 2008 (``palomar2008lautum``).

    Examples
    --------
    The setting of :class:`LautumRegularizer`'s example: :math:`S=I_2`, so
    :math:`I=\tfrac12\log\det(2I_2)=\log2`:

    >>> layer = nn.Linear(2, 2, bias=False, dtype=torch.float64)
    >>> _ = nn.init.eye_(layer.weight)
    >>> x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    >>> round(MutualInformationRegularizer(layer, noise_var=2 / 3, ridge=0.0)(x).item(), 10)
    0.6931471806
    """

    _quantity = "mutual_information"


# -- channel probe: measuring the channel terms of a network (no gradient) ------------------------------------
class PenultimateInputs:
    r"""``x ->`` the input of the last Linear of a small CNN's features (the penultimate-layer probe).

    For :class:`~lautum.models.SmallCNN` features ``(..., Flatten, Linear, ReLU)``,
    ``PenultimateInputs(model)(x)`` runs every module before that ``Linear`` (the
    *trunk*) and returns its input, so that the channel terms of ``self.layer`` can be
    computed with :func:`first_layer_preactivations` as for a first layer:
    :math:`H = \mathrm{trunk}(x)\,W^\top`, one row per image.

    Parameters
    ----------
    model : TransferNet
        A network whose ``features`` is an ``nn.Sequential`` ending in ``Linear, ReLU``
        (:func:`lautum.models.small_cnn`). The trunk shares its modules (no copy).

    Attributes
    ----------
    trunk : nn.Sequential
        ``features[:-2]``; it runs in the model's current mode, so in training mode its
        BatchNorm layers use batch statistics and update their running averages.
    layer : nn.Linear
        ``features[-2]``, the probed layer.

    Raises
    ------
    ValueError
        ``model.features`` is not a Sequential ending in ``Linear, ReLU`` (e.g. a ResNet).

    Shapes
    ------
    ``__call__(x)``: ``x`` of shape (B, C, H, W) -> (B, ``layer.in_features``).

    Examples
    --------
    >>> from lautum.models import small_cnn
    >>> net = small_cnn(10, width=4, feature_dim=8)
    >>> pen = PenultimateInputs(net)
    >>> pen.layer is net.features[-2], tuple(pen(torch.zeros(3, 1, 28, 28)).shape)
    (True, (3, 128))
    """

    def __init__(self, model: nn.Module) -> None:
        feats = getattr(model, "features", None)
        if not isinstance(feats, nn.Sequential) or len(feats) < 2 or not isinstance(feats[-2], nn.Linear):
            raise ValueError("layer='penultimate' needs the small CNN (features ending in Linear, ReLU)")
        self.trunk, self.layer = nn.Sequential(*list(feats)[:-2]), feats[-2]

    def __call__(self, x: Tensor) -> Tensor:
        return self.trunk(x)


def channel_layer(model: nn.Module, which: str = "first") -> tuple[nn.Module, Callable[[Tensor], Tensor]]:
    """The layer a channel term reads and the map from images to that layer's inputs.

    Parameters
    ----------
    model : TransferNet
    which : {"first", "penultimate"}, default "first"
        ``"first"``: ``model.first_layer()`` on the images themselves (identity map);
        ``"penultimate"``: the last Linear of the small CNN's features, on the output of
        the layers before it (:class:`PenultimateInputs`).

    Returns
    -------
    layer : nn.Conv2d or nn.Linear
        Held by reference (the model's own module).
    to_input : callable
        ``x -> `` the layer's input for images ``x``.

    Examples
    --------
    >>> from lautum.models import small_cnn
    >>> net = small_cnn(10, width=4, feature_dim=8)
    >>> layer, to_input = channel_layer(net)
    >>> layer is net.first_layer(), to_input(torch.ones(1)).item()
    (True, 1.0)
    >>> channel_layer(net, "penultimate")[0] is net.features[-2]
    True
    """
    if which == "first":
        return model.first_layer(), (lambda x: x)
    if which == "penultimate":
        pen = PenultimateInputs(model)
        return pen.layer, pen
    raise ValueError(f"which must be 'first' or 'penultimate', got {which!r}")


def _identity(x: Tensor) -> Tensor:
    return x


@torch.no_grad()
def initial_noise_var(layer: nn.Module, x: Tensor, to_input: Callable[[Tensor], Tensor] | None = None) -> float:
    r"""Channel noise variance :math:`\sigma_n^2` set from the pre-activations (call it at initialization).

    The mean eigenvalue of the centered pre-activation covariance, i.e. the mean
    variance of its columns,

    .. math::

        \sigma_n^2 = \frac{\mathrm{tr}\,\hat\Sigma_H}{k} = \frac1k\sum_{j=1}^k
        \frac1{N-1}\sum_{i=1}^N (H_{ij}-\bar H_j)^2,

    where :math:`H\in\mathbb R^{N\times k}` are the pre-activations of ``layer``
    (without bias, :func:`first_layer_preactivations`, every row kept) on
    ``to_input(x)``. The book's reconstruction: computed on target inputs at
    initialization, then frozen, so that the SNR :math:`S` of the regularizers and of
    :func:`channel_surrogate_terms` starts with mean eigenvalue :math:`1+\rho` whatever
    the scale of the layer's initialization (the experiments may multiply it by a
    ``noise_scale``).

    Parameters
    ----------
    layer : nn.Conv2d or nn.Linear
    x : Tensor
        Images (or whatever ``to_input`` takes); shape (B, C, H, W) for a Conv2d layer
        with ``to_input=None``.
    to_input : callable, optional
        Map from ``x`` to the layer's input (:func:`channel_layer`); default identity.
        Runs under ``torch.no_grad()``, in the model's current mode.

    Returns
    -------
    float
        :math:`\sigma_n^2`, computed in float64 (0 when the pre-activations are constant).

    Examples
    --------
    Identity weights and the four points :math:`\pm e_1, \pm e_2`: each column of
    :math:`H` has variance :math:`2/3`.

    >>> layer = nn.Linear(2, 2, bias=False, dtype=torch.float64)
    >>> _ = nn.init.eye_(layer.weight)
    >>> x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    >>> round(initial_noise_var(layer, x), 12)
    0.666666666667
    """
    h, _ = first_layer_preactivations(layer, (to_input or _identity)(x))
    return float(h.to(torch.float64).var(dim=0).mean())


def channel_surrogate_terms(layer: nn.Module, x: Tensor, noise_var: float, ridge: float = 1e-3, *,
                            to_input: Callable[[Tensor], Tensor] | None = None,
                            max_positions: int | None = 16384) -> ChannelTerms:
    r"""Channel surrogate of the Lautum term of a fixed layer: :math:`\mathrm{tr}\,S`, :math:`I`, :math:`L`.

    The layer's weights are held fixed and the input→pre-activation map
    :math:`Y = H + N`, :math:`N\sim\mathcal N(0,\sigma_n^2 I_k)`, is treated as a
    Gaussian channel whose input covariance is the batch covariance of :math:`H`
    (pre-activations of ``layer`` on ``to_input(x)``, without bias). With

    .. math::

        S=\frac{\hat\Sigma_H+\varepsilon I_k}{\sigma_n^2},\quad
        \varepsilon=\rho\,\frac{\mathrm{tr}\,\hat\Sigma_H}{k},\qquad
        I=\tfrac12\log\det(I_k+S),\qquad
        L=\mathrm{tr}\,S-\tfrac12\log\det(I_k+S),

    it returns the terms of :class:`LautumRegularizer` (unsigned), evaluated under
    ``torch.no_grad()``. This is a **surrogate**: the Lautum information of that
    fixed-weight channel with Gaussian noise, used to *monitor* a network (before and
    after training, for every method); it is **not** the algorithm-dependent term of
    the transfer bound (chapter 3), which is a Lautum information between the
    weights and the data and is not computed here.

    Parameters
    ----------
    layer : nn.Conv2d or nn.Linear
    x : Tensor
        Held-out target inputs (labels unused); shape as for ``to_input``, or as
        :func:`first_layer_preactivations` needs with ``to_input=None``.
    noise_var : float
        :math:`\sigma_n^2>0`, usually :func:`initial_noise_var` at initialization.
    ridge : float, default 1e-3
        Relative ridge :math:`\rho\ge0` (see :class:`LautumRegularizer`).
    to_input : callable, optional
        Map from ``x`` to the layer's input (:func:`channel_layer`); default identity.
    max_positions : int or None, default 16384
        At most this many rows of :math:`H` (deterministic stride, :func:`subsample_rows`).

    Returns
    -------
    ChannelTerms
        Detached float64 scalars: ``trace_s`` (:math:`\mathrm{tr}\,S`),
        ``mutual_information`` (:math:`I`), ``lautum`` (:math:`L`), ``logdet``, the
        absolute ``ridge`` :math:`\varepsilon`, and ``num_samples`` (:math:`N`).

    Examples
    --------
    As in :class:`LautumRegularizer`'s example, :math:`\sigma_n^2=\frac23` and no ridge
    give :math:`S=I_2`: :math:`\mathrm{tr}\,S=2`, :math:`I=\log 2`, :math:`L=2-\log 2`.

    >>> layer = nn.Linear(2, 2, bias=False, dtype=torch.float64)
    >>> _ = nn.init.eye_(layer.weight)
    >>> x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    >>> t = channel_surrogate_terms(layer, x, noise_var=initial_noise_var(layer, x), ridge=0.0)
    >>> round(t.trace_s.item(), 10), round(t.mutual_information.item(), 10), round(t.lautum.item(), 10)
    (2.0, 0.6931471806, 1.3068528194)
    >>> round(2 - math.log(2), 10), t.num_samples
    (1.3068528194, 4)
    """
    reg = LautumRegularizer(layer, noise_var=noise_var, ridge=ridge, max_positions=max_positions)
    with torch.no_grad():
        reg((to_input or _identity)(x))
    return reg.last_terms

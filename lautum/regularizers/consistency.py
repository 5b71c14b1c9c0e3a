r"""Temporal Ensembling (Laine & Aila, ICLR 2017), a semi-supervised baseline of the Lautum papers.

Each unlabeled sample :math:`i` keeps an exponential moving average :math:`Z_i` of the
network's past softmax outputs; the consistency loss pulls the current output
towards the bias-corrected average. Official settings [VERIFIED: s-laine/tempens,
``config.py`` and ``train.py``]: :math:`\alpha=0.6`, weight
ramped up over the first 80 epochs as :math:`w_{\max}e^{-5(1-t/80)^2}`,
:math:`w_{\max}=30` scaled by #labeled / #train.

References
----------
.. [1] S. Laine and T. Aila, "Temporal ensembling for semi-supervised learning",
   ICLR 2017 (arXiv:1610.02242). Bib key ``laine2017temporal``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["TemporalEnsembling", "rampup_weight"]


def rampup_weight(step: int, ramp_steps: int, w_max: float) -> float:
    r"""The Gaussian ramp-up of Laine & Aila: :math:`w_{\max}\exp(-5(1-\min(t/T,1))^2)`.

    .. math::

        w(t)=w_{\max}\,\exp\!\big(-5\,(1-\min(t/T,1))^2\big),\qquad t\ge0,

    so :math:`w(0)=w_{\max}e^{-5}\approx0.0067\,w_{\max}`, :math:`w(T/2)=w_{\max}e^{-5/4}`
    and :math:`w(t)=w_{\max}` for :math:`t\ge T`. The official code counts :math:`t`
    in epochs and also sets the weight to 0 during the first epoch; here :math:`t` is
    whatever the caller counts (the trainer passes the global step), and the first
    visit of a sample contributes no loss anyway (no target yet, see
    :class:`TemporalEnsembling`). ``ramp_steps <= 0`` means no ramp (:math:`w_{\max}`);
    negative steps count as 0.

    Use as a trainer weight: ``Term(..., weight=functools.partial(rampup_weight,
    ramp_steps=T, w_max=w))``.

    Examples
    --------
    >>> rampup_weight(0, 100, 30.0) == 30.0 * math.exp(-5.0)
    True
    >>> round(rampup_weight(50, 100, 1.0), 6), rampup_weight(100, 100, 1.0), rampup_weight(500, 100, 1.0)
    (0.286505, 1.0, 1.0)
    """
    if ramp_steps <= 0:
        return float(w_max)
    p = min(max(step, 0) / ramp_steps, 1.0)
    return float(w_max) * math.exp(-5.0 * (1.0 - p) ** 2)


class TemporalEnsembling(nn.Module):
    r"""Temporal-ensembling consistency loss over a fixed pool of (unlabeled) samples.

    For the samples :math:`i` of a batch with logits :math:`z_i` and
    :math:`p_i=\mathrm{softmax}(z_i)`, with :math:`t_i` the number of earlier visits of
    sample :math:`i` and :math:`Z_i` its ensemble after them,

    .. math::

        \hat z_i=\frac{Z_i}{1-\alpha^{t_i}}\ (t_i>0),\qquad
        \ell=\frac1{BC}\sum_{i:\,t_i>0}\lVert p_i-\hat z_i\rVert_2^2,

    then, without gradient, :math:`Z_i\leftarrow\alpha Z_i+(1-\alpha)p_i` and
    :math:`t_i\leftarrow t_i+1`. Rows with :math:`t_i=0` have no target yet and
    contribute 0 (the mean is still over all :math:`B\cdot C` entries, as in the
    official code, where every sample has a target after the first epoch). The
    target :math:`\hat z_i` is a constant: no gradient flows through it.

    Laine & Aila update :math:`Z` once per epoch from that epoch's outputs. The
    trainer visits each unlabeled sample once per pass over the pool, so updating at
    each visit is the same thing; when a sample is visited several times (or not at
    all) in an epoch, :math:`Z_i` is an average over its *visits*, bias-corrected by
    its own visit count.

    Parameters
    ----------
    num_samples : int
        Size of the pool; ``idx`` indexes it (the trainer's ``ctx.idx_unlabeled``).
    num_classes : int
    momentum : float, default 0.6
        :math:`\alpha\in[0,1)` (the official value).

    Attributes
    ----------
    ensemble : Tensor, shape (num_samples, num_classes)
        Buffer :math:`Z` (float32 unless the module is moved to another dtype).
    visits : Tensor, shape (num_samples,), int64
        Buffer :math:`t`. Both buffers follow ``.to()`` and are in the ``state_dict``,
        so a checkpointed run resumes exactly.

    Shapes
    ------
    ``forward(logits, idx)``: logits (B, C), idx (B,) int64 with distinct entries in
    ``[0, num_samples)``; returns a scalar in the logits' dtype (float32 for half
    precision).

    Examples
    --------
    One sample, two classes, logits 0 then 0: the first visit has no target
    (loss 0) and stores :math:`Z=0.4\cdot(\tfrac12,\tfrac12)`, whose bias-corrected
    target :math:`Z/(1-0.6)` equals the output again (loss 0).

    >>> te = TemporalEnsembling(1, 2)
    >>> te(torch.zeros(1, 2), torch.tensor([0])).item(), te.ensemble.tolist(), te.visits.tolist()
    (0.0, [[0.2, 0.2]], [1])
    >>> te(torch.zeros(1, 2), torch.tensor([0])).item()
    0.0
    """

    def __init__(self, num_samples: int, num_classes: int, *, momentum: float = 0.6) -> None:
        super().__init__()
        if int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"num_samples must be an int >= 1, got {num_samples!r}")
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
        if not (0.0 <= momentum < 1.0):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.num_samples = int(num_samples)
        self.num_classes = int(num_classes)
        self.momentum = float(momentum)
        self.register_buffer("ensemble", torch.zeros(self.num_samples, self.num_classes))
        self.register_buffer("visits", torch.zeros(self.num_samples, dtype=torch.long))

    def targets(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Bias-corrected targets :math:`\\hat z` and the mask :math:`t>0` for ``idx`` (no update)."""
        t = self.visits[idx]
        has = t > 0
        corr = 1.0 - self.momentum ** t.to(self.ensemble.dtype)
        z = self.ensemble[idx] / torch.where(has, corr, torch.ones_like(corr))[:, None]
        return z, has

    def forward(self, logits: Tensor, idx: Tensor) -> Tensor:
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"logits must have shape (B, {self.num_classes}), got {tuple(logits.shape)}")
        if idx.ndim != 1 or idx.shape[0] != logits.shape[0]:
            raise ValueError(f"idx must have shape ({logits.shape[0]},), got {tuple(idx.shape)}")
        if idx.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"idx must be an integer tensor (the pool indices), got {idx.dtype}")
        idx = idx.to(device=self.ensemble.device, dtype=torch.long)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.num_samples):
            raise IndexError(f"idx must lie in [0, {self.num_samples}), got [{int(idx.min())}, {int(idx.max())}]")
        if torch.unique(idx).numel() != idx.numel():
            raise ValueError("idx holds repeated samples; each sample may be visited once per batch")
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        p = F.softmax(logits, dim=1)
        z, has = self.targets(idx)
        diff = (p - z.to(p.dtype)) * has[:, None].to(p.dtype)
        loss = diff.pow(2).mean()
        with torch.no_grad():
            a = self.momentum
            self.ensemble[idx] = a * self.ensemble[idx] + (1.0 - a) * p.detach().to(self.ensemble.dtype)
            self.visits[idx] += 1
        return loss

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}, num_classes={self.num_classes}, momentum={self.momentum}"

r"""The diagonal Fisher information of a classifier, for L2-SP-Fisher (EWC).

The *true* Fisher is an expectation over the model's own predictive
distribution, computed on source inputs at the pre-trained weights [1]_:

.. math::

    \hat F_{jj} = \frac1m\sum_{i=1}^m\sum_{k=1}^K f_k(x_i; w)\,
    \Big(\frac{\partial \log f_k(x_i; w)}{\partial w_j}\Big)^2 .

It is *not* the empirical Fisher, which uses the observed label only
(:math:`\frac1m\sum_i(\partial_{w_j}\log f_{y_i}(x_i;w))^2`); the two differ
away from a well-specified optimum [3]_. Both, and the one-sample Monte Carlo
("sampled") Fisher, are available through ``kind``.

References
----------
.. [1] X. Li, Y. Grandvalet and F. Davoine, "Explicit inductive bias for
   transfer learning with convolutional networks", ICML 2018.
.. [2] J. Kirkpatrick et al., "Overcoming catastrophic forgetting in neural
   networks", PNAS 114(13):3521-3526, 2017.
.. [3] F. Kunstner, L. Balles and P. Hennig, "Limitations of the empirical
   Fisher approximation for natural gradient descent", NeurIPS 2019.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from .starting_point import head_parameters, penalized_parameters

__all__ = ["FISHER_KINDS", "estimate_fisher"]

FISHER_KINDS = ("true", "empirical", "sampled")


def estimate_fisher(model: nn.Module, x: Tensor, *, batch_size: int = 256, which: str = "kernels",
                    include_head: bool = False, kind: str = "true", y: Tensor | None = None,
                    generator: torch.Generator | None = None) -> dict[str, Tensor]:
    r"""Diagonal Fisher information of ``model`` at its current weights, on inputs ``x``.

    .. math::

        \hat F_{jj} = \frac1m\sum_{i=1}^m\sum_{k=1}^K f_k(x_i; w)\,
        \big(\partial_{w_j}\log f_k(x_i; w)\big)^2 ,

    with :math:`f = \mathrm{softmax}(\text{model}(x))`.

    **Computation (exact).** For each class :math:`k`, the per-sample gradients
    :math:`\partial_w\log f_k(x_i;w)` of a batch are computed at once with
    ``torch.func.vmap(torch.func.grad(...))`` over a ``functional_call`` of the
    model, squared and accumulated with weights :math:`f_k(x_i;w)`. So there is
    no Monte Carlo error and no batch-gradient shortcut; the cost is :math:`K`
    per-sample-gradient passes over ``x``, memory ``batch_size`` × (number of
    selected weights). The model is evaluated in ``eval()`` mode (BatchNorm uses
    its running statistics, dropout is off: the Fisher of the deployed predictive
    distribution) and its training mode is restored afterwards.

    Parameters
    ----------
    model : TransferNet
        Returns logits ``(N, K)``.
    x : Tensor, shape (m, ...)
        Source inputs; moved to the model's device and floating dtype.
    batch_size : int
        Samples per vmap pass.
    which : {"kernels", "all"}
        Which parameters of ``model.features`` (as in :func:`penalized_parameters`).
    include_head : bool
        Also return the head's parameters (``which`` applies to them as in
        :func:`head_parameters`). For multinomial logistic regression (features =
        ``nn.Flatten()``) only the head has weights, and its Fisher is analytic:
        :math:`\hat F_{W_{kj}}=\frac1m\sum_i f_k(x_i)(1-f_k(x_i))x_{ij}^2`.
    kind : {"true", "empirical", "sampled"}
        ``"true"`` (default, the paper's): expectation over :math:`k\sim f(x_i)`.
        ``"empirical"``: the observed label :math:`k=y_i` (needs ``y``).
        ``"sampled"``: one :math:`k\sim f(x_i)` drawn per input (``generator``).
    y : Tensor of int, shape (m,), optional
        Labels, for ``kind="empirical"``.
    generator : torch.Generator, optional
        For ``kind="sampled"`` (a CPU generator).

    Returns
    -------
    dict name -> Tensor
        Shaped, typed and placed like each parameter; names as in
        ``model.named_parameters()``. Feed it to :class:`L2SPFisher`.

    Examples
    --------
    Logistic regression on one input :math:`x=(1,2)` with zero weights, so
    :math:`f_k=\tfrac12` and :math:`\hat F_{W_{kj}}=\tfrac14x_j^2`:

    >>> from lautum.models import TransferNet
    >>> net = TransferNet(nn.Flatten(), feature_dim=2, num_classes=2)
    >>> with torch.no_grad():
    ...     _ = net.head.weight.zero_(); _ = net.head.bias.zero_()
    >>> F = estimate_fisher(net, torch.tensor([[1.0, 2.0]]), which="all", include_head=True)
    >>> F["head.weight"], F["head.bias"]
    (tensor([[0.2500, 1.0000],
            [0.2500, 1.0000]]), tensor([0.2500, 0.2500]))
    """
    if kind not in FISHER_KINDS:
        raise ValueError(f"kind must be one of {FISHER_KINDS}, got {kind!r}")
    if kind == "empirical" and y is None:
        raise ValueError("kind='empirical' needs the labels y")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    selected = penalized_parameters(model, which) + (head_parameters(model, which) if include_head else [])
    if not selected:
        return {}
    ref = selected[0][1]
    x = x.to(device=ref.device, dtype=ref.dtype if x.is_floating_point() else x.dtype)
    m = len(x)
    if m == 0:
        raise ValueError("estimate_fisher needs at least one input")
    chosen = {n: p.detach() for n, p in selected}
    fixed = {n: p.detach() for n, p in model.named_parameters() if n not in chosen}
    fixed.update(dict(model.named_buffers()))
    fisher = {n: torch.zeros_like(p) for n, p in chosen.items()}

    def log_prob(params: dict[str, Tensor], xi: Tensor, k: Tensor) -> Tensor:
        logits = functional_call(model, {**fixed, **params}, (xi.unsqueeze(0),))
        return torch.log_softmax(logits, dim=-1)[0].gather(0, k.reshape(1))[0]

    per_sample_grad = vmap(grad(log_prob), in_dims=(None, 0, 0))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, m, batch_size):
            xb = x[start:start + batch_size]
            with torch.no_grad():
                probs = torch.softmax(model(xb), dim=-1)
            n_b, n_classes = probs.shape
            if kind == "true":
                weights = probs
            elif kind == "empirical":
                labels = y[start:start + batch_size].to(probs.device)
                weights = nn.functional.one_hot(labels.long(), n_classes).to(probs.dtype)
            else:
                draws = torch.multinomial(probs.detach().cpu().double(), 1, generator=generator).squeeze(1)
                weights = nn.functional.one_hot(draws.to(probs.device), n_classes).to(probs.dtype)
            for k in range(n_classes):
                wk = weights[:, k]
                if not bool((wk > 0).any()):
                    continue
                ks = torch.full((n_b,), k, dtype=torch.long, device=xb.device)
                grads = per_sample_grad(chosen, xb, ks)
                for n, g in grads.items():
                    fisher[n] += torch.einsum("i,i...->...", wk, g.pow(2))
    finally:
        model.train(was_training)
    return {n: f / m for n, f in fisher.items()}

r"""Starting-point penalties: L2, L2-SP, L1-SP, Group-Lasso-SP and L2-SP-Fisher.

Fine-tuning starts at pre-trained weights :math:`w^0`. Li, Grandvalet and
Davoine [1]_ replace weight decay towards 0 by decay towards that starting
point (SP) on the parameters :math:`\mathcal S` shared with the source network,
and keep plain L2 on the new head :math:`\bar{\mathcal S}`:

.. math::

    \Omega_{\text{L2-SP}}(w) = \frac{\alpha}{2}\,\lVert w_{\mathcal S} - w^0_{\mathcal S}\rVert_2^2
    + \frac{\beta}{2}\,\lVert w_{\bar{\mathcal S}}\rVert_2^2 .

**Which tensors count.** ``which="kernels"`` (the default) follows the official
code: the weights of every ``Conv*d`` / ``Linear`` layer of ``model.features``
(no biases, no BatchNorm) and, on the head, its weight only (the head's bias is
unpenalised). ``which="all"`` follows TLlib's ``SPRegularization``: every
parameter of ``model.features`` and every parameter of the head.
:func:`penalized_parameters` and :func:`head_parameters` return these sets.

**Bookkeeping around w⁰.** :func:`snapshot` records :math:`w^0` before the
new head is attached, :func:`layer_distances` measures ``‖w − w⁰‖`` per tensor
after fine-tuning, and :func:`normalised_fisher` rescales a Fisher diagonal to
mean 1 so that L2-SP-Fisher's α is on the L2-SP scale.

**Design.** Each penalty is an :class:`~torch.nn.Module` whose ``forward()``
takes no argument and returns a scalar, so it plugs into the trainer as
``Term("l2sp", L2SP(model, 0.01, 0.01), inputs=lambda ctx: ())``. The model is
*not* a submodule: the penalised parameters sit in a plain Python list, so the
penalty's own ``parameters()`` is empty and its ``state_dict`` holds only the
buffers (:math:`w^0`, the Fisher diagonal). :math:`w^0` is **cloned**: a
``detach()`` of the model's own parameters would share their storage, follow
every optimizer step and make the penalty identically zero.

The coefficients are those of the loss term: TensorFlow's ``alpha * l2_loss(w)``
equals ``(alpha / 2) * ||w||^2`` here, which equals PyTorch SGD's
``weight_decay=alpha`` for plain L2.

References
----------
.. [1] X. Li, Y. Grandvalet and F. Davoine, "Explicit inductive bias for
   transfer learning with convolutional networks", ICML 2018
   (arXiv:1802.01483).
.. [2] J. Kirkpatrick et al., "Overcoming catastrophic forgetting in neural
   networks", PNAS 114(13):3521-3526, 2017.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "WHICH",
    "penalized_parameters",
    "head_parameters",
    "PenaltyParts",
    "L2",
    "L2SP",
    "L1SP",
    "GroupLassoSP",
    "L2SPFisher",
    "snapshot",
    "layer_distances",
    "normalised_fisher",
]

WHICH = ("kernels", "all")
#: The smoothing the official code puts inside every square root (modes 41, 5, 7).
SMOOTHING = 1e-16
_KERNEL_TYPES = (nn.modules.conv._ConvNd, nn.Linear)

NamedParameters = list[tuple[str, nn.Parameter]]


def _check(model: nn.Module, which: str) -> None:
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    if not (hasattr(model, "features") and hasattr(model, "head")):
        raise TypeError(f"expected a lautum.models.TransferNet (with .features and .head), got {type(model).__name__}")


def _select(model: nn.Module, part: nn.Module, which: str) -> NamedParameters:
    names = {id(p): n for n, p in model.named_parameters()}
    if which == "all":
        chosen = list(part.parameters())
    else:
        chosen = [m.weight for m in part.modules()
                  if isinstance(m, _KERNEL_TYPES) and isinstance(getattr(m, "weight", None), nn.Parameter)]
    wanted = {id(p) for p in chosen}
    # model.named_parameters() order, each tensor once (shared tensors are deduplicated there).
    return [(n, p) for n, p in model.named_parameters() if id(p) in wanted and id(p) in names]


def penalized_parameters(model: nn.Module, which: str = "kernels") -> NamedParameters:
    """The shared set :math:`\\mathcal S`: parameters of ``model.features`` that an SP penalty pulls to :math:`w^0`.

    Parameters
    ----------
    model : TransferNet
        Any module with ``.features`` and ``.head``.
    which : {"kernels", "all"}
        ``"kernels"`` (official code): the ``weight`` of every ``Conv1d/2d/3d``
        and ``Linear`` layer, no biases, no BatchNorm. ``"all"`` (TLlib): every
        parameter of ``model.features``.

    Returns
    -------
    list of (name, Parameter)
        Names as in ``model.named_parameters()``, in that order.

    Examples
    --------
    >>> from lautum.models import small_cnn
    >>> net = small_cnn(4, width=2, feature_dim=3)
    >>> [n for n, _ in penalized_parameters(net)]
    ['features.0.weight', 'features.4.weight', 'features.8.weight']
    >>> len(penalized_parameters(net, "all"))  # + BN gamma, beta and two biases
    7
    """
    _check(model, which)
    return _select(model, model.features, which)


def head_parameters(model: nn.Module, which: str = "kernels") -> NamedParameters:
    """The new head :math:`\\bar{\\mathcal S}`, penalised by plain :math:`\\frac\\beta2\\lVert\\cdot\\rVert^2`.

    ``which="kernels"``: the head's weight only, its bias unpenalised (official
    code, ``logits/weights``). ``which="all"``: every head parameter (TLlib).

    >>> from lautum.models import small_cnn
    >>> net = small_cnn(4, width=2, feature_dim=3)
    >>> [n for n, _ in head_parameters(net)], [n for n, _ in head_parameters(net, "all")]
    (['head.weight'], ['head.weight', 'head.bias'])
    """
    _check(model, which)
    return _select(model, model.head, which)


def _buffer_name(prefix: str, name: str) -> str:
    return f"{prefix}__{name.replace('.', '__')}"


def _reference_values(model: nn.Module, params: NamedParameters, reference) -> dict[str, Tensor]:
    """Cloned reference values (own storage) for each penalised name."""
    if reference is None:
        source = dict(params)
    elif isinstance(reference, nn.Module):
        source = {**dict(reference.named_parameters()), **reference.state_dict()}
    elif isinstance(reference, Mapping):
        source = reference
    else:
        raise TypeError("reference must be None, an nn.Module (a copy of the pre-trained model) "
                        f"or a mapping name -> tensor (a state_dict), got {type(reference).__name__}")
    out = {}
    for name, p in params:
        if name not in source:
            raise KeyError(f"the reference has no tensor {name!r}; it needs every penalised name "
                           f"({[n for n, _ in params]})")
        value = torch.as_tensor(source[name])
        if value.shape != p.shape:
            raise ValueError(f"reference {name!r} has shape {tuple(value.shape)}, the parameter {tuple(p.shape)}")
        # clone(): never share storage with the live parameter (detach() alone would).
        out[name] = value.detach().to(device=p.device, dtype=p.dtype).clone()
    return out


class PenaltyParts(NamedTuple):
    """The two parts of a penalty: on the shared set and on the head (each already weighted)."""

    shared: Tensor
    head: Tensor


class _StartingPointPenalty(nn.Module):
    """Shared machinery: parameter lists, cloned :math:`w^0` buffers, the β head term."""

    method = "?"
    _uses_reference = True

    def __init__(self, model: nn.Module, alpha: float, beta: float, which: str = "kernels", reference=None):
        super().__init__()
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got alpha={alpha}, beta={beta}")
        self.alpha, self.beta, self.which = float(alpha), float(beta), which
        # Plain attributes (lists), not submodules: the penalty owns no parameters.
        self._shared = penalized_parameters(model, which)
        self._head = head_parameters(model, which)
        self._keys = {}
        if self._uses_reference:
            for name, value in _reference_values(model, self._shared, reference).items():
                self._keys[name] = self._register(_buffer_name("w0", name), value)

    def _register(self, key: str, value: Tensor) -> str:
        if key in self._buffers:
            raise ValueError(f"two parameter names map to the buffer {key!r}; rename the layers")
        self.register_buffer(key, value)
        return key

    def reference(self, name: str) -> Tensor:
        """The stored starting point :math:`w^0` of parameter ``name``."""
        return self._buffers[self._keys[name]]

    @property
    def parameter_names(self) -> list[str]:
        """Names of the penalised shared parameters (``model.named_parameters()`` names)."""
        return [n for n, _ in self._shared]

    @property
    def head_parameter_names(self) -> list[str]:
        return [n for n, _ in self._head]

    def _zero(self) -> Tensor:
        for _, p in self._shared + self._head:
            return p.new_zeros(())
        return torch.zeros(())

    def shared_term(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def head_term(self) -> Tensor:
        r""":math:`\frac\beta2\lVert w_{\bar{\mathcal S}}\rVert_2^2`."""
        total = self._zero()
        if self.beta == 0:
            return total
        for _, p in self._head:
            total = total + p.pow(2).sum()
        return 0.5 * self.beta * total

    def parts(self) -> PenaltyParts:
        """The shared and head terms separately (for logging)."""
        return PenaltyParts(self.shared_term(), self.head_term())

    def forward(self) -> Tensor:
        return self.shared_term() + self.head_term()

    def describe(self) -> dict:
        """Plain values for run records: method, coefficients, parameter set and sizes."""
        return {"method": self.method, "alpha": self.alpha, "beta": self.beta, "which": self.which,
                "tensors": len(self._shared), "weights": sum(p.numel() for _, p in self._shared),
                "head_tensors": len(self._head), "head_weights": sum(p.numel() for _, p in self._head)}

    def extra_repr(self) -> str:
        d = self.describe()
        return (f"alpha={d['alpha']:g}, beta={d['beta']:g}, which={d['which']!r}, "
                f"tensors={d['tensors']} ({d['weights']} weights), head_tensors={d['head_tensors']}")


class L2(_StartingPointPenalty):
    r"""Plain weight decay: the baseline L2-SP is compared with.

    .. math::

        \Omega(w) = \frac{\alpha}{2}\lVert w_{\mathcal S}\rVert_2^2 + \frac{\beta}{2}\lVert w_{\bar{\mathcal S}}\rVert_2^2

    (``--weight_decay_mode 0`` of the official code [1]_, which also decays
    kernels only). ``beta=None`` means ``beta=alpha``. No reference is stored.

    Parameters
    ----------
    model : TransferNet
    alpha, beta : float
        Coefficients on the shared set and on the head.
    which : {"kernels", "all"}
        See :func:`penalized_parameters` and :func:`head_parameters`.

    Examples
    --------
    >>> from lautum.models import TransferNet
    >>> net = TransferNet(nn.Linear(2, 2), feature_dim=2, num_classes=1)
    >>> with torch.no_grad():
    ...     _ = net.features.weight.fill_(1.0); _ = net.head.weight.fill_(2.0)
    >>> round(L2(net, alpha=0.1, beta=0.01)().item(), 10)  # 0.05 * 4 + 0.005 * 8
    0.24
    """

    method = "l2"
    _uses_reference = False

    def __init__(self, model: nn.Module, alpha: float, beta: float | None = None, which: str = "kernels"):
        super().__init__(model, alpha, alpha if beta is None else beta, which)

    def shared_term(self) -> Tensor:
        total = self._zero()
        for _, p in self._shared:
            total = total + p.pow(2).sum()
        return 0.5 * self.alpha * total


class L2SP(_StartingPointPenalty):
    r"""L2-SP: weight decay towards the starting point :math:`w^0` [1]_.

    .. math::

        \Omega(w) = \frac{\alpha}{2}\lVert w_{\mathcal S}-w^0_{\mathcal S}\rVert_2^2
        + \frac{\beta}{2}\lVert w_{\bar{\mathcal S}}\rVert_2^2

    (``--weight_decay_mode 1``). Its gradient on the shared set is
    :math:`\alpha(w-w^0)`. It is the MAP penalty of the Gaussian prior
    :math:`\mathcal N(w^0_{\mathcal S},\alpha^{-1}I)\otimes\mathcal N(0,\beta^{-1}I)`.

    Parameters
    ----------
    model : TransferNet
        Its current shared values become :math:`w^0` unless ``reference`` is given.
    alpha, beta : float
        Official Dogs recipe: ``alpha=0.1, beta=0.01``; TLlib: ``0.01, 0.01``.
    which : {"kernels", "all"}
        ``"kernels"``: conv/linear weights of ``features`` and the head's weight
        (official); ``"all"``: every parameter of both (TLlib).
    reference : None, nn.Module or mapping name -> tensor
        :math:`w^0`. ``None``: the model's values now. Always cloned into buffers.

    Examples
    --------
    >>> from lautum.models import TransferNet
    >>> net = TransferNet(nn.Linear(2, 2), feature_dim=2, num_classes=1)
    >>> with torch.no_grad():
    ...     _ = net.head.weight.fill_(2.0)
    >>> reg = L2SP(net, alpha=0.1, beta=0.01)
    >>> round(reg().item(), 10)  # at w0 only the head term: 0.005 * 8
    0.04
    >>> with torch.no_grad():
    ...     _ = net.features.weight.add_(1.0)  # every shared weight moves by 1
    >>> round(reg().item(), 10)  # 0.05 * 4 + 0.04
    0.24
    """

    method = "l2sp"

    def shared_term(self) -> Tensor:
        total = self._zero()
        for name, p in self._shared:
            total = total + (p - self.reference(name)).pow(2).sum()
        return 0.5 * self.alpha * total


class L1SP(_StartingPointPenalty):
    r"""L1-SP: an L1 penalty on the displacement from :math:`w^0` [1]_.

    .. math::

        \Omega(w) = \alpha\sum_{j\in\mathcal S}\sqrt{(w_j-w^0_j)^2+\varepsilon}
        + \frac{\beta}{2}\lVert w_{\bar{\mathcal S}}\rVert_2^2,\qquad \varepsilon=10^{-16},

    the smoothed absolute value of the official code (mode 41; it equals
    :math:`\alpha\lVert w_{\mathcal S}-w^0_{\mathcal S}\rVert_1` up to
    :math:`\alpha\sqrt\varepsilon` per weight). It is not differentiable at
    :math:`w^0` in the limit :math:`\varepsilon\to0`, which is where fine-tuning
    starts; the paper found it no better than L2-SP.

    Parameters
    ----------
    model, alpha, beta, which, reference
        As in :class:`L2SP`.
    smoothing : float
        :math:`\varepsilon` (``0`` gives the exact, non-smooth L1 norm).

    Examples
    --------
    >>> from lautum.models import TransferNet
    >>> net = TransferNet(nn.Linear(2, 2), feature_dim=2, num_classes=1)
    >>> reg = L1SP(net, alpha=0.1, beta=0.0)
    >>> with torch.no_grad():
    ...     _ = net.features.weight.add_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
    >>> round(reg().item(), 6)  # 0.1 * (1 + 2 + 0.5 + 0), smoothing is 1e-8 per weight
    0.35
    """

    method = "l1sp"

    def __init__(self, model: nn.Module, alpha: float, beta: float, which: str = "kernels", reference=None,
                 *, smoothing: float = SMOOTHING):
        super().__init__(model, alpha, beta, which, reference)
        self.smoothing = float(smoothing)

    def shared_term(self) -> Tensor:
        total = self._zero()
        for name, p in self._shared:
            total = total + ((p - self.reference(name)).pow(2) + self.smoothing).sqrt().sum()
        return self.alpha * total


def _groups(p: Tensor) -> Tensor:
    """Rows = groups: one per output channel (slice along dim 0), holding its fan-in weights."""
    return p.reshape(1, -1) if p.dim() == 0 else p.reshape(p.shape[0], -1)


class GroupLassoSP(_StartingPointPenalty):
    r"""Group-Lasso-SP: a group norm of the displacement, one group per output channel [1]_.

    .. math::

        \Omega(w) = \alpha\sum_{g}\sqrt{p_g}\,\Big(\sum_{j\in\mathcal G_g}(w_j-w^0_j)^2+\varepsilon\Big)^{1/2}
        + \frac{\beta}{2}\lVert w_{\bar{\mathcal S}}\rVert_2^2,\qquad \varepsilon=10^{-16}

    (official mode 5). A group :math:`\mathcal G_g` holds the fan-in weights of one
    output channel of one kernel, ``weight[c]``, so a conv kernel of shape
    ``(c_out, c_in, h, w)`` gives ``c_out`` groups of size
    :math:`p_g=c_{\rm in}hw`, and a linear weight ``(out, in)`` gives ``out``
    groups of size ``in``. With ``which="all"`` the same rule (slices along the
    first dimension) makes every bias or BatchNorm entry its own group of size 1.

    Parameters
    ----------
    model, alpha, beta, which, reference
        As in :class:`L2SP`.
    smoothing : float
        :math:`\varepsilon` inside each square root.

    Examples
    --------
    >>> from lautum.models import TransferNet
    >>> net = TransferNet(nn.Linear(4, 2), feature_dim=2, num_classes=1)
    >>> reg = GroupLassoSP(net, alpha=1.0, beta=0.0)
    >>> reg.groups()  # name, number of groups, size p_g
    [('features.weight', 2, 4)]
    >>> with torch.no_grad():
    ...     _ = net.features.weight[0].add_(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    >>> round(reg().item(), 6)  # sqrt(4) * ||(3, 4, 0, 0)|| + sqrt(4) * 1e-8
    10.0
    """

    method = "group_lasso_sp"

    def __init__(self, model: nn.Module, alpha: float, beta: float, which: str = "kernels", reference=None,
                 *, smoothing: float = SMOOTHING):
        super().__init__(model, alpha, beta, which, reference)
        self.smoothing = float(smoothing)

    def groups(self) -> list[tuple[str, int, int]]:
        """``(name, number of groups, p_g)`` for every penalised tensor."""
        return [(n, *_groups(p).shape) for n, p in self._shared]

    def shared_term(self) -> Tensor:
        total = self._zero()
        for name, p in self._shared:
            d = _groups(p - self.reference(name))
            total = total + d.shape[1] ** 0.5 * (d.pow(2).sum(1) + self.smoothing).sqrt().sum()
        return self.alpha * total


class L2SPFisher(_StartingPointPenalty):
    r"""L2-SP-Fisher: L2-SP weighted by the source Fisher information, i.e. EWC [1]_ [2]_.

    .. math::

        \Omega(w) = \frac{\alpha}{2}\sum_{j\in\mathcal S}\hat F_{jj}\,(w_j-w^0_j)^2
        + \frac{\beta}{2}\lVert w_{\bar{\mathcal S}}\rVert_2^2

    (official mode 6; mode 61 clips :math:`\hat F`, here ``clip``). With
    :math:`\hat F` the diagonal of the Fisher information of the source model
    at :math:`w^0` (:func:`~lautum.regularizers.estimate_fisher`), this is the
    elastic weight consolidation penalty of Kirkpatrick et al. [2]_: a diagonal
    Laplace approximation of the source posterior used as the prior of the target
    task. Parameters unimportant to the source (small :math:`\hat F_{jj}`) may move
    freely. The paper reports it behaves like plain L2-SP.

    Parameters
    ----------
    model, alpha, beta, which, reference
        As in :class:`L2SP`.
    fisher : mapping name -> Tensor
        One tensor shaped like each penalised parameter (extra names are
        ignored, missing ones are an error). Cloned into buffers.
    clip : float or None
        If given, :math:`\hat F` is clipped to ``[0, clip]`` (mode 61).

    Examples
    --------
    >>> from lautum.models import TransferNet
    >>> net = TransferNet(nn.Linear(2, 1), feature_dim=1, num_classes=1)
    >>> reg = L2SPFisher(net, {"features.weight": torch.tensor([[4.0, 0.0]])}, alpha=0.5, beta=0.0)
    >>> with torch.no_grad():
    ...     _ = net.features.weight.add_(1.0)
    >>> round(reg().item(), 10)  # 0.25 * (4 * 1 + 0 * 1)
    1.0
    """

    method = "l2sp_fisher"

    def __init__(self, model: nn.Module, fisher: Mapping[str, Tensor], alpha: float, beta: float,
                 which: str = "kernels", reference=None, *, clip: float | None = None):
        super().__init__(model, alpha, beta, which, reference)
        self.clip = clip
        self._fisher_keys = {}
        for name, p in self._shared:
            if name not in fisher:
                raise KeyError(f"no Fisher diagonal for {name!r}; estimate_fisher(model, x, which={which!r}) "
                               "gives one for every penalised parameter")
            f = torch.as_tensor(fisher[name]).detach().to(device=p.device, dtype=p.dtype).clone()
            if f.shape != p.shape:
                raise ValueError(f"Fisher {name!r} has shape {tuple(f.shape)}, the parameter {tuple(p.shape)}")
            if clip is not None:
                f = f.clamp(0.0, float(clip))
            self._fisher_keys[name] = self._register(_buffer_name("fisher", name), f)

    def fisher(self, name: str) -> Tensor:
        """The stored (clipped) Fisher diagonal of parameter ``name``."""
        return self._buffers[self._fisher_keys[name]]

    def shared_term(self) -> Tensor:
        total = self._zero()
        for name, p in self._shared:
            total = total + (self.fisher(name) * (p - self.reference(name)).pow(2)).sum()
        return 0.5 * self.alpha * total

    def describe(self) -> dict:
        return {**super().describe(), "clip": self.clip}


# -- w⁰ bookkeeping ------------------------------------------------------------------------------------------------
def snapshot(model: nn.Module) -> dict[str, Tensor]:
    """A detached **clone** of every feature parameter (``detach()`` alone would share storage).

    >>> net = nn.Sequential(nn.Linear(2, 2))
    >>> w0 = snapshot(net)
    >>> w0["0.weight"].data_ptr() != net[0].weight.data_ptr()
    True
    """
    return {name: p.detach().clone() for name, p in model.named_parameters() if not name.startswith("head.")}


def layer_distances(model: nn.Module, w0: Mapping[str, Tensor], *, kernels_only: bool = True) -> dict[str, float]:
    """``dist/<name>`` = ‖w − w⁰‖ and ``reldist/<name>`` = ‖w − w⁰‖/‖w⁰‖ for each tensor of ``w0``.

    With ``kernels_only``, tensors of fewer than 2 dimensions (biases, BatchNorm) are skipped.
    """
    out = {}
    params = dict(model.named_parameters())
    for name, ref in w0.items():
        if kernels_only and ref.dim() < 2:
            continue
        w = params[name].detach()
        d = (w - ref.to(w.device)).norm().item()
        out[f"dist/{name}"] = d
        out[f"reldist/{name}"] = d / max(ref.norm().item(), 1e-12)
    return out


def normalised_fisher(fisher: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], float]:
    """Divide every entry by the mean over all entries, so α is on the L2-SP scale; returns (F, old mean).

    >>> f, mean = normalised_fisher({"w": torch.tensor([1.0, 3.0])})
    >>> f["w"].tolist(), mean
    ([0.5, 1.5], 2.0)
    """
    total = sum(float(f.sum()) for f in fisher.values())
    count = sum(f.numel() for f in fisher.values())
    mean = total / max(count, 1)
    if not mean > 0:
        raise ValueError("the Fisher information is zero everywhere; cannot normalise it")
    return {k: v / mean for k, v in fisher.items()}, mean

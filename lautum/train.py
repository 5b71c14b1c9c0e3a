"""The one training loop every experiment uses.

A :class:`Trainer` minimises the cross-entropy on one or more labeled sets plus a
list of weighted regularizer :class:`Term` s. A labeled set is either

* a pair of tensors ``(x, y)``, moved to the device once, so an epoch has no
  loader overhead; batches come from per-epoch permutations drawn from
  generators seeded by ``(seed, epoch)``, which is what makes CPU runs
  bit-identical and a resumed run continue exactly; or
* a **batch source**: a :class:`~torch.utils.data.DataLoader` or any re-iterable
  of ``(x, y)`` batches, each moved to the device as it comes (per-batch
  augmentation, data sets that do not fit in memory). Its order is its own
  (seed the loader's ``generator``).

Training runs ``epochs`` passes over the first labeled set, or exactly ``steps``
optimizer steps (cycling through the data) when :attr:`TrainConfig.steps` is set.
:func:`evaluate` takes tensors, a ``Dataset`` or a batch source.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Union

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from lautum.device import resolve_device, seed_everything
from lautum.progress import progress_bar
from lautum.records import atomic_write_bytes

__all__ = ["TrainConfig", "Term", "StepContext", "History", "Trainer", "DivergenceError", "evaluate"]


class DivergenceError(FloatingPointError):
    """A weighted loss term or a parameter became NaN or infinite; the message names it and the step."""


#: A labeled set: ``(x, y)`` tensors, or a re-iterable of ``(x, y)`` batches (e.g. a DataLoader).
LabeledSet = Union[tuple[torch.Tensor, torch.Tensor], Iterable]


@dataclass
class TrainConfig:
    """Settings of one training run (all plain values, so they go into run records).

    Attributes
    ----------
    epochs : int
        Passes over the first labeled set (ignored when ``steps`` is set).
    steps : int or None
        If set, train for exactly this many optimizer steps, cycling through the
        labeled sets epoch after epoch (the last epoch may be partial).
    batch_size : int
        Labeled samples per step (per labeled set) for tensor sets; a batch
        source (DataLoader) has its own batch size.
    unlabeled_batch_size : int or None
        Unlabeled samples per step; ``None`` means ``batch_size``.
    optimizer : {"sgd", "adam"}
    lr, momentum, weight_decay : float
        ``weight_decay`` is the optimizer's own (coupled) decay; explicit penalties
        such as L2-SP are regularizer terms instead.
    schedule : {"constant", "cosine", "step"}
        Learning-rate schedule over steps; ``"step"`` multiplies by ``gamma`` at
        each of the ``milestones``.
    milestone_unit : {"epoch", "step"}
        Whether ``milestones`` count epochs or optimizer steps (``"step"``: the
        LR of step ``s`` is ``lr · gamma^#{m ≤ s}``).
    amp : bool
        bfloat16 autocast on CUDA (ignored on the CPU, where runs stay exact).
    seed : int
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    progress : bool or None
        tqdm bar; ``None`` shows it in a terminal or a notebook and hides it otherwise.
    eval_every : int
        Evaluate every this many epochs (and always after the last).
    checkpoint_every : int
        With a checkpoint path, save every this many epochs.
    """

    epochs: int = 1
    steps: int | None = None
    batch_size: int = 64
    unlabeled_batch_size: int | None = None
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    milestones: tuple[int, ...] = ()
    milestone_unit: str = "epoch"
    gamma: float = 0.1
    amp: bool = True
    seed: int = 0
    device: str = "auto"
    progress: bool | None = None
    eval_every: int = 1
    checkpoint_every: int = 1

    def __post_init__(self):
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine", "step"):
            raise ValueError(f"schedule must be 'constant', 'cosine' or 'step', got {self.schedule!r}")
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {self.epochs}, {self.batch_size}")
        if self.steps is not None and self.steps < 0:
            raise ValueError(f"steps must be None or >= 0, got {self.steps}")
        if self.milestone_unit not in ("epoch", "step"):
            raise ValueError(f"milestone_unit must be 'epoch' or 'step', got {self.milestone_unit!r}")
        self.milestones = tuple(self.milestones)


@dataclass
class StepContext:
    """What a regularizer may read at one step; unlabeled forward passes are computed on demand."""

    model: nn.Module
    step: int
    epoch: int
    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor]
    x_unlabeled: torch.Tensor | None = None
    idx_unlabeled: torch.Tensor | None = None
    _unlabeled: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    def _forward_unlabeled(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.x_unlabeled is None:
            raise ValueError("a term asked for unlabeled data, but fit() was given none (pass unlabeled=...)")
        if self._unlabeled is None:
            self._unlabeled = _forward(self.model, self.x_unlabeled)
        return self._unlabeled

    @property
    def logits_unlabeled(self) -> torch.Tensor:
        return self._forward_unlabeled()[0]

    @property
    def features_unlabeled(self) -> torch.Tensor:
        return self._forward_unlabeled()[1]


@dataclass
class Term:
    """A weighted regularizer: ``weight * module(*inputs(ctx))``.

    Parameters
    ----------
    name : str
        How the term is logged (``"lautum"``, ``"l2sp"``, ...).
    module : nn.Module
        Returns a scalar tensor from the inputs.
    inputs : callable
        Picks the module's arguments from the :class:`StepContext`, e.g.
        ``lambda c: (c.features["source"], c.features_unlabeled)``.
    weight : float or callable
        A constant, or a function of the global step (ramp-ups).
    """

    name: str
    module: nn.Module
    inputs: Callable[[StepContext], tuple] = lambda ctx: (ctx.model,)
    weight: float | Callable[[int], float] = 1.0

    def weight_at(self, step: int) -> float:
        return float(self.weight(step) if callable(self.weight) else self.weight)


@dataclass
class History:
    """Per-step losses (each term unweighted, and its weight) and per-evaluation accuracies."""

    steps: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)

    def frames(self):
        """``(steps, evals)`` as pandas DataFrames, for plotting."""
        import pandas as pd

        return pd.DataFrame(self.steps), pd.DataFrame(self.evals)

    def final(self, key: str) -> float:
        """The last evaluation's value of ``key`` (e.g. ``"acc/target_test"``)."""
        for row in reversed(self.evals):
            if key in row:
                return row[key]
        raise KeyError(f"no evaluation recorded {key!r}; recorded keys: {sorted(self.evals[-1]) if self.evals else []}")


def _forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if hasattr(model, "forward_with_features"):
        return model.forward_with_features(x)
    out = model(x)
    return out, out


def _is_pair(data) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor | Dataset | Iterable, y: torch.Tensor | None = None,
             batch_size: int = 1024, *, num_workers: int = 0, amp: bool = False) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model``, in eval mode (the mode is restored afterwards).

    Raises :class:`DivergenceError` if the cross-entropy is not finite.

    The data are either tensors ``x, y`` (batched by ``batch_size``), a
    :class:`~torch.utils.data.Dataset` of ``(x, y)`` items (batched by a
    ``DataLoader`` of ``batch_size`` with ``num_workers``), or an iterable of
    ``(x, y)`` batches such as a ``DataLoader``; batches are moved to the model's
    device. ``amp``: bfloat16 autocast of the forward pass on CUDA (ignored elsewhere).

    >>> from lautum.models import small_cnn
    >>> from torch.utils.data import TensorDataset
    >>> net, x, y = small_cnn(4, width=4, feature_dim=8), torch.rand(10, 1, 28, 28), torch.randint(0, 4, (10,))
    >>> evaluate(net, x, y, batch_size=4) == evaluate(net, TensorDataset(x, y), batch_size=4)
    True
    """
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    if isinstance(x, torch.Tensor):
        if y is None:
            raise TypeError("evaluate(model, x, y): labels y are needed with tensor inputs")
        use_amp = amp and x.device.type == "cuda"
        for i in range(0, len(x), batch_size):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits = model(x[i : i + batch_size]).float()
            correct += (logits.argmax(1) == y[i : i + batch_size]).sum().item()
            loss += F.cross_entropy(logits, y[i : i + batch_size], reduction="sum").item()
        n = len(x)
    else:
        if y is not None:
            raise TypeError("evaluate(model, data): pass labels inside the Dataset / batches, not as y")
        batches = DataLoader(x, batch_size=batch_size, num_workers=num_workers) if isinstance(x, Dataset) else x
        device = _model_device(model)
        use_amp = amp and device.type == "cuda"
        n = 0
        for xb, yb in batches:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits = model(xb).float()
            correct += (logits.argmax(1) == yb).sum().item()
            loss += F.cross_entropy(logits, yb, reduction="sum").item()
            n += len(yb)
    model.train(was_training)
    if not math.isfinite(loss):
        # An accuracy read off non-finite logits is meaningless: never let it reach a record.
        raise DivergenceError(f"the model's cross-entropy on the evaluation data is {loss}: its outputs are "
                              "non-finite (a diverged run). Lower the learning rate or the terms' weights.")
    n = max(n, 1)
    return {"acc": correct / n, "loss": loss / n}


def _permutation(n: int, seed: int, epoch: int, stream: int, device: torch.device) -> torch.Tensor:
    # One generator per (seed, epoch, stream): stateless, so resuming at an epoch
    # boundary draws exactly the batches an uninterrupted run would have drawn.
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7 + stream)
    return torch.randperm(n, generator=g).to(device)


def _cyclic_batch(perm: torch.Tensor, b: int, size: int) -> torch.Tensor:
    """The ``b``-th batch of ``size`` indices from ``perm``, wrapping around its end."""
    return perm.roll(-(b * size) % len(perm))[:size]


def _cycle(source: Iterable) -> Iterator:
    """The batches of ``source`` pass after pass, for ever."""
    while True:
        empty = True
        for batch in source:
            empty = False
            yield batch
        if empty:
            raise ValueError("a labeled batch source yielded no batch")


def _length(source) -> int | None:
    try:
        return len(source)
    except TypeError:
        return None


class Trainer:
    """Train ``model`` with cross-entropy on labeled sets plus weighted regularizer terms.

    Parameters
    ----------
    model : nn.Module
        Usually a :class:`lautum.models.TransferNet` (features/head split).
    config : TrainConfig
    terms : list of Term
        Regularizers, each logged separately.
    checkpoint : path or None
        Where to save (and resume from) the training state at epoch ends.

    Examples
    --------
    >>> from lautum.models import small_cnn
    >>> x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    >>> trainer = Trainer(small_cnn(10), TrainConfig(epochs=1, batch_size=16, device="cpu", progress=False))
    >>> hist = trainer.fit({"source": (x, y)})
    >>> len(hist.steps)
    2

    A batch source (a DataLoader) and a step budget: 3 steps, cycling through 2 batches per epoch.

    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    >>> trainer = Trainer(small_cnn(10), TrainConfig(steps=3, device="cpu", progress=False))
    >>> [r["epoch"] for r in trainer.fit(loader).steps]
    [0, 0, 1]
    """

    def __init__(self, model: nn.Module, config: TrainConfig, terms: list[Term] | None = None,
                 checkpoint: str | Path | None = None):
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.terms = list(terms or [])
        for t in self.terms:
            t.module.to(self.device)
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"regularizer term names must be unique, got {names}")
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.history = History()
        self.epoch = 0  # epochs completed
        self.step = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    # -- setup -------------------------------------------------------------------------
    def _build_optimizer(self, steps_per_epoch: int | None) -> None:
        cfg = self.config
        # A term may hold the model's own parameters; each is optimized once.
        params = list({id(p): p for m in [self.model, *(t.module for t in self.terms)]
                       for p in m.parameters() if p.requires_grad}.values())
        if cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if steps_per_epoch is None and (cfg.schedule == "cosine" and cfg.steps is None
                                        or cfg.schedule == "step" and cfg.milestone_unit == "epoch"):
            raise ValueError(f"the {cfg.schedule!r} schedule counts epochs, but the first labeled batch source has "
                             "no len(); set TrainConfig(steps=...) and/or milestone_unit='step'")
        total = max(cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch, 1)
        if cfg.schedule == "constant":
            factor = lambda s: 1.0  # noqa: E731
        elif cfg.schedule == "cosine":
            factor = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))  # noqa: E731
        else:
            unit = steps_per_epoch if cfg.milestone_unit == "epoch" else 1
            marks = [m * unit for m in cfg.milestones]
            factor = lambda s: cfg.gamma ** sum(s >= m for m in marks)  # noqa: E731
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "terms": {t.name: t.module.state_dict() for t in self.terms},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": dataclasses.asdict(self.history),
            "epoch": self.epoch,
            "step": self.step,
            "torch_rng": torch.get_rng_state(),
            "config": dataclasses.asdict(self.config),
        }

    def save_checkpoint(self, path: str | Path) -> None:
        """Write the full training state atomically (model, optimizer, schedule, history, RNG)."""
        import io

        buf = io.BytesIO()
        torch.save(self._state(), buf)
        atomic_write_bytes(path, buf.getvalue())

    def _load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        for t in self.terms:
            if t.name in state["terms"]:
                t.module.load_state_dict(state["terms"][t.name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = History(**state["history"])
        self.epoch, self.step = state["epoch"], state["step"]
        torch.set_rng_state(state["torch_rng"])

    # -- training ----------------------------------------------------------------------
    def fit(self, labeled: Mapping[str, LabeledSet] | LabeledSet, unlabeled: torch.Tensor | None = None,
            eval_sets: Mapping[str, LabeledSet | Dataset] | None = None) -> History:
        """Train for ``config.epochs`` epochs, or ``config.steps`` steps (resuming from the checkpoint if one exists).

        Parameters
        ----------
        labeled : dict of name -> labeled set, or one labeled set (named ``"labeled"``)
            A labeled set is an ``(x, y)`` pair of tensors, or a batch source (a
            ``DataLoader`` or any re-iterable of ``(x, y)`` batches, moved to the
            device batch by batch; ``batch_size`` is then the source's own). All
            sets are of one kind. Each set contributes a cross-entropy term
            ``ce/<name>``; an epoch is a pass over the first set, the others are cycled.
        unlabeled : Tensor, shape (M, C, H, W), optional
            Inputs for regularizers that read unlabeled data (``ctx.x_unlabeled``).
        eval_sets : dict of name -> (x, y), Dataset or batch source, optional
            Accuracy ``acc/<name>`` is recorded at each evaluation.

        Raises
        ------
        DivergenceError
            When the loss or a term of non-zero weight becomes NaN/inf at a step,
            or a parameter after the last optimizer step.
        """
        cfg = self.config
        if _is_pair(labeled) or not isinstance(labeled, Mapping):
            labeled = {"labeled": labeled}
        if not labeled:
            raise ValueError("fit() needs at least one labeled set")
        pairs = [_is_pair(v) for v in labeled.values()]
        if any(pairs) and not all(pairs):
            raise ValueError("fit() takes labeled sets that are all (x, y) tensor pairs or all batch sources, "
                             f"not a mix: {dict(zip(labeled, pairs, strict=True))}")
        tensors = all(pairs)
        if tensors:
            labeled = {k: (x.to(self.device), y.to(self.device)) for k, (x, y) in labeled.items()}
        eval_sets = {k: (v[0].to(self.device), v[1].to(self.device)) if _is_pair(v) else v
                     for k, v in (eval_sets or {}).items()}
        if unlabeled is not None:
            unlabeled = unlabeled.to(self.device)
        first = next(iter(labeled))
        if tensors:
            steps_per_epoch = math.ceil(len(labeled[first][0]) / cfg.batch_size)
            if steps_per_epoch == 0 and cfg.steps:
                raise ValueError(f"the labeled set {first!r} is empty; cannot run {cfg.steps} steps")
        else:
            steps_per_epoch = _length(labeled[first])
        self._build_optimizer(steps_per_epoch)
        seed_everything(cfg.seed)
        if self.checkpoint is not None and self.checkpoint.exists():
            self._load_checkpoint(self.checkpoint)

        ub = cfg.unlabeled_batch_size or cfg.batch_size
        total = cfg.steps if cfg.steps is not None else None if steps_per_epoch is None else cfg.epochs * steps_per_epoch
        bar = progress_bar(cfg.progress, total=total, initial=self.step, desc="train", unit="step", leave=False)
        others = {} if tensors else {k: _cycle(v) for k, v in list(labeled.items())[1:]}
        self.model.train()
        try:
            while not self._finished():
                if tensors:
                    self._run_epoch(labeled, unlabeled, ub, steps_per_epoch, bar)
                else:
                    self._run_source_epoch(labeled, others, unlabeled, ub, bar)
                self.epoch += 1
                last = self._finished()
                if last:
                    self._check_parameters()
                if self.epoch % cfg.eval_every == 0 or last:
                    self._evaluate(eval_sets)
                if self.checkpoint is not None and (self.epoch % cfg.checkpoint_every == 0 or last):
                    self.save_checkpoint(self.checkpoint)
        finally:
            bar.close()
        return self.history

    def _finished(self) -> bool:
        cfg = self.config
        return self.step >= cfg.steps if cfg.steps is not None else self.epoch >= cfg.epochs

    def _budget_spent(self) -> bool:
        return self.config.steps is not None and self.step >= self.config.steps

    def _check_parameters(self) -> None:
        """After the last optimizer step: no later step's loss would reveal a non-finite parameter."""
        named = list(self.model.named_parameters())
        named += [(f"{t.name}:{n}", p) for t in self.terms for n, p in t.module.named_parameters()]
        for name, p in named:
            if not torch.isfinite(p).all():
                raise DivergenceError(
                    f"the parameter {name!r} became non-finite at the last optimizer step, step {self.step - 1} "
                    f"(epoch {self.epoch - 1}). Lower the learning rate or the terms' weights."
                )

    def _run_epoch(self, labeled, unlabeled, ub, steps_per_epoch, bar) -> None:
        cfg = self.config
        perms = {name: _permutation(len(x), cfg.seed, self.epoch, i, self.device)
                 for i, (name, (x, _)) in enumerate(labeled.items())}
        u_perm = None
        if unlabeled is not None:
            u_perm = _permutation(len(unlabeled), cfg.seed, self.epoch, len(labeled), self.device)
        use_amp = cfg.amp and self.device.type == "cuda"
        first = next(iter(labeled))
        for b in range(steps_per_epoch):
            if self._budget_spent():
                break
            xs, ys = {}, {}
            for name, (x, y) in labeled.items():
                # The first set defines the epoch (last batch may be short); others cycle.
                idx = perms[name][b * cfg.batch_size : (b + 1) * cfg.batch_size] if name == first \
                    else _cyclic_batch(perms[name], b, cfg.batch_size)
                xs[name], ys[name] = x[idx], y[idx]
            xu = iu = None
            if u_perm is not None:
                iu = _cyclic_batch(u_perm, b, ub)
                xu = unlabeled[iu]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                self._step(xs, ys, xu, iu)
            bar.update(1)

    def _run_source_epoch(self, labeled, others, unlabeled, ub, bar) -> None:
        """One pass over the first batch source (the others cycled), each batch moved to the device."""
        cfg = self.config
        u_perm = None
        if unlabeled is not None:
            u_perm = _permutation(len(unlabeled), cfg.seed, self.epoch, len(labeled), self.device)
        use_amp = cfg.amp and self.device.type == "cuda"
        first = next(iter(labeled))
        b = 0
        for batch in labeled[first]:
            if self._budget_spent():
                break
            xs, ys = {}, {}
            for name, (x, y) in [(first, batch), *((n, next(it)) for n, it in others.items())]:
                xs[name] = x.to(self.device, non_blocking=True)
                ys[name] = y.to(self.device, non_blocking=True)
            xu = iu = None
            if u_perm is not None:
                iu = _cyclic_batch(u_perm, b, ub)
                xu = unlabeled[iu]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                self._step(xs, ys, xu, iu)
            bar.update(1)
            b += 1
        if b == 0 and not self._budget_spent():
            raise ValueError(f"the labeled batch source {first!r} yielded no batch")

    def _step(self, xs, ys, xu, iu) -> None:
        logits, feats, values = {}, {}, {}
        total = 0.0
        for name, x in xs.items():
            logits[name], feats[name] = _forward(self.model, x)
            ce = F.cross_entropy(logits[name].float(), ys[name])
            values[f"ce/{name}"] = ce
            total = total + ce
        ctx = StepContext(self.model, self.step, self.epoch, xs, ys, logits, feats, xu, iu)
        weights = {}
        for t in self.terms:
            w = t.weight_at(self.step)
            weights[t.name] = w
            value = t.module(*t.inputs(ctx))
            values[t.name] = value
            if w != 0.0:
                total = total + w * value.float()
        for name, v in values.items():
            if weights.get(name) == 0.0:
                continue  # a monitor at this step: logged as it is (NaN/inf included), not part of the loss
            if not torch.isfinite(v).all():
                raise DivergenceError(
                    f"the term {name!r} became {v.item()} at step {self.step} (epoch {self.epoch}). "
                    "Lower the learning rate or this term's weight, or check its inputs."
                )
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this step uses
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.scheduler.step()
        row = {"step": self.step, "epoch": self.epoch, "lr": lr, "loss": float(total.detach())}
        row.update({k: float(v.detach()) for k, v in values.items()})
        row.update({f"weight/{k}": w for k, w in weights.items()})
        self.history.steps.append(row)
        self.step += 1

    def _evaluate(self, eval_sets) -> None:
        row: dict[str, float] = {"epoch": self.epoch, "step": self.step}
        for name, data in eval_sets.items():
            m = evaluate(self.model, *data) if _is_pair(data) else evaluate(self.model, data)
            row[f"acc/{name}"], row[f"loss/{name}"] = m["acc"], m["loss"]
        self.history.evals.append(row)

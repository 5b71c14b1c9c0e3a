"""The one training loop every experiment uses.

A :class:`Trainer` minimises the cross-entropy on one or more labeled sets plus a
list of weighted regularizer :class:`Term` s. Data are tensors already on the
device, so an epoch has no loader overhead; batches come from per-epoch
permutations drawn from generators seeded by ``(seed, epoch)``, which is what
makes CPU runs bit-identical and a resumed run continue exactly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from lautum.device import resolve_device, seed_everything
from lautum.progress import progress_bar
from lautum.records import atomic_write_bytes

__all__ = ["TrainConfig", "Term", "StepContext", "History", "Trainer", "DivergenceError", "evaluate"]


class DivergenceError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the term."""


@dataclass
class TrainConfig:
    """Settings of one training run (all plain values, so they go into run records).

    Attributes
    ----------
    epochs : int
        Passes over the first labeled set.
    batch_size : int
        Labeled samples per step (per labeled set).
    unlabeled_batch_size : int or None
        Unlabeled samples per step; ``None`` means ``batch_size``.
    optimizer : {"sgd", "adam"}
    lr, momentum, weight_decay : float
        ``weight_decay`` is the optimizer's own (coupled) decay; explicit penalties
        such as L2-SP are regularizer terms instead.
    schedule : {"constant", "cosine", "step"}
        Learning-rate schedule over steps; ``"step"`` multiplies by ``gamma`` at
        each epoch in ``milestones``.
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
    batch_size: int = 64
    unlabeled_batch_size: int | None = None
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    milestones: tuple[int, ...] = ()
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


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``(x, y)``, in eval mode."""
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size]).float()
        correct += (logits.argmax(1) == y[i : i + batch_size]).sum().item()
        loss += F.cross_entropy(logits, y[i : i + batch_size], reduction="sum").item()
    model.train(was_training)
    n = max(len(x), 1)
    return {"acc": correct / n, "loss": loss / n}


def _permutation(n: int, seed: int, epoch: int, stream: int, device: torch.device) -> torch.Tensor:
    # One generator per (seed, epoch, stream): stateless, so resuming at an epoch
    # boundary draws exactly the batches an uninterrupted run would have drawn.
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7 + stream)
    return torch.randperm(n, generator=g).to(device)


def _cyclic_batch(perm: torch.Tensor, b: int, size: int) -> torch.Tensor:
    """The ``b``-th batch of ``size`` indices from ``perm``, wrapping around its end."""
    return perm.roll(-(b * size) % len(perm))[:size]


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
    def _build_optimizer(self, steps_per_epoch: int) -> None:
        cfg = self.config
        # A term may hold the model's own parameters; each is optimized once.
        params = list({id(p): p for m in [self.model, *(t.module for t in self.terms)]
                       for p in m.parameters() if p.requires_grad}.values())
        if cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = max(cfg.epochs * steps_per_epoch, 1)
        if cfg.schedule == "constant":
            factor = lambda s: 1.0  # noqa: E731
        elif cfg.schedule == "cosine":
            factor = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))  # noqa: E731
        else:
            marks = [m * steps_per_epoch for m in cfg.milestones]
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
    def fit(self, labeled: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | tuple[torch.Tensor, torch.Tensor],
            unlabeled: torch.Tensor | None = None,
            eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> History:
        """Train for ``config.epochs`` epochs (resuming from the checkpoint if one exists).

        Parameters
        ----------
        labeled : dict of name -> (x, y), or one (x, y) pair (named ``"labeled"``)
            Each set contributes a cross-entropy term ``ce/<name>``; an epoch is a
            pass over the first set, the others are cycled.
        unlabeled : Tensor, shape (M, C, H, W), optional
            Inputs for regularizers that read unlabeled data (``ctx.x_unlabeled``).
        eval_sets : dict of name -> (x, y), optional
            Accuracy ``acc/<name>`` is recorded at each evaluation.
        """
        cfg = self.config
        if isinstance(labeled, tuple):
            labeled = {"labeled": labeled}
        if not labeled:
            raise ValueError("fit() needs at least one labeled set")
        labeled = {k: (x.to(self.device), y.to(self.device)) for k, (x, y) in labeled.items()}
        eval_sets = {k: (x.to(self.device), y.to(self.device)) for k, (x, y) in (eval_sets or {}).items()}
        if unlabeled is not None:
            unlabeled = unlabeled.to(self.device)
        first = next(iter(labeled))
        n_first = len(labeled[first][0])
        steps_per_epoch = math.ceil(n_first / cfg.batch_size)
        self._build_optimizer(steps_per_epoch)
        seed_everything(cfg.seed)
        if self.checkpoint is not None and self.checkpoint.exists():
            self._load_checkpoint(self.checkpoint)

        ub = cfg.unlabeled_batch_size or cfg.batch_size
        bar = progress_bar(cfg.progress, total=cfg.epochs * steps_per_epoch, initial=self.step,
                           desc="train", unit="step", leave=False)
        self.model.train()
        try:
            while self.epoch < cfg.epochs:
                self._run_epoch(labeled, unlabeled, ub, steps_per_epoch, bar)
                self.epoch += 1
                if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
                    self._evaluate(eval_sets)
                if self.checkpoint is not None and (self.epoch % cfg.checkpoint_every == 0 or self.epoch == cfg.epochs):
                    self.save_checkpoint(self.checkpoint)
        finally:
            bar.close()
        return self.history

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
        for name, (x, y) in eval_sets.items():
            m = evaluate(self.model, x, y)
            row[f"acc/{name}"], row[f"loss/{name}"] = m["acc"], m["loss"]
        self.history.evals.append(row)

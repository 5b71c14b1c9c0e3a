"""Source-pretrained models, trained once and shared through the model cache.

Several chapters start from "a small CNN trained on MNIST with seed s". The model
is keyed by a hash of everything that determines it (:class:`SourceModelConfig`),
stored under ``<cache dir>/models/source-<hash>.pt``, and loaded by every later
experiment that asks for the same configuration. Training is deterministic on the
CPU, so a cached model equals a freshly trained one.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass

import torch

from lautum.data import resolve_cache_dir
from lautum.device import seed_everything
from lautum.models import TransferNet, small_cnn
from lautum.records import atomic_write_bytes, cache_context, cached_model_path
from lautum.train import TrainConfig, Trainer

__all__ = ["SourceModelConfig", "build_small_cnn", "pretrain_source"]


@dataclass(frozen=True)
class SourceModelConfig:
    """Everything that determines a source-pretrained small CNN (the cache key)."""

    source: str = "mnist"
    n_source_train: int | None = 6000
    image_size: int = 28
    channels: int = 1
    width: int = 16
    feature_dim: int = 64
    epochs: int = 2
    lr: float = 0.05
    batch_size: int = 64
    seed: int = 0


def build_small_cnn(cfg: SourceModelConfig, num_classes: int) -> TransferNet:
    """A freshly initialised small CNN, seeded by ``cfg.seed``."""
    seed_everything(cfg.seed)
    return small_cnn(num_classes, in_channels=cfg.channels, image_size=cfg.image_size,
                     width=cfg.width, feature_dim=cfg.feature_dim)


def pretrain_source(cfg: SourceModelConfig, x: torch.Tensor, y: torch.Tensor, num_classes: int, *,
                    device: str | torch.device = "cpu", cache_dir=None, progress: bool | None = None) -> TransferNet:
    """The source model for ``cfg``: loaded from the model cache, or trained on ``(x, y)`` and cached.

    ``(x, y)`` must be the source training set that ``cfg`` describes (the split's
    ``source_train``); the cache key is ``cfg`` and :func:`~lautum.records.cache_context`, not the tensors.
    """
    key = {**dataclasses.asdict(cfg), "made_by": cache_context(__name__, device)}
    path = cached_model_path(resolve_cache_dir(cache_dir) / "models", "source", key)
    model = build_small_cnn(cfg, num_classes)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.to(device)
    tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                     device=str(device), progress=progress)
    Trainer(model, tc).fit({"source": (x, y)})
    buf = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buf)
    atomic_write_bytes(path, buf.getvalue())
    return model

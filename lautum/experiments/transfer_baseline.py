"""Supervised transfer baselines: target-only, source-only and fine-tuning.

The experiment every later chapter compares against. For each seed a small CNN
is pretrained on the labeled source set (cached by a hash of its configuration,
so notebooks that need the same source model train it once); for each number
``k`` of labeled target samples per class it is then fine-tuned on those ``k·C``
samples (``fine-tune``), and compared with the same network trained on them from
scratch (``target-only``) and, when source and target share their labels, with
the source model applied as is (``source-only``). Accuracy is measured on the
target test set.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lautum.data import get_domain, make_transfer_split
from lautum.device import resolve_device
from lautum.experiments import protocol
from lautum.experiments.config import build_config, config_dict
from lautum.experiments.record import run_record
from lautum.experiments.source_model import build_small_cnn, pretrain_source
from lautum.models import new_head
from lautum.records import config_hash
from lautum.sweep import RunSpec
from lautum.train import TrainConfig, Trainer, evaluate

__all__ = ["NAME", "Config", "PROFILES", "make_config", "specs", "run_one", "run"]

NAME = "transfer-baseline"
METHODS = ("target-only", "source-only", "fine-tune")


@dataclass
class Config:
    """Settings of the transfer-baseline experiment (see :data:`PROFILES` for presets)."""

    profile: str = "quick"
    source: str = "mnist"
    target: str = "usps"
    methods: tuple[str, ...] = METHODS
    ks: tuple[int, ...] = (5, 20)
    seeds: tuple[int, ...] = (0, 1, 2)
    image_size: int = 28
    channels: int = 1
    n_source_train: int | None = 6000
    n_target_test: int | None = 1000
    width: int = 16
    feature_dim: int = 64
    source_epochs: int = 2
    source_lr: float = 0.05
    source_batch_size: int = 64
    finetune_steps: int = 60
    finetune_lr: float = 0.01
    finetune_batch_size: int = 64
    threads: int = 1
    device: str = "auto"


PROFILES: dict[str, dict[str, Any]] = {
    # 2-core CPU, well under a minute per seed.
    "quick": {},
    # At most an hour on a 2-core CPU: all of MNIST, the whole target test set, 5 seeds.
    "medium": {"ks": (5, 10, 20, 50), "seeds": (0, 1, 2, 3, 4), "n_source_train": None,
               "n_target_test": None, "width": 32, "feature_dim": 128, "source_epochs": 3},
    # Paper-scale protocol for a GPU.
    "full": {"ks": (5, 10, 20, 50, 100), "seeds": tuple(range(10)), "n_source_train": None,
             "n_target_test": None, "width": 32, "feature_dim": 128, "source_epochs": 10,
             "finetune_steps": 500, "threads": 0},
}


def make_config(profile: str = "quick", **overrides) -> Config:
    """Build a validated :class:`Config` from a profile and overrides."""
    cfg = build_config(Config, profile, overrides, PROFILES)
    protocol.check_methods(cfg, METHODS)
    protocol.check_domains(cfg, ("source", "target"))
    return cfg


def _hashed(cfg: Config) -> dict[str, Any]:
    # The device and the grid lists do not change what one run computes.
    d = config_dict(cfg)
    for key in ("device", "profile", "methods", "ks", "seeds"):
        d.pop(key)
    return d


def _shared_labels(cfg: Config) -> bool:
    return list(get_domain(cfg.source).classes) == list(get_domain(cfg.target).classes)


def specs(cfg: Config) -> list[RunSpec]:
    """One run per method × k × seed (``source-only`` once per seed, and only with shared labels)."""
    h = config_hash(_hashed(cfg))
    methods = [m for m in cfg.methods if m != "source-only" or _shared_labels(cfg)]
    out = []
    for seed in cfg.seeds:
        for method in methods:
            ks = [None] if method == "source-only" else list(cfg.ks)
            for k in ks:
                params = () if k is None else (("k", k),)
                out.append(RunSpec(NAME, method, seed, params, cfg.profile, h))
    return out


def _split(cfg: Config, k: int, seed: int, data_dir, device):
    return make_transfer_split(cfg.source, cfg.target, k, seed=seed, root=data_dir, device=device,
                               image_size=cfg.image_size, channels=cfg.channels,
                               n_source_train=cfg.n_source_train, n_target_test=cfg.n_target_test,
                               n_unlabeled=0)


def run_one(cfg: Config, spec: RunSpec, data_dir=None, cache_dir=None, progress=None) -> dict[str, Any]:
    """Run one spec and return its record (not written; :func:`lautum.sweep.run_sweep` writes it)."""
    t0 = time.perf_counter()
    same_labels = _shared_labels(cfg)
    if spec.method == "source-only" and not same_labels:
        raise ValueError(f"source-only needs shared labels; {cfg.source} and {cfg.target} have different classes")
    device = resolve_device(cfg.device)
    params = dict(spec.params)
    k = params.get("k", 1)
    split = _split(cfg, k, spec.seed, data_dir, device)
    metrics: dict[str, Any] = {}
    history = None
    source_cfg = protocol.source_model_config(cfg, spec.seed)
    if spec.method == "target-only":
        model = build_small_cnn(source_cfg, len(split.target_classes)).to(device)
    else:
        model = pretrain_source(source_cfg, split.source_train.x, split.source_train.y, len(split.source_classes),
                                device=device, cache_dir=cache_dir, progress=progress)
        metrics["source_test_acc"] = evaluate(model, split.source_test.x, split.source_test.y)["acc"]
        if not same_labels:
            new_head(model, len(split.target_classes), generator=torch.Generator().manual_seed(spec.seed))
    if spec.method != "source-only":
        # Whole epochs over the k·C labelled images, at least finetune_steps steps in all.
        epochs = math.ceil(cfg.finetune_steps / math.ceil(len(split.target_labeled.y) / cfg.finetune_batch_size))
        tc = TrainConfig(epochs=epochs, batch_size=cfg.finetune_batch_size, lr=cfg.finetune_lr,
                         seed=spec.seed, device=str(device), progress=progress, eval_every=max(epochs // 5, 1))
        trainer = Trainer(model, tc)
        hist = trainer.fit({"target": (split.target_labeled.x, split.target_labeled.y)},
                           eval_sets={"target_test": (split.target_test.x, split.target_test.y)})
        history = hist.evals
        metrics["final_train_loss"] = hist.steps[-1]["loss"]
    final = evaluate(model, split.target_test.x, split.target_test.y)
    metrics["target_test_acc"] = final["acc"]
    metrics["target_test_loss"] = final["loss"]
    metrics["n_target_labeled"] = len(split.target_labeled.y)
    metrics["n_target_test"] = len(split.target_test.y)
    return run_record(cfg, spec, metrics, history=history, started=t0, device=device)


def run(cfg: Config, results_dir: str | Path = "results", data_dir=None, cache_dir=None, progress=None, **kwargs):
    """Run the whole grid (see :func:`lautum.experiments.protocol.run`); return the tidy table."""
    return protocol.run(sys.modules[__name__], cfg, results_dir, data_dir, cache_dir, progress, **kwargs)

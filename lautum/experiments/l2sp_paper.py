"""L2-SP (Li, Grandvalet and Davoine, ICML 2018): fine-tuning with a penalty towards the starting point.

The experiment of the paper, scaled down: a network pretrained on a **source**
(MNIST, the model shared with the other chapters through
:func:`~lautum.experiments.source_model.pretrain_source`) is fine-tuned on a small
labelled **target** (notMNIST, a new label space; USPS, the same digits) with one
of the paper's penalties on the shared weights and β-L2 on the new head:

=================  ===========================================================
method             penalty (``lautum.regularizers``)
=================  ===========================================================
``l2``             :math:`\\frac\\alpha2\\|w_S\\|^2` (weight decay towards 0)
``l2sp``           :math:`\\frac\\alpha2\\|w_S-w^0_S\\|^2`
``l1sp``           :math:`\\alpha\\|w_S-w^0_S\\|_1`
``gl-sp``          :math:`\\alpha\\sum_g\\sqrt{p_g}\\|w_g-w^0_g\\|_2` (groups = output channels)
``l2sp-fisher``    :math:`\\frac\\alpha2\\sum_j\\hat F_{jj}(w_j-w^0_j)^2` (true Fisher on source inputs,
                   normalised to mean 1 so that α is on the L2-SP scale)
``l2-freeze``      ``l2`` with the first ``freeze_blocks`` blocks frozen (paper's Fig. 2)
``l2sp-freeze``    ``l2sp`` with the first ``freeze_blocks`` blocks frozen
=================  ===========================================================

every one plus :math:`\\frac\\beta2\\|w_{\\bar S}\\|^2` on the head weight. A run is
one method × α × target × k × seed; α is chosen afterwards on a disjoint target
validation split (``n_val_per_class`` images per class), as the paper chose it by
cross-validation. Each record holds the validation and test accuracy of the final
iterate and the per-layer distance ``‖w − w⁰‖`` (absolute and relative) of every
penalised tensor.

The ``full`` profile is the paper's protocol (torchvision ResNet-101 with ImageNet
weights, 9000 iterations, batch 64, momentum 0.9, learning rate ÷10 at 6000) on
Caltech-256; its data and model code live in :mod:`lautum.experiments.full_scale`.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lautum.data import make_transfer_split
from lautum.device import resolve_device, seed_everything
from lautum.experiments import full_scale, protocol
from lautum.experiments.config import ConfigError, build_config, config_dict
from lautum.experiments.record import run_record
from lautum.experiments.source_model import pretrain_source
from lautum.models import freeze_first_blocks, new_head
from lautum.records import config_hash
from lautum.regularizers import (
    base_method,
    build_regularizer,
    estimate_fisher,
    layer_distances,
    normalised_fisher,
    snapshot,
)
from lautum.sweep import RunSpec
from lautum.train import Term, TrainConfig, Trainer, evaluate

__all__ = ["NAME", "METHODS", "Config", "PROFILES", "make_config", "specs", "run_one", "run"]

NAME = "l2sp-paper"
METHODS = ("l2", "l2sp", "l1sp", "gl-sp", "l2sp-fisher", "l2-freeze", "l2sp-freeze")
SMALL_ARCHS = ("small_cnn",)
RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@dataclass
class Config:
    """Settings of the L2-SP experiment (see :data:`PROFILES` for presets).

    The source-model fields (``source``, ``n_source_train``, ``image_size``,
    ``channels``, ``width``, ``feature_dim``, ``source_epochs``, ``source_lr``,
    ``source_batch_size``) are those of the transfer-baseline chapter, so both
    chapters share one cached MNIST model per seed.
    """

    profile: str = "quick"
    source: str = "mnist"
    targets: tuple[str, ...] = ("notmnist", "usps")
    methods: tuple[str, ...] = METHODS
    alphas: tuple[float, ...] = (1e-2, 1e-1)
    beta: float = 0.01
    ks: tuple[int, ...] = (10,)
    seeds: tuple[int, ...] = (0, 1, 2)
    penalize: str = "kernels"  # "kernels" (official code) or "all" (TLlib)
    freeze_blocks: int = 1
    fisher_samples: int = 1000
    n_val_per_class: int = 10
    n_target_test: int | None = 500
    # source model (shared with transfer-baseline)
    image_size: int = 28
    channels: int = 1
    n_source_train: int | None = 6000
    width: int = 16
    feature_dim: int = 64
    source_epochs: int = 2
    source_lr: float = 0.05
    source_batch_size: int = 64
    # fine-tuning (paper: SGD momentum 0.9, batch 64, LR ÷10 at 2/3 of the steps, final iterate)
    finetune_steps: int = 100
    finetune_lr: float = 0.01
    lr_drop: float = 2 / 3
    finetune_batch_size: int = 64
    threads: int = 1
    # full scale (torchvision ResNet on Caltech-256 etc.; see lautum.experiments.full_scale)
    arch: str = "small_cnn"
    pretrained: bool = True
    weights: str = "IMAGENET1K_V1"  # torchvision weights (IMAGENET1K_V2 as an ablation)
    fisher_source: str = ""  # full scale: "imagenet" (needs imagenet_dir) or a lautum domain; "" = source
    imagenet_dir: str = ""
    device: str = "auto"


PROFILES: dict[str, dict[str, Any]] = {
    # 2-core CPU: the notebook's live run (84 runs of 100 steps, 3 seeds).
    "quick": {"fisher_samples": 300},
    # At most an hour on a 2-core CPU: 210 runs of 300 steps, 5 seeds. Measured: 49 min of run time
    # (one torch thread, on a CPU shared with other jobs: 14 s per run on average).
    "medium": {"seeds": (0, 1, 2, 3, 4), "alphas": (1e-2, 1e-1, 1.0), "finetune_steps": 300,
               "n_val_per_class": 20, "n_target_test": 2000},
    # The paper's protocol (GPU, internet for the ImageNet weights, Caltech-256 fetched by hand).
    "full": {"source": "imagenet", "targets": ("caltech256-30", "caltech256-60"), "arch": "resnet101",
             "pretrained": True, "ks": (0,), "seeds": (0, 1, 2, 3, 4), "alphas": (1e-3, 1e-2, 1e-1, 1.0),
             "finetune_steps": 9000, "finetune_lr": 0.01, "finetune_batch_size": 64, "freeze_blocks": 1,
             "image_size": 224, "threads": 0,
             "channels": 3, "n_target_test": None, "n_val_per_class": 5, "fisher_source": "imagenet",
             "fisher_samples": 1000, "methods": ("l2", "l2sp", "l1sp", "gl-sp", "l2sp-fisher",
                                                 "l2-freeze", "l2sp-freeze")},
}


def make_config(profile: str = "quick", **overrides) -> Config:
    """Build a validated :class:`Config` from a profile and overrides."""
    # k = 0 is the full-scale targets' own split (e.g. Caltech-256's 30 or 60 images per class).
    cfg = build_config(Config, profile, overrides, PROFILES, limits={"ks": 0})
    protocol.check_methods(cfg, METHODS)
    if cfg.arch not in SMALL_ARCHS + RESNETS:
        raise ConfigError(f"unknown arch {cfg.arch!r}; expected one of {list(SMALL_ARCHS + RESNETS)}")
    if cfg.arch in SMALL_ARCHS:
        protocol.check_domains(cfg, ("source", "targets"))
        if 0 in cfg.ks:
            raise ConfigError(f"setting ks={cfg.ks}: k = 0 (a data set's own split) is for the full-scale "
                              f"targets; the {cfg.arch} path needs k >= 1 labelled images per class")
    else:
        protocol.check_domains(cfg, ("targets",), extra=sorted(full_scale.TARGETS))
    if cfg.penalize not in ("kernels", "all"):
        raise ConfigError(f"penalize must be 'kernels' or 'all', got {cfg.penalize!r}")
    if not 0 < cfg.lr_drop <= 1:
        raise ConfigError(f"lr_drop is the fraction of the steps after which the LR drops; got {cfg.lr_drop}")
    if any(a < 0 for a in cfg.alphas) or cfg.beta < 0:
        raise ConfigError("alphas and beta must be non-negative")
    return cfg


def _hashed(cfg: Config) -> dict[str, Any]:
    # The device and the grid lists do not change what one run computes.
    d = config_dict(cfg)
    for key in ("device", "profile", "methods", "alphas", "ks", "seeds", "targets"):
        d.pop(key)
    if cfg.arch == "small_cnn":
        d.pop("weights")  # meaningless for the small CNN (and keeps earlier records' hashes)
    return d


def specs(cfg: Config) -> list[RunSpec]:
    """One run per target × k × method × α × seed (seed outermost, so a partial sweep covers every arm)."""
    h = config_hash(_hashed(cfg))
    out = []
    for seed in cfg.seeds:
        for target in cfg.targets:
            for k in cfg.ks:
                for method in cfg.methods:
                    for alpha in cfg.alphas:
                        params = (("target", target), ("k", k), ("alpha", float(alpha)))
                        out.append(RunSpec(NAME, method, seed, params, cfg.profile, h))
    return out


# -- the step schedule of the scaled-down path --------------------------------------------------------------------
# (The penalty factory, w0 snapshot, layer distances and Fisher normalisation that both paths share are in
# lautum.regularizers; freezing is lautum.models.freeze_first_blocks.)
def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def schedule(cfg: Config, n_train: int) -> tuple[int, int, tuple[int, ...]]:
    """``(batch, epochs, milestones)`` giving about ``cfg.finetune_steps`` steps with the LR drop at ``lr_drop``."""
    batch = min(cfg.finetune_batch_size, n_train)
    spe = steps_per_epoch(n_train, batch)
    epochs = max(1, round(cfg.finetune_steps / spe))
    drop = round(epochs * cfg.lr_drop)
    milestones = (drop,) if 0 < drop < epochs else ()
    return batch, epochs, milestones


# -- the scaled-down path ----------------------------------------------------------------------------------------
_SPLITS: dict[tuple, Any] = {}
_FISHERS: dict[tuple, tuple[dict[str, torch.Tensor], float]] = {}


def _split(cfg: Config, target: str, k: int, seed: int, data_dir, device):
    """The seeded split, memoised in this process (a sweep asks for it once per method × α)."""
    key = (cfg.source, target, k, seed, str(data_dir), str(device), cfg.image_size, cfg.channels,
           cfg.n_source_train, cfg.n_target_test, cfg.n_val_per_class)
    if key not in _SPLITS:
        if len(_SPLITS) >= 4:
            _SPLITS.pop(next(iter(_SPLITS)))
        _SPLITS[key] = make_transfer_split(cfg.source, target, k, seed=seed, root=data_dir, device=device,
                                           image_size=cfg.image_size, channels=cfg.channels,
                                           n_source_train=cfg.n_source_train, n_target_test=cfg.n_target_test,
                                           n_source_test=1000, n_unlabeled=0,
                                           n_val_per_class=cfg.n_val_per_class)
    return _SPLITS[key]


def source_fisher(model: nn.Module, x: torch.Tensor, key: tuple, which: str) -> tuple[dict[str, torch.Tensor], float]:
    """The true Fisher at w⁰ on source inputs ``x`` (model with its **source** head), normalised; memoised."""
    if key not in _FISHERS:
        was = model.training
        fisher = estimate_fisher(model, x, which=which)
        model.train(was)
        fisher = {k: v.detach().clone() for k, v in fisher.items() if not k.startswith("head.")}
        if len(_FISHERS) >= 8:
            _FISHERS.pop(next(iter(_FISHERS)))
        _FISHERS[key] = normalised_fisher(fisher)
    return _FISHERS[key]


def finetune(cfg: Config, method: str, alpha: float, seed: int, model: nn.Module, n_classes: int,
             train_xy, device, *, fisher=None, progress=None) -> tuple[nn.Module, dict[str, torch.Tensor], dict]:
    """New head, optional freezing, the penalty, and SGD as in the paper; returns (model, w⁰, info)."""
    w0 = snapshot(model)
    new_head(model, n_classes, generator=torch.Generator().manual_seed(seed))
    frozen = freeze_first_blocks(model, cfg.freeze_blocks) if method.endswith("-freeze") else []
    reg = build_regularizer(method, model, alpha, cfg.beta, which=cfg.penalize, fisher=fisher)
    batch, epochs, milestones = schedule(cfg, len(train_xy[1]))
    tc = TrainConfig(epochs=epochs, batch_size=batch, lr=cfg.finetune_lr, momentum=0.9, schedule="step",
                     milestones=milestones, gamma=0.1, seed=seed, device=str(device), progress=progress,
                     eval_every=max(epochs, 1))
    trainer = Trainer(model, tc, terms=[Term(base_method(method), reg, inputs=lambda ctx: ())])
    hist = trainer.fit({"target": train_xy})
    last = hist.steps[-1]
    info = {"finetune_steps": trainer.step, "finetune_epochs": epochs, "finetune_batch_size": batch,
            "lr_drop_step": milestones[0] * steps_per_epoch(len(train_xy[1]), batch) if milestones else None,
            "final_train_loss": last["loss"], "final_ce": last["ce/target"],
            "final_penalty": last[base_method(method)], "n_frozen_tensors": len(frozen)}
    return model, w0, info


def run_one(cfg: Config, spec: RunSpec, data_dir=None, cache_dir=None, progress=None) -> dict[str, Any]:
    """Run one spec and return its record (not written; :func:`lautum.sweep.run_sweep` writes it)."""
    if cfg.arch != "small_cnn":
        return full_scale.run_one(cfg, spec, data_dir=data_dir, cache_dir=cache_dir, progress=progress)
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    params = dict(spec.params)
    target, k, alpha = params["target"], params["k"], params["alpha"]
    split = _split(cfg, target, k, spec.seed, data_dir, device)
    source_cfg = protocol.source_model_config(cfg, spec.seed)
    model = pretrain_source(source_cfg, split.source_train.x, split.source_train.y, len(split.source_classes),
                            device=device, cache_dir=cache_dir, progress=progress)
    metrics: dict[str, Any] = {"source_test_acc": evaluate(model, split.source_test.x, split.source_test.y)["acc"]}
    fisher = None
    if base_method(spec.method) == "l2sp-fisher":
        m = min(cfg.fisher_samples, len(split.source_train.x))
        key = (config_hash(source_cfg.__dict__), m, cfg.penalize, str(device))
        fisher, fmean = source_fisher(model, split.source_train.x[:m], key, cfg.penalize)
        metrics["fisher_mean"] = fmean
        metrics["fisher_samples"] = m
    seed_everything(spec.seed)
    model, w0, info = finetune(cfg, spec.method, alpha, spec.seed, model, len(split.target_classes),
                               (split.target_labeled.x, split.target_labeled.y), device, fisher=fisher,
                               progress=progress)
    test = evaluate(model, split.target_test.x, split.target_test.y)
    metrics["target_val_acc"] = evaluate(model, split.target_val.x, split.target_val.y)["acc"]
    metrics["target_test_acc"] = test["acc"]
    metrics["target_test_loss"] = test["loss"]
    metrics.update(info)
    metrics.update(layer_distances(model, w0))
    metrics["head_weight_norm"] = model.head.weight.detach().norm().item()
    metrics["n_target_labeled"] = len(split.target_labeled.y)
    metrics["n_target_val"] = len(split.target_val.y)
    metrics["n_target_test"] = len(split.target_test.y)
    return run_record(cfg, spec, metrics, history=None, started=t0, device=device)


def run(cfg: Config, results_dir: str | Path = "results", data_dir=None, cache_dir=None, progress=None, **kwargs):
    """Run the whole grid (see :func:`lautum.experiments.protocol.run`); return the tidy table.

    Columns: ``method``, ``seed``, ``target``, ``k``, ``alpha`` and every metric
    (``target_val_acc``, ``target_test_acc``, ``dist/<tensor>``, ...).
    """
    return protocol.run(sys.modules[__name__], cfg, results_dir, data_dir, cache_dir, progress, **kwargs)

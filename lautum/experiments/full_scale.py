"""The paper's full-scale protocol for :mod:`lautum.experiments.l2sp_paper` (``--profile full``).

ResNet-101 with ImageNet weights (torchvision ``IMAGENET1K_V1``, the closest to
the 2016 TF-slim checkpoint of the official code), a new ``K``-way head, SGD with
momentum 0.9, batch 64, 9000 iterations, learning rate ÷10 after 6000 (the ICLR
text; the code drops at 5000), images resized to 256×256, random 224 crop and
mirror for training, central crop for testing, ImageNet normalisation, BatchNorm
in train mode, the final iterate evaluated.

The targets are :mod:`lautum.data.image_folders`' (:data:`TARGETS`: Caltech-256
with the official code's split, Stanford Dogs and MIT Indoor 67 supplied by the
user, and two torchvision sets that are not in the paper) or any
:mod:`lautum.data` domain (``mnist``, ``usps``, ...), upsampled: the small real
data on which the tests exercise this path without downloads.

Training is the shared :class:`~lautum.train.Trainer` fed by a ``DataLoader``
(images decoded and augmented per batch) for exactly ``finetune_steps`` steps, with
the step schedule counted in steps (``milestone_unit="step"``); evaluation is
:func:`lautum.train.evaluate` on the test ``Dataset``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lautum.data import DOMAINS, make_transfer_split, resolve_data_root
from lautum.data.image_folders import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TARGETS,
    FullData,
    FullScaleDataError,
    imagenet_transforms,
    load_image_target,
)
from lautum.device import resolve_device, seed_everything
from lautum.experiments.record import run_record
from lautum.models import TransferNet, freeze_first_blocks, new_head
from lautum.regularizers import (
    base_method,
    build_regularizer,
    estimate_fisher,
    layer_distances,
    normalised_fisher,
    snapshot,
)
from lautum.train import Term, TrainConfig, Trainer, evaluate

__all__ = ["TARGETS", "FullScaleDataError", "FullData", "load_target", "build_model", "run_one"]


def _data_root(data_dir) -> Path:
    return Path(resolve_data_root(data_dir))


def _lautum_domain(name: str, cfg, seed: int, data_dir, k: int = 0) -> FullData:
    """A :mod:`lautum.data` domain, upsampled to ``cfg.image_size`` and normalised as ImageNet inputs."""
    split = make_transfer_split(name, name, max(k, 1), seed=seed, root=data_dir, image_size=cfg.image_size,
                                channels=3, n_source_train=0, n_unlabeled=0, n_target_test=cfg.n_target_test,
                                n_source_test=0, n_val_per_class=cfg.n_val_per_class)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def ds(images):
        return TensorDataset((images.x.cpu() - mean) / std, images.y.cpu())

    val = ds(split.target_val) if len(split.target_val) else None
    return FullData(name, ds(split.target_labeled), val, ds(split.target_test), len(split.target_classes), False,
                    f"lautum domain {name}, {split.k} labelled images per class, upsampled (test data only)")


def load_target(name: str, cfg, seed: int = 0, data_dir=None, k: int = 0) -> FullData:
    """The datasets of a full-scale target (nothing is downloaded; missing data raise :class:`FullScaleDataError`)."""
    if name in DOMAINS:
        return _lautum_domain(name, cfg, seed, data_dir, k)
    if name not in TARGETS:
        raise ValueError(f"unknown full-scale target {name!r}; expected one of {sorted(TARGETS)} or a lautum "
                         f"domain ({sorted(DOMAINS)})")
    return load_image_target(name, _data_root(data_dir), image_size=cfg.image_size,
                             n_val_per_class=cfg.n_val_per_class, seed=seed)


def build_model(arch: str, num_classes: int | None = None, *, pretrained: bool, weights: str = "IMAGENET1K_V1"):
    """A torchvision ResNet as a :class:`~lautum.models.TransferNet`, with the named ImageNet weights.

    ``num_classes=None`` keeps torchvision's own 1000-way classifier as the head
    (the source model, whose predictions the true Fisher averages over); otherwise
    the head is a fresh ``Linear(feature_dim, num_classes)``. Nothing is fetched
    past a failure: without the weights in torch's hub cache and without
    internet, the error says where to put the file.
    """
    import torchvision  # optional heavy dependency, needed only on this path (seconds to import)

    w = None
    if pretrained:
        w = torchvision.models.get_model_weights(arch)[weights]
    try:
        net = torchvision.models.get_model(arch, weights=w)
    except (OSError, RuntimeError) as err:
        raise FullScaleDataError(
            f"could not load the ImageNet weights {arch} {weights} ({err}). torchvision downloads them from "
            f"{w.url} into {torch.hub.get_dir()}/checkpoints/{Path(w.url).name}; on a machine without internet, "
            "copy that file there by hand (or set TORCH_HOME), or pass pretrained=False."
        ) from err
    fc = net.fc
    net.fc = nn.Identity()
    model = TransferNet(net, fc.in_features, num_classes or fc.out_features)
    if num_classes is None:
        model.head = fc
    return model


def _fisher_inputs(cfg, data_dir, device) -> torch.Tensor:
    """``cfg.fisher_samples`` source inputs at which the true Fisher is estimated."""
    source = cfg.fisher_source or cfg.source
    if source == "imagenet":
        if not cfg.imagenet_dir or not Path(cfg.imagenet_dir).is_dir():
            raise FullScaleDataError(
                "l2sp-fisher at full scale needs ImageNet images for the Fisher (the source task's inputs): set "
                "--set imagenet_dir=/path/to/folder with an ImageFolder layout (<class>/<image>.JPEG, e.g. the "
                "ILSVRC2012 validation images sorted by class; only fisher_samples of them are read). ImageNet "
                "cannot be downloaded automatically (registration at image-net.org)."
            )
        import torchvision  # optional heavy dependency, needed only on this path

        _, te = imagenet_transforms(cfg.image_size)
        ds = torchvision.datasets.ImageFolder(cfg.imagenet_dir, transform=te)
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(ds), generator=g)[: cfg.fisher_samples].tolist()
        return torch.stack([ds[i][0] for i in idx]).to(device)
    data = _lautum_domain(source, cfg, 0, data_dir, k=max(1, -(-cfg.fisher_samples // 10)))
    x = data.train.tensors[0]
    return x[: cfg.fisher_samples].to(device)


def run_one(cfg, spec, data_dir=None, cache_dir=None, progress=None) -> dict[str, Any]:
    """One full-scale run (same record layout as the scaled-down path)."""
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    params = dict(spec.params)
    target, alpha = params["target"], params["alpha"]
    data = load_target(target, cfg, spec.seed, data_dir, k=params.get("k", 0))
    seed_everything(spec.seed)
    model = build_model(cfg.arch, None, pretrained=cfg.pretrained, weights=cfg.weights).to(device)
    metrics: dict[str, Any] = {}
    fisher = None
    method = base_method(spec.method)
    if method == "l2sp-fisher":
        # The Fisher of the source task: the model with its ImageNet classifier, on source inputs, at w0.
        # With 1000 classes the exact expectation costs 1000 per-sample backward passes per image, so the
        # full scale uses the one-sample Monte Carlo estimate of the same true Fisher (kind="sampled").
        x = _fisher_inputs(cfg, data_dir, device)
        raw = estimate_fisher(model, x, batch_size=16, which=cfg.penalize, kind="sampled",
                              generator=torch.Generator().manual_seed(spec.seed))
        fisher, metrics["fisher_mean"] = normalised_fisher({k: v for k, v in raw.items()
                                                            if not k.startswith("head.")})
        metrics["fisher_samples"] = len(x)
    w0 = snapshot(model)
    new_head(model, data.num_classes, generator=torch.Generator().manual_seed(spec.seed))
    frozen = freeze_first_blocks(model, cfg.freeze_blocks) if spec.method.endswith("-freeze") else []
    penalty = build_regularizer(spec.method, model, alpha, cfg.beta, which=cfg.penalize, fisher=fisher).to(device)
    g = torch.Generator().manual_seed(spec.seed)
    batch = min(cfg.finetune_batch_size, len(data.train))
    workers = min(8, os.cpu_count() or 1) if device.type == "cuda" and not isinstance(data.train, TensorDataset) else 0
    loader = DataLoader(data.train, batch_size=batch, shuffle=True, drop_last=True, generator=g, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    drop_at = math.floor(cfg.finetune_steps * cfg.lr_drop)
    # SGD with momentum 0.9 (the penalty's gradient inside the momentum), LR ÷10 at step drop_at.
    tc = TrainConfig(steps=cfg.finetune_steps, batch_size=batch, lr=cfg.finetune_lr, momentum=0.9, schedule="step",
                     milestones=(drop_at,), milestone_unit="step", gamma=0.1, seed=spec.seed, device=str(device),
                     progress=progress, eval_every=10**9)  # evaluated below, on the test Dataset
    hist = Trainer(model, tc, terms=[Term(method, penalty, inputs=lambda ctx: ())]).fit({"target": loader})
    log = [{"step": r["step"], "ce": r["ce/target"], "penalty": r[method], "lr": r["lr"]}
           for r in hist.steps if r["step"] % 100 == 0 or r["step"] == cfg.finetune_steps - 1]
    metrics["target_test_acc"] = evaluate(model, data.test, batch_size=128, num_workers=workers, amp=True)["acc"]
    metrics["target_val_acc"] = (evaluate(model, data.val, batch_size=128, num_workers=workers, amp=True)["acc"]
                          if data.val is not None else math.nan)
    metrics.update({"finetune_steps": cfg.finetune_steps, "lr_drop_step": drop_at, "finetune_batch_size": batch,
                    "final_ce": log[-1]["ce"], "final_penalty": log[-1]["penalty"], "n_frozen_tensors": len(frozen),
                    "n_target_train": len(data.train), "n_target_test": len(data.test),
                    "target_in_paper": data.in_paper})
    metrics.update(layer_distances(model, w0))
    metrics["head_weight_norm"] = model.head.weight.detach().norm().item()
    return run_record(cfg, spec, metrics, history=log, started=t0, device=device, target_note=data.note)

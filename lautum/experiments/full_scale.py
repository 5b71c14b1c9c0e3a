"""The paper's full-scale protocol for :mod:`lautum.experiments.l2sp_paper` (``--profile full``).

ResNet-101 with ImageNet weights (torchvision ``IMAGENET1K_V1``, the closest to
the 2016 TF-slim checkpoint of the official code), a new ``K``-way head, SGD with
momentum 0.9, batch 64, 9000 iterations, learning rate ÷10 after 6000 (the ICLR
text; the code drops at 5000), images resized to 256×256, random 224 crop and
mirror for training, central crop for testing, ImageNet normalisation, BatchNorm
in train mode, the final iterate evaluated.

Targets (:data:`TARGETS`):

* ``caltech256-30`` / ``caltech256-60``: the paper's Caltech-256 settings, with the
  official code's split (files ``_0001``–``_0030``/``_0060`` of each of the 257
  folders for training, ``_0061``–``_0080`` for testing); validation images for
  choosing α come from files ``_0081`` onwards, which neither split uses.
  torchvision can download it once (``download=True``, needs internet).
* ``stanford-cars``, ``fgvc-aircraft``: torchvision data sets **not in the paper**,
  offered as further fine-grained targets and labelled as such in records.
* ``stanford-dogs``, ``mit-indoor67``: the paper's other targets; torchvision has
  no reader or download for them, the user supplies the files (see
  :func:`load_target`'s error messages).
* any :mod:`lautum.data` domain (``mnist``, ``usps``, ...), upsampled: the small
  real data on which the tests exercise this path without downloads.

This module has its own iteration loop because the shared
:class:`~lautum.train.Trainer` keeps the data as tensors on the device with no
per-batch augmentation, which Caltech-256 at 224×224 (several GB as floats)
does not fit.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lautum.device import resolve_device, seed_everything
from lautum.experiments.record import run_record
from lautum.train import DivergenceError

__all__ = ["TARGETS", "FullScaleDataError", "FullData", "load_target", "build_model", "train_iterations",
           "run_one"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: name -> (description, in the paper?)
TARGETS: dict[str, tuple[str, bool]] = {
    "caltech256-30": ("Caltech-256, 30 training images per class, 257 classes (clutter included)", True),
    "caltech256-60": ("Caltech-256, 60 training images per class, 257 classes (clutter included)", True),
    "stanford-dogs": ("Stanford Dogs, 120 classes, 100 training images per class (user-supplied)", True),
    "mit-indoor67": ("MIT Indoor 67, 67 classes, 80 training images per class (user-supplied)", True),
    "stanford-cars": ("Stanford Cars (torchvision), 196 classes -- NOT one of the paper's targets", False),
    "fgvc-aircraft": ("FGVC-Aircraft (torchvision), 100 variants -- NOT one of the paper's targets", False),
}


class FullScaleDataError(FileNotFoundError):
    """The full-scale data or weights are missing; the message says how to get them."""


@dataclass
class FullData:
    """Datasets of one full-scale target: items are ``(image tensor 3×S×S normalised, label)``."""

    name: str
    train: Dataset
    val: Dataset | None
    test: Dataset
    num_classes: int
    in_paper: bool
    note: str


def _data_root(data_dir) -> Path:
    from lautum.data import resolve_data_root

    return Path(resolve_data_root(data_dir))


def _transforms(image_size: int):
    from torchvision import transforms as T

    resize = round(image_size * 256 / 224)
    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    rgb = T.Lambda(lambda im: im.convert("RGB"))
    train = T.Compose([rgb, T.Resize((resize, resize)), T.RandomCrop(image_size), T.RandomHorizontalFlip(),
                       T.ToTensor(), norm])
    test = T.Compose([rgb, T.Resize((resize, resize)), T.CenterCrop(image_size), T.ToTensor(), norm])
    return train, test


class _Files(Dataset):
    """Images from a list of ``(path, label)`` pairs."""

    def __init__(self, items: list[tuple[Path, int]], transform):
        self.items, self.transform = items, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image

        path, label = self.items[i]
        with Image.open(path) as im:
            return self.transform(im), label


def _caltech(root: Path, n_train: int, n_val_per_class: int, image_size: int, seed: int) -> FullData:
    folder = root / "caltech256" / "256_ObjectCategories"
    if not folder.is_dir():
        raise FullScaleDataError(
            f"Caltech-256 not found: expected the folder {folder} (257 class folders of .jpg files).\n"
            "Fetch step (once, needs internet, about 1.2 GB): run\n"
            f"    python -c \"import torchvision; torchvision.datasets.Caltech256('{root}', download=True)\"\n"
            f"which downloads 256_ObjectCategories.tar (md5 67b4f42ca05d46448c6bb8ecd2220f6d) into {root}/caltech256/ "
            "and unpacks it; or unpack a copy of that archive there yourself. The data root is the data_dir "
            "argument, else $LAUTUM_DATA, else ~/.cache/lautum/data."
        )
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    train, val, test = [], [], []
    g = torch.Generator().manual_seed(seed)
    for label, c in enumerate(classes):
        files = sorted((folder / c).glob("*.jpg"))  # glob: the archive holds a stray RENAME2 file

        def number(p: Path) -> int:
            return int(p.stem.rsplit("_", 1)[-1])

        train += [(p, label) for p in files if number(p) <= n_train]
        test += [(p, label) for p in files if 61 <= number(p) <= 80]
        rest = [p for p in files if number(p) > 80]
        if rest and n_val_per_class:
            pick = torch.randperm(len(rest), generator=g)[:n_val_per_class].tolist()
            val += [(rest[i], label) for i in sorted(pick)]
    tr, te = _transforms(image_size)
    return FullData(f"caltech256-{n_train}", _Files(train, tr), _Files(val, te) if val else None, _Files(test, te),
                    len(classes), True, "official code's split: files 1-{0} train, 61-80 test".format(n_train))


def _user_supplied(name: str, root: Path, image_size: int) -> FullData:
    tr, te = _transforms(image_size)
    if name == "stanford-dogs":
        folder = root / "stanford_dogs"
        lists = [folder / "lists" / "train_list.mat", folder / "lists" / "test_list.mat"]
        if not all(p.is_file() for p in lists) or not (folder / "Images").is_dir():
            raise FullScaleDataError(
                f"Stanford Dogs not found under {folder}. torchvision has no reader or download for it: download "
                "images.tar and lists.tar from http://vision.stanford.edu/aditya86/ImageNetDogs/ and unpack both "
                f"into {folder} (giving {folder}/Images/<breed>/*.jpg and {folder}/lists/train_list.mat, "
                "test_list.mat). Note: Stanford Dogs was drawn from ImageNet, so an ImageNet source may have seen "
                "its test images."
            )
        from scipy.io import loadmat

        def items(mat):
            m = loadmat(mat)
            return [(folder / "Images" / str(f[0][0]), int(lab[0]) - 1) for f, lab in zip(m["file_list"], m["labels"])]

        train, test = items(lists[0]), items(lists[1])
        return FullData(name, _Files(train, tr), None, _Files(test, te), 120, True, "official train/test lists")
    folder = root / "mit_indoor67"
    lists = [folder / "TrainImages.txt", folder / "TestImages.txt"]
    if not all(p.is_file() for p in lists) or not (folder / "Images").is_dir():
        raise FullScaleDataError(
            f"MIT Indoor 67 not found under {folder}. torchvision has no reader or download for it: download "
            "indoorCVPR_09.tar and the TrainImages.txt / TestImages.txt lists from "
            f"http://web.mit.edu/torralba/www/indoor.html and unpack them into {folder} (giving "
            f"{folder}/Images/<scene>/*.jpg and the two lists beside Images/). About 30 files are BMP/PNG/GIF "
            "under a .jpg name; PIL reads them, the loader converts every image to RGB."
        )
    classes = sorted(p.name for p in (folder / "Images").iterdir() if p.is_dir())
    index = {c: i for i, c in enumerate(classes)}

    def items(txt):
        lines = [s.strip() for s in txt.read_text().splitlines() if s.strip()]
        return [(folder / "Images" / s, index[s.split("/")[0]]) for s in lines]

    return FullData(name, _Files(items(lists[0]), tr), None, _Files(items(lists[1]), te), len(classes), True,
                    "official TrainImages/TestImages lists")


def _torchvision_target(name: str, root: Path, n_val_per_class: int, image_size: int) -> FullData:
    import torchvision

    tr, te = _transforms(image_size)
    cls, splits, sub = {"stanford-cars": (torchvision.datasets.StanfordCars, ("train", "test"), "stanford_cars"),
                        "fgvc-aircraft": (torchvision.datasets.FGVCAircraft, ("trainval", "test"),
                                          "fgvc-aircraft-2013b")}[name]
    try:
        train = cls(str(root), split=splits[0], transform=tr, download=False)
        test = cls(str(root), split=splits[1], transform=te, download=False)
    except RuntimeError as err:
        raise FullScaleDataError(
            f"{name} not found under {root}/{sub} ({err}). Fetch step (once, needs internet): run\n"
            f"    python -c \"import torchvision; torchvision.datasets.{cls.__name__}('{root}', "
            f"split='{splits[0]}', download=True)\"\n"
            "(Stanford Cars' original URL is gone; torchvision's docs point to a Kaggle copy to unpack there). "
            "This target is NOT one of the paper's."
        ) from err
    n_classes = len(train.classes)
    return FullData(name, train, None, test, n_classes, False, f"torchvision {splits[0]}/{splits[1]} splits")


def _lautum_domain(name: str, cfg, seed: int, data_dir, k: int = 0) -> FullData:
    """A :mod:`lautum.data` domain, upsampled to ``cfg.image_size`` and normalised as ImageNet inputs."""
    from lautum.data import make_transfer_split

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
    from lautum.data import DOMAINS

    if name in DOMAINS:
        return _lautum_domain(name, cfg, seed, data_dir, k)
    if name not in TARGETS:
        raise ValueError(f"unknown full-scale target {name!r}; expected one of {sorted(TARGETS)} or a lautum "
                         f"domain ({sorted(DOMAINS)})")
    root = _data_root(data_dir)
    if name.startswith("caltech256-"):
        return _caltech(root, int(name.rsplit("-", 1)[1]), cfg.n_val_per_class, cfg.image_size, seed)
    if name in ("stanford-dogs", "mit-indoor67"):
        return _user_supplied(name, root, cfg.image_size)
    return _torchvision_target(name, root, cfg.n_val_per_class, cfg.image_size)


def build_model(arch: str, num_classes: int | None = None, *, pretrained: bool, weights: str = "IMAGENET1K_V1"):
    """A torchvision ResNet as a :class:`~lautum.models.TransferNet`, with the named ImageNet weights.

    ``num_classes=None`` keeps torchvision's own 1000-way classifier as the head
    (the source model, whose predictions the true Fisher averages over); otherwise
    the head is a fresh ``Linear(feature_dim, num_classes)``. Nothing is fetched
    past a failure: without the weights in torch's hub cache and without
    internet, the error says where to put the file.
    """
    import torchvision

    from lautum.models import TransferNet

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
        import torchvision

        _, te = _transforms(cfg.image_size)
        ds = torchvision.datasets.ImageFolder(cfg.imagenet_dir, transform=te)
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(ds), generator=g)[: cfg.fisher_samples].tolist()
        return torch.stack([ds[i][0] for i in idx]).to(device)
    data = _lautum_domain(source, cfg, 0, data_dir, k=max(1, -(-cfg.fisher_samples // 10)))
    x = data.train.tensors[0]
    return x[: cfg.fisher_samples].to(device)


def train_iterations(model: nn.Module, penalty: nn.Module, loader: DataLoader, *, iterations: int, lr: float,
                     drop_at: int, device: torch.device, progress=None) -> list[dict[str, float]]:
    """SGD (momentum 0.9, the penalty's gradient inside the momentum), LR ÷10 at ``drop_at``; returns a log."""
    from lautum.progress import progress_bar

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 if s >= drop_at else 1.0)
    use_amp = device.type == "cuda"
    log: list[dict[str, float]] = []
    model.train()
    step = 0
    bar = progress_bar(progress, total=iterations, desc="fine-tune", unit="step", leave=False)
    try:
        while step < iterations:
            for x, y in loader:
                if step >= iterations:
                    break
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                    ce = F.cross_entropy(model(x).float(), y)
                reg = penalty()
                loss = ce + reg
                if not torch.isfinite(loss):
                    raise DivergenceError(f"the loss became {loss.item()} at step {step}; lower lr or alpha")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if step % 100 == 0 or step == iterations - 1:
                    log.append({"step": step, "ce": float(ce.detach()), "penalty": float(reg.detach()), "lr": sched.get_last_lr()[0]})
                step += 1
                bar.update(1)
    finally:
        bar.close()
    return log


@torch.no_grad()
def accuracy(model: nn.Module, ds: Dataset, device: torch.device, batch_size: int = 128, workers: int = 0) -> float:
    """Top-1 accuracy in eval mode."""
    model.eval()
    correct = total = 0
    for x, y in DataLoader(ds, batch_size=batch_size, num_workers=workers):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            pred = model(x.to(device)).argmax(1)
        correct += (pred.cpu() == y).sum().item()
        total += len(y)
    model.train()
    return correct / max(total, 1)


def run_one(cfg, spec, data_dir=None, cache_dir=None, progress=None) -> dict[str, Any]:
    """One full-scale run (same record layout as the scaled-down path)."""
    from lautum.experiments import l2sp_paper as L

    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    params = dict(spec.params)
    target, alpha = params["target"], params["alpha"]
    data = load_target(target, cfg, spec.seed, data_dir, k=params.get("k", 0))
    seed_everything(spec.seed)
    model = build_model(cfg.arch, None, pretrained=cfg.pretrained, weights=cfg.weights).to(device)
    metrics: dict[str, Any] = {}
    fisher = None
    if L.base_method(spec.method) == "l2sp-fisher":
        # The Fisher of the source task: the model with its ImageNet classifier, on source inputs, at w0.
        # With 1000 classes the exact expectation costs 1000 per-sample backward passes per image, so the
        # full scale uses the one-sample Monte Carlo estimate of the same true Fisher (kind="sampled").
        from lautum.regularizers import estimate_fisher

        x = _fisher_inputs(cfg, data_dir, device)
        raw = estimate_fisher(model, x, batch_size=16, which=cfg.penalize, kind="sampled",
                              generator=torch.Generator().manual_seed(spec.seed))
        fisher, metrics["fisher_mean"] = L.normalised_fisher({k: v for k, v in raw.items()
                                                              if not k.startswith("head.")})
        metrics["fisher_samples"] = len(x)
    w0 = L.snapshot(model)
    from lautum.models import new_head

    new_head(model, data.num_classes, generator=torch.Generator().manual_seed(spec.seed))
    frozen = L.freeze_first_blocks(model, cfg.freeze_blocks) if spec.method.endswith("-freeze") else []
    penalty = L.build_regularizer(spec.method, model, alpha, cfg.beta, which=cfg.penalize, fisher=fisher).to(device)
    g = torch.Generator().manual_seed(spec.seed)
    batch = min(cfg.batch_size, len(data.train))
    workers = min(8, os.cpu_count() or 1) if device.type == "cuda" and not isinstance(data.train, TensorDataset) else 0
    loader = DataLoader(data.train, batch_size=batch, shuffle=True, drop_last=True, generator=g, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    drop_at = math.floor(cfg.iterations * cfg.lr_drop)
    log = train_iterations(model, penalty, loader, iterations=cfg.iterations, lr=cfg.lr, drop_at=drop_at,
                           device=device, progress=progress)
    metrics["target_test_acc"] = accuracy(model, data.test, device, workers=workers)
    metrics["val_acc"] = accuracy(model, data.val, device, workers=workers) if data.val is not None else math.nan
    metrics.update({"iterations": cfg.iterations, "lr_drop_step": drop_at, "batch_size": batch,
                    "final_ce": log[-1]["ce"], "final_penalty": log[-1]["penalty"], "n_frozen_tensors": len(frozen),
                    "n_target_train": len(data.train), "n_target_test": len(data.test),
                    "target_in_paper": data.in_paper})
    metrics.update(L.layer_distances(model, w0))
    metrics["head_weight_norm"] = model.head.weight.detach().norm().item()
    return run_record(cfg, spec, metrics, history=log, started=t0, device=device, target_note=data.note)

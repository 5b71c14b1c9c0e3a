"""Seeded source/target splits for transfer experiments (:func:`make_transfer_split`).

A transfer split takes a labelled **source** domain and a **target** domain of
which only ``k`` images per class are labelled; the rest of the target training
set is an unlabelled pool. Everything is drawn from a local generator seeded by
``seed``, so paired runs (same seed, different methods) see the same data.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch

from lautum.data.domains import get_domain
from lautum.data.images import LabeledImages
from lautum.data.readers import RawImages, load_raw
from lautum.data.transforms import harmonise
from lautum.device import resolve_device

__all__ = ["TransferSplit", "make_transfer_split"]


@dataclass
class TransferSplit:
    """Source and target data of one transfer experiment, on one device.

    Attributes
    ----------
    source, target : str
        Domain names.
    k : int
        Labelled target images per class.
    seed : int
        Seed of every random choice.
    image_size : tuple of int
        ``(H, W)`` of every image.
    channels : int
        Channels of every image (1 or 3).
    source_train, source_test : LabeledImages
        Source training and test images (subsets when ``n_source_*`` were given).
    target_labeled : LabeledImages
        Exactly ``k`` images per target class, from the target **training** split.
    target_unlabeled : LabeledImages
        The pool of unlabelled target training images, disjoint from
        ``target_labeled``. Its ``y`` is kept **for diagnostics only** (e.g.
        pool accuracy): a method must never train on it.
    target_test : LabeledImages
        Target test images (a subset when ``n_target_test`` was given).
    target_val : LabeledImages
        ``n_val_per_class`` labelled validation images per class from the target
        training split, disjoint from the two sets above (empty by default).
    source_classes, target_classes : list of str
        Class names of each domain (equal for digit-to-digit pairs).

    Every ``LabeledImages`` here has ``index``: the positions of its images in
    the split they were drawn from (CPU, sorted).
    """

    source: str
    target: str
    k: int
    seed: int
    image_size: tuple[int, int]
    channels: int
    source_train: LabeledImages
    source_test: LabeledImages
    target_labeled: LabeledImages
    target_unlabeled: LabeledImages
    target_test: LabeledImages
    target_val: LabeledImages
    source_classes: list[str]
    target_classes: list[str]

    @property
    def shared_label_space(self) -> bool:
        """Whether source and target have the same classes (the source head can be kept)."""
        return self.source_classes == self.target_classes

    def summary(self) -> dict:
        """Sizes and settings, for logs and result files (plain Python values)."""
        return {
            "source": self.source,
            "target": self.target,
            "k": self.k,
            "seed": self.seed,
            "image_size": list(self.image_size),
            "channels": self.channels,
            "device": str(self.source_train.device),
            "n_source_train": len(self.source_train),
            "n_source_test": len(self.source_test),
            "n_target_labeled": len(self.target_labeled),
            "n_target_unlabeled": len(self.target_unlabeled),
            "n_target_test": len(self.target_test),
            "n_target_val": len(self.target_val),
            "n_source_classes": len(self.source_classes),
            "n_target_classes": len(self.target_classes),
            "source_layout": self.source_train.info.get("layout"),
            "target_layout": self.target_test.info.get("layout"),
        }

    describe = summary


def _generator(seed: int, stream: str) -> torch.Generator:
    # One independent, platform-stable stream per role: the labelled target set
    # does not change when e.g. n_source_train changes.
    digest = hashlib.blake2b(f"{seed}:{stream}".encode(), digest_size=8).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def _subset(n_total: int, n: int | None, seed: int, stream: str, what: str) -> torch.Tensor:
    if n is None:
        return torch.arange(n_total)
    if not 0 <= n <= n_total:
        raise ValueError(f"{what}: asked for {n} images, the split has {n_total}")
    return torch.randperm(n_total, generator=_generator(seed, stream))[:n].sort().values


def _labeled_indices(
    y: torch.Tensor, classes: list[str], k: int, n_val: int, seed: int, target: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, one seeded permutation: its first ``n_val`` images are validation, the next ``k`` labelled."""
    counts = torch.bincount(y, minlength=len(classes)).tolist()
    short = [(cls, n) for cls, n in zip(classes, counts, strict=True) if n < k + n_val]
    if short:
        listed = ", ".join(f"class {cls!r} has only {n}" for cls, n in short)
        val = f" plus {n_val} validation images" if n_val else ""
        raise ValueError(
            f"target {target!r}: {listed} training images, fewer than k={k} labelled images per class{val}; "
            f"use k <= {min(counts) - n_val}"
        )
    gen = _generator(seed, "target_labeled")
    labeled, val = [], []
    for c in range(len(classes)):
        idx = (y == c).nonzero().flatten()
        # The whole class is permuted and a prefix kept, so with one seed (and one n_val) the
        # k=5 set is inside the k=20 set, and the validation set does not depend on k.
        perm = idx[torch.randperm(len(idx), generator=gen)]
        val.append(perm[:n_val])
        labeled.append(perm[n_val : n_val + k])
    empty = torch.empty(0, dtype=torch.long)
    return (torch.cat(labeled).sort().values if labeled else empty), (torch.cat(val).sort().values if val else empty)


def _take(raw: RawImages, idx: torch.Tensor, name: str, size, channels, device, info) -> LabeledImages:
    x = harmonise(raw.x[idx].to(device), size, channels)
    return LabeledImages(x, raw.y[idx].to(device), list(raw.classes), name, index=idx.clone(), info=dict(info))


def make_transfer_split(
    source: str,
    target: str,
    k: int,
    *,
    seed: int,
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    n_source_train: int | None = None,
    n_unlabeled: int | None = None,
    n_target_test: int | None = None,
    n_source_test: int | None = None,
    n_val_per_class: int = 0,
) -> TransferSplit:
    """Build a seeded transfer split: labelled source, ``k`` labelled target images per class, an unlabelled pool.

    Every image is converted to float32 in [0, 1], to ``channels`` channels
    (grey -> RGB by repetition, RGB -> grey by BT.601 luma) and resized to
    ``image_size`` (bilinear, antialiased when shrinking); see
    :func:`~lautum.data.transforms.harmonise`.

    Parameters
    ----------
    source, target : str
        Domain names (keys of :data:`~lautum.data.DOMAINS`); they may be equal.
    k : int
        Labelled target images per class, drawn from the target training split.
    seed : int
        Seeds every choice, through local generators (the global RNG state is
        neither used nor changed). Same arguments give identical tensors; the
        labelled set for a smaller ``k`` is contained in that of a larger ``k``.
    root : str or path-like, optional
        Data root (see :func:`~lautum.data.resolve_data_root`).
    device : str or torch.device, default "cpu"
        Where the tensors go (``"auto"``: CUDA when present).
    image_size : int or (int, int), optional
        ``(H, W)``; default: the target's size (e.g. 32 for MNIST -> MNIST-M).
    channels : int, optional
        1 or 3; default: the larger channel count of the two domains.
    n_source_train, n_source_test, n_target_test : int, optional
        Seeded random subsets of these splits (``None``: all), for quick profiles.
    n_unlabeled : int, optional
        Size of the unlabelled pool, drawn from the target training images not
        labelled (``None``: all of them).
    n_val_per_class : int, default 0
        Labelled target **validation** images per class (e.g. to choose a
        regularisation weight without touching the test split), drawn from the
        target training split, disjoint from ``target_labeled`` and
        ``target_unlabeled``. With 0 (the default), ``target_val`` is empty.

    Returns
    -------
    TransferSplit
        Tensors on ``device``; ``index`` attributes give the positions drawn.

    Raises
    ------
    ValueError
        ``k`` (plus ``n_val_per_class``) is larger than the number of training
        images of some target class (the message names the class, its count and
        ``k``), or a subset size is larger than what is available.
    DataNotFoundError
        Data of either domain are missing (nothing is downloaded).
    """
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer (labelled images per class), got {k!r}")
    if not isinstance(n_val_per_class, int) or n_val_per_class < 0:
        raise ValueError(f"n_val_per_class must be a non-negative integer, got {n_val_per_class!r}")
    src_domain, tgt_domain = get_domain(source), get_domain(target)
    device = resolve_device(device)
    if image_size is None:
        image_size = tgt_domain.shape[1:]
    elif isinstance(image_size, int):
        image_size = (image_size, image_size)
    image_size = tuple(int(s) for s in image_size)
    if channels is None:
        channels = max(src_domain.shape[0], tgt_domain.shape[0])

    src_train, src_layout, _ = load_raw(source, True, root)
    src_test, _, _ = load_raw(source, False, root)
    tgt_train, tgt_layout, _ = load_raw(target, True, root)
    tgt_test, _, _ = load_raw(target, False, root)

    labeled, val = _labeled_indices(tgt_train.y, list(tgt_train.classes), k, n_val_per_class, seed, target)
    free = torch.ones(len(tgt_train.y), dtype=torch.bool)
    free[labeled] = False
    free[val] = False
    rest = free.nonzero().flatten()
    pool = rest[
        _subset(len(rest), n_unlabeled, seed, "target_unlabeled", f"n_unlabeled ({target} train, not labelled)")
    ]
    src_train_idx = _subset(len(src_train.y), n_source_train, seed, "source_train", f"n_source_train ({source})")
    src_test_idx = _subset(len(src_test.y), n_source_test, seed, "source_test", f"n_source_test ({source})")
    tgt_test_idx = _subset(len(tgt_test.y), n_target_test, seed, "target_test", f"n_target_test ({target})")

    def take(raw, idx, name, layout):
        return _take(raw, idx, name, image_size, channels, device, {"layout": layout})

    return TransferSplit(
        source=source,
        target=target,
        k=k,
        seed=seed,
        image_size=image_size,
        channels=channels,
        source_train=take(src_train, src_train_idx, f"{source}/train", src_layout),
        source_test=take(src_test, src_test_idx, f"{source}/test", src_layout),
        target_labeled=take(tgt_train, labeled, f"{target}/train/labeled", tgt_layout),
        target_unlabeled=take(tgt_train, pool, f"{target}/train/unlabeled", tgt_layout),
        target_test=take(tgt_test, tgt_test_idx, f"{target}/test", tgt_layout),
        target_val=take(tgt_train, val, f"{target}/train/val", tgt_layout),
        source_classes=list(src_train.classes),
        target_classes=list(tgt_train.classes),
    )

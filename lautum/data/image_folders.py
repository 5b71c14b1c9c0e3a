"""Image-folder targets of the full-scale experiments: Caltech-256, Stanford Dogs, MIT Indoor 67, torchvision sets.

Unlike the :mod:`lautum.data` domains (small images held as tensors), these are
folders of JPEG files read image by image, resized and augmented per batch with
the ImageNet preprocessing (:func:`imagenet_transforms`): a
:class:`torch.utils.data.Dataset` per split, to be batched by a ``DataLoader``.
Nothing is downloaded: missing files raise :class:`FullScaleDataError`, whose
message gives the fetch step.

Targets (:data:`TARGETS`):

* ``caltech256-30`` / ``caltech256-60``: the L2-SP paper's Caltech-256 settings,
  with the official code's split (files ``_0001``–``_0030``/``_0060`` of each of the
  257 folders for training, ``_0061``–``_0080`` for testing); validation images
  come from files ``_0081`` onwards, which neither split uses.
* ``stanford-cars``, ``fgvc-aircraft``: torchvision data sets **not in the paper**.
* ``stanford-dogs``, ``mit-indoor67``: torchvision has no reader or download for
  them, the user supplies the files.

torchvision, PIL and scipy are imported where they are needed, so that importing
this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TARGETS", "FullScaleDataError", "FullData", "ImageFiles",
           "imagenet_transforms", "caltech256", "user_supplied", "torchvision_target", "load_image_target"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: name -> (description, in the L2-SP paper?)
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


def imagenet_transforms(image_size: int):
    """``(train, test)`` transforms: resize to ``image_size·256/224`` square, random (train) or central
    (test) crop of ``image_size``, mirror (train), ImageNet normalisation; every image converted to RGB."""
    from torchvision import transforms as T

    resize = round(image_size * 256 / 224)
    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    rgb = T.Lambda(lambda im: im.convert("RGB"))
    train = T.Compose([rgb, T.Resize((resize, resize)), T.RandomCrop(image_size), T.RandomHorizontalFlip(),
                       T.ToTensor(), norm])
    test = T.Compose([rgb, T.Resize((resize, resize)), T.CenterCrop(image_size), T.ToTensor(), norm])
    return train, test


class ImageFiles(Dataset):
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


def caltech256(root: Path, n_train: int, n_val_per_class: int, image_size: int, seed: int) -> FullData:
    """Caltech-256 under ``root/caltech256/256_ObjectCategories`` with the official code's split."""
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
    tr, te = imagenet_transforms(image_size)
    return FullData(f"caltech256-{n_train}", ImageFiles(train, tr), ImageFiles(val, te) if val else None,
                    ImageFiles(test, te), len(classes), True,
                    "official code's split: files 1-{0} train, 61-80 test".format(n_train))


def user_supplied(name: str, root: Path, image_size: int) -> FullData:
    """``stanford-dogs`` or ``mit-indoor67`` from the files the user unpacked under ``root``."""
    tr, te = imagenet_transforms(image_size)
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
            return [(folder / "Images" / str(f[0][0]), int(lab[0]) - 1)
                    for f, lab in zip(m["file_list"], m["labels"], strict=True)]

        train, test = items(lists[0]), items(lists[1])
        return FullData(name, ImageFiles(train, tr), None, ImageFiles(test, te), 120, True, "official train/test lists")
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

    return FullData(name, ImageFiles(items(lists[0]), tr), None, ImageFiles(items(lists[1]), te), len(classes), True,
                    "official TrainImages/TestImages lists")


def torchvision_target(name: str, root: Path, n_val_per_class: int, image_size: int) -> FullData:
    """``stanford-cars`` or ``fgvc-aircraft`` through torchvision's readers (no download)."""
    import torchvision

    tr, te = imagenet_transforms(image_size)
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


def load_image_target(name: str, root: str | Path, *, image_size: int, n_val_per_class: int, seed: int = 0) -> FullData:
    """The datasets of the image-folder target ``name`` (one of :data:`TARGETS`) under the data root ``root``."""
    if name not in TARGETS:
        raise ValueError(f"unknown image-folder target {name!r}; expected one of {sorted(TARGETS)}")
    root = Path(root)
    if name.startswith("caltech256-"):
        return caltech256(root, int(name.rsplit("-", 1)[1]), n_val_per_class, image_size, seed)
    if name in ("stanford-dogs", "mit-indoor67"):
        return user_supplied(name, root, image_size)
    return torchvision_target(name, root, n_val_per_class, image_size)

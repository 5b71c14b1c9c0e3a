"""The registry of named image domains: files, checksums, download recipes, classes.

Every path is relative to the data root (see :func:`~lautum.data.resolve_data_root`);
the layout is the one torchvision's dataset classes expect, so a root prepared by
torchvision with ``download=True`` works as is.

The URLs and md5s of MNIST, USPS (LIBSVM), SVHN and CIFAR are torchvision's
(0.29, ``torchvision/datasets/{mnist,usps,svhn,cifar}.py``); a test checks that
they still equal the installed torchvision's class attributes. The md5s of the
uncompressed MNIST files, of MNIST-M, of ``usps.h5`` and of the notMNIST archive
come from the project's offline data README.

Notes per domain
----------------
usps
    Two preprocessings of the same 9298 digits, in the same split and order:
    ``usps-alt/usps.h5`` (the ESL ``zip.train``/``zip.test`` rescaled to [0, 1];
    sharper) and torchvision's LIBSVM files ``usps.bz2``/``usps.t.bz2`` (close to a
    Gaussian-smoothed copy). The h5 copy is preferred whenever it is present, and
    then it is used for **both** splits: never mix the two within one experiment.
    The h5 copy has no public URL (it circulates on Kaggle), so ``fetch`` downloads
    the LIBSVM files.
notmnist
    The offline archive is a repack of the original PNG bytes, so its md5 differs
    from a fresh download; both versions are accepted (the original by its sha256,
    which is the only checksum published for it).
mnist_m
    Stored as xz-compressed uint8 arrays decoded from the original PNGs; there is
    no public URL for these arrays, so ``fetch`` cannot rebuild them.
"""

from __future__ import annotations

from dataclasses import dataclass

from lautum.data.files import Checksum, FileSet, FileSpec

__all__ = ["Domain", "DOMAINS", "get_domain"]


@dataclass(frozen=True)
class Domain:
    """A named image domain.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"mnist"``.
    title : str
        Human-readable name.
    classes : tuple of str
        Class names, index = label.
    shape : tuple of int
        ``(C, H, W)`` of one image as stored.
    sizes : tuple of int
        ``(n_train, n_test)`` as loaded (notMNIST: after de-duplication).
    filesets : tuple of FileSet
        On-disk layouts, in order of preference for reading.
    source : str
        Origin and citation.
    """

    name: str
    title: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]
    sizes: tuple[int, int]
    filesets: tuple[FileSet, ...]
    source: str

    @property
    def recipe(self) -> FileSet | None:
        """The layout ``fetch`` rebuilds: the first one whose files can all be downloaded."""
        return next((fs for fs in self.filesets if fs.fetchable), None)


DIGITS = tuple(str(d) for d in range(10))
LETTERS_A_J = tuple("ABCDEFGHIJ")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# CIFAR-100 fine labels in label order (alphabetical), as in the archive's `meta` file.
CIFAR100_CLASSES = tuple(
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
    butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab
    crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard
    lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom
    oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine
    possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake
    spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor
    train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split()
)


def _md5(digest: str, size: int | None = None, note: str = "") -> tuple[Checksum, ...]:
    return (Checksum(digest, "md5", size, note),)


# --- MNIST: the .gz files are downloaded; torchvision (download=False) reads the unpacked ones.
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_MNIST_FILES = {  # stem: (gz md5, gz size, raw md5, raw size)
    "train-images-idx3-ubyte": (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        9912422,
        "6bbc9ace898e44ae57da46a324031adb",
        47040016,
    ),
    "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", 28881, "a25bea736e30d166cdddb491f175f624", 60008),
    "t10k-images-idx3-ubyte": (
        "9fb629c4189551a2d022fa330f9573f3",
        1648877,
        "2646ac647ad5339dbf082846283269ea",
        7840016,
    ),
    "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", 4542, "27ae3e4e09519cfbb04c329615203637", 10008),
}
_mnist_gz = {
    stem: FileSpec(f"MNIST/raw/{stem}.gz", _md5(gz_md5, gz_size), tuple(m + f"{stem}.gz" for m in MNIST_MIRRORS))
    for stem, (gz_md5, gz_size, _, _) in _MNIST_FILES.items()
}
_mnist_raw = {
    stem: FileSpec(f"MNIST/raw/{stem}", _md5(raw_md5, raw_size), derived_from=f"MNIST/raw/{stem}.gz", unpack="gunzip")
    for stem, (_, _, raw_md5, raw_size) in _MNIST_FILES.items()
}
MNIST = Domain(
    name="mnist",
    title="MNIST handwritten digits",
    classes=DIGITS,
    shape=(1, 28, 28),
    sizes=(60000, 10000),
    filesets=(
        FileSet(
            "torchvision",
            train=(_mnist_raw["train-images-idx3-ubyte"], _mnist_raw["train-labels-idx1-ubyte"]),
            test=(_mnist_raw["t10k-images-idx3-ubyte"], _mnist_raw["t10k-labels-idx1-ubyte"]),
            archives=tuple(_mnist_gz.values()),
            note="torchvision.datasets.MNIST layout; reads the unpacked idx files",
        ),
    ),
    source="LeCun, Cortes & Burges, http://yann.lecun.com/exdb/mnist/ (CC BY-SA 3.0 as commonly stated)",
)

# --- USPS: the preferred h5 copy (no public URL) or torchvision's LIBSVM files.
LIBSVM_USPS = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/"
_usps_h5 = FileSpec(
    "usps-alt/usps.h5", _md5("355df6b942eb766252e0340bc019b0b9", 2913522, "ESL zip.train/zip.test in [0, 1]")
)
USPS = Domain(
    name="usps",
    title="USPS handwritten digits",
    classes=DIGITS,
    shape=(1, 16, 16),
    sizes=(7291, 2007),
    filesets=(
        FileSet(
            "h5",
            train=(_usps_h5,),
            test=(_usps_h5,),
            note="ESL zip.train/zip.test rescaled to [0, 1]; preferred; no public URL (Kaggle 'USPS dataset')",
        ),
        FileSet(
            "libsvm",
            train=(FileSpec("usps.bz2", _md5("ec16c51db3855ca6c91edd34d0e9b197"), (LIBSVM_USPS + "usps.bz2",)),),
            test=(
                FileSpec(
                    "usps.t.bz2", _md5("8ea070ee2aca1ac39742fdd1ef5ed118", 1831726), (LIBSVM_USPS + "usps.t.bz2",)
                ),
            ),
            note="torchvision.datasets.USPS (LIBSVM copy, smoother pixels); do not mix with the h5 copy",
        ),
    ),
    source="Hull, IEEE PAMI 16(5), 1994; LIBSVM and ESL (Hastie, Tibshirani & Friedman) copies",
)

# --- MNIST-M: uint8 arrays decoded from Ganin & Lempitsky's PNGs (no public URL for the arrays).
_mm = "MNIST-M/"
MNIST_M = Domain(
    name="mnist_m",
    title="MNIST-M (MNIST digits blended with BSDS500 patches)",
    classes=DIGITS,
    shape=(3, 32, 32),
    sizes=(59001, 9001),
    filesets=(
        FileSet(
            "npy",
            train=(
                FileSpec(_mm + "mnist_m_train_images.npy.xz", _md5("bfe973077eb71e68c9f775e0a02cc9c8", 81512028)),
                FileSpec(_mm + "mnist_m_train_labels.npy", _md5("6791867bde1015e91162b855c63108a7", 59129)),
            ),
            test=(
                FileSpec(_mm + "mnist_m_test_images.npy.xz", _md5("49a60c8932311abddb97715f24c673c2", 16240424)),
                FileSpec(_mm + "mnist_m_test_labels.npy", _md5("a15010405f4252bc45d0fbd3ad016ab6", 9129)),
            ),
            note="xz-compressed (N, 32, 32, 3) uint8 arrays decoded from mnist_m.tar.gz; no public URL",
        ),
    ),
    source="Ganin & Lempitsky, ICML 2015 (mnist_m.tar.gz); MNIST + BSDS500",
)

# --- notMNIST_small: one tarball; the reader extracts, de-duplicates and splits it.
_notmnist_tar = FileSpec(
    "notMNIST/notMNIST_small.tar.gz",
    (
        Checksum("626169729db2d797592be820fe65258c", "md5", 8082670, "repacked offline copy, same PNG bytes"),
        Checksum(
            "76b2ef7ccc56452964780569db37b279c9cbe1bf442c3b38be784752683b3cec",
            "sha256",
            8458043,
            "original download (its md5 is not published)",
        ),
    ),
    ("http://yaroslavvb.com/upload/notMNIST/notMNIST_small.tar.gz",),
)
NOTMNIST = Domain(
    name="notmnist",
    title="notMNIST_small (letters A-J in many fonts)",
    classes=LETTERS_A_J,
    shape=(1, 28, 28),
    sizes=(14584, 3646),  # after de-duplication and the seeded 80/20 split (see lautum.data.notmnist)
    filesets=(FileSet("tarball", train=(_notmnist_tar,), test=(_notmnist_tar,), note="PNGs, split by lautum"),),
    source="Y. Bulatov, 'notMNIST dataset', yaroslavvb.blogspot.com, 8 Sep 2011",
)

# --- SVHN (cropped digits), torchvision layout under SVHN/.
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN = Domain(
    name="svhn",
    title="SVHN cropped digits",
    classes=DIGITS,
    shape=(3, 32, 32),
    sizes=(73257, 26032),
    filesets=(
        FileSet(
            "torchvision",
            train=(
                FileSpec(
                    "SVHN/train_32x32.mat",
                    _md5("e26dedcc434d2e4c54c9b2d4a06d8373", 182040794),
                    (SVHN_URL + "train_32x32.mat",),
                ),
            ),
            test=(
                FileSpec(
                    "SVHN/test_32x32.mat",
                    _md5("eb5a983be6a315427106f1b164d9cef3", 64275384),
                    (SVHN_URL + "test_32x32.mat",),
                ),
            ),
            note="torchvision.datasets.SVHN(root/'SVHN'); label 10 is mapped to digit 0",
        ),
    ),
    source="Netzer et al., NIPS workshop 2011, http://ufldl.stanford.edu/housenumbers/ (non-commercial use only)",
)


def _cifar(name, title, classes, folder, archive, md5, size, train_files, test_files, meta):
    tar = FileSpec(archive, _md5(md5, size), (f"https://www.cs.toronto.edu/~kriz/{archive}",))

    def member(fname, fmd5):
        return FileSpec(f"{folder}/{fname}", _md5(fmd5), derived_from=archive, unpack="untar")

    meta_spec = member(*meta)
    return Domain(
        name=name,
        title=title,
        classes=classes,
        shape=(3, 32, 32),
        sizes=(50000, 10000),
        filesets=(
            FileSet(
                "torchvision",
                train=tuple(member(f, m) for f, m in train_files) + (meta_spec,),
                test=tuple(member(f, m) for f, m in test_files) + (meta_spec,),
                archives=(tar,),
                note=f"torchvision.datasets layout ({folder}/ unpacked from {archive})",
            ),
        ),
        source="Krizhevsky, 'Learning multiple layers of features from tiny images', 2009",
    )


CIFAR10 = _cifar(
    "cifar10",
    "CIFAR-10",
    CIFAR10_CLASSES,
    "cifar-10-batches-py",
    "cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
    170498071,
    [
        ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ],
    [("test_batch", "40351d587109b95175f43aff81a1287e")],
    ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
)
CIFAR100 = _cifar(
    "cifar100",
    "CIFAR-100 (fine labels)",
    CIFAR100_CLASSES,
    "cifar-100-python",
    "cifar-100-python.tar.gz",
    "eb9058c3a382ffc7106e4002c42a8d85",
    None,
    [("train", "16019d7e3df5f24257cddd939b257f8d")],
    [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")],
    ("meta", "7973b15100ade9c7d40fb424638fde48"),
)

#: Every known domain by name. ``DOMAINS["mnist"].shape == (1, 28, 28)``.
DOMAINS: dict[str, Domain] = {d.name: d for d in (MNIST, USPS, MNIST_M, NOTMNIST, SVHN, CIFAR10, CIFAR100)}


def get_domain(name: str) -> Domain:
    """Look a domain up by name, with an error that lists the known names.

    Examples
    --------
    >>> get_domain("usps").shape
    (1, 16, 16)
    >>> get_domain("mnistm")
    Traceback (most recent call last):
    ...
    KeyError: "unknown domain 'mnistm'; known: mnist, usps, mnist_m, notmnist, svhn, cifar10, cifar100"
    """
    try:
        return DOMAINS[name]
    except KeyError:
        raise KeyError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}") from None

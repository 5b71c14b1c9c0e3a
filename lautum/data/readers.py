"""Read a domain's split from the data root into tensors (:func:`load_domain`).

torchvision's dataset classes read MNIST, USPS (LIBSVM), SVHN and CIFAR, always
with ``download=False``; small readers of our own read ``usps.h5``, MNIST-M and
notMNIST. Decoded splits are kept in memory per process (MNIST-M's xz arrays
take about 5 s to decode), in their stored dtype (uint8 where possible), and
every call returns fresh float tensors.
"""

from __future__ import annotations

import functools
import lzma
import os
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lautum.data.domains import Domain, get_domain
from lautum.data.errors import DataNotFoundError
from lautum.data.files import FileSet, cached_digest, check_file
from lautum.data.images import LabeledImages, to_unit_float
from lautum.data.root import RootChoice, explain_data_root, resolve_cache_dir

__all__ = ["load_domain", "load_raw", "RawImages", "select_fileset"]


@dataclass(frozen=True)
class RawImages:
    """A split as stored: ``x`` uint8 (or float32 in [0, 1]) (N, C, H, W), ``y`` int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    info: tuple[tuple[str, object], ...] = ()


def select_fileset(domain: Domain, root: Path) -> FileSet:
    """The layout to read: the first (in order of preference) with any file present.

    Choosing once per domain, not per split, is what keeps USPS from mixing its
    two preprocessings: with ``usps.h5`` present both splits come from it.
    When nothing is present the recipe layout is returned (for the error message).
    """
    for fs in domain.filesets:
        if any((root / spec.path).is_file() for spec in fs.files):
            return fs
    return domain.recipe or domain.filesets[0]


def _problems(domain: Domain, choice: RootChoice, train: bool, verify: bool) -> tuple[FileSet, list]:
    fs = select_fileset(domain, choice.path)
    problems = []
    for spec in fs.needed(train):
        what = check_file(choice.path / spec.path, spec, verify)
        if what is not None:
            problems.append((fs.name, spec.describe(), what))
    if problems and all(what == "missing" for _, _, what in problems):
        # Nothing of the chosen layout for this split: list every layout, preferred first.
        problems = [(other.name, s.describe(), "missing") for other in domain.filesets for s in other.needed(train)]
    return fs, problems


_VERIFIED: dict[tuple[str, bool], dict[str, str]] = {}


def verified_files(domains) -> dict[str, str]:
    """``{relative path: md5}`` of the files of ``domains`` that this process has read and verified.

    Run records keep it, so a record names the exact data it was computed from.
    """
    return {path: md5 for name in domains for train in (True, False)
            for path, md5 in sorted(_VERIFIED.get((name, train), {}).items())}


def require_data(domains, root: str | os.PathLike | None = None) -> None:
    """Check (presence, size, checksum) both splits of every domain before a sweep computes anything.

    Raises
    ------
    DataNotFoundError
        The first domain with a missing or corrupt file, with what to do.
    """
    for name in dict.fromkeys(domains):
        for train in (True, False):
            load_raw(name, train, root, verify=True, read=False)


def load_domain(
    name: str, train: bool, root: str | os.PathLike | None = None, *, verify: bool = True
) -> LabeledImages:
    """Load one split of a domain as float tensors.

    Nothing is downloaded: missing data raise :class:`DataNotFoundError`, whose
    message gives the ``lautum data fetch`` command.

    Parameters
    ----------
    name : str
        A key of :data:`~lautum.data.DOMAINS` (``"mnist"``, ``"usps"``, ``"mnist_m"``,
        ``"notmnist"``, ``"svhn"``, ``"cifar10"``, ``"cifar100"``).
    train : bool
        ``True`` for the training split, ``False`` for the test split.
    root : str or path-like, optional
        Data root; default ``$LAUTUM_DATA``, else ``~/.cache/lautum/data``.
    verify : bool, default True
        Also check the checksum of every file read (computed once per process and
        file version, see :func:`~lautum.data.files.cached_digest`); ``False``
        checks presence and size only.

    Returns
    -------
    LabeledImages
        ``x`` float32 (N, C, H, W) in [0, 1], ``y`` int64 (N,), ``classes`` and
        ``name`` ``"<domain>/<train|test>"``. ``info["layout"]`` names the layout read
        (``usps``: ``"h5"`` or ``"libsvm"``).

    Raises
    ------
    DataNotFoundError
        A file is missing, has the wrong size, fails the checksum check
        or cannot be decoded.
    KeyError
        Unknown domain name.
    """
    raw, layout, root_path = load_raw(name, train, root, verify=verify)
    return LabeledImages(
        x=to_unit_float(raw.x),
        y=raw.y.clone(),
        classes=list(raw.classes),
        name=f"{name}/{'train' if train else 'test'}",
        info={"layout": layout, "root": str(root_path), **dict(raw.info)},
    )


def load_raw(
    name: str, train: bool, root: str | os.PathLike | None = None, *, verify: bool = True, read: bool = True
) -> tuple[RawImages | None, str, Path]:
    """Like :func:`load_domain`, but the split as stored (uint8 where possible), shared and read-only.

    ``read=False`` only checks the files (the returned images are ``None``).

    Returns
    -------
    raw : RawImages
        The in-memory cached split: **do not modify its tensors** (index or copy them).
    layout : str
        The layout read.
    root : Path
        The data root used.
    """
    domain = get_domain(name)
    choice = explain_data_root(root)
    fs, problems = _problems(domain, choice, train, verify)
    split = "train" if train else "test"
    if not problems and verify:
        # The latest verified files of each split (a process may read a domain from several roots).
        _VERIFIED[(domain.name, train)] = {spec.path: cached_digest(choice.path / spec.path) for spec in fs.needed(train)}
    # `lautum data fetch` repairs only the layout it downloads; a broken other layout must be restored.
    fetchable = domain.recipe is not None and (fs is domain.recipe or all(w == "missing" for *_, w in problems))
    if problems:
        raise DataNotFoundError(domain, choice, problems, split, fetchable)
    if not read:
        return None, fs.name, choice.path
    try:
        raw = _read_raw(domain.name, fs.name, train, str(choice.path))
    except (OSError, EOFError, RuntimeError, lzma.LZMAError, tarfile.TarError, zlib.error) as exc:
        # Right size but unreadable: corrupt; the md5 check says which file.
        problems = [
            (fs.name, s.describe(), f"present but unreadable ({type(exc).__name__}: {exc})") for s in fs.needed(train)
        ]
        raise DataNotFoundError(domain, choice, problems, split, fs is domain.recipe) from exc
    return raw, fs.name, choice.path


@functools.lru_cache(maxsize=16)
def _read_raw(name: str, layout: str, train: bool, root: str) -> RawImages:
    reader = _READERS[(name, layout)]
    raw = reader(Path(root), train)
    domain = get_domain(name)
    if raw.x.shape[1:] != domain.shape:
        raise RuntimeError(f"{name}: read images of shape {tuple(raw.x.shape[1:])}, the registry says {domain.shape}")
    return raw


def _from_dataset(x, y, classes, channels_last: bool = False) -> RawImages:
    x = torch.as_tensor(np.asarray(x))
    x = x.permute(0, 3, 1, 2).contiguous() if channels_last else (x.unsqueeze(1) if x.ndim == 3 else x)
    return RawImages(x, torch.as_tensor(np.asarray(y), dtype=torch.int64), tuple(classes))


def _mnist(root: Path, train: bool) -> RawImages:
    from torchvision.datasets import MNIST

    ds = MNIST(root, train=train, download=False)
    return _from_dataset(ds.data, ds.targets, get_domain("mnist").classes)


def _usps_libsvm(root: Path, train: bool) -> RawImages:
    from torchvision.datasets import USPS

    ds = USPS(root, train=train, download=False)
    return _from_dataset(ds.data, ds.targets, get_domain("usps").classes)


def _usps_h5(root: Path, train: bool) -> RawImages:
    import h5py

    with h5py.File(root / "usps-alt" / "usps.h5", "r") as f:
        group = f["train" if train else "test"]
        data = np.asarray(group["data"], dtype=np.float32)  # (N, 256) in [0, 1], row-major 16x16
        target = np.asarray(group["target"], dtype=np.int64)
    return RawImages(
        torch.from_numpy(data.reshape(-1, 1, 16, 16)), torch.from_numpy(target), get_domain("usps").classes
    )


def _mnist_m(root: Path, train: bool) -> RawImages:
    split = "train" if train else "test"
    folder = root / "MNIST-M"
    x = _decoded_xz(folder / f"mnist_m_{split}_images.npy.xz", "mnist_m")  # (N, 32, 32, 3) uint8, HWC RGB
    y = np.load(folder / f"mnist_m_{split}_labels.npy")
    return _from_dataset(x, y, get_domain("mnist_m").classes, channels_last=True)


def _decoded_xz(path: Path, folder: str) -> np.ndarray:
    """``np.load`` of an ``.npy.xz`` file through an uncompressed copy in the cache dir.

    Decoding MNIST-M's training images takes 5-10 s; loading the cached ``.npy``
    takes a fraction of a second. The cache key is the file's name, size and
    modification time, so a replaced file is decoded again.
    """
    st = path.stat()
    cache = resolve_cache_dir() / folder / f"{path.name[: -len('.npy.xz')]}-{st.st_size}-{st.st_mtime_ns}.npy"
    if cache.is_file():
        try:
            return np.load(cache)
        except (OSError, ValueError, EOFError):
            pass  # damaged cache: decode again
    with lzma.open(path) as fh:
        x = np.load(fh)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=cache.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                np.save(out, x)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the decoded data are not secret
            os.replace(tmp, cache)  # atomic: never a half-written cache file
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        pass  # an unwritable cache dir only costs time
    return x


def _notmnist(root: Path, train: bool) -> RawImages:
    from lautum.data.notmnist import load_notmnist_arrays

    arrays = load_notmnist_arrays(root / "notMNIST" / "notMNIST_small.tar.gz", resolve_cache_dir())
    split = "train" if train else "test"
    counts = tuple((k, int(v)) for k, v in arrays.items() if k.startswith("n_"))
    raw = _from_dataset(arrays[f"x_{split}"], arrays[f"y_{split}"], get_domain("notmnist").classes)
    return RawImages(raw.x, raw.y, raw.classes, counts)


def _svhn(root: Path, train: bool) -> RawImages:
    from torchvision.datasets import SVHN

    ds = SVHN(root / "SVHN", split="train" if train else "test", download=False)
    return _from_dataset(ds.data, ds.labels, get_domain("svhn").classes)


def _cifar(cls_name: str, name: str):
    def read(root: Path, train: bool) -> RawImages:
        import torchvision.datasets

        ds = getattr(torchvision.datasets, cls_name)(root, train=train, download=False)
        if tuple(ds.classes) != get_domain(name).classes:
            raise RuntimeError(f"{name}: class names in the archive differ from the registry's")
        return _from_dataset(ds.data, ds.targets, ds.classes, channels_last=True)

    return read


_READERS = {
    ("mnist", "torchvision"): _mnist,
    ("usps", "h5"): _usps_h5,
    ("usps", "libsvm"): _usps_libsvm,
    ("mnist_m", "npy"): _mnist_m,
    ("notmnist", "tarball"): _notmnist,
    ("svhn", "torchvision"): _svhn,
    ("cifar10", "torchvision"): _cifar("CIFAR10", "cifar10"),
    ("cifar100", "torchvision"): _cifar("CIFAR100", "cifar100"),
}

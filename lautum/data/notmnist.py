"""notMNIST_small: extract once, decode, remove duplicate images, split train/test.

notMNIST_small has no official split, and many of its glyphs are pixel-identical
copies (the same font rendered twice). A naive random split puts copies of one
image on both sides and inflates test accuracy, so duplicates are removed
**before** splitting:

1. The archive is extracted once into the cache dir (atomically: into a temporary
   folder, then renamed). The two 0-byte PNGs (``A/RGVtb2NyYXRpY2FCb2xkT2xkc3R5bGUgQm9sZC50dGY=.png``,
   ``F/Q3Jvc3NvdmVyIEJvbGRPYmxpcXVlLnR0Zg==.png``) are skipped; every other file
   must decode to a 28x28 grey image.
2. Files are visited in sorted order (letter, then file name). Images whose
   pixel arrays are byte-identical form a group. A group whose copies all carry
   one letter keeps its first file. A group whose copies carry **different
   letters** is dropped entirely: its label is ambiguous, and keeping any copy
   would teach one letter with another letter's glyph.
3. Each letter's remaining images are split 80/20 (``round(0.2 * n)`` to test):
   they are ordered by ``blake2b(SPLIT_SEED || pixels)`` and the first ones go to
   test. This depends only on the pixels and the seed, not on a NumPy or torch
   random stream, so it is identical on every platform and version.

On the offline archive (18726 files): 18724 readable images, 18232 distinct pixel
arrays (236 groups of copies, 492 surplus copies; one blank all-white image
appears 254 times under I), two groups (8 files, letters B/C/G/H/I/J and I/J)
span several letters and are dropped, leaving 18230 images: 14584 train and
3646 test.

The result is cached as an ``.npz`` under ``<cache dir>/notmnist/`` (written
atomically), keyed by the archive's size, ``SPLIT_SEED``, ``TEST_FRACTION`` and
``FORMAT_VERSION``.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["SPLIT_SEED", "TEST_FRACTION", "FORMAT_VERSION", "load_notmnist_arrays", "extract_notmnist"]

#: Seed of the train/test split (the date notMNIST was published, 2011-09-08).
SPLIT_SEED = 20110908
#: Fraction of each letter's de-duplicated images that goes to test.
TEST_FRACTION = 0.2
#: Bump when the decoding, de-duplication or split rule changes (invalidates caches).
FORMAT_VERSION = 1

LETTERS = "ABCDEFGHIJ"
TOP = "notMNIST_small"


def extract_notmnist(tarball: Path, cache_dir: Path) -> Path:
    """Extract the archive once into the cache dir and return ``.../notMNIST_small``.

    The extraction goes into a temporary sibling folder that is renamed into
    place, so an interrupted run never leaves a half-extracted tree behind.
    """
    final = cache_dir / "notmnist" / f"extracted-{tarball.stat().st_size}"
    if (final / TOP).is_dir():
        return final / TOP
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=final.parent))
    try:
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="data")  # "data" refuses absolute paths and links out of tmp
        if not (tmp / TOP).is_dir():
            raise OSError(f"{tarball} has no top folder {TOP}/")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / TOP).is_dir():  # not a concurrent extraction that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / TOP


def _decode(folder: Path) -> tuple[list[str], list[int], list[np.ndarray], int]:
    """Every non-empty PNG in sorted order: names, labels, pixel arrays, and the count of empty files."""
    from PIL import Image

    names, labels, images, n_empty = [], [], [], 0
    for label, letter in enumerate(LETTERS):
        for path in sorted((folder / letter).glob("*.png")):
            data = path.read_bytes()
            if not data:  # the two known 0-byte files
                n_empty += 1
                continue
            with Image.open(io.BytesIO(data)) as im:
                arr = np.asarray(im.convert("L") if im.mode != "L" else im)
            if arr.shape != (28, 28):
                raise OSError(f"{path}: expected a 28x28 grey image, got shape {arr.shape}")
            names.append(f"{letter}/{path.name}")
            labels.append(label)
            images.append(arr)
    return names, labels, images, n_empty


def build_notmnist_arrays(folder: Path) -> dict[str, np.ndarray]:
    """Decode, de-duplicate and split an extracted ``notMNIST_small`` folder (see the module docstring).

    Returns
    -------
    dict of str to numpy.ndarray
        ``x_train`` uint8 (N, 28, 28), ``y_train`` int64 (N,), ``names_train`` (N,)
        (``"A/<file>.png"``), the same for ``test``, and the integer counts
        ``n_files``, ``n_empty``, ``n_readable``, ``n_distinct``, ``n_surplus_copies``,
        ``n_conflict_groups``, ``n_conflict_files``, ``n_kept``.
    """
    names, labels, images, n_empty = _decode(folder)
    groups: dict[bytes, list[int]] = defaultdict(list)
    for i, arr in enumerate(images):
        groups[arr.tobytes()].append(i)
    keep, n_conflict_groups, n_conflict_files = [], 0, 0
    for members in groups.values():
        if len({labels[i] for i in members}) > 1:
            n_conflict_groups += 1
            n_conflict_files += len(members)
        else:
            keep.append(members[0])  # first in sorted file order
    keep.sort()

    seed = SPLIT_SEED.to_bytes(8, "little")
    test: list[int] = []
    for label in range(len(LETTERS)):
        idx = [i for i in keep if labels[i] == label]
        idx.sort(key=lambda i: hashlib.blake2b(seed + images[i].tobytes(), digest_size=16).digest())
        test.extend(idx[: round(TEST_FRACTION * len(idx))])
    test_set = set(test)
    train_idx = [i for i in keep if i not in test_set]
    test_idx = sorted(test_set)

    def pack(idx):
        return (
            np.stack([images[i] for i in idx]).astype(np.uint8),
            np.asarray([labels[i] for i in idx], dtype=np.int64),
            np.asarray([names[i] for i in idx]),
        )

    out = {}
    for split, idx in (("train", train_idx), ("test", test_idx)):
        out[f"x_{split}"], out[f"y_{split}"], out[f"names_{split}"] = pack(idx)
    counts = {
        "n_files": len(images) + n_empty,
        "n_empty": n_empty,
        "n_readable": len(images),
        "n_distinct": len(groups),
        "n_surplus_copies": len(images) - len(groups),
        "n_conflict_groups": n_conflict_groups,
        "n_conflict_files": n_conflict_files,
        "n_kept": len(keep),
    }
    out.update({k: np.asarray(v, dtype=np.int64) for k, v in counts.items()})
    return out


def load_notmnist_arrays(tarball: Path, cache_dir: Path) -> dict[str, np.ndarray]:
    """The de-duplicated split, from the ``.npz`` cache or built (and cached) from the archive.

    Parameters
    ----------
    tarball : Path
        ``notMNIST_small.tar.gz`` (read only).
    cache_dir : Path
        Writable cache directory (see :func:`~lautum.data.root.resolve_cache_dir`).

    Returns
    -------
    dict of str to numpy.ndarray
        See :func:`build_notmnist_arrays`.
    """
    size = tarball.stat().st_size
    cache = cache_dir / "notmnist" / f"small-{size}-v{FORMAT_VERSION}-seed{SPLIT_SEED}-test{TEST_FRACTION}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            pass  # a damaged cache file is rebuilt below
    arrays = build_notmnist_arrays(extract_notmnist(tarball, cache_dir))
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=cache.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the decoded data are not secret
        os.replace(tmp, cache)  # atomic: readers see the old file or the complete new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return arrays

"""notMNIST de-duplication and split rules, on a small synthetic archive with known duplicates."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from lautum.data import notmnist


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def archive(tmp_path):
    """10 distinct images per letter, plus: a copy inside A, a glyph shared by B and C, a 0-byte file."""
    rng = np.random.default_rng(0)
    files = {}
    for letter in notmnist.LETTERS:
        for i in range(10):
            files[f"{letter}/img{i:02d}.png"] = _png(rng.integers(0, 256, (28, 28), dtype=np.uint8))
    files["A/zz-copy.png"] = files["A/img03.png"]  # same letter: keep the first (img03)
    shared = _png(np.full((28, 28), 7, dtype=np.uint8))
    files["B/shared.png"] = files["C/shared.png"] = shared  # two letters: drop both
    files["D/empty.png"] = b""  # like the two known 0-byte files
    path = tmp_path / "notMNIST_small.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"notMNIST_small/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_dedup_and_split(archive, tmp_path):
    a = notmnist.load_notmnist_arrays(archive, tmp_path / "cache")
    counts = {k: int(v) for k, v in a.items() if k.startswith("n_")}
    assert counts == {
        "n_files": 104,
        "n_empty": 1,
        "n_readable": 103,
        "n_distinct": 101,
        "n_surplus_copies": 2,
        "n_conflict_groups": 1,
        "n_conflict_files": 2,
        "n_kept": 100,
    }
    names = set(a["names_train"]) | set(a["names_test"])
    assert "A/img03.png" in names and "A/zz-copy.png" not in names
    assert not {"B/shared.png", "C/shared.png"} & names
    assert len(a["x_test"]) == 20 and np.bincount(a["y_test"]).tolist() == [2] * 10  # round(0.2 * 10) per letter
    assert a["x_train"].shape == (80, 28, 28) and a["x_train"].dtype == np.uint8
    train = {x.tobytes() for x in a["x_train"]}
    assert not train & {x.tobytes() for x in a["x_test"]}


def test_extracted_once_and_cached(archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = notmnist.load_notmnist_arrays(archive, cache)
    extracted = list((cache / "notmnist").glob("extracted-*/notMNIST_small"))
    assert len(extracted) == 1 and (extracted[0] / "A" / "img00.png").is_file()
    assert not list(cache.rglob(".tmp-*")) and not list(cache.rglob(".extract-*"))  # atomic writes left nothing
    # The second call reads the .npz: it neither extracts nor decodes.
    monkeypatch.setattr(notmnist, "build_notmnist_arrays", lambda *a: pytest.fail("rebuilt"))
    monkeypatch.setattr(notmnist, "extract_notmnist", lambda *a: pytest.fail("extracted again"))
    second = notmnist.load_notmnist_arrays(archive, cache)
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_split_is_deterministic(archive, tmp_path):
    a = notmnist.load_notmnist_arrays(archive, tmp_path / "c1")
    b = notmnist.load_notmnist_arrays(archive, tmp_path / "c2")
    assert list(a["names_test"]) == list(b["names_test"])

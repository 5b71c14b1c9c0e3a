"""Each offline domain loads with the documented shapes, counts and classes; missing or corrupt data fail clearly."""

from __future__ import annotations

import shutil

import pytest
import torch

from lautum.data import DataNotFoundError, data_status, load_domain
from lautum.data.domains import DIGITS


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    # Derived files (decoded MNIST-M, extracted notMNIST) go to a per-session folder, not ~/.cache.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAUTUM_CACHE", str(tmp_path_factory.getbasetemp() / "lautum-cache"))
        yield


def _check(d, n, shape, classes, name):
    assert d.x.shape == (n, *shape)
    assert d.x.dtype == torch.float32 and d.y.dtype == torch.int64
    assert d.x.min() >= 0 and d.x.max() <= 1 and d.x.max() > 0.5
    assert d.y.min() == 0 and d.y.max() == len(classes) - 1
    assert d.classes == list(classes)
    assert (d.class_counts() > 0).all()
    assert d.name == name


@pytest.mark.parametrize("train, n", [(True, 60000), (False, 10000)])
def test_mnist(shared_data, train, n):
    d = load_domain("mnist", train, shared_data)
    _check(d, n, (1, 28, 28), DIGITS, f"mnist/{'train' if train else 'test'}")


@pytest.mark.parametrize("train, n", [(True, 7291), (False, 2007)])
def test_usps_reads_the_h5_copy_for_both_splits(shared_data, train, n):
    d = load_domain("usps", train, shared_data)
    _check(d, n, (1, 16, 16), DIGITS, f"usps/{'train' if train else 'test'}")
    assert d.info["layout"] == "h5"  # never the LIBSVM test file next to it


def test_usps_falls_back_to_libsvm_without_the_h5(shared_data, tmp_path):
    shutil.copy(shared_data / "usps.t.bz2", tmp_path / "usps.t.bz2")
    test = load_domain("usps", False, tmp_path)
    assert test.info["layout"] == "libsvm" and test.x.shape == (2007, 1, 16, 16)
    # Same digits, same order, as the h5 copy.
    assert torch.equal(test.y, load_domain("usps", False, shared_data).y)
    with pytest.raises(DataNotFoundError, match="usps.bz2"):
        load_domain("usps", True, tmp_path)


@pytest.fixture
def mnist_m_train(shared_data):
    # Decoding takes 5-10 s; load_domain keeps the decoded split in memory, so only the first use pays.
    return load_domain("mnist_m", True, shared_data)


def test_mnist_m(shared_data, mnist_m_train):
    _check(mnist_m_train, 59001, (3, 32, 32), DIGITS, "mnist_m/train")
    test = load_domain("mnist_m", False, shared_data)
    _check(test, 9001, (3, 32, 32), DIGITS, "mnist_m/test")
    # README: the labels equal MNIST's first 59001 / 9001 labels.
    assert torch.equal(mnist_m_train.y, load_domain("mnist", True, shared_data).y[:59001])
    assert torch.equal(test.y, load_domain("mnist", False, shared_data).y[:9001])


def test_loads_return_fresh_tensors(shared_data):
    a = load_domain("usps", False, shared_data)
    a.x.zero_()
    a.y.zero_()
    b = load_domain("usps", False, shared_data)
    assert b.x.max() > 0 and b.y.max() == 9


@pytest.fixture
def notmnist(shared_data):
    return load_domain("notmnist", True, shared_data), load_domain("notmnist", False, shared_data)


def test_notmnist_counts(notmnist):
    train, test = notmnist
    _check(train, 14584, (1, 28, 28), "ABCDEFGHIJ", "notmnist/train")
    _check(test, 3646, (1, 28, 28), "ABCDEFGHIJ", "notmnist/test")
    info = train.info
    assert info["n_files"] == 18726 and info["n_empty"] == 2 and info["n_readable"] == 18724
    assert info["n_distinct"] == 18232  # distinct images of notMNIST_small (the book's data page)
    assert info["n_conflict_groups"] == 2 and info["n_conflict_files"] == 8
    assert info["n_kept"] == 18230 == len(train) + len(test)
    # Stratified: about 20 % of every letter in test.
    frac = test.class_counts() / (train.class_counts() + test.class_counts())
    assert torch.allclose(frac, torch.full_like(frac, 0.2), atol=0.002)


def test_notmnist_has_no_image_twice(notmnist):
    train, test = notmnist

    def as_bytes(d):
        return [row.tobytes() for row in (d.x * 255).round().to(torch.uint8).flatten(1).numpy()]

    tr, te = as_bytes(train), as_bytes(test)
    assert len(set(tr)) == len(tr) and len(set(te)) == len(te)
    assert not set(tr) & set(te)


def test_unknown_domain():
    with pytest.raises(KeyError, match="known: mnist, usps"):
        load_domain("mnistm", True)


@pytest.mark.parametrize("name", ["mnist", "usps", "mnist_m", "notmnist", "svhn", "cifar10", "cifar100"])
def test_missing_data_message(tmp_path, monkeypatch, name):
    monkeypatch.setenv("LAUTUM_DATA", str(tmp_path / "from-env"))
    with pytest.raises(DataNotFoundError) as info:
        load_domain(name, True, tmp_path)
    err = info.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    assert repr(name) in msg
    assert f"lautum data fetch {name} --root {tmp_path}" in msg  # the exact command
    # The rules searched, with their values.
    assert "root= argument" in msg and str(tmp_path / "from-env") in msg and "~/.cache/lautum/data" in msg
    assert "missing" in msg
    if name == "mnist_m":
        assert "no public URL" in msg


def test_missing_data_message_from_env_root(tmp_path, monkeypatch):
    monkeypatch.setenv("LAUTUM_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="usps-alt/usps.h5") as info:
        load_domain("usps", False)
    assert f"--root {tmp_path}" in str(info.value) and "<- in use" in str(info.value)


def _flip_bytes(path, offset_fraction=0.5, n=64):
    data = bytearray(path.read_bytes())
    at = int(len(data) * offset_fraction)
    data[at : at + n] = bytes(b ^ 0xFF for b in data[at : at + n])
    path.write_bytes(bytes(data))


def test_corrupt_file_is_caught_by_verify(shared_data, tmp_path):
    (tmp_path / "usps-alt").mkdir()
    copy = tmp_path / "usps-alt" / "usps.h5"
    shutil.copy(shared_data / "usps-alt" / "usps.h5", copy)
    _flip_bytes(copy)  # same size: only the checksum can tell
    with pytest.raises(
        DataNotFoundError, match=r"md5 [0-9a-f]{32} .*expected md5 355df6b942eb766252e0340bc019b0b9"
    ) as info:
        load_domain("usps", True, tmp_path, verify=True)
    assert "corrupt" in str(info.value)
    status = {s.name: s for s in data_status(tmp_path)}["usps"]
    assert status.present and not status.verified and status.corrupt


def test_truncated_file_is_caught_without_verify(shared_data, tmp_path):
    (tmp_path / "MNIST-M").mkdir()
    src = shared_data / "MNIST-M" / "mnist_m_test_labels.npy"
    (tmp_path / "MNIST-M" / "mnist_m_test_labels.npy").write_bytes(src.read_bytes()[:-10])
    with pytest.raises(DataNotFoundError, match=r"size 9119 bytes, expected 9129"):
        load_domain("mnist_m", False, tmp_path)


def test_verify_passes_on_good_data(shared_data):
    assert len(load_domain("usps", False, shared_data, verify=True)) == 2007


def test_data_status_offline(shared_data):
    status = {s.name: s for s in data_status(shared_data)}
    for name in ("mnist", "usps", "mnist_m", "notmnist"):
        assert status[name].present and status[name].verified, status[name]
    assert status["usps"].layout == "h5"
    for name in ("svhn", "cifar10", "cifar100"):
        assert not status[name].present and status[name].missing
    assert not status["mnist_m"].fetchable and status["cifar10"].fetchable


def test_loading_never_writes_into_the_data_root(shared_data, tmp_path, monkeypatch):
    root, cache = tmp_path / "root", tmp_path / "cache"
    (root / "MNIST-M").mkdir(parents=True)
    for split in ("test",):
        for suffix in ("images.npy.xz", "labels.npy"):
            name = f"mnist_m_{split}_{suffix}"
            shutil.copy(shared_data / "MNIST-M" / name, root / "MNIST-M" / name)
    before = sorted(root.rglob("*"))
    monkeypatch.setenv("LAUTUM_CACHE", str(cache))
    d = load_domain("mnist_m", False, root)
    assert sorted(root.rglob("*")) == before
    # The decoded copy went to the cache dir, written atomically (no temporary file left).
    assert [p.suffix for p in (cache / "mnist_m").iterdir()] == [".npy"]
    assert torch.equal(d.x, load_domain("mnist_m", False, shared_data).x)


def test_a_load_verifies_checksums_by_default_once_per_file_version(shared_data, tmp_path, monkeypatch):
    from lautum.data import files

    (tmp_path / "usps-alt").mkdir()
    copy = tmp_path / "usps-alt" / "usps.h5"
    shutil.copy(shared_data / "usps-alt" / "usps.h5", copy)
    _flip_bytes(copy)
    with pytest.raises(DataNotFoundError, match=r"md5 [0-9a-f]{32}"):
        load_domain("usps", False, tmp_path)  # no verify=True: the default checks the checksum
    computed = []
    real = files.file_digest
    monkeypatch.setattr(files, "file_digest", lambda *a, **k: computed.append(a) or real(*a, **k))
    load_domain("usps", False, shared_data)
    load_domain("usps", True, shared_data)
    assert len({c[0] for c in computed}) <= 1  # at most once (zero if an earlier test computed it)


def test_verified_files_name_the_data_a_run_read(shared_data):
    from lautum.data.readers import verified_files

    load_domain("usps", False, shared_data)
    load_domain("usps", True, shared_data)
    assert verified_files(["usps"]) == {"usps-alt/usps.h5": "355df6b942eb766252e0340bc019b0b9"}
    assert verified_files(["no-such-domain"]) == {}

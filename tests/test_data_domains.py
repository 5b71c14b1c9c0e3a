"""The registry agrees with torchvision's URLs/md5s and with the offline data's MD5SUMS."""

from __future__ import annotations

import pytest
import torchvision.datasets as tvd

from lautum.data import DOMAINS, get_domain


def _spec(domain, path):
    for fs in get_domain(domain).filesets:
        for spec in fs.files:
            if spec.path == path:
                return spec
    raise AssertionError(f"{path} not in {domain}")


def test_every_domain_is_described():
    assert set(DOMAINS) == {"mnist", "usps", "mnist_m", "notmnist", "svhn", "cifar10", "cifar100"}
    for d in DOMAINS.values():
        assert d.name and d.title and d.source
        assert d.shape[0] in (1, 3)
        assert len(set(d.classes)) == len(d.classes)
        for fs in d.filesets:
            for spec in fs.files:
                assert spec.checksums, spec.path
                assert not spec.path.startswith("/")
    assert len(DOMAINS["cifar100"].classes) == 100
    assert DOMAINS["cifar100"].classes == tuple(sorted(DOMAINS["cifar100"].classes))


def test_recipes():
    # Everything can be fetched except MNIST-M (no public URL for its arrays).
    assert {n for n, d in DOMAINS.items() if d.recipe is None} == {"mnist_m"}
    # USPS: the h5 copy is preferred for reading, LIBSVM is what fetch downloads.
    usps = DOMAINS["usps"]
    assert [fs.name for fs in usps.filesets] == ["h5", "libsvm"]
    assert usps.recipe.name == "libsvm"


def test_mnist_matches_torchvision():
    for filename, md5 in tvd.MNIST.resources:
        spec = _spec("mnist", f"MNIST/raw/{filename}")
        assert spec.md5 == md5
        assert spec.urls == tuple(m + filename for m in tvd.MNIST.mirrors)


def test_usps_and_svhn_match_torchvision():
    for url, filename, md5 in tvd.USPS.split_list.values():
        spec = _spec("usps", filename)
        assert (spec.urls, spec.md5) == ((url,), md5)
    for split in ("train", "test"):
        url, filename, md5 = tvd.SVHN.split_list[split]
        spec = _spec("svhn", f"SVHN/{filename}")
        assert (spec.urls, spec.md5) == ((url,), md5)


@pytest.mark.parametrize("name, cls", [("cifar10", tvd.CIFAR10), ("cifar100", tvd.CIFAR100)])
def test_cifar_matches_torchvision(name, cls):
    tar = _spec(name, cls.filename)
    assert (tar.urls, tar.md5) == ((cls.url,), cls.tgz_md5)
    for filename, md5 in cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]]:
        spec = _spec(name, f"{cls.base_folder}/{filename}")
        assert spec.md5 == md5 and spec.derived_from == cls.filename


def test_registry_matches_offline_md5sums(shared_data):
    listed = {}
    for line in (shared_data / "MD5SUMS").read_text().splitlines():
        md5, path = line.split(maxsplit=1)
        listed[path.removeprefix("./")] = md5
    known = {spec.path: spec for d in DOMAINS.values() for fs in d.filesets for spec in fs.files}
    checked = 0
    for path, md5 in listed.items():
        if path in known:
            assert md5 in {c.digest for c in known[path].checksums}, path
            checked += 1
    assert checked == 15  # 8 MNIST, 4 MNIST-M, usps.h5, usps.t.bz2, the notMNIST archive
    # The only offline files no reader needs: MNIST-M's original label text files.
    assert set(listed) - set(known) == {"MNIST-M/mnist_m_train_labels.txt", "MNIST-M/mnist_m_test_labels.txt"}

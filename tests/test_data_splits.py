"""make_transfer_split: seeded, disjoint, exactly k per class, on the right device, harmonised shapes."""

from __future__ import annotations

import pytest
import torch

from lautum.data import make_transfer_split

QUICK = dict(n_source_train=300, n_source_test=100, n_unlabeled=400, n_target_test=200)
PARTS = ("source_train", "source_test", "target_labeled", "target_unlabeled", "target_test", "target_val")


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    # Derived files (decoded MNIST-M, extracted notMNIST) go to a per-session folder, not ~/.cache.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAUTUM_CACHE", str(tmp_path_factory.getbasetemp() / "lautum-cache"))
        yield


def _usps_to_mnist(root, seed=0, k=5, **kw):
    return make_transfer_split("usps", "mnist", k, seed=seed, root=root, **{"n_val_per_class": 3, **QUICK, **kw})


def test_same_seed_same_tensors(shared_data):
    a, b = _usps_to_mnist(shared_data), _usps_to_mnist(shared_data)
    for part in PARTS:
        pa, pb = getattr(a, part), getattr(b, part)
        assert torch.equal(pa.x, pb.x) and torch.equal(pa.y, pb.y) and torch.equal(pa.index, pb.index), part


def test_different_seed_different_selection(shared_data):
    a, b = _usps_to_mnist(shared_data, seed=0), _usps_to_mnist(shared_data, seed=1)
    for part in PARTS:
        assert not torch.equal(getattr(a, part).index, getattr(b, part).index), part


def test_global_rng_untouched(shared_data):
    state = torch.random.get_rng_state()
    _usps_to_mnist(shared_data)
    assert torch.equal(state, torch.random.get_rng_state())


def test_exactly_k_per_class_and_nested_in_k(shared_data):
    small, large = _usps_to_mnist(shared_data, k=3), _usps_to_mnist(shared_data, k=20)
    assert small.target_labeled.class_counts().tolist() == [3] * 10
    assert large.target_labeled.class_counts().tolist() == [20] * 10
    # The same seed's k=3 set is inside its k=20 set (comparisons across k stay paired).
    assert set(small.target_labeled.index.tolist()) <= set(large.target_labeled.index.tolist())
    # The source, validation and test subsets do not depend on k.
    assert torch.equal(small.target_val.index, large.target_val.index)
    assert torch.equal(small.source_train.index, large.source_train.index)
    assert torch.equal(small.target_test.index, large.target_test.index)


def test_subset_sizes_and_full_sizes(shared_data):
    s = _usps_to_mnist(shared_data, k=5)
    assert s.summary() | {} == s.describe()
    summary = s.summary()
    assert (summary["n_source_train"], summary["n_source_test"]) == (300, 100)
    assert (summary["n_target_labeled"], summary["n_target_unlabeled"], summary["n_target_test"]) == (50, 400, 200)
    assert summary["n_target_val"] == 30 and s.target_val.class_counts().tolist() == [3] * 10
    assert summary["source_layout"] == "h5"
    full = make_transfer_split("mnist", "usps", 10, seed=0, root=shared_data)
    assert len(full.source_train) == 60000 and len(full.source_test) == 10000
    assert len(full.target_labeled) + len(full.target_unlabeled) == 7291 and len(full.target_test) == 2007
    assert len(full.target_val) == 0


def test_labeled_and_unlabeled_are_disjoint(shared_data):
    # notMNIST is de-duplicated, so disjoint indices must also mean disjoint images.
    s = make_transfer_split(
        "mnist", "notmnist", 20, seed=3, root=shared_data, n_source_train=100, n_source_test=100, n_val_per_class=10
    )
    lab, unl, val = s.target_labeled, s.target_unlabeled, s.target_val
    ids = [set(d.index.tolist()) for d in (lab, unl, val)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert len(lab) + len(unl) + len(val) == 14584  # all of the target training split is used

    def as_bytes(x):
        return {row.numpy().tobytes() for row in (x * 255).round().to(torch.uint8).flatten(1)}

    images = [as_bytes(d.x) for d in (lab, unl, val)]
    assert not images[0] & images[1] and not images[0] & images[2] and not images[1] & images[2]
    assert not s.shared_label_space and s.target_classes == list("ABCDEFGHIJ")


def test_too_large_k(shared_data):
    # USPS's two rarest training classes: 5 (556 images) and 8 (542).
    with pytest.raises(
        ValueError, match=r"class '5' has only 556, class '8' has only 542 training images, fewer than k=600"
    ):
        make_transfer_split("mnist", "usps", 600, seed=0, root=shared_data)
    assert len(make_transfer_split("mnist", "usps", 542, seed=0, root=shared_data).target_labeled) == 5420
    with pytest.raises(
        ValueError, match=r"class '8' has only 542 training images, fewer than k=500 .* plus 50 validation"
    ):
        make_transfer_split("mnist", "usps", 500, seed=0, root=shared_data, n_val_per_class=50)


@pytest.mark.parametrize("kw", [dict(n_unlabeled=10**6), dict(n_source_train=60001), dict(n_target_test=-1)])
def test_too_large_subsets(shared_data, kw):
    with pytest.raises(ValueError, match="asked for"):
        make_transfer_split("mnist", "usps", 5, seed=0, root=shared_data, **kw)


def test_tensors_on_device(shared_data, device):
    s = _usps_to_mnist(shared_data, device=device)
    for part in PARTS:
        d = getattr(s, part)
        assert d.x.device.type == device.type and d.y.device.type == device.type, part
        assert d.x.dtype == torch.float32 and d.y.dtype == torch.int64
    assert s.summary()["device"].startswith(device.type)


def test_grey_28_to_rgb_32(shared_data):
    s = make_transfer_split("mnist", "mnist_m", 5, seed=0, root=shared_data, n_val_per_class=2, **QUICK)
    assert (s.image_size, s.channels) == ((32, 32), 3)  # the target's size, the larger channel count
    for part in PARTS:
        x = getattr(s, part).x
        assert x.shape[1:] == (3, 32, 32), part
        assert 0 <= x.min() and x.max() <= 1
    # Grey source images are repeated over the three channels.
    x = s.source_train.x
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    assert s.shared_label_space


def test_explicit_size_and_grey(shared_data):
    s = make_transfer_split("mnist", "mnist_m", 2, seed=0, root=shared_data, image_size=28, channels=1, **QUICK)
    for part in PARTS:
        assert getattr(s, part).x.shape[1:] == (1, 28, 28), part
    # MNIST at its own size is unchanged.
    from lautum.data import load_domain

    mnist = load_domain("mnist", True, shared_data)
    assert torch.equal(s.source_train.x, mnist.x[s.source_train.index])

"""The L2-SP experiment on tiny real data: scaled-down grid, full-scale code path, clear failures, bench."""

from __future__ import annotations

import socket

import pytest
import torch

from lautum.cli import main
from lautum.experiments import full_scale, get_experiment
from lautum.experiments import l2sp_paper as L
from lautum.models import freeze_first_blocks, small_cnn
from lautum.records import load_records

TINY = dict(targets=("notmnist",), alphas=(1.0,), seeds=(0,), ks=(3,), finetune_steps=6, n_source_train=300,
            n_target_test=60, n_val_per_class=2, source_epochs=1, width=4, feature_dim=8, fisher_samples=16,
            device="cpu")


@pytest.fixture(scope="module")
def tiny_records(tmp_path_factory):
    import os

    from conftest import SHARED_DATA

    if not (SHARED_DATA / "MD5SUMS").exists():
        pytest.skip(f"offline data not found at {SHARED_DATA}")
    tmp = tmp_path_factory.mktemp("l2sp")
    old = {k: os.environ.get(k) for k in ("LAUTUM_DATA", "LAUTUM_CACHE")}
    os.environ["LAUTUM_DATA"], os.environ["LAUTUM_CACHE"] = str(SHARED_DATA), str(tmp / "cache")
    try:
        args = ["run", "l2sp-paper", "--profile", "quick", "--quiet", "--results-dir", str(tmp / "results")]
        for key, value in TINY.items():
            value = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            args += ["--set", f"{key}={value}"]
        assert main(args) == 0
        yield {r["method"]: r for r in load_records(tmp / "results" / "l2sp-paper" / "quick")}, tmp
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_registered_and_profiles_validate():
    assert get_experiment("l2sp-paper") is L
    cfg = L.make_config("medium")
    assert len(cfg.seeds) >= 5 and set(cfg.methods) == set(L.METHODS)
    assert L.make_config("full").arch == "resnet101" and L.make_config("full").finetune_steps == 9000
    with pytest.raises(ValueError, match="unknown method"):
        L.make_config("quick", methods=("l2", "sgd"))


def test_grid_writes_one_record_per_method_with_layer_distances(tiny_records):
    recs, tmp = tiny_records
    assert sorted(recs) == sorted(L.METHODS)
    for rec in recs.values():
        m = rec["metrics"]
        assert 0 <= m["target_test_acc"] <= 1 and 0 <= m["target_val_acc"] <= 1
        assert m["finetune_steps"] == 6 and m["n_target_labeled"] == 30
        assert {"dist/features.0.weight", "reldist/features.4.weight", "dist/features.8.weight"} <= set(m)
    # One source model per seed, shared by every method (the chapters' shared cache).
    assert len(list((tmp / "cache" / "models").glob("source-*.pt"))) == 1
    # Strong L2 pulls the kernels towards 0, L2-SP towards w0: L2-SP ends closer to the start.
    for name in ("features.4.weight", "features.8.weight"):
        assert recs["l2sp"]["metrics"][f"dist/{name}"] < recs["l2"]["metrics"][f"dist/{name}"]
    # Freezing keeps the first block exactly at w0.
    assert recs["l2-freeze"]["metrics"]["dist/features.0.weight"] == 0.0
    assert recs["l2sp-freeze"]["metrics"]["n_frozen_tensors"] == 3  # conv kernel, BN gamma and beta
    assert recs["l2sp-fisher"]["metrics"]["fisher_samples"] == 16


def test_freezing_keeps_batchnorm_statistics():
    net = small_cnn(10, width=4, feature_dim=8)
    frozen = freeze_first_blocks(net, 1)
    assert frozen == ["features.0.weight", "features.1.weight", "features.1.bias"]
    net.train()
    assert not net.features[1].training and net.features[4].training
    before = net.features[1].running_mean.clone()
    net(torch.rand(8, 1, 28, 28))
    assert torch.equal(before, net.features[1].running_mean)
    with pytest.raises(ValueError, match="blocks"):
        freeze_first_blocks(small_cnn(10), 5)



def test_full_scale_path_runs_on_small_real_data(shared_data, tmp_path, monkeypatch):
    """The ResNet / torchvision path end to end: untrained ResNet-18, 2 steps, upsampled USPS."""
    monkeypatch.setenv("LAUTUM_DATA", str(shared_data))
    monkeypatch.setenv("LAUTUM_CACHE", str(tmp_path / "cache"))
    cfg = L.make_config("full", arch="resnet18", pretrained=False, targets=("usps",), ks=(2,), seeds=(0,),
                        alphas=(0.01,), methods=("l2sp-fisher", "l2sp-freeze"), finetune_steps=2,
                        finetune_batch_size=8, image_size=32, n_target_test=16, n_val_per_class=1,
                        fisher_source="mnist", fisher_samples=2, device="cpu")
    # allow_dirty: a "full"-profile record from a developer's working tree, written to a temporary folder
    table = L.run(cfg, results_dir=tmp_path / "results", progress=False, allow_dirty=True)
    assert sorted(table["method"]) == ["l2sp-fisher", "l2sp-freeze"]
    rec = {r["method"]: r for r in load_records(tmp_path / "results")}
    m = rec["l2sp-freeze"]["metrics"]
    assert m["finetune_steps"] == 2 and m["lr_drop_step"] == 1 and m["n_target_test"] == 16
    assert m["dist/features.conv1.weight"] == 0.0 and m["n_frozen_tensors"] == 3
    assert m["dist/features.layer4.1.conv2.weight"] > 0
    assert rec["l2sp-fisher"]["metrics"]["fisher_samples"] == 2
    assert "upsampled" in rec["l2sp-fisher"]["provenance"]["target_note"]


def _no_internet(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_missing_weights_fail_with_the_hub_cache_path(monkeypatch, tmp_path):
    from lautum.models import resnet

    _no_internet(monkeypatch, tmp_path)
    hub = str(tmp_path / "torch-home" / "hub")
    with pytest.raises(RuntimeError, match="checkpoints") as err:
        resnet("resnet18", 10, pretrained=True)
    assert hub in str(err.value)
    with pytest.raises(full_scale.FullScaleDataError) as err:
        full_scale.build_model("resnet18", 10, pretrained=True)
    assert hub in str(err.value) and "resnet18-f37072fd.pth" in str(err.value)


def test_missing_full_scale_data_name_the_fetch_step(tmp_path):
    cfg = L.make_config("full")
    with pytest.raises(full_scale.FullScaleDataError, match=r"Caltech256\(.*download=True") as err:
        full_scale.load_target("caltech256-30", cfg, data_dir=tmp_path)
    assert str(tmp_path / "caltech256" / "256_ObjectCategories") in str(err.value)
    with pytest.raises(full_scale.FullScaleDataError, match="vision.stanford.edu"):
        full_scale.load_target("stanford-dogs", cfg, data_dir=tmp_path)
    with pytest.raises(full_scale.FullScaleDataError, match="TrainImages.txt"):
        full_scale.load_target("mit-indoor67", cfg, data_dir=tmp_path)
    with pytest.raises(full_scale.FullScaleDataError, match="imagenet_dir"):
        full_scale._fisher_inputs(cfg, tmp_path, torch.device("cpu"))


def test_caltech_split_follows_the_official_code(tmp_path):
    from PIL import Image

    folder = tmp_path / "caltech256" / "256_ObjectCategories"
    for c, n in (("001.ak47", 82), ("257.clutter", 80)):
        (folder / c).mkdir(parents=True)
        for i in range(1, n + 1):
            Image.new("RGB", (8, 8)).save(folder / c / f"{c[:3]}_{i:04d}.jpg")
    (folder / "001.ak47" / "RENAME2").write_text("stray file in the archive")
    cfg = L.make_config("full", image_size=32, n_val_per_class=5)
    data = full_scale.load_target("caltech256-30", cfg, data_dir=tmp_path)
    assert (len(data.train), len(data.test), len(data.val), data.num_classes) == (60, 40, 2, 2)
    assert data.in_paper and data.train[0][0].shape == (3, 32, 32)


def test_bench_reports_a_ratio_per_regularizer():
    from lautum.bench.l2sp import REGULARIZERS, format_l2sp_benchmark, run_l2sp_benchmark

    r = run_l2sp_benchmark("cpu", batch_size=4, width=4, steps=2, rounds=1)
    assert set(r["regularizers"]) == set(REGULARIZERS)
    assert all(v["ratio"] > 0 for v in r["regularizers"].values())
    assert "l2sp" in format_l2sp_benchmark(r)

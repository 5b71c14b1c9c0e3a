"""The transfer-baseline experiment end to end on small real data, and `lautum verify`."""

from __future__ import annotations

import json

import pytest

from lautum.cli import main
from lautum.experiments import get_experiment
from lautum.records import read_record
from lautum.verify import verify_record

tb = get_experiment("transfer-baseline")
TINY = dict(ks=(2,), seeds=(0,), n_source_train=300, n_target_test=200, source_epochs=1, finetune_steps=3,
            width=8, feature_dim=16, device="cpu")


@pytest.fixture
def tiny_run(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("LAUTUM_DATA", str(shared_data))
    monkeypatch.setenv("LAUTUM_CACHE", str(tmp_path / "cache"))
    cfg = tb.make_config("quick", **TINY)
    table = tb.run(cfg, results_dir=tmp_path / "results", progress=False)
    return cfg, table, tmp_path


def test_grid_runs_and_writes_one_record_per_run(tiny_run):
    cfg, table, tmp = tiny_run
    assert sorted(table["method"]) == ["fine-tune", "source-only", "target-only"]
    assert ((table["target_test_acc"] >= 0) & (table["target_test_acc"] <= 1)).all()
    records = sorted((tmp / "results" / "transfer-baseline" / "quick").glob("*.json"))
    assert len(records) == 3
    rec = read_record(records[0])
    assert rec["config"]["n_source_train"] == 300 and rec["provenance"]["torch"]
    # The record names the exact data files it was computed from (md5 from the data registry).
    files = rec["provenance"]["data_files"]
    assert files["MNIST/raw/t10k-labels-idx1-ubyte"] == "27ae3e4e09519cfbb04c329615203637"
    assert files["usps-alt/usps.h5"] == "355df6b942eb766252e0340bc019b0b9"
    # The source model was trained once for the seed and cached for the other methods.
    assert len(list((tmp / "cache" / "models").glob("source-*.pt"))) == 1


def test_verify_reproduces_exactly_and_detects_a_changed_number(tiny_run, shared_data):
    _, _, tmp = tiny_run
    path = next((tmp / "results").rglob("fine-tune*.json"))
    result = verify_record(path, data_dir=shared_data)
    assert result.exact and result.reproduced, result.report()
    rec = json.loads(path.read_text())
    rec["metrics"]["target_test_acc"] += 0.001
    path.write_text(json.dumps(rec))
    assert not verify_record(path, data_dir=shared_data).reproduced
    assert main(["verify", str(path), "--data-dir", str(shared_data)]) == 1


def test_source_only_needs_shared_labels():
    cfg = tb.make_config("quick", **{**TINY, "target": "notmnist"})
    assert {s.method for s in tb.specs(cfg)} == {"target-only", "fine-tune"}
    spec = tb.specs(tb.make_config("quick", **TINY))[1]
    assert spec.method == "source-only"
    with pytest.raises(ValueError, match="shared labels"):
        tb.run_one(cfg, spec)

"""Run records are complete, atomic and carry provenance."""

from __future__ import annotations

import json
import math
import os

import pytest

from lautum.records import (RECORD_KEYS, atomic_write_bytes, cached_model_path, config_hash, is_complete,
                            load_records, provenance, read_record, write_record)


def _record(**kw):
    rec = {"experiment": "x", "method": "m", "config": {"a": 1}, "seed": 0, "profile": "quick",
           "metrics": {"acc": 0.5}, "elapsed_s": 1.0, "provenance": provenance()}
    rec.update(kw)
    return rec


def test_round_trip(tmp_path):
    p = write_record(tmp_path / "r.json", _record())
    rec = read_record(p)
    assert set(RECORD_KEYS) <= set(rec)
    assert rec["metrics"] == {"acc": 0.5}
    for key in ("lautum", "torch", "python", "device", "date", "git_commit"):
        assert key in rec["provenance"]


def test_incomplete_record_is_refused_and_nothing_is_written(tmp_path):
    rec = _record()
    del rec["metrics"]
    with pytest.raises(ValueError, match="metrics"):
        write_record(tmp_path / "r.json", rec)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "r.json"
    write_record(p, _record())
    before = p.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(p, b"new")
    assert p.read_bytes() == before
    assert [q.name for q in tmp_path.iterdir()] == ["r.json"]


def test_truncated_file_is_not_complete(tmp_path):
    p = write_record(tmp_path / "r.json", _record())
    p.write_text(p.read_text()[:40])
    assert not is_complete(p)
    (tmp_path / "partial.json").write_text(json.dumps({"experiment": "x"}))
    assert not is_complete(tmp_path / "partial.json")
    assert load_records(tmp_path) == []


def test_config_hash_and_model_cache_path(tmp_path):
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    p = cached_model_path(tmp_path, "source", {"a": 1})
    assert p.parent == tmp_path and p.name.startswith("source-") and p.suffix == ".pt"


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "r.json", b"{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_non_finite_outcome_needs_the_diverged_flag(tmp_path):
    with pytest.raises(ValueError, match="diverged"):
        write_record(tmp_path / "r.json", _record(metrics={"target_test_acc": float("nan")}))
    assert list(tmp_path.iterdir()) == []
    p = write_record(tmp_path / "r.json", _record(metrics={"target_test_acc": float("nan"), "diverged": True}))
    assert math.isnan(read_record(p)["metrics"]["target_test_acc"])

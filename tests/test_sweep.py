"""Sweeps skip completed runs, so a killed sweep resumes without recomputing."""

from __future__ import annotations

import pytest

from lautum.records import provenance
from lautum.sweep import RunSpec, run_sweep


def _specs():
    return [RunSpec("toy", m, s, (("k", k),), "quick", "abc") for m in ("a", "b") for k in (1, 2) for s in (0, 1)]


def _record(spec):
    return {"experiment": spec.experiment, "method": spec.method, "seed": spec.seed, "profile": spec.profile,
            "params": dict(spec.params), "config": {}, "metrics": {"value": spec.seed + dict(spec.params)["k"]},
            "elapsed_s": 0.0, "provenance": provenance()}


def test_interrupted_sweep_resumes_without_rerunning(tmp_path):
    specs = _specs()
    calls = []

    def flaky(spec):
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed halfway
        calls.append(spec)
        return _record(spec)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(specs, flaky, tmp_path, progress=False)
    assert len(calls) == 3
    assert len(list(tmp_path.rglob("*.json"))) == 3
    assert not list(tmp_path.rglob("*.tmp"))

    second = []
    result = run_sweep(specs, lambda s: second.append(s) or _record(s), tmp_path, progress=False)
    assert result.skipped == 3 and result.ran == len(specs) - 3
    assert not set(second) & set(calls)
    assert len(result.records) == len(specs)
    table = result.table()
    assert list(table["value"]) == [s.seed + dict(s.params)["k"] for s in specs]

    third = []
    result = run_sweep(specs, lambda s: third.append(s) or _record(s), tmp_path, progress=False)
    assert third == [] and result.skipped == len(specs)


def test_colliding_specs_are_rejected(tmp_path):
    spec = _specs()[0]
    with pytest.raises(ValueError, match="same record"):
        run_sweep([spec, spec], _record, tmp_path, progress=False)


def test_record_path_is_readable():
    spec = RunSpec("toy", "fine-tune", 3, (("k", 5),), "medium", "h")
    assert spec.record_path("results").as_posix() == "results/toy/medium/fine-tune_k=5_seed=3-h.json"

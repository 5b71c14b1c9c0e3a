"""Sweeps skip completed runs, so a killed sweep resumes without recomputing."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lautum.records import load_records, provenance
from lautum.sweep import RunSpec, SweepInterrupted, run_sweep


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


def test_interrupt_reports_finished_runs(tmp_path):
    specs = _specs()

    def stop_after_two(spec):
        if len(list(tmp_path.rglob("*.json"))) == 2:
            raise KeyboardInterrupt
        return _record(spec)

    with pytest.raises(SweepInterrupted, match=f"2 of {len(specs)} runs finished; run the same command to resume"):
        run_sweep(specs, stop_after_two, tmp_path, progress=False)


_KILLED_WRITER = """
import os, signal, sys
from lautum import records
from lautum.sweep import RunSpec, run_sweep
sys.path.insert(0, {tests!r})
from test_sweep import _record, _specs

def die(src, dst):  # the temporary file is complete; the process dies before the rename
    os.kill(os.getpid(), signal.SIGKILL)

calls = []
def fn(spec):
    calls.append(spec)
    if len(calls) == 2:
        records.os.replace = die
    return _record(spec)

run_sweep(_specs(), fn, {out!r}, progress=False)
"""


def test_worker_killed_mid_record_write_leaves_no_complete_looking_record(tmp_path):
    out = tmp_path / "results"
    script = _KILLED_WRITER.format(tests=str(Path(__file__).parent), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(list(out.rglob("*.json"))) == 1  # the first run's record, complete
    assert len(list(out.rglob("*.tmp"))) == 1  # the killed write: a temporary name no reader takes for a record
    assert len(load_records(out)) == 1
    result = run_sweep(_specs(), _record, out, progress=False)
    assert result.skipped == 1 and result.ran == len(_specs()) - 1

"""Sweeps as SLURM job arrays on a real single-node cluster (`make test-cluster` starts one; skipped otherwise)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from lautum.cli import main
from lautum.device import torch_threads
from lautum.executors import Resources, SubmititExecutor, TasksFailedError, read_journals, submissions_folder
from lautum.experiments import get_experiment
from lautum.records import read_record
from lautum.status import format_status, sweep_status
from lautum.sweep import run_sweep

pytestmark = pytest.mark.skipif(os.environ.get("LAUTUM_SLURM") != "1",
                                reason="needs the SLURM cluster that `make test-cluster` starts")

tb = get_experiment("transfer-baseline")
TINY = dict(ks=(2,), seeds=(0,), n_source_train=300, n_target_test=200, source_epochs=1, finetune_steps=3,
            width=8, feature_dim=16, device="cpu")
WAIT_S = 240  # every wait is bounded: nothing may hang CI


@pytest.fixture
def env(shared_data, tmp_path, monkeypatch):
    # SLURM jobs inherit the submitter's environment: the data, the cache and the kernel pin.
    monkeypatch.setenv("LAUTUM_DATA", str(shared_data))
    monkeypatch.setenv("LAUTUM_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _slurm(results, **kw):
    return SubmititExecutor(results, "slurm", Resources(time_min=5), poll_s=0.5, queue_every_s=1,
                            wait_timeout_s=WAIT_S, out=io.StringIO(), **kw)


def _journals(cfg, results):
    return read_journals(submissions_folder(tb.specs(cfg)[0], results))


def _wait_for(what, check, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.5)


def _same_run(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in ("metrics", "config", "history", "seed", "method"))


def test_job_array_records_equal_local_records_and_verify(env, shared_data):
    cfg = tb.make_config("quick", **TINY)
    t0 = time.perf_counter()
    tb.run(cfg, results_dir=env / "local", cache_dir=env / "cache-local", progress=False)
    t_local = time.perf_counter() - t0
    t0 = time.perf_counter()
    tb.run(cfg, results_dir=env / "slurm", cache_dir=env / "cache-slurm", progress=False, executor=_slurm(env / "slurm"))
    t_slurm = time.perf_counter() - t0
    print(f"\n3 runs: local {t_local:.1f} s, SLURM array {t_slurm:.1f} s")
    for spec in tb.specs(cfg):
        assert _same_run(read_record(spec.record_path(env / "local")), read_record(spec.record_path(env / "slurm")))
    fine_tune = next(s for s in tb.specs(cfg) if s.method == "fine-tune").record_path(env / "slurm")
    assert main(["verify", str(fine_tune), "--data-dir", str(shared_data), "--exact"]) == 0
    # A second invocation finds every record: it submits nothing.
    tb.run(cfg, results_dir=env / "slurm", cache_dir=env / "cache-slurm", progress=False, executor=_slurm(env / "slurm"))
    assert len(_journals(cfg, env / "slurm")) == 1


def test_a_raising_task_surfaces_its_traceback_and_status_shows_its_log(env):
    cfg = tb.make_config("quick", **{**TINY, "methods": ("target-only", "fine-tune")})
    specs = tb.specs(cfg)

    def fn(spec):
        if spec.method == "fine-tune":
            raise RuntimeError("deliberate failure on the cluster")
        with torch_threads(cfg.threads):
            return tb.run_one(cfg, spec, None, env / "cache", progress=False)

    with pytest.raises(TasksFailedError, match="deliberate failure on the cluster") as err:
        run_sweep(specs, fn, env / "r", executor=_slurm(env / "r"), progress=False)
    assert "Traceback" in str(err.value) and "[failed]" in str(err.value)
    assert not specs[1].record_path(env / "r").exists()
    status = {st.spec.method: st for st in sweep_status(specs, env / "r")}
    assert status["target-only"].state == "done" and status["fine-tune"].state == "failed"
    assert os.path.exists(status["fine-tune"].log)
    assert status["fine-tune"].log in format_status(list(status.values()))


def test_a_cancelled_task_is_missing_then_resubmitted_alone(env):
    cfg = tb.make_config("quick", **TINY)
    specs = tb.specs(cfg)
    slow = next(s for s in specs if s.method == "target-only")

    def fn(spec):
        if spec == slow:
            time.sleep(600)  # cancelled long before
        with torch_threads(cfg.threads):
            return tb.run_one(cfg, spec, None, env / "cache", progress=False)

    outcome = {}

    def submit():
        try:
            run_sweep(specs, fn, env / "r", executor=_slurm(env / "r"), progress=False)
        except Exception as err:  # the assertion below says which
            outcome["error"] = err

    submitter = threading.Thread(target=submit)
    submitter.start()
    others = [s for s in specs if s != slow]
    _wait_for("the other runs' records", lambda: all(s.record_path(env / "r").exists() for s in others))
    [journal] = _journals(cfg, env / "r")
    task = next(t for t in journal["tasks"] if t["run"] == slow.name)
    subprocess.run(["scancel", task["job_id"]], check=True, timeout=30)
    submitter.join(WAIT_S)
    assert not submitter.is_alive()
    assert isinstance(outcome.get("error"), TasksFailedError) and f"{slow.name} [missing]" in str(outcome["error"])
    assert {st.spec: st.state for st in sweep_status(specs, env / "r")} == {**{s: "done" for s in others},
                                                                            slow: "missing"}
    before = {s: s.record_path(env / "r").stat().st_mtime_ns for s in others}
    tb.run(cfg, results_dir=env / "r", cache_dir=env / "cache", progress=False, executor=_slurm(env / "r"))
    journals = _journals(cfg, env / "r")
    assert len(journals) == 2 and [t["run"] for t in journals[1]["tasks"]] == [slow.name]
    assert {s: s.record_path(env / "r").stat().st_mtime_ns for s in others} == before  # nothing recomputed
    assert all(st.state == "done" for st in sweep_status(specs, env / "r"))


SUBMITTER = """
import sys
from lautum.executors import Resources, SubmititExecutor
from lautum.experiments import get_experiment

tb = get_experiment("transfer-baseline")
ex = SubmititExecutor(sys.argv[1], "slurm", Resources(time_min=5), poll_s=0.5, queue_every_s=1, wait_timeout_s=240)
tb.run(tb.make_config("quick", **{tiny!r}), results_dir=sys.argv[1], progress=False, executor=ex)
"""


def test_a_killed_submitter_loses_nothing_and_a_rerun_submits_nothing_new(env):
    cfg = tb.make_config("quick", **TINY)
    script = env / "submit.py"
    script.write_text(SUBMITTER.format(tiny=TINY))
    proc = subprocess.Popen([sys.executable, str(script), str(env / "r")], start_new_session=True)
    try:
        _wait_for("the submission journal", lambda: len(_journals(cfg, env / "r")) == 1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert not all(s.record_path(env / "r").exists() for s in tb.specs(cfg)), "killed too late to test anything"
    # Run again at once: the live tasks are watched, not resubmitted, and their records arrive.
    tb.run(cfg, results_dir=env / "r", progress=False, executor=_slurm(env / "r"))
    assert len(_journals(cfg, env / "r")) == 1
    assert all(st.state == "done" for st in sweep_status(tb.specs(cfg), env / "r"))

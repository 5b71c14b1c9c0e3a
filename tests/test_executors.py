"""Sweeps through submitit's local executor: the SLURM code path (one task per run, the task writes its record)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from lautum.device import torch_threads
from lautum.executors import (DryRun, Resources, SubmititExecutor, TasksFailedError, make_executor,
                              parse_time_minutes, read_journals, submissions_folder)
from lautum.experiments import get_experiment
from lautum.records import read_record
from lautum.sweep import run_sweep

tb = get_experiment("transfer-baseline")
TINY = dict(ks=(2,), seeds=(0,), n_source_train=300, n_target_test=200, source_epochs=1, finetune_steps=3,
            width=8, feature_dim=16, device="cpu")


@pytest.fixture
def env(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("LAUTUM_DATA", str(shared_data))
    monkeypatch.setenv("LAUTUM_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _executor(results, **kw):
    return SubmititExecutor(results, "local", Resources(time_min=5), poll_s=0.2, queue_every_s=0.5,
                            wait_timeout_s=120, out=io.StringIO(), **kw)


def _same_run(a: dict, b: dict) -> bool:
    # Everything a run computed; elapsed time and date differ between two runs by nature.
    return all(a[k] == b[k] for k in ("metrics", "config", "history", "seed", "method"))


def test_records_of_submitit_tasks_equal_local_records(env):
    cfg = tb.make_config("quick", **TINY)
    tb.run(cfg, results_dir=env / "local", cache_dir=env / "cache-local", progress=False)
    table = tb.run(cfg, results_dir=env / "sub", cache_dir=env / "cache-sub", progress=False,
                   executor=_executor(env / "sub"))
    assert sorted(table["method"]) == ["fine-tune", "source-only", "target-only"]
    for spec in tb.specs(cfg):
        assert _same_run(read_record(spec.record_path(env / "local")), read_record(spec.record_path(env / "sub")))
    [journal] = read_journals(submissions_folder(tb.specs(cfg)[0], env / "sub"))
    assert len(journal["tasks"]) == 3 and journal["cluster"] == "local"
    # A second run finds every record complete: nothing is submitted.
    ex = _executor(env / "sub")
    tb.run(cfg, results_dir=env / "sub", cache_dir=env / "cache-sub", progress=False, executor=ex)
    assert len(read_journals(submissions_folder(tb.specs(cfg)[0], env / "sub"))) == 1


def test_a_raising_task_reports_its_traceback_and_config_and_writes_no_record(env):
    cfg = tb.make_config("quick", **{**TINY, "methods": ("target-only", "fine-tune")})
    specs = tb.specs(cfg)

    def fn(spec):
        if spec.method == "fine-tune":
            raise RuntimeError("deliberate failure in fine-tune")
        with torch_threads(cfg.threads):
            return tb.run_one(cfg, spec, None, env / "cache", progress=False)

    with pytest.raises(TasksFailedError) as err:
        run_sweep(specs, fn, env / "r", executor=_executor(env / "r"), progress=False)
    msg = str(err.value)
    assert "deliberate failure in fine-tune" in msg and "Traceback" in msg
    assert "fine-tune_k=2_seed=0 [failed]" in msg and f"config {specs[1].config_hash}" in msg
    assert not specs[1].record_path(env / "r").exists()
    assert not list(specs[1].record_path(env / "r").parent.glob(".*.tmp"))
    read_record(specs[0].record_path(env / "r"))  # the other task's record is complete


def test_dry_run_prints_the_plan_and_submits_nothing(env):
    cfg = tb.make_config("quick", **TINY)
    out = io.StringIO()
    ex = SubmititExecutor(env / "r", "slurm", Resources(time_min=30, cpus_per_task=2, mem="2G"), dry_run=True,
                          out=out)
    with pytest.raises(DryRun):
        tb.run(cfg, results_dir=env / "r", progress=False, executor=ex)
    text = out.getvalue()
    assert "would submit 3 task(s)" in text and "--cpus-per-task=2" in text and "--mem=2G" in text
    assert "target-only_k=2_seed=0" in text
    assert not [p for p in env.rglob("*") if p.is_file() and "cache" not in p.parts]  # no record, no journal


def test_make_executor_maps_the_command_line_options():
    args = SimpleNamespace(executor="slurm", partition="gpu", time="1-00:00:00", cpus_per_task=None, mem="8G",
                           gpus_per_task=1, array_parallelism=4, account="lab", qos=None, dry_run=False,
                           wait_timeout=None, results_dir="results")
    ex = make_executor(args, threads=3)
    assert ex.cluster == "slurm" and ex.resources == Resources("gpu", 1440, 3, "8G", 1, 4, "lab", None)
    assert make_executor(SimpleNamespace(**{**vars(args), "executor": "local"})) is None
    with pytest.raises(ValueError, match="--dry-run"):
        make_executor(SimpleNamespace(**{**vars(args), "executor": "local", "dry_run": True}))
    with pytest.raises(ValueError, match="--time"):
        parse_time_minutes("soon")

"""Records name the code that made them: dirty trees, stale records and hand edits are caught."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from lautum import records
from lautum.experiments import get_experiment, protocol
from lautum.experiments.protocol import DirtyTreeError
from lautum.records import git_state, provenance, read_record, record_digest, write_record
from lautum.source import code_hash, module_closure, package_files
from lautum.sweep import RunSpec, StaleRecordsError, run_sweep
from lautum.verify import verify_record


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_git_state_counts_untracked_package_files(tmp_path):
    (tmp_path / "lautum").mkdir()
    (tmp_path / "lautum" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not run code\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "lautum")
    _git(tmp_path, "commit", "-qm", "a")
    commit, dirty = git_state(tmp_path)
    assert len(commit) == 40 and not dirty  # an untracked file outside the package does not count
    (tmp_path / "lautum" / "b.py").write_text("y = 2\n")
    assert git_state(tmp_path) == (commit, True)


def test_outside_a_checkout_the_state_is_unknown_and_counts_as_dirty(tmp_path):
    assert git_state(tmp_path) == (None, True)


def test_code_hash_covers_the_run_code_an_experiment_imports_and_nothing_else():
    base = {"lautum/__init__.py": b"", "lautum/train.py": b"a", "lautum/cli.py": b"b", "lautum/bench/x.py": b"c",
            "lautum/exp.py": b"import lautum.train\nimport lautum.cli\nfrom lautum.bench import x\n"}
    h = code_hash("lautum.exp", base)
    assert h == code_hash("lautum.exp", {**base, "lautum/cli.py": b"changed", "lautum/bench/x.py": b"changed"})
    assert h == code_hash("lautum.exp", {**base, "lautum/other_experiment.py": b"new"})
    assert h != code_hash("lautum.exp", {**base, "lautum/train.py": b"changed"})


def test_each_experiment_hashes_its_own_closure():
    files = package_files()
    l2sp = module_closure("lautum.experiments.l2sp_paper", files)
    assert "lautum/train.py" in l2sp and "lautum/experiments/full_scale.py" in l2sp
    assert "lautum/experiments/lautum_paper.py" not in l2sp and "lautum/regularizers/information.py" in l2sp
    edited = {**files, "lautum/experiments/lautum_paper.py": files["lautum/experiments/lautum_paper.py"] + b"#"}
    assert code_hash("lautum.experiments.l2sp_paper", edited) == code_hash("lautum.experiments.l2sp_paper", files)
    assert code_hash("lautum.experiments.lautum_paper", edited) != code_hash("lautum.experiments.lautum_paper", files)


def test_provenance_says_what_ran():
    prov = provenance()
    for key in ("git_commit", "dirty", "code_hash", "code_module", "cpu", "kernels", "cpu_capability", "onednn_max_cpu_isa",
                "torch_threads", "torch"):
        assert key in prov
    assert set(prov["cpu"]) == {"vendor", "family", "model", "arch", "avx2", "avx512"}


@pytest.mark.parametrize("profile", ["medium", "full"])
def test_committed_profiles_are_refused_from_a_dirty_tree_before_anything_runs(monkeypatch, tmp_path, profile):
    monkeypatch.setattr(protocol, "git_state", lambda: ("abc123", True))
    exp = get_experiment("transfer-baseline")
    monkeypatch.setattr(exp, "run_one", lambda *a, **k: pytest.fail("a run started"))
    cfg = exp.make_config(profile)
    with pytest.raises(DirtyTreeError, match="Commit your changes .* or pass --allow-dirty"):
        exp.run(cfg, results_dir=tmp_path)
    assert not list(tmp_path.rglob("*"))


def test_quick_profiles_may_be_dirty_and_are_stamped(monkeypatch):
    monkeypatch.setattr(records, "git_state", lambda: ("abc123", True))
    prov = provenance()
    assert prov["git_commit"] == "abc123-dirty" and prov["dirty"] is True


def _spec(seed=0):
    return RunSpec("toy", "m", seed, (("k", 1),), "quick", "h")


def _record(spec, **prov):
    return {"experiment": "toy", "method": spec.method, "seed": spec.seed, "profile": "quick",
            "params": dict(spec.params), "config": {}, "metrics": {"v": 1.0}, "elapsed_s": 0.0,
            "provenance": {**provenance(), **prov}}


def test_a_resumed_sweep_stops_at_records_made_by_other_code(tmp_path):
    specs = [_spec(0), _spec(1)]
    write_record(specs[0].record_path(tmp_path), _record(specs[0], code_hash="0ld0ld0ld0ld"))
    with pytest.raises(StaleRecordsError, match="1 of the 2 finished records .* --stale rerun.*--stale keep"):
        run_sweep(specs, _record, tmp_path, progress=False)
    kept = run_sweep(specs, _record, tmp_path, progress=False, stale="keep")
    assert kept.ran == 1 and kept.records[0]["provenance"]["code_hash"] == "0ld0ld0ld0ld"
    rerun = run_sweep(specs, _record, tmp_path, progress=False, stale="rerun")
    assert rerun.ran == 1 and {r["provenance"]["code_hash"] for r in rerun.records} == {code_hash("lautum")}


def test_records_carry_a_digest_that_survives_non_finite_values(tmp_path):
    rec = _record(_spec())
    rec["metrics"] = {"loss": float("nan"), "acc": float("inf")}
    back = read_record(write_record(tmp_path / "r.json", rec))
    assert back["digest"] == record_digest(back)


TINY = dict(ks=(2,), seeds=(0,), methods=("fine-tune",), n_source_train=300, n_target_test=200, source_epochs=1,
            finetune_steps=3, width=8, feature_dim=16, device="cpu")


@pytest.fixture(scope="module")
def tiny_record(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "MD5SUMS").exists():
        pytest.skip("offline data not found")
    tmp = tmp_path_factory.mktemp("rec")
    exp = get_experiment("transfer-baseline")
    exp.run(exp.make_config("quick", **TINY), results_dir=tmp, data_dir=SHARED_DATA, cache_dir=tmp / "cache",
            progress=False)
    (path,) = tmp.rglob("*.json")
    return path, SHARED_DATA


def _edited(path: Path, tmp_path: Path, edit) -> Path:
    rec = json.loads(path.read_text())
    edit(rec)
    out = tmp_path / path.name
    out.write_text(json.dumps(rec))
    return out


@pytest.mark.parametrize("edit", [
    lambda r: r["metrics"].update(target_test_acc=r["metrics"]["target_test_acc"] + 0.01),
    lambda r: r["metrics"].pop("source_test_acc"),
    lambda r: r["provenance"].update(torch="2.0.0"),
    lambda r: r["provenance"].update(cpu_capability="AVX512"),
], ids=["edited-metric", "deleted-metric", "edited-torch", "edited-kernels"])
def test_verify_fails_on_a_hand_edited_record(tiny_record, tmp_path, edit):
    path, data = tiny_record
    result = verify_record(_edited(path, tmp_path, edit), data_dir=data)
    assert not result.reproduced and "does not match its digest" in result.report()


def test_verify_fails_on_a_config_that_does_not_produce_the_run(tiny_record, tmp_path):
    path, data = tiny_record

    def edit(rec):
        rec["config"]["finetune_lr"] = 0.5
        rec["digest"] = record_digest(rec)  # even with a recomputed digest

    result = verify_record(_edited(path, tmp_path, edit), data_dir=data)
    assert not result.reproduced and "does not produce this run" in result.report()


def test_verify_compares_the_full_metric_set(tiny_record, tmp_path):
    path, data = tiny_record

    def edit(rec):
        rec["metrics"].pop("source_test_acc")
        rec["digest"] = record_digest(rec)

    result = verify_record(_edited(path, tmp_path, edit), data_dir=data)
    assert ("source_test_acc", "<absent>") == result.rows[[r[0] for r in result.rows].index("source_test_acc")][:2]
    assert not result.reproduced


def test_the_cli_refuses_a_dirty_committed_profile_in_one_line(monkeypatch, tmp_path, capsys):
    from lautum.cli import main

    monkeypatch.setattr(protocol, "git_state", lambda: ("abc123", True))
    assert main(["run", "transfer-baseline", "--profile", "medium", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lautum run: refusing to make transfer-baseline records of the 'medium' profile")
    assert "--allow-dirty" in err and "\n" not in err and not list(tmp_path.rglob("*"))


def test_the_cli_stops_at_stale_records_in_one_line(tmp_path, capsys):
    from lautum.cli import main

    exp = get_experiment("transfer-baseline")
    cfg = exp.make_config("quick", **TINY)
    spec = exp.specs(cfg)[0]
    write_record(spec.record_path(tmp_path), {**_record(spec, code_hash="0ld0ld0ld0ld"), "experiment": exp.NAME})
    args = ["run", "transfer-baseline", "--results-dir", str(tmp_path)]
    for key, value in TINY.items():
        args += ["--set", f"{key}={','.join(map(str, value)) if isinstance(value, tuple) else value}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lautum run: 1 of the 1 finished records") and "--stale rerun" in err


def test_native_records_are_exact_only_on_the_same_cpu():
    from lautum.verify import exactness

    rec = {"device": "cpu", "torch": "2.14.1", "cpu_capability": "AVX512", "onednn_max_cpu_isa": "native",
           "mkl_cbwr": "native", "torch_threads": 1, "cpu": {"vendor": "AuthenticAMD", "model": "17"}}
    here = {k: rec[k] for k in ("torch", "cpu_capability", "onednn_max_cpu_isa", "mkl_cbwr")}
    cpu = torch.device("cpu")
    assert exactness(rec, {**here, "cpu": rec["cpu"]}, cpu) == (True, "")
    exact, why = exactness(rec, {**here, "cpu": {"vendor": "GenuineIntel", "model": "143"}}, cpu)
    assert not exact and "same CPU model" in why
    del rec["torch_threads"]
    assert exactness(rec, {**here, "cpu": rec["cpu"]}, cpu) == (False, "the record predates kernel and thread recording")

"""The lautum-paper experiment: grid, CLI/function agreement, records, verify, CIFAR error.

Its report (claims, tables, verdicts) is tested in test_report_lautum_paper.py."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest
import torch

from lautum.cli import main
from lautum.data import DataNotFoundError, LabeledImages
from lautum.divergences import ZeroBandwidthError
from lautum.experiments import get_experiment
from lautum.experiments.config import ConfigError
from lautum.records import config_hash, load_records, read_record
from lautum.verify import verify_record

lp = get_experiment("lautum-paper")
REPO = Path(__file__).resolve().parents[1]
# Tiny sizes: every method, one k, two seeds, a two-point λ sweep and one ablation, a few seconds in all.
TINY = dict(target="usps", ks=(2,), seeds=(0, 1), pool_k=3, sweep_k=3, sweep_methods=("lautum",),
            sweep_multipliers=(1.0, 10.0), sweep_seeds=(1,), ablations=("noise_scale=10",), ablation_seeds=(1,),
            n_source_train=192, n_source_test=100, n_unlabeled=128, n_target_test=100, n_val_per_class=3,
            width=4, feature_dim=8, finetune_steps=4, te_pool=64, max_positions=512, log_every=2, device="cpu")


def _cli_sets(overrides: dict) -> list[str]:
    out = []
    for key, value in overrides.items():
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        out += ["--set", f"{key}={'none' if value is None else value}"]
    return out


@pytest.fixture
def env(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("LAUTUM_DATA", str(shared_data))
    monkeypatch.setenv("LAUTUM_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny sweep shared by the tests of this module (same data root as the ``shared_data`` fixture)."""
    data = Path(os.environ.get("LAUTUM_DATA", REPO.parent / "shared" / "data"))
    if not (data / "MD5SUMS").exists():
        pytest.skip(f"offline data not found at {data}")
    tmp = tmp_path_factory.mktemp("lautum_paper")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAUTUM_DATA", str(data))
        mp.setenv("LAUTUM_CACHE", str(tmp / "cache"))
        cfg = lp.make_config("quick", **TINY)
        table = lp.run(cfg, results_dir=tmp / "fn", progress=False)
        yield cfg, table, tmp


def test_grid_seed_restriction_and_validation():
    cfg = lp.make_config("quick")
    specs = lp.specs(cfg)
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    # main grid: 6 methods x 2 ks x 3 seeds; sweep: lautum and mi at x0.1 and x10 (x1 is a main run)
    assert len(specs) == 6 * 2 * 3 + 2 * 2
    assert "lautum_k=20_lam=0.1_seed=0" in names and "supervised_k=5_seed=2" in names
    one = lp.make_config("quick", seed="1")  # what `--set seed=1` passes
    assert one.seed == 1 and {s.seed for s in lp.specs(one)} == {1}
    assert {s.name for s in lp.specs(one)} == {n for n in names if n.endswith("seed=1")}
    assert len(lp.make_config("medium").seeds) >= 5
    full = lp.make_config("full")
    assert full.ks == (10, 50, 100) and len(full.seeds) >= 5 and full.n_source_train is None
    with pytest.raises(ConfigError, match="pool_k"):
        lp.make_config("quick", ks=(5, 50))
    with pytest.raises(ConfigError, match="unknown method"):
        lp.make_config("quick", methods=("lautum", "dann"))
    with pytest.raises(ConfigError, match="ablation"):
        lp.make_config("quick", ablations=("sign=-1",))


def _changed(value):
    """A different value of the same type (for every type a Config field has)."""
    if value is None:
        return 7
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, tuple):
        return (*value, value[0]) if value else (1,)
    raise TypeError(f"no change rule for {value!r}")


def _key(cfg, method, params=(), lam=0.1, seed=0):
    return config_hash(lp._phase1_key(cfg, method, lam, lp._run_settings(cfg, dict(params)), seed))


def test_every_config_field_is_placed_for_the_phase1_cache_key():
    """A new Config field must be declared grid, phase-2 or run-level, or it enters the phase-1 key."""
    names = [f.name for f in dataclasses.fields(lp.Config)]
    groups = {"grid": set(lp.GRID_FIELDS), "phase2": set(lp.PHASE2_FIELDS), "run": set(lp.RUN_FIELDS)}
    assert sum(map(len, groups.values())) == len(set().union(*groups.values())), "a field is in two groups"
    assert set().union(*groups.values(), lp.PHASE1_ONLY_FOR) <= set(names), "a declared field does not exist"
    assert set(lp.RUN_FIELDS) <= set(lp.ABLATION_KEYS) and not set(lp.PHASE1_ONLY_FOR) & set().union(*groups.values())
    cfg = lp.make_config("quick")
    keyed = set()
    for method in lp.METHODS:
        key = lp._phase1_key(cfg, method, 0.1, lp._run_settings(cfg, {}), 0)
        keyed |= set(key["config"])
        assert set(key["run"]) == set(lp.ABLATION_KEYS)
    for name in names:
        placed = [g for g, fields in groups.items() if name in fields] + (["key"] if name in keyed else [])
        assert len(placed) == 1, f"Config.{name}: {placed or 'in no group and not in the phase-1 key'}"
    # the run's configuration hash leaves out exactly the grid fields (the committed records' hash)
    assert set(lp._hashed(cfg)) == set(names) - groups["grid"]
    assert set(lp._LAM_FIELD.values()) <= groups["grid"]


def test_phase1_key_changes_with_phase1_fields_only():
    cfg = lp.make_config("quick")
    for method in lp.METHODS:
        kind = "supervised" if method in ("supervised", "temporal-ensembling") else method
        base = _key(cfg, method)
        for f in dataclasses.fields(lp.Config):
            other = dataclasses.replace(cfg, **{f.name: _changed(getattr(cfg, f.name))})
            phase1 = (f.name not in lp.GRID_FIELDS and f.name not in lp.PHASE2_FIELDS
                      and lp.PHASE1_ONLY_FOR.get(f.name, kind) == kind)
            assert (_key(other, method) != base) == phase1, (method, f.name)
        # the run's settings: an ablation override changes the key, the config's overridden value does not
        for params in ({"noise_scale": 10.0}, {"ridge": 0.0}, {"layer": "penultimate"}):
            assert _key(cfg, method, params.items()) != base
        assert (_key(dataclasses.replace(cfg, noise_scale=10.0), method)
                == _key(cfg, method, {"noise_scale": 10.0}.items()))
        # the monitors read the config's ridge, the regularizer the run's: both are in the key
        assert (_key(dataclasses.replace(cfg, ridge=0.5), method, {"ridge": 0.0}.items())
                != _key(cfg, method, {"ridge": 0.0}.items()))
        assert _key(cfg, method, seed=1) != base
        assert (_key(cfg, method, lam=0.2) != base) == (kind != "supervised")
    # Temporal Ensembling's source phase is the supervised one (any λ); k is not in the key
    assert _key(cfg, "temporal-ensembling", lam=3.0) == _key(cfg, "supervised", lam=None)
    assert _key(dataclasses.replace(cfg, ks=(3,)), "lautum") == _key(cfg, "lautum")
    assert len({_key(cfg, m) for m in lp.METHODS}) == 5


def test_run_hash_is_that_of_the_committed_medium_records():
    hashes = {p.stem.rsplit("-", 1)[1] for p in (REPO / "results" / "lautum-paper" / "medium").glob("*.json")}
    if not hashes:
        pytest.skip("no committed medium records")
    assert hashes == {config_hash(lp._hashed(lp.make_config("medium")))}


def test_penultimate_layer_needs_the_small_cnn():
    assert lp.make_config("quick", ablations=("layer=penultimate",)).ablations == ("layer=penultimate",)
    with pytest.raises(ConfigError, match="small_cnn"):
        lp.make_config("quick", arch="resnet18", layer="penultimate")
    with pytest.raises(ConfigError, match="small_cnn"):
        lp.make_config("quick", arch="resnet18", ablations=("layer=penultimate",))


def test_zero_bandwidth_in_the_source_phase_is_recorded_as_diverged(env, shared_data, monkeypatch):
    """MK-MMD's ZeroBandwidthError marks the run diverged (NaN accuracy); any other ValueError propagates."""
    raised = []

    class Collapsed(torch.nn.Module):
        def __init__(self, error):
            super().__init__()
            self.error = error

        def forward(self, x, y):
            raised.append(self.error)
            raise self.error

    small = {**TINY, "methods": ("mkmmd",), "seeds": (0,), "sweep_methods": (), "ablations": ()}
    cfg = lp.make_config("quick", **small)
    spec = next(s for s in lp.specs(cfg) if s.method == "mkmmd")
    msg = "all points coincide, so the bandwidth heuristic gives 0; pass sigma explicitly."
    monkeypatch.setattr(lp, "MKMMD", lambda num_kernels: Collapsed(ZeroBandwidthError(msg)))
    rec = lp.run_one(cfg, spec, data_dir=shared_data)
    m = rec["metrics"]
    assert raised and m["phase1_diverged"] and m["diverged"] and m["phase1_error"] == msg
    assert math.isnan(m["target_test_acc"]) and math.isnan(m["target_val_acc"])
    monkeypatch.setenv("LAUTUM_CACHE", str(env / "other-cache"))
    monkeypatch.setattr(lp, "MKMMD", lambda num_kernels: Collapsed(ValueError("something else coincide")))
    with pytest.raises(ValueError, match="something else"):
        lp.run_one(cfg, spec, data_dir=shared_data)


def test_function_and_cli_give_identical_records_for_one_seed(tiny_run, shared_data, monkeypatch):
    cfg, table, tmp = tiny_run
    assert set(table["method"]) == set(lp.METHODS)
    assert ((table["target_test_acc"] >= 0) & (table["target_test_acc"] <= 1)).all()
    monkeypatch.setenv("LAUTUM_CACHE", str(tmp / "cli-cache"))  # recompute, not reuse, the source phase
    rc = main(["run", "lautum-paper", "--profile", "quick", *_cli_sets(TINY), "--set", "seed=1",
               "--results-dir", str(tmp / "cli"), "--data-dir", str(shared_data), "--quiet"])
    assert rc == 0
    fn = {Path(r["_path"]).name: r for r in load_records(tmp / "fn") if r["seed"] == 1}
    cli = {Path(r["_path"]).name: r for r in load_records(tmp / "cli")}
    assert fn.keys() == cli.keys() and len(cli) == 6 + 2 + 2  # main, two sweep points, ablation and its default
    for name, rec in cli.items():
        assert rec["metrics"] == fn[name]["metrics"], name


def test_records_hold_history_channel_terms_and_paired_settings(tiny_run):
    cfg, table, tmp = tiny_run
    recs = {(r["method"], r["seed"], r["params"].get("lam"), r["params"].get("noise_scale")): r
            for r in load_records(tmp / "fn")}
    sup, lau = recs[("supervised", 0, None, None)], recs[("lautum", 0, cfg.lam_lautum, None)]
    for r in (sup, lau):
        steps = r["history"]["phase1"]
        assert steps and {"monitor/L", "monitor/I", "ce/source"} <= set(steps[0])
        assert all(row["step"] % cfg.log_every == 0 for row in steps[:-1])
        assert {"phase1_L", "phase1_I", "phase1_trace_S", "phase2_L", "target_val_acc"} <= set(r["metrics"])
        m = r["metrics"]
        assert math.isclose(m["phase1_L"] + m["phase1_I"], m["phase1_trace_S"], rel_tol=1e-5)
    assert "lautum" in lau["history"]["phase1"][0]
    # Same seed, same data and initialization: the monitors start equal.
    assert sup["history"]["phase1"][0]["monitor/L"] == lau["history"]["phase1"][0]["monitor/L"]
    assert lau["metrics"]["phase1_noise_var"] == sup["metrics"]["monitor_noise_var"]
    abl = recs[("lautum", 1, cfg.lam_lautum, 10.0)]
    assert math.isclose(abl["metrics"]["phase1_noise_var"], 10 * abl["metrics"]["monitor_noise_var"])
    # usps shares the digit labels: the source head is kept and its target accuracy recorded.
    assert "phase1_target_test_acc" in sup["metrics"]
    te = recs[("temporal-ensembling", 0, cfg.lam_te, None)]
    assert "te" in te["history"]["phase2"][-1] and te["metrics"]["phase1_L"] == sup["metrics"]["phase1_L"]


def test_verify_reproduces_a_tiny_record_exactly(tiny_run, shared_data, tmp_path):
    _, _, tmp = tiny_run
    src = next((tmp / "fn").rglob("lautum_k=2_*seed=0-*.json"))
    path = tmp_path / src.name
    path.write_text(src.read_text())
    result = verify_record(path, data_dir=shared_data)
    assert result.exact and result.reproduced, result.report()
    rec = json.loads(path.read_text())
    rec["metrics"]["target_test_acc"] += 0.01
    path.write_text(json.dumps(rec))
    assert not verify_record(path, data_dir=shared_data).reproduced


def test_full_profile_code_path_at_tiny_size(env):
    """The GPU profile (MNIST -> notMNIST, all methods, ablations incl. the penultimate layer), shrunk."""
    cfg = lp.make_config("full", ks=(2,), pool_k=3, sweep_k=3, seeds=(0,), sweep_seeds=(0,),
                         sweep_multipliers=(1.0,), ablation_seeds=(0,), ablation_methods=("lautum-neg",),
                         n_source_train=128, n_source_test=64, n_unlabeled=96, n_target_test=64, n_val_per_class=2,
                         width=4, feature_dim=8, source_epochs=1, finetune_steps=2, te_pool=32,
                         max_positions=256, log_every=1, device="cpu", threads=1)
    # a committed profile: records from a dirty tree need allow_dirty (and are stamped so)
    table = lp.run(cfg, results_dir=env / "full", progress=False, allow_dirty=True)
    assert set(table["method"]) == set(lp.METHODS)
    assert set(table["layer"].dropna()) == {"penultimate"}
    rec = read_record(next((env / "full").rglob("lautum-neg*layer=penultimate*.json")))
    assert rec["config"]["target"] == "notmnist" and rec["metrics"]["n_target_labeled"] == 10 * cfg.sweep_k




def test_cifar_profile_fails_with_the_fetch_command(env, shared_data):
    cfg = lp.make_config("cifar-full", device="cpu")
    assert cfg.target_classes == tuple(range(10)) and cfg.target == "cifar100"
    spec = lp.specs(cfg)[0]
    with pytest.raises(DataNotFoundError, match="lautum data fetch cifar10"):
        lp.run_one(cfg, spec, data_dir=shared_data)


def test_restrict_keeps_and_relabels_a_class_subset():
    x = torch.arange(12.0).reshape(6, 1, 1, 2)
    images = LabeledImages(x, torch.tensor([0, 3, 1, 3, 2, 0]), ["a", "b", "c", "d"], "t",
                           index=torch.arange(6))
    out = lp._restrict(images, (3, 0))
    assert out.classes == ["d", "a"] and out.y.tolist() == [1, 0, 0, 1] and out.index.tolist() == [0, 1, 3, 5]

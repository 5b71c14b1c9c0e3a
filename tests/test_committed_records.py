"""Every committed record names clean, committed code that made it, and a sample of each experiment reproduces.

The sample is a fixed, seeded draw of ``LAUTUM_VERIFY_SAMPLE`` records per
experiment and profile (default 1, so CI stays fast; set it higher to check more).
"""

from __future__ import annotations

import os
import random
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from lautum.experiments import EXPERIMENTS
from lautum.kernels import host_cpu
from lautum.records import read_record, record_digest
from lautum.source import code_hash
from lautum.verify import verify_record

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
ALL = sorted(RESULTS.rglob("*.json"))
SAMPLE = int(os.environ.get("LAUTUM_VERIFY_SAMPLE", "1"))


def _groups() -> dict[tuple[str, str], list[Path]]:
    groups: dict[tuple[str, str], list[Path]] = {}
    for path in ALL:
        groups.setdefault((path.parent.parent.name, path.parent.name), []).append(path)
    return groups


def _sample() -> list[Path]:
    rng = random.Random(20261205)
    return [p for _, paths in sorted(_groups().items()) for p in rng.sample(paths, min(SAMPLE, len(paths)))]


@lru_cache(maxsize=None)
def _code_hash_at(commit: str, module: str) -> str:
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--", "lautum"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    return code_hash(module, {n: subprocess.run(["git", "show", f"{commit}:{n}"], cwd=REPO, capture_output=True,
                                        check=True).stdout for n in names if n.endswith(".py")})


def test_every_experiment_has_committed_records():
    assert {exp for exp, _ in _groups()} == set(EXPERIMENTS)


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_record_is_intact_and_from_clean_committed_code(path):
    rec = read_record(path)
    prov = rec["provenance"]
    assert rec.get("digest") == record_digest(rec), "edited after it was written"
    assert prov["git_commit"] and not prov["git_commit"].endswith("-dirty") and prov["dirty"] is False
    assert (prov["cpu_capability"], prov["onednn_max_cpu_isa"], prov["mkl_cbwr"]) == ("AVX2", "AVX2", "COMPATIBLE")
    if subprocess.run(["git", "cat-file", "-e", prov["git_commit"]], cwd=REPO).returncode != 0:
        pytest.skip("the record's commit is not in this clone's history (a shallow clone?)")
    assert _code_hash_at(prov["git_commit"], prov["code_module"]) == prov["code_hash"], "its commit does not hold the code that made it"


@pytest.mark.skipif(not host_cpu()["avx2"], reason="the records were made with AVX2 kernels, which this CPU lacks")
@pytest.mark.parametrize("path", _sample(), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_a_sample_of_each_experiment_reproduces_bit_for_bit(path, shared_data):
    result = verify_record(path, data_dir=shared_data, exact_only=True)
    assert result.reproduced, result.report()

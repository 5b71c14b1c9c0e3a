"""``lautum verify RECORD``: rerun the configuration of one run record and compare.

A run on the CPU is bit-identical when the torch version and the kernels match the
record: the CPU kernels torch dispatches (``cpu_capability``, pinned to AVX2 by
default, see :mod:`lautum.kernels`), oneDNN's ISA limit and MKL's code path — and,
for a record made with native (unpinned) kernels, the CPU itself. The rerun always
uses the recorded thread count (a record without one cannot be checked exactly).
Then every metric must be equal, bit for bit (a diverged run's NaN equals NaN).
When one of them differs — another torch, native kernels, a GPU — exactness cannot
be expected: each metric must agree within ``tolerance`` (absolute, or relative
for large values), and the report says in one line what to change for an exact
check. ``exact_only`` turns that case into a failure.

Before anything is rerun, the record itself is checked: its digest (so a metric
or provenance field edited or deleted by hand fails), and its configuration hash
(the configuration it holds must produce the run it claims to be).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lautum.device import resolve_device, torch_threads
from lautum.experiments import get_experiment
from lautum.kernels import exact_check_hint, host_cpu, in_effect
from lautum.records import read_record, record_digest
from lautum.source import code_hash

__all__ = ["verify_record", "VerifyResult", "exactness"]

_EXACT_KEYS = ("torch", "cpu_capability", "onednn_max_cpu_isa", "mkl_cbwr")


@dataclass
class VerifyResult:
    path: str
    exact: bool  # whether bit-identity was expected
    tolerance: float
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failures found before or instead of comparing
    rows: list[tuple[str, Any, Any, bool]] = field(default_factory=list)  # metric, recorded, rerun, ok

    @property
    def reproduced(self) -> bool:
        return not self.problems and bool(self.rows) and all(ok for *_, ok in self.rows)

    def report(self) -> str:
        mode = "exact (bit for bit)" if self.exact else f"within {self.tolerance:g}"
        lines = [f"{self.path}: comparing {mode}"]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  FAIL: {p}" for p in self.problems]
        for name, old, new, ok in self.rows:
            lines.append(f"  {'ok ' if ok else 'DIFF'} {name:<24} recorded {old!r:<22} rerun {new!r}")
        lines.append("REPRODUCED" if self.reproduced else "NOT REPRODUCED")
        return "\n".join(lines)


def exactness(recorded: dict[str, Any], here: dict[str, Any], device_here: torch.device) -> tuple[bool, str]:
    """Whether a rerun here can be bit-identical to a run with provenance ``recorded``; else why not.

    ``here`` holds this process's ``torch`` version and :func:`lautum.kernels.in_effect`.

    >>> rec = {"device": "cpu", "torch": "2.14.1", "cpu_capability": "AVX2", "onednn_max_cpu_isa": "AVX2",
    ...        "mkl_cbwr": "COMPATIBLE", "torch_threads": 1}
    >>> exactness(rec, dict(rec), torch.device("cpu"))
    (True, '')
    >>> exactness(rec, {**rec, "cpu_capability": "AVX512"}, torch.device("cpu"))[1]
    'cpu_capability is AVX512 here, AVX2 in the record'
    """
    if torch.device(recorded.get("device", "cpu")).type != "cpu" or device_here.type != "cpu":
        return False, "a GPU run is not bit-reproducible across machines"
    if "cpu_capability" not in recorded or "torch_threads" not in recorded:
        return False, "the record predates kernel and thread recording"
    diffs = [f"{k} is {here.get(k)} here, {recorded.get(k)} in the record"
             for k in _EXACT_KEYS if here.get(k) != recorded.get(k)]
    unpinned = "native" in (recorded.get("onednn_max_cpu_isa"), recorded.get("mkl_cbwr"))
    if unpinned and recorded.get("cpu") != here.get("cpu"):
        diffs.append("the record ran unpinned (native) kernels, which are exact only on the same CPU model")
    return (not diffs), "; ".join(diffs)


def _hint(why: str) -> str:
    """What to change for an exact check, given :func:`exactness`'s reason."""
    if "torch is" in why:
        return "install the torch of requirements/pinned.txt (the record's version)"
    return f"run with {exact_check_hint()}"


def _same(old: Any, new: Any, exact: bool, tolerance: float) -> bool:
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool):
        if math.isnan(old) or math.isnan(new):
            return math.isnan(old) and math.isnan(new)
        return old == new if exact else math.isclose(old, new, rel_tol=tolerance, abs_tol=tolerance)
    return old == new


def verify_record(path: str | Path, *, data_dir=None, tolerance: float = 0.02, device: str | None = None,
                  cache_dir=None, exact_only: bool = False) -> VerifyResult:
    """Rerun the run recorded at ``path`` from scratch and compare its metrics.

    The source-model cache is bypassed (a fresh temporary cache unless
    ``cache_dir`` is given), so every step of the recorded run is recomputed.
    With ``exact_only``, a record that cannot be checked bit for bit here fails.
    """
    rec = read_record(path)
    prov = rec["provenance"]
    if rec.get("digest") != record_digest(rec):
        result = VerifyResult(str(path), False, tolerance)
        result.problems.append("the record's content does not match its digest: it was edited after it was "
                               "written (or predates digests); re-make it with `lautum run`")
        return result
    exp = get_experiment(rec["experiment"])
    overrides = {k: v for k, v in rec["config"].items() if k != "profile"}
    if device is not None:
        overrides["device"] = device
    cfg = exp.make_config(rec["profile"], **overrides)
    now = resolve_device(cfg.device)
    here = {"torch": torch.__version__, **in_effect(), "cpu": {k: host_cpu()[k] for k in prov.get("cpu", {})}}
    exact, why = exactness(prov, here, now)
    result = VerifyResult(str(path), exact, tolerance)
    matches = [s for s in exp.specs(cfg) if s.method == rec["method"] and s.seed == rec["seed"]
               and dict(s.params) == rec.get("params", {})]
    if not matches or matches[0].config_hash != rec.get("config_hash"):
        result.problems.append("the record's configuration does not produce this run (its config or config_hash "
                               "was changed)")
        return result
    if not exact:
        note = f"not bit-comparable: {why}."
        if now.type == "cpu" and not host_cpu()["avx2"]:
            note += " This CPU has no AVX2, so the AVX2 kernels the records use cannot run here."
        elif now.type == "cpu":
            note += f" For an exact check, {_hint(why)}."
        result.notes.append(note)
        if exact_only:
            result.problems.append("an exact check was required (--exact) but is not possible here")
            return result
    here_hash = code_hash(prov.get("code_module", "lautum"))
    if prov.get("code_hash") != here_hash:
        result.notes.append(f"the code here (hash {here_hash}) differs from the code that made the record "
                            f"(hash {prov.get('code_hash')}, commit {prov.get('git_commit')})")
    with torch_threads(prov.get("torch_threads", 0)), tempfile.TemporaryDirectory() as tmp:
        new = exp.run_one(cfg, matches[0], data_dir=data_dir, cache_dir=cache_dir or tmp, progress=False)
    for name in sorted(set(rec["metrics"]) | set(new["metrics"])):
        old, value = rec["metrics"].get(name, "<absent>"), new["metrics"].get(name, "<absent>")
        result.rows.append((name, old, value, _same(old, value, exact, tolerance)))
    return result

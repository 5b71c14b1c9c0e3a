"""``lautum verify RECORD``: rerun the configuration of one run record and compare.

On the CPU, with the same seed, the same torch version, the same CPU model and
the same number of torch threads (the rerun uses the recorded count), a run is
bit-identical, so the comparison is exact. Elsewhere (a GPU, another torch
version, or another CPU whose vector kernels may round differently) a metric
reproduces if it is within ``tolerance``.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lautum.device import resolve_device
from lautum.experiments import get_experiment
from lautum.records import provenance, read_record
from lautum.sweep import RunSpec

__all__ = ["verify_record", "VerifyResult"]


@dataclass
class VerifyResult:
    path: str
    exact: bool  # whether bit-identity was expected
    tolerance: float
    rows: list[tuple[str, float, float, bool]] = field(default_factory=list)  # metric, recorded, rerun, ok

    @property
    def reproduced(self) -> bool:
        return bool(self.rows) and all(ok for *_, ok in self.rows)

    def report(self) -> str:
        mode = "exact (CPU, same torch version and CPU model)" if self.exact else f"within {self.tolerance:g}"
        lines = [f"{self.path}: comparing {mode}"]
        for name, old, new, ok in self.rows:
            lines.append(f"  {'ok ' if ok else 'DIFF'} {name:<24} recorded {old!r:<22} rerun {new!r}")
        lines.append("REPRODUCED" if self.reproduced else "NOT REPRODUCED")
        return "\n".join(lines)


def verify_record(path: str | Path, *, data_dir=None, tolerance: float = 0.02, device: str | None = None,
                  cache_dir=None) -> VerifyResult:
    """Rerun the run recorded at ``path`` from scratch and compare its metrics.

    The source-model cache is bypassed (a fresh temporary cache unless
    ``cache_dir`` is given), so every step of the recorded run is recomputed.
    """
    rec = read_record(path)
    exp = get_experiment(rec["experiment"])
    overrides = {k: v for k, v in rec["config"].items() if k != "profile"}
    if device is not None:
        overrides["device"] = device
    cfg = exp.make_config(rec["profile"], **overrides)
    spec = RunSpec(rec["experiment"], rec["method"], rec["seed"], tuple(rec.get("params", {}).items()),
                   rec["profile"], rec.get("config_hash", ""))
    now = resolve_device(cfg.device)
    prov = rec["provenance"]
    here = provenance(now)
    exact = (now.type == "cpu" and torch.device(prov["device"]).type == "cpu"
             and prov["torch"] == here["torch"] and prov.get("device_name") == here["device_name"])
    # CPU kernels split work by thread count, which can change the last bits: rerun with the recorded count.
    threads = torch.get_num_threads()
    torch.set_num_threads(prov.get("torch_threads", threads))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            new = exp.run_one(cfg, spec, data_dir=data_dir, cache_dir=cache_dir or tmp, progress=False)
    finally:
        torch.set_num_threads(threads)
    result = VerifyResult(str(path), exact, tolerance)
    for name, old in sorted(rec["metrics"].items()):
        value = new["metrics"].get(name)
        if isinstance(old, (int, float)) and isinstance(value, (int, float)):
            ok = old == value if exact else math.isclose(old, value, abs_tol=tolerance)
        else:
            ok = old == value
        result.rows.append((name, old, value, ok))
    return result

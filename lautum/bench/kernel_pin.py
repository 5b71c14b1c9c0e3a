"""``lautum bench kernel-pin``: what the AVX2 kernel pin costs on the plain step.

The pin (:mod:`lautum.kernels`) can only be chosen before torch runs its first
op, so each measurement runs :func:`lautum.bench.plain_step.plain_step_benchmark`
in a fresh process, once with ``LAUTUM_KERNELS=avx2`` and once with ``native``,
alternating the two ``rounds`` times so that a drift of the machine's load hits
both alike; the ratio is that of the medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from lautum.kernels import ENV, PIN_VARIABLES

__all__ = ["run_kernel_pin_benchmark", "format_kernel_pin_benchmark"]

_CHILD = ("import json; from lautum.bench.plain_step import plain_step_benchmark; from lautum.kernels import in_effect; "
          "r = plain_step_benchmark(device='cpu', steps={steps}, warmup={warmup}, repeats={repeats}); "
          "r.update(in_effect()); print(json.dumps(r))")


def _measure(mode: str, steps: int, warmup: int, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PIN_VARIABLES}
    env[ENV] = mode
    code = _CHILD.format(steps=steps, warmup=warmup, repeats=repeats)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_kernel_pin_benchmark(device: str = "cpu", rounds: int = 3, steps: int = 30, warmup: int = 5,
                             repeats: int = 3) -> dict:
    """Seconds per plain step with the AVX2 pin and with native kernels, and their ratio (CPU only)."""
    if device not in ("cpu", "auto"):
        raise ValueError("kernel-pin measures CPU kernels; run it with --device cpu")
    runs: dict[str, list[dict]] = {"avx2": [], "native": []}
    for _ in range(rounds):
        for mode in runs:
            runs[mode].append(_measure(mode, steps, warmup, repeats))
    med = {m: statistics.median(r["seconds_per_step"] for r in rs) for m, rs in runs.items()}
    return {"benchmark": "kernel-pin", "rounds": rounds, "steps": steps, "repeats": repeats,
            "capability": {m: rs[0]["cpu_capability"] for m, rs in runs.items()},
            "seconds_per_step": med, "all_seconds_per_step": {m: [r["seconds_per_step"] for r in rs]
                                                              for m, rs in runs.items()},
            "pin_cost_ratio": med["avx2"] / med["native"], "device": runs["avx2"][0]["device"]}


def format_kernel_pin_benchmark(r: dict) -> str:
    """One line per mode and the ratio."""
    cap, s = r["capability"], r["seconds_per_step"]
    return (f"kernel pin, plain step on {r['device']} (median of {r['rounds']} fresh processes x "
            f"{r['repeats']} x {r['steps']} steps): AVX2 pin ({cap['avx2']}) {s['avx2'] * 1e3:.2f} ms/step, "
            f"native ({cap['native']}) {s['native'] * 1e3:.2f} ms/step; pinned/native = {r['pin_cost_ratio']:.2f}")

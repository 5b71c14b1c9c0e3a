"""Timing helpers shared by the benchmarks: warm-up first, then the median of repeats.

Every timing of ``lautum bench`` goes through these two functions, so no benchmark
reports a single cold call: untimed warm-up calls come first (thread pools, the
allocator, lazy imports, CUDA context and kernels), then the median of ``repeats``
timings is taken, with the device synchronised around each timing on CUDA.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

__all__ = ["time_steps", "time_call"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], None], device: torch.device, *, warmup: int = 5, steps: int = 30,
               repeats: int = 3) -> float:
    """Median seconds per call of ``step`` over ``repeats`` timings of ``steps`` calls each.

    ``warmup`` untimed calls come first. With ``repeats=1`` the caller takes the
    median itself (the round-robin benchmarks time one round per call).

    >>> time_steps(lambda: None, torch.device("cpu"), warmup=1, steps=2, repeats=3) >= 0
    True
    """
    if steps < 1 or repeats < 1:
        raise ValueError(f"steps and repeats must be at least 1, got {steps} and {repeats}")
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times)


def time_call(fn: Callable[[], Any], device: torch.device, *, warmup: int = 1,
              repeats: int = 3) -> tuple[float, Any]:
    """Median seconds of one call of ``fn`` over ``repeats`` timed calls, and the last call's result.

    For calls too long to loop over (a whole batch of problems): ``warmup`` untimed
    calls first, then ``repeats`` timed ones.

    >>> seconds, out = time_call(lambda: 42, torch.device("cpu"), repeats=3)
    >>> out, seconds >= 0
    (42, True)
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times, out = [], None
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out

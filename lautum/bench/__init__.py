"""``lautum bench``: speed measurements, kept out of the tests.

One module per benchmark, all timed by :mod:`lautum.bench.timing` (untimed
warm-up calls, then the median of several timings):

- ``plain-step`` (:mod:`lautum.bench.plain_step`): the throughput (images per
  second) of one plain training step of the small CNN, the base against which every
  regularizer's overhead is measured as a ratio;
- ``regularizers`` (:mod:`lautum.bench.regularizers`): Lautum, MI, MK-MMD and
  Temporal Ensembling;
- ``l2sp`` (:mod:`lautum.bench.l2sp`): the starting-point family;
- ``sinkhorn`` (:mod:`lautum.bench.sinkhorn`): our batched solver against POT's;
- ``kernel-pin`` (:mod:`lautum.bench.kernel_pin`): the plain step with the AVX2
  kernel pin against this CPU's native kernels (each in a fresh process).

A benchmark's module is imported only when it runs (POT, for one, is a test and
benchmark dependency only), so importing this registry is cheap.

>>> sorted(BENCHMARKS)
['kernel-pin', 'l2sp', 'plain-step', 'regularizers', 'sinkhorn']
"""

from __future__ import annotations

import importlib
from typing import Callable

__all__ = ["BENCHMARKS"]


def _lazy(module: str, run: str, fmt: str) -> tuple[Callable[..., dict], Callable[[dict], str]]:
    # The benchmark's module (and its heavier imports) loads on the first call only.
    def run_benchmark(**kw) -> dict:
        return getattr(importlib.import_module(f"lautum.bench.{module}"), run)(**kw)

    def format_result(result: dict) -> str:
        return getattr(importlib.import_module(f"lautum.bench.{module}"), fmt)(result)

    run_benchmark.__qualname__ = run_benchmark.__name__ = run
    format_result.__qualname__ = format_result.__name__ = fmt
    run_benchmark.__doc__ = f"Run :func:`lautum.bench.{module}.{run}` (imported on first use)."
    format_result.__doc__ = f"Format with :func:`lautum.bench.{module}.{fmt}` (imported on first use)."
    return run_benchmark, format_result


#: name -> (run(device=..., **settings) -> dict, format(dict) -> str)
BENCHMARKS: dict[str, tuple[Callable[..., dict], Callable[[dict], str]]] = {
    "plain-step": _lazy("plain_step", "plain_step_benchmark", "format_plain_step_benchmark"),
    "regularizers": _lazy("regularizers", "run_regularizer_benchmark", "format_regularizer_benchmark"),
    "l2sp": _lazy("l2sp", "run_l2sp_benchmark", "format_l2sp_benchmark"),
    "sinkhorn": _lazy("sinkhorn", "run_sinkhorn_benchmark", "format_sinkhorn_benchmark"),
    "kernel-pin": _lazy("kernel_pin", "run_kernel_pin_benchmark", "format_kernel_pin_benchmark"),
}

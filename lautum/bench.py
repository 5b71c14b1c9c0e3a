"""``lautum bench``: speed measurements, kept out of the tests.

The first benchmark is the throughput (images per second) of one plain training
step of the small CNN: the base against which every regularizer's overhead is
measured as a ratio (``regularizers``: Lautum, MI, MK-MMD, Temporal Ensembling;
``l2sp``: the starting-point family). ``sinkhorn`` compares our batched solver
with POT's.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch.nn import functional as F

from lautum.device import describe_device, resolve_device, seed_everything
from lautum.models import small_cnn

__all__ = ["plain_step_benchmark", "BENCHMARKS", "time_steps"]


def time_steps(step: Callable[[], None], device: torch.device, *, warmup: int = 5, steps: int = 30,
               repeats: int = 3) -> float:
    """Median seconds per call of ``step`` over ``repeats`` timings of ``steps`` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) / steps)
    return sorted(times)[len(times) // 2]


def plain_step_benchmark(device: str = "auto", batch_size: int = 64, image_size: int = 28,
                         channels: int = 1, width: int = 32, steps: int = 30) -> dict:
    """Images per second of a plain SGD step (forward, cross-entropy, backward, update)."""
    dev = resolve_device(device)
    seed_everything(0)
    model = small_cnn(10, in_channels=channels, image_size=image_size, width=width).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch_size, channels, image_size, image_size, device=dev)
    y = torch.randint(0, 10, (batch_size,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    s = time_steps(step, dev, steps=steps)
    return {"benchmark": "plain-step", "device": describe_device(dev), "batch_size": batch_size,
            "image": f"{channels}x{image_size}x{image_size}", "seconds_per_step": s,
            "images_per_second": batch_size / s}


def _format_plain(r: dict) -> str:
    return (f"plain step, small CNN, batch {r['batch_size']} of {r['image']} on {r['device']}: "
            f"{r['seconds_per_step'] * 1e3:.2f} ms/step, {r['images_per_second']:.0f} img/s")


def _lazy(module: str, run: str, fmt: str) -> tuple[Callable[..., dict], Callable[[dict], str]]:
    # Benchmarks with heavier imports (POT for the Sinkhorn comparison) load only when run.
    import importlib

    return (lambda **kw: getattr(importlib.import_module(module), run)(**kw),
            lambda r: getattr(importlib.import_module(module), fmt)(r))


# name -> (run(device=...) -> dict, format(dict) -> str)
BENCHMARKS: dict[str, tuple[Callable[..., dict], Callable[[dict], str]]] = {
    "plain-step": (plain_step_benchmark, _format_plain),
    "regularizers": _lazy("lautum.bench_lautum", "run_regularizer_benchmark", "format_regularizer_benchmark"),
    "l2sp": _lazy("lautum.bench_l2sp", "run_l2sp_benchmark", "format_l2sp_benchmark"),
    "sinkhorn": _lazy("lautum.bench_sinkhorn", "run_sinkhorn_benchmark", "format_sinkhorn_benchmark"),
}

"""``lautum bench plain-step``: images per second of one plain training step of the small CNN.

The base against which every regularizer's overhead is measured as a ratio
(:mod:`lautum.bench.regularizers`, :mod:`lautum.bench.l2sp`).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lautum.bench.timing import time_steps
from lautum.device import describe_device, resolve_device, seed_everything
from lautum.models import small_cnn

__all__ = ["plain_step_benchmark", "format_plain_step_benchmark"]


def plain_step_benchmark(device: str = "auto", batch_size: int = 64, image_size: int = 28,
                         channels: int = 1, width: int = 32, steps: int = 30, warmup: int = 5,
                         repeats: int = 3) -> dict:
    """Images per second of a plain SGD step (forward, cross-entropy, backward, update).

    ``warmup`` untimed steps, then the median over ``repeats`` timings of ``steps``
    steps (:func:`lautum.bench.timing.time_steps`).
    """
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

    s = time_steps(step, dev, warmup=warmup, steps=steps, repeats=repeats)
    return {"benchmark": "plain-step", "device": describe_device(dev), "batch_size": batch_size,
            "image": f"{channels}x{image_size}x{image_size}", "warmup": warmup, "steps": steps,
            "repeats": repeats, "seconds_per_step": s, "images_per_second": batch_size / s}


def format_plain_step_benchmark(r: dict) -> str:
    """One line: ms per step and images per second."""
    return (f"plain step, small CNN, batch {r['batch_size']} of {r['image']} on {r['device']}: "
            f"{r['seconds_per_step'] * 1e3:.2f} ms/step, {r['images_per_second']:.0f} img/s "
            f"(median of {r['repeats']} x {r['steps']} steps)")

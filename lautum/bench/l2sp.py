"""``lautum bench l2sp``: the cost of each starting-point penalty, as a ratio to the plain step.

The paper says L2-SP costs under 1% more FLOPs than fine-tuning. Here the plain
SGD step of :func:`lautum.bench.plain_step.plain_step_benchmark` (forward, cross-entropy,
backward, update of the small CNN) is timed against the same step plus each
penalty of :mod:`lautum.regularizers` (forward and backward of the penalty
included). Timings of the variants are interleaved over several rounds (the order
rotated each round) and the ratio is the median over rounds of (step with penalty) / (plain step), so a
machine shared with other work biases no variant more than another.
Goal for L2-SP: ratio ≤ 1.10.
"""

from __future__ import annotations

import statistics

import torch
from torch.nn import functional as F

from lautum.bench.timing import time_steps
from lautum.device import describe_device, resolve_device, seed_everything
from lautum.models import small_cnn

__all__ = ["REGULARIZERS", "run_l2sp_benchmark", "format_l2sp_benchmark", "GOAL"]

#: Step-time ratio L2-SP should stay under.
GOAL = 1.10
REGULARIZERS = ("l2", "l2sp", "l1sp", "gl-sp", "l2sp-fisher")


def _penalty(name: str, model, fisher):
    from lautum import regularizers as R

    alpha, beta = 0.01, 0.01
    return {"l2": lambda: R.L2(model, alpha, beta), "l2sp": lambda: R.L2SP(model, alpha, beta),
            "l1sp": lambda: R.L1SP(model, alpha, beta), "gl-sp": lambda: R.GroupLassoSP(model, alpha, beta),
            "l2sp-fisher": lambda: R.L2SPFisher(model, fisher, alpha, beta)}[name]()


def run_l2sp_benchmark(device: str = "auto", batch_size: int = 64, image_size: int = 28, channels: int = 1,
                       width: int = 32, steps: int = 20, rounds: int = 5) -> dict:
    """Seconds per step of the plain step and of the step with each penalty, and their ratios.

    Returns
    -------
    dict
        ``benchmark``, ``device``, ``batch_size``, ``image``, ``plain_seconds_per_step`` and, per
        regularizer, ``{"seconds_per_step", "ratio", "ratios"}`` under ``regularizers``; ``goal``
        and ``l2sp_within_goal``.
    """
    dev = resolve_device(device)
    seed_everything(0)
    model = small_cnn(10, in_channels=channels, image_size=image_size, width=width).to(dev)
    x = torch.rand(batch_size, channels, image_size, image_size, device=dev)
    y = torch.randint(0, 10, (batch_size,), device=dev)
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters() if n.startswith("features.")}
    penalties = {name: _penalty(name, model, fisher).to(dev) for name in REGULARIZERS}
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def make_step(penalty):
        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            if penalty is not None:
                loss = loss + penalty()
            loss.backward()
            opt.step()
        return step

    variants = {"plain": make_step(None), **{n: make_step(p) for n, p in penalties.items()}}
    times: dict[str, list[float]] = {n: [] for n in variants}
    names = list(variants)
    for r in range(rounds):
        # Rotate the order each round, so no variant always runs first (after a pause) or last.
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(time_steps(variants[name], dev, warmup=3, steps=steps, repeats=1))
    plain = statistics.median(times["plain"])
    regs = {}
    for name in REGULARIZERS:
        ratios = [t / p for t, p in zip(times[name], times["plain"], strict=True)]
        regs[name] = {"seconds_per_step": statistics.median(times[name]), "ratio": statistics.median(ratios),
                      "ratios": ratios}
    return {"benchmark": "l2sp", "device": describe_device(dev), "batch_size": batch_size,
            "image": f"{channels}x{image_size}x{image_size}", "plain_seconds_per_step": plain,
            "regularizers": regs, "goal": GOAL, "l2sp_within_goal": regs["l2sp"]["ratio"] <= GOAL}


def format_l2sp_benchmark(r: dict) -> str:
    """One line per regularizer: ms/step and the ratio to the plain step."""
    lines = [f"starting-point penalties, small CNN, batch {r['batch_size']} of {r['image']} on {r['device']}: "
             f"plain step {r['plain_seconds_per_step'] * 1e3:.2f} ms"]
    for name, v in r["regularizers"].items():
        goal = f"  (goal ≤ {r['goal']:.2f}: {'met' if v['ratio'] <= r['goal'] else 'NOT met'})" if name == "l2sp" else ""
        lines.append(f"  {name:<12} {v['seconds_per_step'] * 1e3:7.2f} ms/step  ratio {v['ratio']:.3f}{goal}")
    return "\n".join(lines)

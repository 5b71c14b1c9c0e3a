"""Step-time overhead of the regularizers on the small CNN (``lautum bench regularizers``).

Every step is forward, loss, backward and an SGD update of ``small_cnn(10, width=32)``:

* ``plain``: cross-entropy on a labeled batch (the base of every ratio);
* ``plain_double``: cross-entropy on twice as many labeled images, the cost of any
  method that pushes an unlabeled batch of the same size through the whole network;
* ``lautum`` / ``mi``: cross-entropy + the channel-form term on an unlabeled batch,
  which needs the **first layer only** (:mod:`lautum.regularizers.information`);
* ``mkmmd``: cross-entropy + MK-MMD between the labeled and unlabeled features (one
  extra full forward/backward on the unlabeled batch);
* ``temporal_ensembling``: cross-entropy + the TE consistency loss on the unlabeled
  logits (one extra full forward/backward), indices cycling over a pool.

The issue's goal is a ratio of at most 1.3 for MK-MMD and Lautum. The unlabeled
forward/backward alone already costs about ``plain_double / plain`` when the
unlabeled batch is as large as the labeled one, so ``ratio_vs_double`` isolates the
cost of the term itself. Timings on a shared CPU are noisy: compare ratios from one
run, not across runs.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lautum.bench.timing import time_steps
from lautum.device import describe_device, resolve_device, seed_everything
from lautum.models import small_cnn
from lautum.regularizers.alignment import MKMMD
from lautum.regularizers.consistency import TemporalEnsembling
from lautum.regularizers.information import LautumRegularizer, MutualInformationRegularizer

__all__ = ["REGULARIZER_GOAL", "run_regularizer_benchmark", "format_regularizer_benchmark"]

#: The issue's goal: regularized step time / plain step time for these methods.
REGULARIZER_GOAL = {"lautum": 1.3, "mkmmd": 1.3}
METHODS = ("lautum", "mi", "mkmmd", "temporal_ensembling")


def run_regularizer_benchmark(device: str = "auto", batch_size: int = 64, unlabeled_batch_size: int = 64,
                              *, steps: int = 10, repeats: int = 5, warmup: int = 3, pool: int = 1024) -> dict:
    """Seconds per training step, plain and with each regularizer, and their ratios.

    Parameters
    ----------
    device : str, default "auto"
    batch_size, unlabeled_batch_size : int, default 64
        Labeled and unlabeled images per step (28x28 grey, as MNIST).
    steps, repeats : int, default 10 and 5
        ``repeats`` round-robin rounds; in each, every method's mean time over
        ``steps`` steps is taken with :func:`lautum.bench.timing.time_steps` (after one
        warm-up step). The median over rounds is reported.
    warmup : int, default 3
        Untimed steps of every method before the first round.
    pool : int, default 1024
        Unlabeled pool size for Temporal Ensembling's buffers.

    Returns
    -------
    dict
        ``seconds`` (per method, plus ``plain`` and ``plain_double``; median over
        rounds), ``rounds`` (every round's time), ``ratio``
        (method / plain), ``ratio_vs_double`` (method / plain_double), ``goal`` and
        ``goal_met`` (per goal method), and the settings.
    """
    dev = resolve_device(device)
    seed_everything(0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, 1, 28, 28, generator=g).to(dev)
    y = torch.randint(0, 10, (batch_size,), generator=g).to(dev)
    x2 = torch.rand(2 * batch_size, 1, 28, 28, generator=g).to(dev)
    y2 = torch.randint(0, 10, (2 * batch_size,), generator=g).to(dev)
    xu = torch.rand(unlabeled_batch_size, 1, 28, 28, generator=g).to(dev)

    def make_step(loss_fn):
        model = small_cnn(10, width=32).to(dev)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss = loss_fn(model)

        def step():
            opt.zero_grad(set_to_none=True)
            loss().backward()
            opt.step()

        return step

    def plain(model):
        return lambda: F.cross_entropy(model(x), y)

    def plain_double(model):
        return lambda: F.cross_entropy(model(x2), y2)

    def channel(cls):
        def build(model):
            reg = cls(model.first_layer(), noise_var=1.0)
            return lambda: F.cross_entropy(model(x), y) + 0.01 * reg(xu)
        return build

    def mkmmd(model):
        reg = MKMMD()

        def loss():
            logits, f_s = model.forward_with_features(x)
            _, f_t = model.forward_with_features(xu)
            return F.cross_entropy(logits, y) + reg(f_s, f_t)
        return loss

    def temporal(model):
        te = TemporalEnsembling(pool, 10).to(dev)
        cursor = [0]

        def loss():
            idx = (torch.arange(unlabeled_batch_size, device=dev) + cursor[0]) % pool
            cursor[0] = (cursor[0] + unlabeled_batch_size) % pool
            return F.cross_entropy(model(x), y) + te(model(xu), idx)
        return loss

    builders = {"plain": plain, "plain_double": plain_double,
                "lautum": channel(LautumRegularizer), "mi": channel(MutualInformationRegularizer),
                "mkmmd": mkmmd, "temporal_ensembling": temporal}
    step_fns = {name: make_step(b) for name, b in builders.items()}
    for fn in step_fns.values():  # warm-up (allocator, kernels, TE's first visits)
        for _ in range(warmup):
            fn()
    # Round-robin: each round times every method once, so a slow drift of a shared
    # machine's load affects all methods alike; the median over rounds is reported.
    rounds: dict[str, list[float]] = {name: [] for name in step_fns}
    for _ in range(repeats):
        for name, fn in step_fns.items():
            rounds[name].append(time_steps(fn, dev, warmup=1, steps=steps, repeats=1))
    seconds = {name: sorted(t)[len(t) // 2] for name, t in rounds.items()}
    ratio = {m: seconds[m] / seconds["plain"] for m in METHODS}
    ratio_vs_double = {m: seconds[m] / seconds["plain_double"] for m in METHODS}
    return {
        "benchmark": "regularizers",
        "device": describe_device(dev),
        "threads": torch.get_num_threads() if dev.type == "cpu" else None,
        "batch_size": batch_size,
        "unlabeled_batch_size": unlabeled_batch_size,
        "model": "small_cnn(10, width=32), 1x28x28",
        "seconds": seconds,
        "rounds": rounds,
        "ratio": ratio,
        "ratio_vs_double": ratio_vs_double,
        "goal": dict(REGULARIZER_GOAL),
        "goal_met": {m: ratio[m] <= g for m, g in REGULARIZER_GOAL.items()},
    }


def format_regularizer_benchmark(result: dict) -> str:
    """A small text table of :func:`run_regularizer_benchmark`'s result."""
    s = result["seconds"]
    lines = [
        f"regularizer overhead, {result['model']}, labeled batch {result['batch_size']}, "
        f"unlabeled batch {result['unlabeled_batch_size']} on {result['device']}",
        f"  {'step':<22}{'ms/step':>9}{'x plain':>9}{'x double':>10}  goal",
        f"  {'plain (CE)':<22}{s['plain'] * 1e3:>9.2f}{1.0:>9.2f}{s['plain'] / s['plain_double']:>10.2f}",
        f"  {'plain, 2x batch':<22}{s['plain_double'] * 1e3:>9.2f}"
        f"{s['plain_double'] / s['plain']:>9.2f}{1.0:>10.2f}",
    ]
    for m in METHODS:
        goal = result["goal"].get(m)
        verdict = "" if goal is None else f"<= {goal}: {'met' if result['goal_met'][m] else 'NOT met'}"
        lines.append(f"  {m:<22}{s[m] * 1e3:>9.2f}{result['ratio'][m]:>9.2f}"
                     f"{result['ratio_vs_double'][m]:>10.2f}  {verdict}")
    return "\n".join(lines)

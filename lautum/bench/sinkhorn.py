"""Benchmark of :func:`lautum.divergences.sinkhorn` against POT (``lautum bench sinkhorn``).

Three solvers on the same ``batch`` problems of size ``n x n`` in float64:

* ``ours``: :func:`lautum.divergences.sinkhorn` (batched, ``method="auto"``);
* ``pot_loop``: a Python loop over ``ot.sinkhorn2`` (one problem at a time, torch backend);
* ``pot_batch``: ``ot.batch.solve_batch`` (batched log-domain, gradient to the cost only).

Each is timed without and with the backward pass: one untimed warm-up call of
every timed path at the full size, then the median of ``repeats`` calls. The
backward of ``ours`` is the envelope gradient of the regularised value (the default);
``ours_unrolled`` back-propagates through the iterations (``grad="autodiff"``) and is
what ``ot.sinkhorn2``'s own gradient (also unrolled) is compared with. POT is imported
here and in the tests only, never by :mod:`lautum.divergences`.
"""

from __future__ import annotations

from typing import Any

import torch

from lautum.bench.timing import time_call
from lautum.device import describe_device, resolve_device
from lautum.divergences import sinkhorn

__all__ = ["make_ot_problems", "run_sinkhorn_benchmark", "format_sinkhorn_benchmark"]


def make_ot_problems(
    batch: int = 256,
    n: int = 64,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random OT problems: histograms and squared-distance costs scaled to [0, 1].

    Points are uniform in the unit square (``n`` per side), ``C = ||x - y||^2 / max``;
    histograms are ``U(0.5, 1.5)`` weights normalised to one.

    Returns
    -------
    a, b : torch.Tensor, shape (batch, n)
    cost : torch.Tensor, shape (batch, n, n)
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, n, 2, generator=gen, dtype=torch.float64)
    y = torch.rand(batch, n, 2, generator=gen, dtype=torch.float64)
    cost = ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)
    cost = cost / cost.amax((1, 2), keepdim=True)
    a = torch.rand(batch, n, generator=gen, dtype=torch.float64) + 0.5
    b = torch.rand(batch, n, generator=gen, dtype=torch.float64) + 0.5
    a, b = a / a.sum(1, keepdim=True), b / b.sum(1, keepdim=True)
    dev = resolve_device(device)
    return a.to(dev, dtype), b.to(dev, dtype), cost.to(dev, dtype)


def _centre(g: torch.Tensor) -> torch.Tensor:
    return g - g.mean(-1, keepdim=True)


def run_sinkhorn_benchmark(
    device: str | torch.device = "auto",
    batch: int = 256,
    n: int = 64,
    eps: float = 0.05,
    tol: float = 1e-9,
    repeats: int = 3,
    *,
    seed: int = 0,
    n_fd: int = 4,
    fd_step: float = 1e-6,
    max_iter: int = 10000,
    threads: int | None = None,
) -> dict[str, Any]:
    """Time ours vs POT and check values and gradients (float64).

    Parameters
    ----------
    device : str or torch.device, default "auto"
    batch, n : int
        ``batch`` problems of size ``n x n`` (default 256 of 64 x 64).
    eps : float, default 0.05
        Entropic regularisation (costs lie in [0, 1]).
    tol : float, default 1e-9
        Stopping threshold of every solver (marginal error in the 2-norm).
    repeats : int, default 3
        Timings are the median of ``repeats`` runs, each path after one untimed
        warm-up run at the same size (:func:`lautum.bench.timing.time_call`).
    seed : int, default 0
    n_fd : int, default 4
        Problems whose envelope gradients are checked by central finite differences
        of POT's regularised value (``ot.solve(..., reg_type="entropy")``) along
        random zero-sum directions (and a random direction for the cost).
    fd_step : float, default 1e-6
    max_iter : int, default 10000
    threads : int, optional
        CPU threads for torch during the run (restored afterwards); default: leave
        torch's setting. One thread gives steadier timings on a shared machine.

    Returns
    -------
    dict
        ``config`` (sizes, device, torch/POT versions), ``times`` (seconds; keys
        ``{ours, ours_unrolled, pot_loop, pot_batch}_{forward, backward}``; ``backward``
        means forward + backward), ``speedup`` (POT time / our time; > 1 means we are
        faster), ``max_abs_diff`` (values and gradients) and ``n_iter``.
    """
    import ot  # test/benchmark dependency only

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _run(ot, device, batch, n, eps, tol, repeats, seed, n_fd, fd_step, max_iter)
    finally:
        torch.set_num_threads(previous_threads)


def _run(ot, device, batch, n, eps, tol, repeats, seed, n_fd, fd_step, max_iter) -> dict[str, Any]:
    dev = resolve_device(device)
    a, b, C = make_ot_problems(batch, n, seed=seed, device=dev, dtype=torch.float64)
    kw = dict(tol=tol, max_iter=max_iter)

    def ours_fwd():
        return sinkhorn(a, b, C, eps, grad="detach", **kw)

    def ours_bwd(mode="envelope"):
        A, Bm, M = (t.clone().requires_grad_() for t in (a, b, C))
        res = sinkhorn(A, Bm, M, eps, grad=mode, **kw)
        (res.value if mode == "envelope" else res.value_linear).sum().backward()
        return res, A.grad, Bm.grad, M.grad

    def pot_loop_fwd():
        return torch.stack(
            [ot.sinkhorn2(a[i], b[i], C[i], eps, stopThr=tol, numItermax=max_iter) for i in range(batch)]
        )

    def pot_loop_bwd():
        A, Bm, M = (t.clone().requires_grad_() for t in (a, b, C))
        vals = torch.stack(
            [ot.sinkhorn2(A[i], Bm[i], M[i], eps, stopThr=tol, numItermax=max_iter) for i in range(batch)]
        )
        vals.sum().backward()
        return vals, A.grad, Bm.grad, M.grad

    def pot_batch_fwd():
        return ot.batch.solve_batch(
            C, eps, a, b, reg_type="entropy", tol=tol, max_iter=max_iter, grad="detach"
        )

    def pot_batch_bwd():
        M = C.clone().requires_grad_()
        res = ot.batch.solve_batch(
            M, eps, a, b, reg_type="entropy", tol=tol, max_iter=max_iter, grad="envelope"
        )
        res.value.sum().backward()
        return res, M.grad

    # Every path gets one untimed warm-up call at the full size (thread pools, the autograd
    # engine, CUDA context and allocator, lazy imports), then the median of `repeats` calls.
    times: dict[str, float] = {}

    def timed(fn):
        return time_call(fn, dev, warmup=1, repeats=repeats)

    times["ours_forward"], r_ours = timed(ours_fwd)
    times["ours_backward"], (r_env, ga_env, gb_env, gC_env) = timed(ours_bwd)
    times["ours_unrolled_backward"], (r_unr, ga_unr, gb_unr, gC_unr) = timed(lambda: ours_bwd("autodiff"))
    times["pot_loop_forward"], v_loop = timed(pot_loop_fwd)
    times["pot_loop_backward"], (_, ga_pl, gb_pl, gC_pl) = timed(pot_loop_bwd)
    times["pot_batch_forward"], r_pb = timed(pot_batch_fwd)
    times["pot_batch_backward"], (_, gC_pb) = timed(pot_batch_bwd)

    def mx(x, y):
        return float((x - y).abs().max())

    diffs = {
        "value_linear_vs_pot_loop": mx(r_ours.value_linear, v_loop),
        "value_linear_vs_pot_batch": mx(r_ours.value_linear, r_pb.value_linear),
        "value_vs_pot_batch": mx(r_ours.value, r_pb.value),
        "plan_vs_pot_batch": mx(r_ours.plan, r_pb.plan),
        # unrolled gradients of <P, C> against ot.sinkhorn2's (also unrolled) gradients
        "unrolled_grad_a_vs_pot_loop": mx(_centre(ga_unr), _centre(ga_pl)),
        "unrolled_grad_b_vs_pot_loop": mx(_centre(gb_unr), _centre(gb_pl)),
        "unrolled_grad_cost_vs_pot_loop": mx(gC_unr, gC_pl),
        # envelope gradient of the regularised value: d/dC = plan, as POT's envelope
        "envelope_grad_cost_vs_pot_batch": mx(gC_env, gC_pb),
    }

    # Finite differences of POT's regularised value vs our envelope gradients.
    gen = torch.Generator().manual_seed(seed + 1)
    fd_err = {"a": 0.0, "b": 0.0, "cost": 0.0}

    def pot_value(ai, bi, Ci):
        res = ot.solve(Ci, ai, bi, reg=eps, reg_type="entropy", max_iter=100000, tol=1e-13)
        return float(res.value)

    for i in range(min(n_fd, batch)):
        for key, grad in (("a", ga_env[i]), ("b", gb_env[i]), ("cost", gC_env[i])):
            d = torch.randn(grad.shape, generator=gen, dtype=torch.float64).to(dev)
            if key != "cost":
                d = d - d.mean()
            d = d / d.norm()
            args = [a[i], b[i], C[i]]
            j = {"a": 0, "b": 1, "cost": 2}[key]
            plus, minus = list(args), list(args)
            plus[j], minus[j] = args[j] + fd_step * d, args[j] - fd_step * d
            fd = (pot_value(*plus) - pot_value(*minus)) / (2 * fd_step)
            fd_err[key] = max(fd_err[key], abs(fd - float((grad * d).sum())))
    for key, val in fd_err.items():
        diffs[f"envelope_grad_{key}_vs_finite_diff"] = val

    speedup = {
        "pot_loop_forward": times["pot_loop_forward"] / times["ours_forward"],
        "pot_batch_forward": times["pot_batch_forward"] / times["ours_forward"],
        "pot_loop_backward": times["pot_loop_backward"] / times["ours_backward"],
        "pot_batch_backward": times["pot_batch_backward"] / times["ours_backward"],
        "pot_loop_backward_vs_unrolled": times["pot_loop_backward"] / times["ours_unrolled_backward"],
    }
    return {
        "config": {
            "device": str(dev),
            "device_name": describe_device(dev),
            "batch": batch,
            "n": n,
            "eps": eps,
            "tol": tol,
            "repeats": repeats,
            "statistic": "median after one warm-up call",
            "dtype": "float64",
            "torch": torch.__version__,
            "pot": ot.__version__,
        },
        "times": times,
        "speedup": speedup,
        "max_abs_diff": diffs,
        "n_iter": {"ours": r_ours.n_iter, "pot_batch": int(r_pb.log["n_iter"]) + 1},
        "marginal_error": r_ours.marginal_error,
    }


def format_sinkhorn_benchmark(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`run_sinkhorn_benchmark`'s result (for the CLI)."""
    cfg, t, s = result["config"], result["times"], result["speedup"]
    lines = [
        f"Sinkhorn benchmark: B={cfg['batch']} problems of {cfg['n']}x{cfg['n']}, "
        f"eps={cfg['eps']}, tol={cfg['tol']:g}, {cfg['dtype']}, {cfg['device_name']} "
        f"(median of {cfg['repeats']} after a warm-up; torch {cfg['torch']}, POT {cfg['pot']})",
        "",
        f"{'solver':<38}{'forward (s)':>12}{'fwd+bwd (s)':>13}{'ours faster by':>16}",
        f"{'lautum sinkhorn (envelope gradient)':<38}{t['ours_forward']:>12.4f}{t['ours_backward']:>13.4f}{'':>16}",
        f"{'lautum sinkhorn (unrolled autodiff)':<38}{'':>12}{t['ours_unrolled_backward']:>13.4f}{'':>16}",
        f"{'POT loop over ot.sinkhorn2':<38}{t['pot_loop_forward']:>12.4f}{t['pot_loop_backward']:>13.4f}"
        f"{s['pot_loop_forward']:>7.1f}x /{s['pot_loop_backward']:>5.1f}x",
        f"{'POT ot.batch.solve_batch':<38}{t['pot_batch_forward']:>12.4f}{t['pot_batch_backward']:>13.4f}"
        f"{s['pot_batch_forward']:>7.1f}x /{s['pot_batch_backward']:>5.1f}x",
        "",
        "max |difference| (float64):",
    ]
    for key, val in result["max_abs_diff"].items():
        lines.append(f"  {key:<40}{val:.2e}")
    lines.append(
        f"iterations: ours {result['n_iter']['ours']}, solve_batch {result['n_iter']['pot_batch']}; "
        f"our marginal error {result['marginal_error']:.2e}"
    )
    return "\n".join(lines)

"""Batched Sinkhorn: POT as the reference, identities (hypothesis), gradients, dtype/device."""

from __future__ import annotations

import math
import warnings

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lautum.divergences import SinkhornConvergenceWarning, SinkhornLoss, sinkhorn

FAST = settings(max_examples=25, deadline=None, derandomize=True)
F64 = torch.float64


def problem(B=None, n=6, m=5, scale=1.0, seed=0, dtype=F64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    shape = () if B is None else (B,)
    a = torch.rand(*shape, n, generator=g, dtype=F64) + 0.2
    b = torch.rand(*shape, m, generator=g, dtype=F64) + 0.2
    C = torch.rand(*shape, n, m, generator=g, dtype=F64) * scale
    a, b = a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True)
    return (t.to(device=device, dtype=dtype) for t in (a, b, C))


@st.composite
def ot_problems(draw, square=False):
    n = draw(st.integers(2, 6))
    m = n if square else draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    eps = draw(st.sampled_from([0.05, 0.2, 1.0]))
    a, b, C = problem(n=n, m=m, seed=seed)
    return a, b, C, eps


def test_pot_two_point_example():
    res = sinkhorn([0.5, 0.5], [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], 1.0)
    off = 0.5 / (1 + math.e)
    assert torch.allclose(res.plan, torch.tensor([[0.5 - off, off], [off, 0.5 - off]], dtype=F64), atol=1e-10)
    assert res.value_linear.item() == pytest.approx(0.26894142136999516, abs=1e-10)
    assert res.value.item() == pytest.approx(-1.00640887, abs=1e-8)
    assert res.plan.dtype == F64 and res.n_iter >= 1 and res.marginal_error <= 1e-9


@pytest.mark.parametrize("method", ["auto", "log", "scaling"])
def test_batch_matches_pot_problem_by_problem(method):
    a, b, C = problem(B=6, n=7, m=5, seed=3)
    eps = 0.1
    res = sinkhorn(a, b, C, eps, method=method, tol=1e-11)
    for i in range(6):
        plan = ot.sinkhorn(a[i].numpy(), b[i].numpy(), C[i].numpy(), eps, stopThr=1e-12, numItermax=10000)
        sol = ot.solve(C[i], a[i], b[i], reg=eps, reg_type="entropy", tol=1e-12, max_iter=10000)
        assert np.abs(res.plan[i].numpy() - plan).max() < 1e-9
        assert res.value_linear[i].item() == pytest.approx(float((plan * C[i].numpy()).sum()), abs=1e-9)
        assert res.value[i].item() == pytest.approx(float(sol.value), abs=1e-9)


def test_shared_cost_and_unbatched_inputs_broadcast():
    a, b, C = problem(B=4, seed=5)
    shared = sinkhorn(a, b, C[0], 0.2)
    for i in range(4):
        single = sinkhorn(a[i], b[i], C[0], 0.2)
        assert single.plan.shape == (6, 5) and single.value.shape == ()
        assert torch.allclose(shared.plan[i], single.plan, atol=1e-9)
    one_a = sinkhorn(a[0], b, C, 0.2)
    assert one_a.plan.shape == (4, 6, 5)


@FAST
@given(ot_problems(square=True))
def test_swapping_marginals_with_a_symmetric_cost(args):
    a, b, C, eps = args
    C = C + C.T
    ab, ba = sinkhorn(a, b, C, eps), sinkhorn(b, a, C, eps)
    assert ab.value.item() == pytest.approx(ba.value.item(), abs=1e-8)
    assert torch.allclose(ab.plan, ba.plan.T, atol=1e-8)


@FAST
@given(ot_problems())
def test_plan_marginals_match_a_and_b(args):
    a, b, C, eps = args
    res = sinkhorn(a, b, C, eps, tol=1e-10, max_iter=5000, warn=False)
    assert torch.allclose(res.plan.sum(1), a, atol=1e-12)  # rows are exact after the last update
    col_err = torch.linalg.vector_norm(res.plan.sum(0) - b).item()
    assert col_err == pytest.approx(res.marginal_error, rel=1e-3, abs=1e-12)  # the reported error is true
    assert col_err <= 1e-10 or res.n_iter == 5000


@FAST
@given(ot_problems(), st.floats(0.1, 10.0))
def test_linearity_in_the_cost(args, lam):
    a, b, C, eps = args
    # Near-degenerate problems converge slowly at small eps: compare at the accuracy reached.
    kw = dict(tol=1e-11, max_iter=5000, warn=False)
    base = sinkhorn(a, b, C, eps, **kw)
    # shifts by row/column constants leave the plan and add <u, a> + <v, b>
    u, v = torch.randn(C.shape[0], dtype=F64), torch.randn(C.shape[1], dtype=F64)
    shifted = sinkhorn(a, b, C + u[:, None] + v[None, :], eps, **kw)
    atol = 1e-8 + 10 * max(base.marginal_error, shifted.marginal_error)
    assert torch.allclose(shifted.plan, base.plan, atol=atol)
    assert shifted.value.item() == pytest.approx(base.value.item() + (u @ a + v @ b).item(), abs=atol)
    # scaling cost and eps together scales the value
    scaled = sinkhorn(a, b, lam * C, lam * eps, **kw)
    atol = 1e-8 + 10 * max(base.marginal_error, scaled.marginal_error)
    assert scaled.value.item() == pytest.approx(lam * base.value.item(), abs=atol * max(1, lam))


def test_constant_cost_gives_the_independent_plan():
    a, b, _ = problem(seed=1)
    res = sinkhorn(a, b, torch.full((6, 5), 0.3, dtype=F64), 0.05)
    assert torch.allclose(res.plan, a[:, None] * b[None, :], atol=1e-12)


def test_gap_to_exact_ot_is_within_eps_log_n():
    n = 12
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 2, generator=g, dtype=F64), torch.rand(n, 2, generator=g, dtype=F64)
    C = torch.cdist(x, y) ** 2
    a = torch.full((n,), 1 / n, dtype=F64)
    exact = ot.emd2(a.numpy(), a.numpy(), C.numpy())
    gaps = []
    for eps in (0.1, 0.03, 0.01):
        gap = sinkhorn(a, a, C, eps, tol=1e-12, max_iter=20000).value_linear.item() - exact
        assert -1e-10 <= gap <= eps * math.log(n)
        gaps.append(gap)
    assert gaps[0] > gaps[1] > gaps[2]


def _centred_grads(fn, a, b, C):
    A, B_, M = (t.clone().requires_grad_() for t in (a, b, C))
    fn(A, B_, M).sum().backward()
    return A.grad - A.grad.mean(-1, keepdim=True), B_.grad - B_.grad.mean(-1, keepdim=True), M.grad


def test_envelope_gradient_matches_pot_and_finite_differences():
    a, b, C = problem(n=6, m=5, seed=7)
    eps = 0.1
    ga, gb, gC = _centred_grads(lambda *t: sinkhorn(*t, eps, tol=1e-13, max_iter=10000).value, a, b, C)
    pa, pb, pC = _centred_grads(
        lambda A, B_, M: ot.solve(M, A, B_, reg=eps, reg_type="entropy", grad="envelope", tol=1e-13, max_iter=10000).value,
        a, b, C,
    )
    for ours, pot in ((ga, pa), (gb, pb), (gC, pC)):
        assert (ours - pot).abs().max() < 1e-10
    # finite differences of POT's regularised value, along zero-sum directions
    h = 1e-6

    def value(A, B_, M):
        return float(ot.solve(M, A, B_, reg=eps, reg_type="entropy", tol=1e-14, max_iter=100000).value)

    for j, grad in enumerate((ga, gb, gC)):
        d = torch.randn(grad.shape, dtype=F64)
        d = d - d.mean() if j < 2 else d
        args_p, args_m = [a, b, C], [a, b, C]
        args_p[j], args_m[j] = args_p[j] + h * d, args_m[j] - h * d
        fd = (value(*args_p) - value(*args_m)) / (2 * h)
        assert fd == pytest.approx((grad * d).sum().item(), abs=1e-7)


def test_unrolled_gradient_matches_pot_sinkhorn2():
    a, b, C = problem(B=3, n=6, m=5, seed=11)
    eps = 0.1
    ga, gb, gC = _centred_grads(
        lambda *t: sinkhorn(*t, eps, grad="autodiff", tol=1e-13, max_iter=10000).value_linear, a, b, C
    )
    for i in range(3):
        pa, pb, pC = _centred_grads(
            lambda A, B_, M: ot.sinkhorn2(A, B_, M, eps, stopThr=1e-13, numItermax=10000), a[i], b[i], C[i]
        )
        assert (ga[i] - pa).abs().max() < 1e-8
        assert (gb[i] - pb).abs().max() < 1e-8
        assert (gC[i] - pC).abs().max() < 1e-8
    # unrolled and envelope agree on the regularised value at convergence
    ea, eb, eC = _centred_grads(lambda *t: sinkhorn(*t, eps, tol=1e-13).value, a, b, C)
    ua, ub, uC = _centred_grads(lambda *t: sinkhorn(*t, eps, grad="autodiff", tol=1e-13).value, a, b, C)
    assert (ea - ua).abs().max() < 1e-9 and (eb - ub).abs().max() < 1e-9 and (eC - uC).abs().max() < 1e-9


@pytest.mark.parametrize("grad", ["envelope", "autodiff"])
def test_gradcheck_float64(grad):
    """Marginals through a softmax (they must stay on the simplex), the cost directly."""
    za = torch.randn(2, 4, dtype=F64, requires_grad=True)
    zb = torch.randn(2, 3, dtype=F64, requires_grad=True)
    C = torch.rand(2, 4, 3, dtype=F64, requires_grad=True)

    def f(za, zb, C):
        return sinkhorn(za.softmax(-1), zb.softmax(-1), C, 0.3, grad=grad, tol=1e-14, max_iter=10000).value

    assert torch.autograd.gradcheck(f, (za, zb, C), atol=1e-6)


def test_dtype_and_device_are_preserved(device, dtype):
    a, b, C = problem(B=3, dtype=dtype, device=device)
    a, b, C = (t.requires_grad_() for t in (a, b, C))
    for grad in ("envelope", "autodiff", "detach"):
        res = sinkhorn(a, b, C, 0.1, grad=grad)
        for t in (res.plan, res.value, res.value_linear, res.f, res.g):
            assert t.dtype == dtype and t.device.type == device.type
    res = sinkhorn(a, b, C, 0.1)
    res.value.sum().backward()
    for t in (a, b, C):
        assert t.grad.dtype == dtype and t.grad.device.type == device.type
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    assert (res.plan.sum(-1) - a).abs().max() < tol


def test_array_likes_follow_the_first_tensor():
    a32 = torch.tensor([0.5, 0.5], dtype=torch.float32)
    res = sinkhorn(a32, [0.25, 0.75], np.array([[0.0, 1.0], [1.0, 0.0]]), 0.5)
    assert res.plan.dtype == torch.float32
    res = sinkhorn(np.array([0.5, 0.5], np.float32), np.array([0.5, 0.5], np.float32), np.eye(2, dtype=np.float32), 0.5)
    assert res.plan.dtype == torch.float32 and isinstance(res.plan, torch.Tensor)


def test_small_eps_is_stable_in_float32():
    """At eps = 1e-3 on costs in [0, 1], exp(-C/eps) underflows in float32: scaling fails, 'auto' does not."""
    a, b, C = problem(B=2, n=8, m=8, seed=2, dtype=torch.float32)
    with pytest.raises(FloatingPointError, match="method='log'"):
        sinkhorn(a, b, C, 1e-3, method="scaling")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SinkhornConvergenceWarning)
        res = sinkhorn(a, b, C, 1e-3, max_iter=3000)
        ref = sinkhorn(a.double(), b.double(), C.double(), 1e-3, method="log", max_iter=3000)
    assert torch.isfinite(res.plan).all()
    assert (res.plan.double() - ref.plan).abs().max() < 1e-4
    assert (res.value_linear.double() - ref.value_linear).abs().max() < 1e-4


def test_sinkhorn_loss_module():
    a, b, C = problem(B=4, seed=4)
    za = torch.log(a).requires_grad_()
    loss = SinkhornLoss(0.2, cost=C[0])
    out = loss(za.softmax(-1), b)
    assert out.shape == ()
    assert out.item() == pytest.approx(sinkhorn(a, b, C[0], 0.2).value.mean().item(), abs=1e-10)
    out.backward()
    assert za.grad is not None and torch.isfinite(za.grad).all()
    assert SinkhornLoss(0.2, reduction="sum")(a, b, C).item() == pytest.approx(
        sinkhorn(a, b, C, 0.2).value.sum().item(), abs=1e-10
    )


def test_gradient_descent_on_logits_reaches_the_soft_label():
    """Entropic OT (Cuturi 2013; Peyré & Cuturi 2019, Prop. 4.6): with b fixed, argmin_a OT_eps(a, b) = P b, P the column-normalised Gibbs kernel."""
    _, b, C = problem(n=5, m=4, seed=9)
    eps = 0.2
    z = torch.zeros(5, dtype=F64, requires_grad=True)
    opt = torch.optim.SGD([z], lr=20.0)
    for _ in range(300):
        opt.zero_grad()
        sinkhorn(z.softmax(0), b, C, eps).value.backward()
        opt.step()
    K = torch.exp(-C / eps)
    target = (K / K.sum(0, keepdim=True)) @ b
    assert (z.softmax(0) - target).abs().max() < 1e-6


def test_errors_are_actionable():
    a, b, C = problem()
    with pytest.raises(ValueError, match="equal mass"):
        sinkhorn(a * 2, b, C, 0.1)
    with pytest.raises(ValueError, match="strictly positive"):
        sinkhorn(torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([0.5, 0.5], dtype=F64), torch.eye(2, dtype=F64), 0.1)
    with pytest.raises(ValueError, match="cost must end in"):
        sinkhorn(a, b, C.T, 0.1)
    with pytest.raises(ValueError, match="batch sizes"):
        sinkhorn(a.expand(2, 6), b.expand(3, 5), C, 0.1)
    with pytest.raises(ValueError, match="eps"):
        sinkhorn(a, b, C, 0.0)
    with pytest.raises(ValueError, match="method"):
        sinkhorn(a, b, C, 0.1, method="greenkhorn")
    with pytest.raises(TypeError, match="dtype and device"):
        sinkhorn(a, b.float(), C, 0.1)
    with pytest.warns(SinkhornConvergenceWarning, match="max_iter"):
        sinkhorn(a, b, C * 10, 0.01, max_iter=3)
    with pytest.raises(ValueError, match="no cost matrix"):
        SinkhornLoss(0.1)(a, b)


def test_benchmark_smoke():
    from lautum.bench.sinkhorn import format_sinkhorn_benchmark, run_sinkhorn_benchmark

    res = run_sinkhorn_benchmark(device="cpu", batch=4, n=8, repeats=1, n_fd=1)
    assert set(res["times"]) >= {"ours_forward", "pot_loop_forward", "pot_batch_forward", "ours_backward"}
    assert max(res["max_abs_diff"].values()) < 1e-6
    assert "solve_batch" in format_sinkhorn_benchmark(res)

"""Batched entropic optimal transport (Sinkhorn) with gradients in the marginals.

Why our own and not POT's: POT's batched solver (``ot.batch.solve_batch``) gives
gradients with respect to the cost only, and a Python loop over ``ot.sinkhorn2`` solves
one problem at a time. JTLN's loss needs the gradient with respect to a marginal (the
source head's prediction), for a minibatch of problems at once. POT stays the
reference in the tests and in :mod:`lautum.bench.sinkhorn`.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch
from torch import nn

from ._utils import as_float_tensors

__all__ = ["SinkhornResult", "sinkhorn", "SinkhornLoss", "SinkhornConvergenceWarning"]

_METHODS = ("auto", "log", "scaling")
_GRADS = ("envelope", "autodiff", "detach")


class SinkhornConvergenceWarning(UserWarning):
    """Sinkhorn stopped at ``max_iter`` with the marginal error above ``tol``."""


class SinkhornResult(NamedTuple):
    """What :func:`sinkhorn` returns (leading batch dimension ``B`` only if an input had one).

    Attributes
    ----------
    plan : torch.Tensor, shape (B, n, m) or (n, m)
        The entropic optimal plan :math:`P^\\varepsilon`.
    value : torch.Tensor, shape (B,) or ()
        The regularised objective :math:`\\langle P, C\\rangle + \\varepsilon\\sum_{ij}P_{ij}\\log P_{ij}`
        (POT's ``ot.solve(..., reg_type="entropy").value``). This is the quantity whose
        gradient is the envelope gradient.
    value_linear : torch.Tensor, shape (B,) or ()
        The transport cost :math:`\\langle P, C\\rangle` (what ``ot.sinkhorn2`` returns).
    f, g : torch.Tensor, shapes (B, n), (B, m) or (n,), (m,)
        Dual potentials with :math:`P_{ij} = \\exp((f_i + g_j - C_{ij})/\\varepsilon)`.
    n_iter : int
        Sinkhorn iterations done (one iteration updates both potentials).
    marginal_error : float
        :math:`\\max_b \\lVert P_b^\\top\\mathbf 1 - b_b\\rVert_2` at exit (the row marginals are exact).
    """

    plan: torch.Tensor
    value: torch.Tensor
    value_linear: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    n_iter: int
    marginal_error: float


def _lse(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.logsumexp(x, dim=dim)


def _exp_no_subnormal(x: torch.Tensor) -> torch.Tensor:
    """exp(x), with results below the smallest normal number flushed to 0.

    Subnormal floats make CPU arithmetic tens of times slower; entries that small
    carry no mass anyway.
    """
    log_tiny = math.log(torch.finfo(x.dtype).tiny)
    return torch.exp(x.masked_fill(x < log_tiny, -math.inf))


def _log_step(f, g, loga, logb, C, eps):
    """One log-domain Sinkhorn iteration (g then f), as POT's ``sinkhorn_log``."""
    g = eps * logb - eps * _lse((f[:, :, None] - C) / eps, dim=1)
    f = eps * loga - eps * _lse((g[:, None, :] - C) / eps, dim=2)
    return f, g


def _col_error(f, g, C, b, eps):
    """L2 norm of the column-marginal violation of exp((f+g-C)/eps), per problem."""
    logcol = _lse((f[:, :, None] + g[:, None, :] - C) / eps, dim=1)
    return torch.linalg.vector_norm(torch.exp(logcol) - b, dim=-1)


def _solve(a, b, C, eps, max_iter, tol, method, check_every):
    """Core iterations on batched inputs a (B,n), b (B,m), C (B or 1, n, m).

    Returns potentials f, g, the iteration count and the final marginal error
    (a 0-d tensor). Autograd records whatever runs here when it is enabled.
    """
    B, n = a.shape
    m = b.shape[1]
    loga, logb = torch.log(a), torch.log(b)
    # Absorb the scalings into the potentials once |log u| or |log v| passes a quarter
    # of the exponent range (about 22 in float32, 177 in float64).
    absorb_above = -0.25 * math.log(torch.finfo(a.dtype).tiny)
    f = a.new_zeros(B, n)
    g = a.new_zeros(B, m)
    n_iter = 0
    err = torch.full((), float("inf"), dtype=a.dtype, device=a.device)

    if method == "scaling":
        K = _exp_no_subnormal(-C / eps)
        if not bool((K.sum(2) > 0).all() and (K.sum(1) > 0).all()):
            raise FloatingPointError(
                f"exp(-cost/eps) underflows to a zero row or column at eps={eps} "
                f"(max cost/eps = {float(C.max()) / eps:.3g}, {a.dtype} underflows past "
                f"{-math.log(torch.finfo(a.dtype).tiny):.0f}); use method='log' or 'auto', "
                "a larger eps, or rescale the cost."
            )
        u, v = torch.ones_like(a), torch.ones_like(b)
        while n_iter < max_iter:
            v = b / (u[:, None, :] @ K).squeeze(1)
            u = a / (K @ v[:, :, None]).squeeze(-1)
            n_iter += 1
            if n_iter % check_every == 0 or n_iter == max_iter:
                with torch.no_grad():
                    sane = torch.isfinite(u).all() & torch.isfinite(v).all() & (u > 0).all() & (v > 0).all()
                    if not bool(sane):
                        raise FloatingPointError(
                            f"the scaling iteration over/underflowed after {n_iter} iterations "
                            f"at eps={eps}; use method='log' or 'auto' (log-domain stabilised)."
                        )
                    col = v * (u[:, None, :] @ K).squeeze(1)
                    err = torch.linalg.vector_norm(col - b, dim=-1).max()
                if err <= tol:
                    break
        return eps * torch.log(u), eps * torch.log(v), n_iter, err

    # "log" and "auto" start with one log-domain iteration: afterwards every row of
    # exp((f+g-C)/eps) sums to a_i, so the stabilised kernel below has no zero row.
    while n_iter < max_iter:
        if method == "log":
            for _ in range(min(check_every, max_iter - n_iter)):
                f, g = _log_step(f, g, loga, logb, C, eps)
                n_iter += 1
            with torch.no_grad():
                err = _col_error(f, g, C, b, eps).max()
        else:  # "auto": scaling iterations on the absorbed kernel, log step as fallback
            steps = min(check_every, max_iter - n_iter)
            if n_iter == 0:
                f, g = _log_step(f, g, loga, logb, C, eps)
                steps -= 1
                n_iter += 1
                Kt = _exp_no_subnormal((f[:, :, None] + g[:, None, :] - C) / eps)
                u, v = torch.ones_like(a), torch.ones_like(b)
            u0, v0 = u, v
            for _ in range(steps):
                v = b / (u[:, None, :] @ Kt).squeeze(1)
                u = a / (Kt @ v[:, :, None]).squeeze(-1)
            with torch.no_grad():
                finite = bool(torch.isfinite(u).all() and torch.isfinite(v).all())
                if finite:
                    lu, lv = torch.log(u), torch.log(v)
                    spread = float(torch.maximum(lu.abs().max(), lv.abs().max()))
                    finite = math.isfinite(spread)
            if finite and spread <= absorb_above:
                with torch.no_grad():
                    col = v * (u[:, None, :] @ Kt).squeeze(1)
                    err = torch.linalg.vector_norm(col - b, dim=-1).max()
            else:
                if finite:  # fold the scalings into the potentials (absorption)
                    f = f + eps * torch.log(u)
                    g = g + eps * torch.log(v)
                else:  # the block over/underflowed: undo it and redo it in the log domain
                    f = f + eps * torch.log(u0)
                    g = g + eps * torch.log(v0)
                    for _ in range(steps):
                        f, g = _log_step(f, g, loga, logb, C, eps)
                with torch.no_grad():
                    err = _col_error(f, g, C, b, eps).max()
                Kt = _exp_no_subnormal((f[:, :, None] + g[:, None, :] - C) / eps)
                u, v = torch.ones_like(a), torch.ones_like(b)
            n_iter += steps
        if err <= tol:
            break
    if method == "auto":
        f = f + eps * torch.log(u)
        g = g + eps * torch.log(v)
    return f, g, n_iter, err


class _EnvelopeValue(torch.autograd.Function):
    """value(a, b, C) with the envelope gradient (P, centred f, centred g)."""

    @staticmethod
    def forward(ctx, a, b, C, value, plan, fc, gc):  # noqa: D401
        ctx.save_for_backward(plan, fc, gc)
        return value.clone()

    @staticmethod
    def backward(ctx, grad_out):
        plan, fc, gc = ctx.saved_tensors
        ga = grad_out[:, None] * fc if ctx.needs_input_grad[0] else None
        gb = grad_out[:, None] * gc if ctx.needs_input_grad[1] else None
        gC = grad_out[:, None, None] * plan if ctx.needs_input_grad[2] else None
        return ga, gb, gC, None, None, None, None


def sinkhorn(
    a,
    b,
    cost,
    eps: float,
    *,
    max_iter: int = 1000,
    tol: float | None = None,
    method: str = "auto",
    grad: str = "envelope",
    check_every: int = 10,
    warn: bool = True,
) -> SinkhornResult:
    r"""Entropic optimal transport between histograms, batched, with marginal gradients.

    Solves, for each problem in the batch (Cuturi, 2013),

    .. math::

        \mathrm{OT}_\varepsilon(a, b; C) = \min_{P \in U(a, b)}
            \langle P, C\rangle + \varepsilon \sum_{ij} P_{ij}\log P_{ij},
        \qquad U(a,b) = \{P \ge 0 : P\mathbf 1 = a,\ P^\top\mathbf 1 = b\},

    whose solution is :math:`P_{ij} = e^{(f_i + g_j - C_{ij})/\varepsilon}` for dual
    potentials :math:`f, g`. The log-domain iteration (Peyré & Cuturi, 2019, §4.4)

    .. math::

        g_j \leftarrow \varepsilon\log b_j - \varepsilon\,\mathrm{LSE}_i\frac{f_i - C_{ij}}{\varepsilon},
        \qquad
        f_i \leftarrow \varepsilon\log a_i - \varepsilon\,\mathrm{LSE}_j\frac{g_j - C_{ij}}{\varepsilon}

    never overflows; the scaling iteration :math:`v \leftarrow b \oslash K^\top u`,
    :math:`u \leftarrow a \oslash K v` with :math:`K = e^{-C/\varepsilon}` is cheaper (two
    matrix–vector products) but :math:`K` underflows once :math:`\max C/\varepsilon`
    exceeds about 87 in float32 (708 in float64). ``method="auto"`` runs scaling
    iterations on the *absorbed* kernel :math:`\tilde K = e^{(f + g - C)/\varepsilon}`
    and folds the scalings into :math:`f, g` every ``check_every`` iterations
    (Schmitzer, 2019), redoing a block in the log domain if it over/underflows.

    **Gradient** (``grad="envelope"``, the default). By the envelope (Danskin) theorem,
    at the optimum :math:`\partial\,\mathrm{OT}_\varepsilon/\partial C = P` and
    :math:`\nabla_a \mathrm{OT}_\varepsilon = f`, :math:`\nabla_b \mathrm{OT}_\varepsilon = g`, up to an additive
    constant (moving along the simplex only sees zero-sum directions); we return the
    centred representatives :math:`f - \bar f\mathbf 1`, :math:`g - \bar g\mathbf 1`, as POT does.
    Only ``value`` carries these gradients; ``plan`` and ``value_linear`` are detached.
    ``grad="autodiff"`` back-propagates through the iterations instead (all outputs
    differentiable, including :math:`\langle P, C\rangle`, whose gradient is *not* the envelope one);
    ``grad="detach"`` returns everything without gradient.

    Parameters
    ----------
    a : array-like, shape (n,) or (B, n)
        Source histograms, positive. The first tensor among ``a, b, cost`` sets the
        device and dtype; array-likes follow it (lists become float64, as in POT).
    b : array-like, shape (m,) or (B, m)
        Target histograms, positive, each with the same mass as ``a`` (up to a relative
        1e-6 in float64, 3.5e-4 in float32; ``b`` is then rescaled to the mass of ``a``).
    cost : array-like, shape (n, m) or (B, n, m)
        Cost matrices; one matrix is shared by the whole batch.
    eps : float
        Entropic regularisation :math:`\varepsilon > 0` (POT's ``reg``), in cost units.
    max_iter : int, default 1000
    tol : float, optional
        Stop when :math:`\max_b\lVert P_b^\top\mathbf 1 - b_b\rVert_2 \le` ``tol``
        (POT's ``stopThr`` criterion). Default 1e-9 in float64, 1e-6 in float32.
    method : {"auto", "log", "scaling"}, default "auto"
    grad : {"envelope", "autodiff", "detach"}, default "envelope"
    check_every : int, default 10
        Iterations between convergence checks (and absorptions for ``"auto"``).
    warn : bool, default True
        Warn (:class:`SinkhornConvergenceWarning`) if ``max_iter`` is reached above ``tol``.

    Returns
    -------
    SinkhornResult
        ``plan, value, value_linear, f, g, n_iter, marginal_error``, on the input's
        device and dtype.

    References
    ----------
    Cuturi, "Sinkhorn Distances: Lightspeed Computation of Optimal Transport", NeurIPS 2013.
    Peyré & Cuturi, "Computational Optimal Transport", Found. Trends Mach. Learn., 2019.
    Schmitzer, "Stabilized Sparse Scaling Algorithms for Entropy Regularized Transport
    Problems", SIAM J. Sci. Comput., 2019.

    Examples
    --------
    POT's two-point example: off-diagonal plan :math:`\tfrac12/(1+e^{1/\varepsilon})`.

    >>> res = sinkhorn([0.5, 0.5], [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], eps=1.0)
    >>> res.plan
    tensor([[0.3655, 0.1345],
            [0.1345, 0.3655]], dtype=torch.float64)
    >>> round(res.value_linear.item(), 12)  # = ot.sinkhorn2(a, b, M, 1)
    0.26894142137
    >>> round(res.value.item(), 8)  # POT's entropic objective
    -1.00640887
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if grad not in _GRADS:
        raise ValueError(f"grad must be one of {_GRADS}, got {grad!r}.")
    eps = float(eps)
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite number, got {eps}.")
    if int(max_iter) < 1 or int(check_every) < 1:
        raise ValueError("max_iter and check_every must be positive integers.")
    a, b, C = as_float_tensors(a, b, cost, names=("a", "b", "cost"))
    if a.dim() not in (1, 2) or b.dim() not in (1, 2) or C.dim() not in (2, 3):
        raise ValueError(
            "expected a of shape (n,) or (B, n), b of shape (m,) or (B, m) and cost of "
            f"shape (n, m) or (B, n, m); got {tuple(a.shape)}, {tuple(b.shape)}, {tuple(C.shape)}."
        )
    batched = a.dim() == 2 or b.dim() == 2 or C.dim() == 3
    n, m = a.shape[-1], b.shape[-1]
    if tuple(C.shape[-2:]) != (n, m):
        raise ValueError(
            f"cost has shape {tuple(C.shape)} but a has {n} and b has {m} entries: "
            f"cost must end in ({n}, {m})."
        )
    sizes = {t.shape[0] for t, d in ((a, 2), (b, 2), (C, 3)) if t.dim() == d}
    if len(sizes) > 1:
        raise ValueError(f"batch sizes disagree: a, b and cost have leading sizes {sorted(sizes)}.")
    B = sizes.pop() if sizes else 1
    a2 = a.expand(B, n) if a.dim() == 1 else a
    b2 = b.expand(B, m) if b.dim() == 1 else b
    C3 = C[None] if C.dim() == 2 else C

    with torch.no_grad():
        if bool((a2 <= 0).any()) or bool((b2 <= 0).any()):
            raise ValueError(
                "a and b must be strictly positive (log a and log b enter the potentials); "
                "clamp near-zero entries, e.g. a.clamp_min(1e-8), and renormalise."
            )
        mass_a, mass_b = a2.sum(-1), b2.sum(-1)
        rtol = max(torch.finfo(a.dtype).eps ** 0.5, 1e-6)
        if bool(((mass_a - mass_b).abs() > rtol * mass_a).any()):
            worst = int((mass_a - mass_b).abs().argmax())
            raise ValueError(
                f"a and b must have equal mass (balanced OT); problem {worst} has "
                f"sum(a)={float(mass_a[worst]):.8g}, sum(b)={float(mass_b[worst]):.8g}. "
                "Normalise both, e.g. a / a.sum(-1, keepdim=True)."
            )
    # Masses equal up to rounding: rescale b to a's mass exactly, else the column
    # error could never fall below the mismatch.
    b2 = b2 * (mass_a / mass_b)[:, None]
    if tol is None:
        tol = 1e-9 if a.dtype == torch.float64 else 1e-6

    if grad == "autodiff":
        f, g, n_iter, err = _solve(a2, b2, C3, eps, int(max_iter), tol, method, int(check_every))
    else:
        with torch.no_grad():
            f, g, n_iter, err = _solve(
                a2.detach(), b2.detach(), C3.detach(), eps, int(max_iter), tol, method, int(check_every)
            )
    err = float(err)
    if warn and not err <= tol:
        warnings.warn(
            f"Sinkhorn did not reach tol={tol:g} in {n_iter} iterations (marginal error "
            f"{err:.3g}, eps={eps:g}); raise max_iter, raise eps or rescale the cost, "
            "or use float64.",
            SinkhornConvergenceWarning,
            stacklevel=2,
        )

    if grad == "autodiff":
        logP = (f[:, :, None] + g[:, None, :] - C3) / eps
        plan = torch.exp(logP)
        value_linear = (plan * C3).sum((1, 2))
        value = value_linear + eps * (plan * logP).sum((1, 2))
    else:
        with torch.no_grad():
            logP = (f[:, :, None] + g[:, None, :] - C3) / eps
            plan = torch.exp(logP)
            value_linear = (plan * C3).sum((1, 2))
            value = value_linear + eps * (plan * logP).sum((1, 2))
        if grad == "envelope" and torch.is_grad_enabled() and (
            a.requires_grad or b.requires_grad or C.requires_grad
        ):
            fc = f - f.mean(-1, keepdim=True)
            gc = g - g.mean(-1, keepdim=True)
            value = _EnvelopeValue.apply(
                a2, b2, C3.expand(B, n, m), value, plan, fc, gc
            )
    if not batched:
        plan, value, value_linear, f, g = plan[0], value[0], value_linear[0], f[0], g[0]
    return SinkhornResult(plan, value, value_linear, f, g, n_iter, err)


class SinkhornLoss(nn.Module):
    r"""Mean (or sum) over a batch of entropic OT values, with the envelope gradient.

    A thin module over :func:`sinkhorn`: ``forward(a, b, cost=None)`` returns the
    scalar :math:`\frac1B\sum_b \mathrm{OT}_\varepsilon(a_b, b_b; C)` (``reduction="mean"``).
    This is the form of JTLN's OT term (Lu et al., 2017), where ``a`` is the source
    head's softmax and ``b`` the target head's on the same image; detach ``b`` to use
    it as a soft label.

    Parameters
    ----------
    eps : float
        Entropic regularisation (cost units).
    cost : array-like, shape (n, m), optional
        A fixed cost matrix (stored as a buffer); else pass ``cost`` to ``forward``.
    reduction : {"mean", "sum"}, default "mean"
    **sinkhorn_kwargs
        Passed to :func:`sinkhorn` (``max_iter``, ``tol``, ``method``, ``grad``, ...).

    Examples
    --------
    >>> loss = SinkhornLoss(eps=1.0, cost=torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64))
    >>> p = torch.full((3, 2), 0.5, dtype=torch.float64)
    >>> round(loss(p, p).item(), 8)
    -1.00640887
    """

    def __init__(self, eps: float, cost=None, reduction: str = "mean", **sinkhorn_kwargs) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")
        self.eps = float(eps)
        self.reduction = reduction
        self.sinkhorn_kwargs = sinkhorn_kwargs
        self.register_buffer("cost", None if cost is None else torch.as_tensor(cost))

    def forward(self, a: torch.Tensor, b: torch.Tensor, cost: torch.Tensor | None = None) -> torch.Tensor:
        if cost is None:
            if self.cost is None:
                raise ValueError("no cost matrix: pass cost= to SinkhornLoss(...) or to forward().")
            cost = self.cost.to(device=a.device, dtype=a.dtype)
        value = sinkhorn(a, b, cost, self.eps, **self.sinkhorn_kwargs).value
        return value.mean() if self.reduction == "mean" else value.sum()

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction={self.reduction!r}"

"""MKMMD: the DAN family over lautum.divergences.mmd2, invariants and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from lautum.divergences.mmd import MultipleKernelMMD, dan_bandwidths, mmd2
from lautum.regularizers.alignment import MKMMD, mkmmd_exponents


def _pair(dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(12, 4, generator=g, dtype=torch.float64)
    xt = torch.randn(9, 4, generator=g, dtype=torch.float64) + 0.5
    return xs.to(device, dtype), xt.to(device, dtype)


def _mean_sq_dist(xs, xt):
    z = torch.cat([xs, xt])
    d = torch.cdist(z, z) ** 2
    n = len(z)
    return d.sum() / (n * (n - 1))


@pytest.mark.parametrize("unbiased", [False, True])
def test_default_equals_mmd2_with_dan_bandwidths(unbiased):
    xs, xt = _pair()
    sigma = dan_bandwidths(xs, xt, exponents=(-3, -2, -1, 0, 1))
    expected = mmd2(xs, xt, sigma, unbiased=unbiased)
    assert torch.allclose(MKMMD(unbiased=unbiased)(xs, xt), expected, rtol=1e-12)
    assert isinstance(MKMMD(), MultipleKernelMMD)


@pytest.mark.parametrize("num_kernels,kernel_mul", [(1, 2.0), (3, 3.0), (5, 2.0), (4, 1.5)])
def test_family_by_hand(num_kernels, kernel_mul):
    xs, xt = _pair()
    base = _mean_sq_dist(xs, xt)
    sigma = [math.sqrt(kernel_mul**u * base.item()) for u in range(2 - num_kernels, 2)]
    expected = mmd2(xs, xt, sigma)
    got = MKMMD(num_kernels=num_kernels, kernel_mul=kernel_mul)(xs, xt)
    assert torch.allclose(got, expected, rtol=1e-10)


def test_median_heuristic():
    xs, xt = _pair()
    sigma = dan_bandwidths(xs, xt, heuristic="median")
    assert torch.allclose(MKMMD(heuristic="median")(xs, xt), mmd2(xs, xt, sigma), rtol=1e-12)


def test_zero_for_identical_batches_when_biased():
    xs, _ = _pair()
    assert MKMMD()(xs, xs.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert MKMMD(unbiased=True)(xs, xs.clone()).item() < 0  # the U-statistic is not clipped


@pytest.mark.parametrize("unbiased", [False, True])
def test_symmetric(unbiased):
    xs, xt = _pair()
    assert torch.allclose(MKMMD(unbiased=unbiased)(xs, xt), MKMMD(unbiased=unbiased)(xt, xs), rtol=1e-12)


def test_positive_under_shift_and_gradient_reaches_both_inputs():
    xs, xt = _pair()
    xs.requires_grad_(True)
    xt.requires_grad_(True)
    v = MKMMD()(xs, xt)
    assert v > 0
    v.backward()
    assert xs.grad.abs().sum() > 0 and xt.grad.abs().sum() > 0
    # The bandwidths are per-batch constants (detached): the gradient is mmd2's at fixed sigma.
    a, b = xs.detach().clone().requires_grad_(True), xt.detach().clone().requires_grad_(True)
    mmd2(a, b, dan_bandwidths(a, b)).backward()
    assert torch.allclose(xs.grad, a.grad, rtol=1e-12) and torch.allclose(xt.grad, b.grad, rtol=1e-12)


def test_dtype_and_device_preserved(device, dtype):
    xs, xt = _pair(dtype, device)
    v = MKMMD()(xs, xt)
    assert v.dtype == dtype and v.device == device and v.ndim == 0


def test_half_precision_inputs_are_computed_in_float32():
    xs, xt = _pair(torch.float32)
    v = MKMMD()(xs.bfloat16(), xt.bfloat16())
    assert v.dtype == torch.float32
    assert torch.allclose(v, MKMMD()(xs.bfloat16().float(), xt.bfloat16().float()))


def test_bad_arguments():
    with pytest.raises(ValueError):
        MKMMD(num_kernels=0)
    with pytest.raises(ValueError):
        MKMMD(kernel_mul=-2.0)
    with pytest.raises(ValueError):
        MKMMD(num_kernels=3, kernel_mul=1.0)
    with pytest.raises(ValueError):
        MKMMD(heuristic="max")
    with pytest.raises(ValueError, match="flatten"):
        MKMMD()(torch.randn(2, 3, 4), torch.randn(2, 3, 4))
    assert mkmmd_exponents(1, 1.0) == (0.0,)

"""MMD estimators: identities (hypothesis), the Gaussian closed form, dtype/device, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lautum.divergences import (
    MultipleKernelMMD,
    ZeroBandwidthError,
    dan_bandwidths,
    gaussian_kernel,
    gaussian_mmd2,
    mmd2,
)

FAST = settings(max_examples=30, deadline=None, derandomize=True)


def samples(min_rows=2, max_rows=8, dim=2):
    return st.integers(min_rows, max_rows).flatmap(
        lambda m: arrays(np.float64, (m, dim), elements=st.floats(-3, 3, allow_nan=False))
    )


@FAST
@given(samples(), samples(), st.sampled_from([0.5, 1.0, 2.0]), st.booleans())
def test_mmd2_is_symmetric(x, y, sigma, unbiased):
    assert mmd2(x, y, sigma, unbiased=unbiased).item() == pytest.approx(
        mmd2(y, x, sigma, unbiased=unbiased).item(), abs=1e-12
    )


@FAST
@given(samples(min_rows=1), samples(min_rows=1))
def test_biased_mmd2_is_zero_on_itself_and_non_negative(x, y):
    assert abs(mmd2(x, x, [0.5, 1.0, 2.0]).item()) < 1e-12
    assert mmd2(x, y, [0.5, 1.0, 2.0]).item() >= -1e-12


@FAST
@given(samples(), samples(), st.floats(0.2, 3.0), st.floats(0.2, 3.0), st.floats(0.0, 2.0))
def test_multi_kernel_is_the_weighted_sum_of_single_kernels(x, y, s1, s2, w2):
    both = mmd2(x, y, [s1, s2], weights=[1.0, w2], unbiased=True)
    parts = mmd2(x, y, s1, unbiased=True) + w2 * mmd2(x, y, s2, unbiased=True)
    assert both.item() == pytest.approx(parts.item(), abs=1e-10)


def test_unbiased_estimator_has_mean_zero_under_equal_distributions():
    reps, m = 400, 16
    x = torch.randn(reps, m, 2, dtype=torch.float64)
    y = torch.randn(reps, m, 2, dtype=torch.float64)
    vals = torch.stack([mmd2(x[r], y[r], 1.0, unbiased=True) for r in range(reps)])
    se = vals.std() / math.sqrt(reps)
    assert abs(vals.mean().item()) < 4 * se.item()  # 4 SE: false alarm < 1e-4
    assert (vals < 0).any()  # the U-statistic can be negative


def test_gaussian_closed_form_known_values():
    # chapter 4's closed-form checks
    assert gaussian_mmd2([0.0], [[1.0]], [0.5], [[1.0]], 1.0).item() == pytest.approx(0.0471240, abs=1e-7)
    val = gaussian_mmd2([0, 0], np.eye(2), [0.5, 0], np.diag([1.5, 0.7]), 1.0).item()
    assert val == pytest.approx(0.0283076, abs=1e-7)
    # 1-D formula for any delta and s
    for delta, s in [(0.3, 0.7), (2.0, 1.5)]:
        ref = 2 * math.sqrt(s**2 / (s**2 + 2)) * (1 - math.exp(-(delta**2) / (2 * (s**2 + 2))))
        assert gaussian_mmd2([0.0], [[1.0]], [delta], [[1.0]], s).item() == pytest.approx(ref, rel=1e-12)


def test_estimators_converge_to_the_gaussian_closed_form():
    """U-statistic mean = MMD^2, V-statistic mean = MMD^2 + known bias (3 SE each)."""
    mean_y, cov_y = torch.tensor([0.5, 0.0], dtype=torch.float64), torch.diag(torch.tensor([1.5, 0.7], dtype=torch.float64))
    truth = gaussian_mmd2(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), mean_y, cov_y, 1.0).item()
    reps, m = 200, 100
    x = torch.randn(reps, m, 2, dtype=torch.float64)
    y = mean_y + torch.randn(reps, m, 2, dtype=torch.float64) * cov_y.diagonal().sqrt()
    u = torch.stack([mmd2(x[r], y[r], 1.0, unbiased=True) for r in range(reps)])
    v = torch.stack([mmd2(x[r], y[r], 1.0) for r in range(reps)])
    # E k(x, x') for N(a, A): det(I + 2A/s^2)^(-1/2)
    ekxx = 1 / math.sqrt(torch.det(torch.eye(2, dtype=torch.float64) * 3).item())
    ekyy = 1 / math.sqrt(torch.det(torch.eye(2, dtype=torch.float64) + 2 * cov_y).item())
    bias = (1 - ekxx) / m + (1 - ekyy) / m
    expected_v = gaussian_mmd2(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64),
                               mean_y, cov_y, 1.0, sample_sizes=(m, m)).item()
    assert expected_v == pytest.approx(truth + bias, abs=1e-14)
    assert abs(u.mean().item() - truth) < 3 * u.std().item() / math.sqrt(reps)
    assert abs(v.mean().item() - expected_v) < 3 * v.std().item() / math.sqrt(reps)


def test_dtype_and_device_are_preserved(device, dtype):
    x = torch.randn(6, 3, device=device, dtype=dtype)
    y = torch.randn(5, 3, device=device, dtype=dtype) + 1
    for out in (
        mmd2(x, y),
        mmd2(x, y, 1.0, unbiased=True),
        gaussian_kernel(x, y, [1.0, 2.0]),
        dan_bandwidths(x, y),
        MultipleKernelMMD()(x, y),
    ):
        assert out.dtype == dtype and out.device.type == device.type
    mean = torch.zeros(3, device=device, dtype=dtype)
    cov = torch.eye(3, device=device, dtype=dtype)
    out = gaussian_mmd2(mean, cov, mean + 1, cov, [1.0, 2.0])
    assert out.dtype == dtype and out.device.type == device.type


def test_array_likes_become_float64_tensors():
    out = mmd2([[0.0], [1.0]], np.array([[2.0], [3.0]]), 1.0)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert mmd2(np.zeros((2, 1), np.float32), np.ones((2, 1), np.float32), 1.0).dtype == torch.float32


def test_gradcheck_float64():
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    for unbiased in (False, True):
        def fn(a, b, unbiased=unbiased):
            return mmd2(a, b, [0.7, 1.5], unbiased=unbiased)

        assert torch.autograd.gradcheck(fn, (x, y))


def test_module_matches_function_and_uses_the_dan_family():
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randn(12, 3, dtype=torch.float64) + 0.5
    sig = dan_bandwidths(x, y)
    assert sig.shape == (5,)
    z = torch.cat([x, y])
    d2 = torch.cdist(z, z) ** 2
    base = d2[~torch.eye(22, dtype=torch.bool)].mean()
    assert torch.allclose(sig**2, base * 2.0 ** torch.arange(-3, 2, dtype=torch.float64))
    assert MultipleKernelMMD()(x, y).item() == pytest.approx(mmd2(x, y, sig).item(), rel=1e-12)
    assert MultipleKernelMMD(sigma=[1.0, 2.0], unbiased=True)(x, y).item() == pytest.approx(
        mmd2(x, y, [1.0, 2.0], unbiased=True).item(), rel=1e-12
    )


def test_errors_are_actionable():
    with pytest.raises(ValueError, match="features"):
        mmd2(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="at least 2 samples"):
        mmd2(torch.zeros(1, 2), torch.zeros(3, 2), 1.0, unbiased=True)
    with pytest.raises(ValueError, match="positive bandwidths"):
        mmd2(torch.zeros(2, 2), torch.ones(2, 2), [1.0, -1.0])
    with pytest.raises(ValueError, match="weights"):
        mmd2(torch.zeros(2, 2), torch.ones(2, 2), [1.0, 2.0], weights=[1.0])
    with pytest.raises(TypeError, match="dtype and device"):
        mmd2(torch.zeros(2, 2), torch.ones(2, 2, dtype=torch.float64))
    with pytest.raises(ZeroBandwidthError, match="coincide"):
        mmd2(torch.zeros(2, 2), torch.zeros(2, 2))


def test_zero_bandwidth_is_a_typed_value_error():
    """The default bandwidths need a positive base distance; otherwise a typed, catchable error."""
    assert issubclass(ZeroBandwidthError, ValueError)
    x = torch.ones(4, 3)
    # every path that sets bandwidths from the data: the family itself, mmd2's default, the module
    for call in (lambda: dan_bandwidths(x, x), lambda: mmd2(x, x), lambda: MultipleKernelMMD()(x, x)):
        with pytest.raises(ZeroBandwidthError, match="all points coincide"):
            call()
    # one degenerate problem in a batch is enough
    batch = torch.stack([torch.randn(4, 3, dtype=torch.float64), torch.ones(4, 3, dtype=torch.float64)])
    with pytest.raises(ZeroBandwidthError):
        dan_bandwidths(batch, batch[:, :1])
    # the median heuristic is 0 as soon as half the pairs coincide, though not all points do
    z = torch.tensor([[0.0], [0.0], [0.0], [1.0]])
    assert dan_bandwidths(z[:2], z[2:], heuristic="mean").gt(0).all()
    with pytest.raises(ZeroBandwidthError, match="half"):
        dan_bandwidths(z[:2], z[2:], heuristic="median")
    # explicit bandwidths never need the heuristic
    assert mmd2(x, x, 1.0).item() == 0.0
    # other argument errors stay plain ValueErrors
    with pytest.raises(ValueError) as err:
        dan_bandwidths(x, x + 1, heuristic="mode")
    assert not isinstance(err.value, ZeroBandwidthError)


def test_batched_problems_match_one_by_one():
    x = torch.randn(3, 6, 2, dtype=torch.float64)
    y = torch.randn(3, 5, 2, dtype=torch.float64) + 0.3
    for unbiased in (False, True):
        batched = mmd2(x, y, [0.5, 1.0], unbiased=unbiased)
        assert batched.shape == (3,)
        for r in range(3):
            assert batched[r].item() == pytest.approx(mmd2(x[r], y[r], [0.5, 1.0], unbiased=unbiased).item(), abs=1e-12)
        # per-problem DAN bandwidths
        auto = mmd2(x, y, unbiased=unbiased)
        for r in range(3):
            assert auto[r].item() == pytest.approx(mmd2(x[r], y[r], unbiased=unbiased).item(), abs=1e-12)
    assert dan_bandwidths(x, y).shape == (3, 5)


def test_module_keeps_float64_bandwidths_and_weights():
    # 0.1 and 1/3 are not float32 numbers: rounding them through float32 changes MMD² at ~1e-9.
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 3, generator=g, dtype=torch.float64), torch.randn(20, 3, generator=g, dtype=torch.float64) + 1
    sigma, weights = [0.1, 0.7], [1 / 3, 2 / 3]
    expected = mmd2(x, y, torch.tensor(sigma, dtype=torch.float64), weights=torch.tensor(weights, dtype=torch.float64))
    got = MultipleKernelMMD(sigma=sigma, weights=weights)(x, y)
    assert got.dtype == torch.float64
    assert torch.equal(got, expected)

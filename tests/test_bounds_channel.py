"""Tests for lautum.channel: the channel-form Lautum / MI regularizer values."""

from __future__ import annotations

import math

import pytest
import torch

from lautum import info
from lautum.channel import (
    channel_information,
    channel_information_from_covariance,
    channel_lautum,
    channel_mutual_information,
)

F64 = torch.float64


def _batch_with_exact_covariance(cov: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """n samples whose centered sample covariance (1/(n-1)) is exactly ``cov``."""
    x = torch.randn(n, cov.shape[0], generator=g, dtype=F64)
    x = x - x.mean(0)
    emp = x.T @ x / (n - 1)
    whiten = torch.linalg.cholesky(emp)
    x = torch.linalg.solve_triangular(whiten, x.T, upper=False).T
    return x @ torch.linalg.cholesky(cov).T + 3.0  # a mean shift must not matter


def test_matrix_channel_check_from_pre_activations():
    """Chapter 1's Gaussian channel example: H Sigma_X H^T with Sigma_N = I gives L = 2.9761536, I = 1.0238464, tr M = 4."""
    h_mat = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, -1.0]], dtype=F64)
    cov_x = torch.diag(torch.tensor([1.0, 2.0, 0.5], dtype=F64))
    g = torch.Generator().manual_seed(0)
    x = _batch_with_exact_covariance(cov_x, 64, g)
    h = x @ h_mat.T
    r = channel_information(h, noise_var=1.0)
    assert r.lautum.item() == pytest.approx(2.9761536, abs=5e-8)
    assert r.mutual_information.item() == pytest.approx(1.0238464, abs=5e-8)
    assert r.snr_trace.item() == pytest.approx(4.0, abs=1e-12)
    ref = info.gaussian_channel_information(h_mat, cov_x, torch.eye(2, dtype=F64))
    assert abs(r.lautum - ref.lautum) < 1e-10 and abs(r.mutual_information - ref.mutual) < 1e-10


@pytest.mark.parametrize(("snr", "expected"), [(0.1, 0.0523449), (1.0, 0.6534264), (10.0, 8.8010524)])
def test_scalar_channel_values(snr, expected):
    cov = torch.tensor([[snr]], dtype=F64)
    assert channel_information_from_covariance(cov, 1.0).lautum.item() == pytest.approx(expected, abs=5e-8)
    # sigma_n^2 only sets the SNR scale
    assert channel_information_from_covariance(cov * 7, 7.0).lautum.item() == pytest.approx(expected, abs=5e-8)


def test_sum_is_trace_and_functions_agree():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(200, 5, generator=g, dtype=F64) @ torch.randn(5, 5, generator=g, dtype=F64)
    r = channel_information(h, noise_var=0.7)
    assert abs(r.lautum + r.mutual_information - r.snr_trace) < 1e-12
    assert channel_lautum(h, 0.7) == r.lautum and channel_mutual_information(h, 0.7) == r.mutual_information
    assert r.lautum >= r.mutual_information  # L >= I for Gaussian channels


def test_ridge_adds_isotropic_signal():
    h = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5]], dtype=F64)
    r0 = channel_information(h, 1.0)
    r1 = channel_information(h, 1.0, ridge=0.1)
    assert (r1.snr_trace - r0.snr_trace).item() == pytest.approx(2 * 0.1, abs=1e-12)
    assert r1.lautum > r0.lautum


def test_batched_and_rank_deficient():
    g = torch.Generator().manual_seed(2)
    h = torch.randn(3, 4, 10, generator=g, dtype=F64)  # N = 4 < k = 10
    r = channel_information(h, 1.0)
    assert r.lautum.shape == (3,)
    for b in range(3):
        assert abs(channel_lautum(h[b], 1.0) - r.lautum[b]) < 1e-12
    assert torch.isfinite(r.lautum).all()


def test_dtype_device_and_gradient(device, dtype):
    g = torch.Generator().manual_seed(3)
    h = torch.randn(50, 4, generator=g, dtype=F64).to(device=device, dtype=dtype).requires_grad_(True)
    val = channel_lautum(h, 0.5)
    assert val.dtype == dtype and val.device.type == device.type
    val.backward()
    assert h.grad is not None and h.grad.dtype == dtype and torch.isfinite(h.grad).all()
    assert channel_mutual_information(h, 0.5).dtype == dtype


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(4)
    h = torch.randn(12, 3, generator=g, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: channel_lautum(x, 0.8, 0.01), (h,))
    assert torch.autograd.gradcheck(lambda x: channel_mutual_information(x, 0.8), (h,))


def test_gradient_of_lautum_is_weight_decay_like():
    """At small SNR, L ~ tr(S)/2, so dL/dh ~ (h - mean)/((N-1) sigma_n^2): weight decay on the pre-activations."""
    g = torch.Generator().manual_seed(5)
    h = 1e-3 * torch.randn(30, 2, generator=g, dtype=F64)
    h.requires_grad_(True)
    channel_lautum(h, 1.0).backward()
    expected = (h - h.mean(0)).detach() / (30 - 1)
    torch.testing.assert_close(h.grad, expected, rtol=1e-4, atol=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda: channel_lautum(torch.zeros(1, 3), 1.0),
        lambda: channel_lautum(torch.zeros(5, 3), 0.0),
        lambda: channel_lautum(torch.zeros(5, 3), 1.0, ridge=-1.0),
        lambda: channel_lautum(torch.tensor([[math.nan], [1.0]]), 1.0),
        lambda: channel_lautum(torch.zeros(3), 1.0),
    ],
)
def test_errors(call):
    with pytest.raises(ValueError):
        call()

"""harmonise: channel conversion and resizing keep values in [0, 1] and never modify the input."""

from __future__ import annotations

import pytest
import torch

from lautum.data.transforms import LUMA_WEIGHTS, harmonise


def test_rgb_to_grey_uses_luma():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0] = 1.0  # pure red
    assert torch.allclose(harmonise(x, (2, 2), 1), torch.full((1, 1, 2, 2), LUMA_WEIGHTS[0]))


def test_grey_to_rgb_repeats_and_is_writable():
    x = torch.rand(2, 1, 8, 8)
    y = harmonise(x, (8, 8), 3)
    assert torch.equal(y[:, 0], x[:, 0]) and torch.equal(y[:, 2], x[:, 0])
    y[:, 0].zero_()  # a real tensor, not a broadcast view: the other channels keep their values
    assert torch.equal(y[:, 1], x[:, 0])


@pytest.mark.parametrize("size", [(4, 4), (32, 32), (16, 40)])
def test_resize_range_and_dtype(size, device):
    x = torch.randint(0, 256, (5, 1, 16, 16), dtype=torch.uint8, device=device)
    y = harmonise(x, size, 1, chunk=2)
    assert y.shape == (5, 1, *size) and y.dtype == torch.float32 and y.device == x.device
    assert 0 <= y.min() and y.max() <= 1


def test_constant_image_stays_constant():
    x = torch.full((1, 1, 28, 28), 0.25)
    assert torch.allclose(harmonise(x, (16, 16), 3), torch.full((1, 3, 16, 16), 0.25))


def test_input_is_not_modified():
    x = torch.rand(3, 3, 8, 8)
    before = x.clone()
    harmonise(x, (8, 8), 3).zero_()
    assert torch.equal(x, before)


def test_bad_shapes():
    with pytest.raises(ValueError, match="expected images of shape"):
        harmonise(torch.zeros(2, 2, 4, 4), (4, 4), 1)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        harmonise(torch.zeros(2, 1, 4, 4), (4, 4), 2)

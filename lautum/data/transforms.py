"""Bring images of two domains to one shape: channel conversion and bilinear resizing."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LUMA_WEIGHTS", "harmonise"]

#: ITU-R BT.601 luma weights, as PIL's ``convert("L")`` uses.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def harmonise(
    x: torch.Tensor,
    image_size: tuple[int, int],
    channels: int,
    *,
    chunk: int = 4096,
) -> torch.Tensor:
    """Resize and convert channels of a batch of images.

    Channels: grey -> RGB repeats the grey channel; RGB -> grey takes the
    BT.601 luma ``0.299 R + 0.587 G + 0.114 B``. Size: bilinear interpolation
    (``align_corners=False``) with antialiasing when an image shrinks; values
    stay in [0, 1].

    Parameters
    ----------
    x : torch.Tensor, shape (N, C, H, W)
        uint8 or float images; ``C`` is 1 or 3.
    image_size : tuple of int
        ``(H', W')``.
    channels : int
        1 or 3.
    chunk : int, default 4096
        Images resized at once (bounds the peak memory).

    Returns
    -------
    torch.Tensor, shape (N, channels, H', W')
        float32 in [0, 1], on ``x``'s device.

    Examples
    --------
    >>> grey = torch.tensor([[[[0, 255], [255, 0]]]], dtype=torch.uint8)
    >>> rgb = harmonise(grey, (4, 4), 3)
    >>> rgb.shape, rgb.dtype, bool(torch.equal(rgb[:, 0], rgb[:, 2]))
    (torch.Size([1, 3, 4, 4]), torch.float32, True)
    >>> harmonise(torch.ones(1, 3, 2, 2), (2, 2), 1).flatten().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1 or 3, H, W), got {tuple(x.shape)}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    h, w = image_size
    # Always a new tensor: the caller's (possibly cached) input is never modified.
    x = x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32, copy=True)
    if x.shape[1] == 3 and channels == 1:  # reduce first: resizing one channel is cheaper
        x = torch.tensordot(x, x.new_tensor(LUMA_WEIGHTS), dims=([1], [0])).unsqueeze(1)
    if tuple(x.shape[2:]) != (h, w):
        shrink = h < x.shape[2] or w < x.shape[3]
        x = (
            torch.cat(
                [
                    F.interpolate(part, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)
                    for part in x.split(chunk)
                ]
            )
            if len(x)
            else x.new_empty(0, x.shape[1], h, w)
        )
    x = x.clamp(0.0, 1.0)
    if x.shape[1] == 1 and channels == 3:
        x = x.repeat(1, 3, 1, 1)
    return x

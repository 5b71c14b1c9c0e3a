"""Input handling shared by the divergences: array-likes in, tensors out (POT style)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["as_float_tensors"]


def as_float_tensors(*values: Any, names: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    """Convert inputs to floating tensors on one device with one dtype.

    The first floating ``torch.Tensor`` among ``values`` sets the device and the
    dtype; array-likes (lists, NumPy arrays, scalars) are converted to it. With no
    tensor at all, a floating NumPy array keeps its dtype and everything else becomes
    float64 (as POT does for lists). Tensors that disagree on device or dtype are an
    error, never a silent cast.
    """
    ref_idx = next(
        (i for i, v in enumerate(values) if isinstance(v, torch.Tensor) and v.is_floating_point()),
        None,
    )
    ref = None if ref_idx is None else values[ref_idx]
    if ref is None:
        ref_np = next(
            (v for v in values if isinstance(v, np.ndarray) and v.dtype.kind == "f"), None
        )
        dtype = (
            torch.from_numpy(np.zeros(0, dtype=ref_np.dtype)).dtype
            if ref_np is not None
            else torch.float64
        )
        device = torch.device("cpu")
    else:
        dtype, device = ref.dtype, ref.device
    out = []
    for v, name in zip(values, names, strict=True):
        if isinstance(v, torch.Tensor):
            if v.is_floating_point() and (v.dtype != dtype or v.device != device):
                raise TypeError(
                    f"{name} is {v.dtype} on {v.device} but {names[ref_idx]} "
                    f"is {dtype} on {device}; convert them to one dtype and device "
                    f"(e.g. {name}.to(ref)) before calling."
                )
            out.append(v.to(device=device, dtype=dtype))
        else:
            arr = np.asarray(v)
            if arr.dtype == object:
                raise TypeError(f"{name} could not be converted to a numeric array: {v!r}")
            out.append(torch.as_tensor(arr, dtype=dtype, device=device))
    return tuple(out)

"""Device choice and seeding shared by every experiment."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "describe_device", "torch_threads"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return a concrete :class:`torch.device`.

    ``"auto"`` picks CUDA when one is visible, else the CPU. An explicit
    ``"cuda"`` on a machine without CUDA is an error rather than a silent fallback.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was asked for but torch sees no CUDA device. "
            "Use device='auto' (CUDA when present, else CPU) or device='cpu'."
        )
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device).

    On the CPU this makes runs bit-identical; on CUDA it also asks cuDNN for
    deterministic kernels (some ops stay non-deterministic on a GPU).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def describe_device(device: torch.device) -> str:
    """A short human-readable name, e.g. ``"cpu (2 threads)"`` or the GPU's name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the body with ``n`` torch CPU threads (``n <= 0`` leaves the count alone), then restore it.

    CPU kernels split work by thread count, which can change the last bits of a
    sum: a run is bit-identical only at the same count, so experiments and
    ``lautum verify`` fix it.

    >>> old = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == old
    True
    """
    old = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)

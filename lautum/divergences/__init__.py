"""Discrepancies between distributions: MMD (Gaussian multi-kernel) and entropic OT.

``from lautum.divergences import mmd2, sinkhorn`` is the public surface; the
submodules :mod:`~lautum.divergences.mmd` and :mod:`~lautum.divergences.sinkhorn`
hold one concept each. POT is never imported here (it is the tests' reference).
"""

from .mmd import (
    DAN_EXPONENTS,
    MultipleKernelMMD,
    ZeroBandwidthError,
    dan_bandwidths,
    gaussian_kernel,
    gaussian_mmd2,
    mmd2,
)
from .sinkhorn import SinkhornConvergenceWarning, SinkhornLoss, SinkhornResult, sinkhorn

__all__ = [
    "DAN_EXPONENTS",
    "MultipleKernelMMD",
    "ZeroBandwidthError",
    "dan_bandwidths",
    "gaussian_kernel",
    "gaussian_mmd2",
    "mmd2",
    "SinkhornConvergenceWarning",
    "SinkhornLoss",
    "SinkhornResult",
    "sinkhorn",
]

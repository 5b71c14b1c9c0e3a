"""Which CPU kernels torch runs: the AVX2 pin that makes records reproduce on any x86 CPU.

torch picks its vectorised CPU kernels by the host's instruction set: on a CPU
with AVX-512 it runs other kernels than on one with only AVX2, and their sums
round differently. A record made on one machine then does not reproduce bit for
bit on the other. Three switches fix the kernels of the three libraries torch
computes with on an x86 CPU:

- ``ATEN_CPU_CAPABILITY=avx2`` — ATen's own kernels (elementwise ops, reductions);
- ``ONEDNN_MAX_CPU_ISA=AVX2`` — oneDNN's (convolutions);
- ``MKL_CBWR=COMPATIBLE`` — MKL's (matrix products): its *conditional numerical
  reproducibility* mode on the SSE2 branch, the one MKL runs alike on Intel and on
  other vendors' CPUs (MKL picks code paths by vendor: records made on an AMD EPYC
  with the first two pins did not reproduce on an Intel Xeon with them, 0.9599 vs
  0.9661 in one accuracy; and MKL documents that its ``AVX2`` branch falls back to
  its default dispatch on non-Intel CPUs).

With only the first two set, a record made on an AVX2 AMD EPYC reproduced on an
AVX-512 AMD EPYC (either pin alone did not). torch reads the first when it
dispatches its first CPU op, oneDNN and MKL theirs at their first call; so they
can be set after ``import torch`` as long as no op has run yet. ``import lautum`` sets them (unless they are already set),
which covers the ``lautum`` command, the notebooks, the test suite and a plain
Python session that imports ``lautum`` first.

The one visible switch is ``LAUTUM_KERNELS``:

``avx2`` (default)
    pin the kernels to AVX2, so every run (records, ``lautum verify``, CI, the
    book's executions) is exact across x86 CPUs;
``native``
    let torch use the best kernels of this CPU (on AVX-512 hosts about 20–30 %
    faster on the small CNN: ``lautum bench kernel-pin`` measures it); records made
    so say so, and ``lautum verify`` compares them within a tolerance.

Every record holds what actually ran (:func:`in_effect`), and the host's CPU
(:func:`host_cpu`).
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["ENV", "MODES", "PIN_VARIABLES", "KernelPinWarning", "requested_mode", "apply", "in_effect",
           "host_cpu", "exact_check_hint"]

ENV = "LAUTUM_KERNELS"
MODES = ("avx2", "native")
#: The variables the AVX2 pin sets, with their values.
PIN_VARIABLES = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE"}

# The variables this module set itself (so that switching to native can take them back).
_set_here: set[str] = set()


class KernelPinWarning(RuntimeWarning):
    """torch chose its CPU kernels before the pin could take effect."""


def requested_mode() -> str:
    """The mode asked for by ``LAUTUM_KERNELS`` (``"avx2"`` when unset)."""
    mode = os.environ.get(ENV, "avx2").strip().lower() or "avx2"
    if mode not in MODES:
        raise ValueError(f"{ENV}={os.environ[ENV]!r} is not a kernel mode; use one of {', '.join(MODES)} "
                         f"(avx2: exact across x86 CPUs, native: this CPU's fastest kernels)")
    return mode


@lru_cache(maxsize=1)
def host_cpu() -> dict[str, Any]:
    """Vendor, family, model, name and the vector extensions of this CPU (from ``/proc/cpuinfo``)."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("vendor_id", "cpu family", "model", "model name", "flags") and key not in info:
                info[key] = value.strip()
            if key == "flags":
                break
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    return {
        "vendor": info.get("vendor_id", platform.processor() or "unknown"),
        "family": info.get("cpu family", "unknown"),
        "model": info.get("model", "unknown"),
        "name": info.get("model name", platform.processor() or platform.machine()),
        "arch": platform.machine(),
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
    }


def _torch_has_run_ops() -> bool:
    # torch imported before lautum may already have dispatched a kernel; we cannot tell for
    # sure, so the capability check below (after setting the variables) is the authority.
    return "torch" in sys.modules


def apply(mode: str | None = None) -> str:
    """Set (or, for ``native``, withdraw) the pin variables for this process and its children.

    Variables a user set explicitly are left as they are (``ATEN_CPU_CAPABILITY=default``
    is how one forces the plain kernels). On a host without AVX2 (or not x86) nothing is pinned.
    If torch was imported before and already fixed other kernels, a
    :class:`KernelPinWarning` says what to do.

    Returns the mode applied.
    """
    mode = mode or requested_mode()
    if mode not in MODES:
        raise ValueError(f"kernel mode {mode!r}: use one of {', '.join(MODES)}")
    os.environ[ENV] = mode
    if mode == "native":
        for name in list(_set_here):
            os.environ.pop(name, None)
            _set_here.discard(name)
        return mode
    if host_cpu()["arch"] not in ("x86_64", "AMD64") or not host_cpu()["avx2"]:
        return mode  # nothing to pin to; in_effect() and lautum verify say so
    for name, value in PIN_VARIABLES.items():
        if name not in os.environ:
            os.environ[name] = value
            _set_here.add(name)
    if _torch_has_run_ops():
        capability = _capability()
        if capability not in ("AVX2", None) and os.environ.get("ATEN_CPU_CAPABILITY", "").lower() == "avx2":
            warnings.warn(
                f"torch was imported and ran an op before lautum, so its CPU kernels are {capability}, not AVX2: "
                f"records made in this process will not reproduce exactly on other CPUs. Start Python with "
                f"{exact_check_hint()} set, or import lautum before torch.", KernelPinWarning, stacklevel=2)
    return mode


def _capability() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.backends.cpu.get_cpu_capability()


def in_effect() -> dict[str, Any]:
    """What this process runs: torch's CPU capability, oneDNN's ISA limit, MKL's code path and the mode.

    >>> sorted(in_effect())
    ['cpu_capability', 'kernels', 'mkl_cbwr', 'onednn_max_cpu_isa']
    """
    return {
        "kernels": os.environ.get(ENV, "avx2"),
        "cpu_capability": _capability(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
        "mkl_cbwr": os.environ.get("MKL_CBWR", "native"),
    }


def exact_check_hint() -> str:
    """The environment that gives an exact check, as one would type it.

    >>> exact_check_hint()
    'ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=COMPATIBLE (and LAUTUM_KERNELS unset or avx2)'
    """
    pairs = " ".join(f"{k}={v}" for k, v in PIN_VARIABLES.items())
    return f"{pairs} (and {ENV} unset or avx2)"

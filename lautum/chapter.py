"""The setup every chapter runs after its parameters cell: profile, sizes, seed, device, display.

A chapter's parameters cell holds literals that papermill can override. Sizes
that grow with the profile (Monte Carlo draws, grid points, ...) are ``None``
there, meaning "the profile's value"; the chapter names its profiles once::

    ch = setup(profile, seed=seed, device=device,
               sizes={"quick": {"n_mc": 200_000}, "full": {"n_mc": 2_000_000}}, n_mc=n_mc)
    n_mc = ch.sizes["n_mc"]

so no chapter multiplies its sizes by hand, and an unknown profile fails at once
with the names it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lautum.device import describe_device, resolve_device, seed_everything

__all__ = ["Chapter", "setup"]


@dataclass
class Chapter:
    """What a chapter's cells use: its profile, sizes, device and a seeded generator."""

    profile: str
    seed: int
    device: torch.device
    sizes: dict[str, Any] = field(default_factory=dict)
    generator: torch.Generator | None = None

    def describe(self) -> str:
        """One line for the chapter's output, e.g. ``profile=quick; device=cpu (2 threads); n_mc=200000``."""
        sizes = "".join(f"; {k}={v}" for k, v in self.sizes.items())
        return f"profile={self.profile}; device={describe_device(self.device)}{sizes}"


def setup(profile: str, *, seed: int = 0, device: str = "auto", sizes: dict[str, dict[str, Any]] | None = None,
          precision: int = 6, **given: Any) -> Chapter:
    """Validate the profile, fill the sizes the parameters cell left ``None``, seed, pick the device.

    Parameters
    ----------
    profile : str
        The chapter's profile; must be a key of ``sizes`` (default profiles ``quick`` and ``full``).
    seed : int
        Seeds Python, NumPy and torch, and the returned ``generator``.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    sizes : dict of dict, optional
        ``{profile: {name: value}}``: each profile's sizes.
    precision : int
        pandas display precision.
    **given
        The parameters cell's values of those names; ``None`` takes the profile's value.

    Examples
    --------
    >>> ch = setup("full", sizes={"quick": {"n": 10}, "full": {"n": 100}}, n=None)
    >>> ch.sizes, ch.device.type in ("cpu", "cuda")
    ({'n': 100}, True)
    >>> setup("full", sizes={"quick": {"n": 10}, "full": {"n": 100}}, n=7).sizes
    {'n': 7}
    >>> setup("medium")
    Traceback (most recent call last):
    ...
    ValueError: profile='medium' is not a profile of this chapter; it has: quick, full (rerun with -p profile quick)
    """
    import pandas as pd

    sizes = sizes or {"quick": {}, "full": {}}
    if profile not in sizes:
        raise ValueError(f"profile={profile!r} is not a profile of this chapter; it has: {', '.join(sizes)} "
                         f"(rerun with -p profile {next(iter(sizes))})")
    unknown = set(given) - set(sizes[profile])
    if unknown:
        raise ValueError(f"sizes {sorted(unknown)} were given but profile {profile!r} does not define them")
    chosen = {k: (given[k] if given.get(k) is not None else v) for k, v in sizes[profile].items()}
    seed_everything(seed)
    pd.set_option("display.precision", precision)
    return Chapter(profile, seed, resolve_device(device), chosen, torch.Generator().manual_seed(seed))

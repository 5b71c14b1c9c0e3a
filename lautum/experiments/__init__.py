"""Experiments: one module per paper (or baseline), each with ``Config``, ``PROFILES``,
``make_config``, ``specs``, ``run_one`` and ``run``.

``get_experiment(name)`` looks one up by the name used on the command line
(``lautum run NAME``) and in run records.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXPERIMENTS", "get_experiment"]

# name on the command line and in records -> module
EXPERIMENTS = {
    "transfer-baseline": "lautum.experiments.transfer_baseline",
    "lautum-paper": "lautum.experiments.lautum_paper",
    "l2sp-paper": "lautum.experiments.l2sp_paper",
}


def get_experiment(name: str) -> ModuleType:
    """The experiment module registered under ``name``."""
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; known experiments: {', '.join(sorted(EXPERIMENTS))}")
    return importlib.import_module(EXPERIMENTS[name])

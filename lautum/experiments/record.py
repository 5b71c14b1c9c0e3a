"""The run record every experiment's ``run_one`` returns (one shape for all experiments)."""

from __future__ import annotations

import time
from typing import Any

import torch

from lautum.data.readers import verified_files
from lautum.experiments.config import config_dict
from lautum.records import provenance
from lautum.sweep import RunSpec

__all__ = ["run_record"]


def run_record(cfg: Any, spec: RunSpec, metrics: dict[str, Any], *, history: Any, started: float,
               device: torch.device | str, **provenance_extra: Any) -> dict[str, Any]:
    """Assemble the record of one run of ``spec`` under configuration ``cfg``.

    ``started`` is the ``time.perf_counter()`` value taken when the run began;
    ``provenance_extra`` adds notes to the provenance (e.g. which target data were used).
    The provenance also lists the md5 of every data file read of the domains ``cfg``
    names (``source``, ``target``, ``targets``).
    """
    domains = [d for f in ("source", "target", "targets") for d in _as_tuple(getattr(cfg, f, ()))]
    return {
        "experiment": spec.experiment, "method": spec.method, "seed": spec.seed, "profile": cfg.profile,
        "params": dict(spec.params), "config": config_dict(cfg), "config_hash": spec.config_hash,
        "metrics": metrics, "history": history, "elapsed_s": time.perf_counter() - started,
        "provenance": {**provenance(device, type(cfg).__module__), "data_files": verified_files(domains),
                       **provenance_extra},
    }


def _as_tuple(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value,)

"""Sweeps: a grid of runs, each writing its own record, resumable after a kill.

A sweep is a list of :class:`RunSpec` s. Each run's record path is a pure
function of its spec, so a sweep started again after an interruption finds the
records already complete and skips them: nothing finished is recomputed. Runs go
through an executor (``LocalExecutor`` runs them in this process, one after the
other); a cluster executor only has to provide the same ``run`` method.

A finished record made by other code (its ``provenance.code_hash`` differs from
the code here) is *stale*: a sweep never mixes code states silently. By default it
stops and says so; ``stale="rerun"`` recomputes those runs, ``stale="keep"`` keeps
them explicitly (each record still names the code that made it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from lautum.progress import progress_bar
from lautum.records import is_complete, read_record, write_record
from lautum.source import code_hash

__all__ = ["RunSpec", "Executor", "LocalExecutor", "run_sweep", "SweepResult", "StaleRecordsError", "SweepInterrupted",
           "STALE_CHOICES"]

STALE_CHOICES = ("stop", "rerun", "keep")


class StaleRecordsError(RuntimeError):
    """Finished records of this sweep were made by other code than the code here."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: ``finished`` of ``total`` runs have complete records, the rest resume on a rerun."""

    def __init__(self, finished: int, total: int):
        super().__init__(f"{finished} of {total} runs finished; run the same command to resume (finished runs "
                         "are not recomputed)")
        self.finished, self.total = finished, total


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: an experiment's method at a seed with grid values ``params``."""

    experiment: str
    method: str
    seed: int
    params: tuple[tuple[str, Any], ...] = ()
    profile: str = "quick"
    config_hash: str = ""

    @property
    def name(self) -> str:
        """A file-safe, human-readable name, e.g. ``fine-tune_k=5_seed=0``."""
        parts = [self.method] + [f"{k}={v}" for k, v in self.params] + [f"seed={self.seed}"]
        return re.sub(r"[^A-Za-z0-9_.=+-]", "-", "_".join(parts))

    def record_path(self, results_dir: str | Path) -> Path:
        """``<results_dir>/<experiment>/<profile>/<name>-<config hash>.json``."""
        suffix = f"-{self.config_hash}" if self.config_hash else ""
        return Path(results_dir) / self.experiment / self.profile / f"{self.name}{suffix}.json"


class Executor(Protocol):
    def run(self, fn: Callable[[RunSpec], dict], specs: list[RunSpec],
            done: Callable[[RunSpec, dict], None]) -> None: ...


class LocalExecutor:
    """Runs specs one after the other in this process."""

    def run(self, fn, specs, done) -> None:
        for spec in specs:
            done(spec, fn(spec))


@dataclass
class SweepResult:
    records: list[dict] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0

    def table(self):
        """One row per run: spec fields plus every metric (a pandas DataFrame)."""
        import pandas as pd

        rows = []
        for r in self.records:
            row = {"experiment": r["experiment"], "method": r["method"], "seed": r["seed"], "profile": r["profile"]}
            row.update(r.get("params", {}))
            row.update(r["metrics"])
            row["elapsed_s"] = r["elapsed_s"]
            rows.append(row)
        return pd.DataFrame(rows)


def stale_specs(specs: Iterable[RunSpec], results_dir: str | Path) -> list[RunSpec]:
    """The specs whose complete record was made by other code than this checkout's (:func:`lautum.source.code_hash`)."""
    here: dict[str, str] = {}
    out = []
    for spec in specs:
        path = spec.record_path(results_dir)
        if not is_complete(path):
            continue
        prov = read_record(path)["provenance"]
        module = prov.get("code_module", "lautum")
        if module not in here:
            here[module] = code_hash(module)
        if prov.get("code_hash") != here[module]:
            out.append(spec)
    return out


def run_sweep(specs: Iterable[RunSpec], fn: Callable[[RunSpec], dict], results_dir: str | Path, *,
              executor: Executor | None = None, progress: bool | None = None, stale: str = "stop") -> SweepResult:
    """Run every spec whose record is not complete yet; return all records in spec order.

    Parameters
    ----------
    specs : iterable of RunSpec
    fn : callable
        ``fn(spec) -> record`` (a dict with every key of :data:`lautum.records.RECORD_KEYS`).
    results_dir : path
        Records go to ``spec.record_path(results_dir)``.
    executor : Executor, optional
        Default :class:`LocalExecutor`.
    progress : bool, optional
        Show a tqdm bar of runs done / total (default: in a terminal or a notebook).
    stale : {"stop", "rerun", "keep"}
        What to do with finished records made by other code (see the module docstring).
    """
    if stale not in STALE_CHOICES:
        raise ValueError(f"stale={stale!r}: expected one of {STALE_CHOICES}")
    specs = list(specs)
    paths = {spec: spec.record_path(results_dir) for spec in specs}
    if len(set(paths.values())) != len(specs):
        raise ValueError("two runs of this sweep would write the same record; make their specs differ")
    old = set() if stale == "keep" else set(stale_specs(specs, results_dir))
    if old and stale == "stop":
        example = paths[next(s for s in specs if s in old)]
        raise StaleRecordsError(
            f"{len(old)} of the {len(specs)} finished records under {Path(results_dir)} were made by other code "
            f"than this checkout's (e.g. {example}). Rerun them with --stale rerun, or "
            f"keep them explicitly with --stale keep (each record names the code that made it).")
    todo = [s for s in specs if s in old or not is_complete(paths[s])]
    result = SweepResult(skipped=len(specs) - len(todo))
    bar = progress_bar(progress, total=len(specs), initial=result.skipped, desc="sweep", unit="run")

    def done(spec: RunSpec, record: dict) -> None:
        write_record(paths[spec], record)
        result.ran += 1
        bar.update(1)

    try:
        (executor or LocalExecutor()).run(fn, todo, done)
    except KeyboardInterrupt:
        # A record is written by an atomic rename, so none is half-written; count what is on disk.
        raise SweepInterrupted(sum(is_complete(p) for p in paths.values()), len(specs)) from None
    finally:
        bar.close()
    result.records = [read_record(paths[s]) for s in specs]
    return result

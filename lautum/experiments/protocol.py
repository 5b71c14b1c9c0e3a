"""One experiment protocol: the checks and the runner every experiment shares.

An experiment module provides ``NAME``, ``METHODS``, ``Config``/``PROFILES``,
``make_config``, ``specs(cfg)`` and ``run_one(cfg, spec, ...)``; :func:`run` does
the rest the same way for all of them:

- records of a **committed profile** (every profile whose name does not end in
  ``quick``: ``medium``, ``full``, ...) are made from committed code only: from a
  dirty tree (modified or untracked files under ``lautum/``, ``pyproject.toml``,
  ``requirements/``) the run is refused before anything is computed, unless
  ``allow_dirty`` is given, and then every record says ``"dirty": true``;
- finished records made by other code stop the sweep (see :mod:`lautum.sweep`);
- torch's CPU thread count is fixed for every run (``cfg.threads`` where the
  experiment has it), in the process that computes it, since it is part of what
  makes a CPU run bit-identical.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

from lautum.data import DOMAINS, resolve_cache_dir
from lautum.data.readers import require_data
from lautum.device import torch_threads
from lautum.experiments.config import ConfigError
from lautum.experiments.source_model import SourceModelConfig
from lautum.records import git_state
from lautum.sweep import Executor, run_sweep

__all__ = ["DirtyTreeError", "is_committed_profile", "check_methods", "check_domains", "source_model_config", "run"]


class DirtyTreeError(RuntimeError):
    """Records of a committed profile were asked for from uncommitted code."""


def is_committed_profile(profile: str) -> bool:
    """Whether records of ``profile`` are meant to be committed (all but the ``*quick`` ones).

    >>> is_committed_profile("medium"), is_committed_profile("cifar-quick")
    (True, False)
    """
    return not profile.endswith("quick")


def check_methods(cfg: Any, known: Iterable[str], fields: Iterable[str] = ("methods",)) -> None:
    """Raise :class:`ConfigError` if a method named in ``cfg.<field>`` is not one of ``known``."""
    known = list(known)
    for field in fields:
        unknown = sorted(set(getattr(cfg, field)) - set(known))
        if unknown:
            raise ConfigError(f"{field}: unknown method(s) {unknown}; this experiment has {known}")


def check_domains(cfg: Any, fields: Iterable[str], extra: Iterable[str] = ()) -> None:
    """Raise :class:`ConfigError` if a data set named in ``cfg.<field>`` is not a known domain (or in ``extra``)."""
    from lautum.data import DOMAINS

    known = sorted(DOMAINS) + list(extra)
    for field in fields:
        value = getattr(cfg, field)
        unknown = [v for v in (value if isinstance(value, tuple) else (value,)) if v not in known]
        if unknown:
            raise ConfigError(f"setting {field}: unknown data set(s) {unknown}; known: {', '.join(known)} "
                              "(`lautum data list` shows which are present)")


def source_model_config(cfg: Any, seed: int) -> SourceModelConfig:
    """The source-pretrained model an experiment's ``cfg`` asks for at ``seed`` (the cache key).

    Experiments whose source fields agree share one cached model per seed.
    """
    return SourceModelConfig(source=cfg.source, n_source_train=cfg.n_source_train, image_size=cfg.image_size,
                             channels=cfg.channels, width=cfg.width, feature_dim=cfg.feature_dim,
                             epochs=cfg.source_epochs, lr=cfg.source_lr, batch_size=cfg.source_batch_size,
                             seed=seed)


def writable(folder: Path, what: str, option: str) -> None:
    """Create ``folder`` if needed and prove it writable (a temporary file), else raise an actionable ``OSError``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise type(err)(f"cannot write {what} under {folder} ({err.strerror}); choose a writable folder with "
                        f"{option} or fix its permissions. Nothing was run") from None


def _as_tuple(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def run(experiment: ModuleType, cfg: Any, results_dir: str | Path = "results", data_dir=None, cache_dir=None,
        progress: bool | None = None, *, stale: str = "stop", allow_dirty: bool = False,
        executor: Executor | None = None):
    """Run ``experiment``'s whole grid for ``cfg``, resuming finished runs; return the tidy table.

    Parameters
    ----------
    experiment : module
        An experiment module (see the module docstring).
    cfg : dataclass
        Its validated configuration (``experiment.make_config(...)``).
    results_dir : path
        Records go to ``<results_dir>/<experiment>/<profile>/``.
    stale : {"stop", "rerun", "keep"}
        Finished records made by other code: stop (default), recompute, or keep explicitly.
    allow_dirty : bool
        Make records of a committed profile from a dirty tree anyway (they are stamped ``dirty``).
    """
    if is_committed_profile(cfg.profile) and not allow_dirty:
        commit, dirty = git_state()
        if dirty:
            where = "outside a git checkout" if commit is None else f"from a dirty tree (HEAD {commit[:10]})"
            raise DirtyTreeError(
                f"refusing to make {experiment.NAME} records of the {cfg.profile!r} profile {where}: such records "
                f"are committed and must name the code that made them. Commit your changes (`git status` lists "
                f"them) or pass --allow-dirty, which stamps every record as made from a dirty tree.")
    # Everything that can fail without computing is checked before the first run.
    writable(Path(results_dir) / experiment.NAME / cfg.profile, "records", "--results-dir")
    writable(resolve_cache_dir(cache_dir) / "models", "cached models", "$LAUTUM_CACHE")
    require_data([d for f in ("source", "target", "targets") for d in _as_tuple(getattr(cfg, f, ()))
                   if d in DOMAINS], data_dir)
    threads = getattr(cfg, "threads", 0)

    def run_spec(spec):
        # The thread count is set inside the run, so a run in another process (a cluster
        # worker) computes at the same count as a local one.
        with torch_threads(threads):
            return experiment.run_one(cfg, spec, data_dir, cache_dir, progress=False)

    result = run_sweep(experiment.specs(cfg), run_spec, results_dir, progress=progress, stale=stale,
                       executor=executor)
    return result.table()

"""Run records: one JSON file per run, written atomically, with provenance.

A record is what every number in the book comes from. It holds the experiment,
method, configuration, seed, profile, metrics, elapsed time and provenance:
package, torch and Python versions, the git commit and whether the tree was
dirty, a hash of the code that computed the run (:func:`lautum.source.code_hash` of
the experiment's module), the device,
the CPU and the kernels torch ran (:mod:`lautum.kernels`). Files are written to a
temporary name in the same folder and renamed into place, so a killed run never
leaves a half-written record that a resumed sweep would trust; each carries a
digest of its own content, so a record edited by hand is detected by
``lautum verify``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import lautum

__all__ = [
    "config_hash",
    "git_state",
    "record_digest",
    "provenance",
    "atomic_write_bytes",
    "write_record",
    "read_record",
    "is_complete",
    "load_records",
    "cached_model_path",
    "cache_context",
    "RECORD_KEYS",
]

# Keys every complete record has; a file lacking one is treated as unfinished.
RECORD_KEYS = ("experiment", "method", "config", "seed", "profile", "metrics", "elapsed_s", "provenance")


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return obj.item()
    return obj


def config_hash(config: Any, length: int = 12) -> str:
    """A short, stable hash of a configuration (dict or dataclass).

    Keys are sorted, so the order in which a configuration was written does not matter.

    >>> config_hash({"a": 1, "b": [2, 3]}) == config_hash({"b": [2, 3], "a": 1})
    True
    >>> len(config_hash({"a": 1}))
    12
    """
    blob = json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# What decides a run's numbers besides its configuration: the package and its pins.
_RUN_AFFECTING = ("lautum", "pyproject.toml", "requirements")


def git_state(cwd: Path | None = None) -> tuple[str | None, bool]:
    """``(commit, dirty)`` of the checkout holding the package; ``(None, True)`` outside a git checkout.

    Dirty counts modified *and untracked* files under ``lautum/``, ``pyproject.toml``
    and ``requirements/``: a new module that a run imports changes what it computes.
    """
    cwd = cwd or Path(lautum.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None, True
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *_RUN_AFFECTING],
                                cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None, True
    return head.stdout.strip(), bool(status.stdout.strip()) or status.returncode != 0


def provenance(device: torch.device | str | None = None, module: str = "lautum") -> dict[str, Any]:
    """Where and with what a result was computed (see the module docstring); ``module`` computed it."""
    from lautum import kernels
    from lautum.source import code_hash

    dev = torch.device(device) if device is not None else torch.device("cpu")
    commit, dirty = git_state()
    cpu = kernels.host_cpu()
    return {
        "lautum": lautum.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": None if commit is None else commit + ("-dirty" if dirty else ""),
        "dirty": dirty,
        "code_module": module,
        "code_hash": code_hash(module),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu["name"],
        "cpu": {k: cpu[k] for k in ("vendor", "family", "model", "arch", "avx2", "avx512")},
        **kernels.in_effect(),
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Readers see either the old file or the complete new one, never a fragment;
    if writing fails, no temporary file is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a record is as readable as any file the user writes
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON, without its ``digest`` (and any ``_path``) key.

    Non-finite values (a diverged run's NaN loss) are part of the content and round-trip.

    >>> r = {"metrics": {"loss": float("nan")}}
    >>> record_digest(r) == record_digest(json.loads(json.dumps(r)))
    True
    """
    body = {k: v for k, v in _jsonable(record).items() if k not in ("digest", "_path")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()).hexdigest()


#: Metrics that are a run's outcome: non-finite only in a record that says ``"diverged": true``.
OUTCOME_METRICS = ("target_test_acc", "target_test_loss", "final_train_loss")


def write_record(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Validate and atomically write one run record as JSON, with its :func:`record_digest`."""
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise ValueError(f"run record lacks {missing}; a record needs all of {list(RECORD_KEYS)}")
    metrics = record["metrics"]
    bad = [k for k in OUTCOME_METRICS if isinstance(metrics.get(k), float) and not math.isfinite(metrics[k])]
    if bad and metrics.get("diverged") is not True:
        raise ValueError(f"run record of {record['method']} (seed {record['seed']}) has non-finite {bad} but does "
                         "not say diverged=True; a run whose outcome is not a number either failed (raise) or "
                         "diverged (record it so)")
    record = {**_jsonable(record), "digest": record_digest(record)}
    data = json.dumps(record, indent=2, sort_keys=True, allow_nan=True) + "\n"
    return atomic_write_bytes(path, data.encode())


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read one record; raises ``ValueError`` naming the file if it is not a complete record."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it to let the sweep recompute it") from err
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        raise ValueError(f"{path} is not a complete run record: it lacks {missing}")
    return rec


def is_complete(path: str | os.PathLike) -> bool:
    """True if ``path`` holds a complete, readable run record."""
    try:
        read_record(path)
    except (OSError, ValueError):
        return False
    return True


def load_records(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete records under ``folder`` (recursively), sorted by file name."""
    recs = []
    for p in sorted(Path(folder).rglob("*.json")):
        if is_complete(p):
            rec = read_record(p)
            rec["_path"] = str(p)
            recs.append(rec)
    return recs


def cache_context(module: str, device: torch.device | str) -> dict[str, Any]:
    """What besides its configuration decides a cached model: the code, torch, the kernels, device and threads.

    Part of every model-cache key, so a model trained by other code, another torch,
    native kernels or on a GPU is never loaded into a run that says otherwise.
    """
    from lautum import kernels
    from lautum.source import code_hash

    return {"code": code_hash(module), "torch": torch.__version__, **kernels.in_effect(),
            "device": torch.device(device).type, "threads": torch.get_num_threads()}


def cached_model_path(cache_dir: str | os.PathLike, kind: str, config: Any) -> Path:
    """Where a model trained from ``config`` is cached: ``<cache_dir>/<kind>-<hash>.pt``.

    Several notebooks that need the same source-pretrained model share one file.
    """
    return Path(cache_dir) / f"{kind}-{config_hash(config)}.pt"


def environment_markdown(device: torch.device | str | None = None) -> str:
    """A Markdown table of the environment (for the book's status page and ``lautum env``)."""
    from importlib import metadata

    from lautum.device import describe_device, resolve_device

    dev = resolve_device(device or "auto")
    prov = provenance(dev)
    rows = [("Python", prov["python"]), ("platform", prov["platform"]), ("torch", prov["torch"]),
            ("CUDA available", str(torch.cuda.is_available())),
            ("device used by `device=\"auto\"`", describe_device(dev)),
            ("CPU kernels", f"{prov['cpu_capability']} (oneDNN limit {prov['onednn_max_cpu_isa']}, MKL_CBWR {prov['mkl_cbwr']}, "
                            f"LAUTUM_KERNELS={prov['kernels']})"),
            ("lautum", prov["lautum"]), ("git commit", prov["git_commit"] or "unknown"), ("date", prov["date"])]
    for pkg in ("torchvision", "numpy", "scipy", "jupyter-book", "myst-nb", "papermill", "nbval"):
        try:
            rows.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            pass
    lines = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"

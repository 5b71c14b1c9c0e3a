"""``lautum status``: where a sweep stands -- runs done, running, failed or missing, with the failing runs' logs.

A run is *done* when its record is complete. Otherwise the newest submission that
holds it (the journals of :mod:`lautum.executors`) decides: *running* while its task
is queued or running in SLURM, *failed* when the task raised (or SLURM reports
FAILED, TIMEOUT, OUT_OF_MEMORY, ...), else *missing* -- never submitted, cancelled
or lost. ``lautum run`` submits exactly the failed and missing runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lautum.executors import ended_task_outcome, read_journals, slurm_live_jobs, submissions_folder

if TYPE_CHECKING:
    from lautum.sweep import RunSpec

__all__ = ["RunStatus", "sweep_status", "format_status", "add_status_command"]

STATES = ("done", "running", "failed", "missing")


@dataclass(frozen=True)
class RunStatus:
    """One run's state; ``log`` and ``detail`` (traceback or SLURM state) for a run that was submitted."""

    spec: RunSpec
    state: str
    log: str | None = None
    detail: str = ""


def sweep_status(specs: list[RunSpec], results_dir: str | Path) -> list[RunStatus]:
    """The state of every run of a sweep (see the module docstring)."""
    from lautum.records import is_complete  # not at the top: see lautum.executors

    if not specs:
        return []
    journals = read_journals(submissions_folder(specs[0], results_dir))
    latest: dict[str, tuple[dict, dict]] = {}
    for journal in journals:  # oldest first: the newest submission of a run wins
        for task in journal["tasks"]:
            latest[str(Path(task["record"]).resolve())] = (task, journal)
    slurm_names = [j["job_name"] for j in journals if j["cluster"] == "slurm"]
    live = slurm_live_jobs(slurm_names) if slurm_names else set()
    out = []
    for spec in specs:
        path = spec.record_path(results_dir)
        if is_complete(path):
            out.append(RunStatus(spec, "done"))
            continue
        found = latest.get(str(path.resolve()))
        if found is None:
            out.append(RunStatus(spec, "missing", detail="never submitted"))
            continue
        task, journal = found
        if journal["cluster"] == "slurm" and (live is None or task["job_id"] in live):
            why = "" if live is not None else "squeue did not answer; assumed still queued or running"
            out.append(RunStatus(spec, "running", task["stderr"], why))
            continue
        kind, detail = ended_task_outcome(task, journal["job_name"], journal["cluster"])
        out.append(RunStatus(spec, kind, task["stderr"], detail))
    return out


def format_status(statuses: list[RunStatus]) -> str:
    """Counts per state, then each failed run with its log and the last line of its error, then the missing ones."""
    counts = {s: sum(st.state == s for st in statuses) for s in STATES}
    lines = [f"{len(statuses)} runs: " + ", ".join(f"{counts[s]} {s}" for s in STATES)]
    for st in statuses:
        if st.state == "failed":
            last = st.detail.strip().splitlines()[-1] if st.detail.strip() else ""
            lines.append(f"  failed   {st.spec.name}: {last}\n           log: {st.log}")
    for st in statuses:
        if st.state in ("running", "missing"):
            lines.append(f"  {st.state:<8} {st.spec.name}" + (f" ({st.detail})" if st.detail else ""))
    return "\n".join(lines)


def add_status_command(subparsers, handler) -> None:
    """Add ``lautum status EXPERIMENT --profile P [--set KEY=VALUE ...] [--results-dir DIR]``.

    ``handler(args)`` builds the experiment's specs and prints :func:`format_status` of
    :func:`sweep_status` (it lives in the CLI, which may import the experiments).
    """
    s = subparsers.add_parser("status", help="runs of a sweep done, running, failed or missing",
                              description="Report how many runs of an experiment's grid are done, still queued or "
                                          "running on the cluster, failed (with their log) or missing (never "
                                          "submitted, cancelled). `lautum run` submits the failed and missing ones.")
    s.add_argument("experiment")
    s.add_argument("--profile", default="quick")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="the same overrides the sweep was run with")
    s.add_argument("--results-dir", default="results")
    s.set_defaults(fn=handler)

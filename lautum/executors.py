"""Sweep executors that submit runs through submitit: a SLURM job array, or local subprocesses.

Each run of a sweep without a complete record becomes one task of a job array. The
task computes the run and writes its record atomically into the shared results
folder itself (:class:`WriteRecord`), exactly as a local run would, so a submitter
that is stopped or killed loses nothing. The submitter only watches: it polls the
records (the sweep's progress bar advances as they appear) and the queue, and when a
task ends without a record it reports the run, its configuration and the remote
traceback. ``lautum run ... --executor slurm`` again reattaches to the tasks of earlier
submissions that are still queued or running, and submits only runs that have
neither a record nor a live task.

Every submission gets its own folder ``<results>/<experiment>/<profile>/.slurm/<stamp>/``
holding submitit's pickles and the logs (``<jobid>_<task>_0_log.out/.err``) and
``tasks.json``, the journal of which array task computes which run (read by
``lautum status``). A folder per submission, and a job name carrying the same stamp,
matter because job ids restart at 1 on a new cluster: a folder keyed by job id would
hand back an earlier cluster's results.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from lautum.sweep import RunSpec

# lautum.records (hence torch) is imported where it is used: the CLI builds its parser
# from this module before it pins the CPU kernels, which must precede torch's import.

__all__ = ["EXECUTORS", "Resources", "WriteRecord", "SubmititExecutor", "DryRun", "TasksFailedError",
           "WaitTimeoutError", "parse_time_minutes", "submissions_folder", "read_journals", "slurm_live_jobs",
           "ended_task_outcome", "add_executor_arguments", "make_executor"]

#: The ``--executor`` choices: ``local`` is :class:`lautum.sweep.LocalExecutor`.
EXECUTORS = ("local", "slurm", "submitit-local")
JOURNAL = "tasks.json"


class DryRun(Exception):
    """Raised after a dry run printed its plan: nothing was submitted, there is nothing to tabulate."""


class TasksFailedError(RuntimeError):
    """Tasks ended without writing their record (an exception, a cancel, a time or memory limit).

    The message is the full report (each run, its configuration, traceback and log);
    ``summary`` is one line for the command line, which prints the report before it.
    """

    def __init__(self, report: str, summary: str):
        super().__init__(report)
        self.summary = summary


class WaitTimeoutError(TimeoutError):
    """The submitter stopped waiting; the tasks it waited for may still be queued or running."""


def parse_time_minutes(text: str | int) -> int:
    """A SLURM time limit (``MM``, ``HH:MM:SS``, ``D-HH`` or ``D-HH:MM[:SS]``) in whole minutes, rounded up.

    >>> parse_time_minutes("90"), parse_time_minutes("1:30:00"), parse_time_minutes("1-00:00:01")
    (90, 90, 1441)
    """
    text = str(text).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise ValueError(f"--time {text!r}: expected minutes or a SLURM time such as 90, 2:00:00 or 1-12:00:00")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # HH:MM:SS
        seconds = a * 3600 + b * 60 + c
    elif b is not None:  # MM:SS
        seconds = a * 60 + b
    else:
        seconds = a * 60
    return max(1, -(-seconds // 60))


@dataclass(frozen=True)
class Resources:
    """What one array task asks SLURM for (each field maps to the ``sbatch`` option of the same name)."""

    partition: str | None = None
    time_min: int = 60
    cpus_per_task: int = 1
    mem: str | None = None
    gpus_per_task: int = 0
    array_parallelism: int = 256
    account: str | None = None
    qos: str | None = None

    def slurm_parameters(self) -> dict[str, Any]:
        """Parameters for ``submitit.SlurmExecutor.update_parameters`` (unset options are left out)."""
        out: dict[str, Any] = {"time": self.time_min, "cpus_per_task": self.cpus_per_task,
                               "array_parallelism": self.array_parallelism}
        for key in ("partition", "mem", "account", "qos"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.gpus_per_task:
            out["gpus_per_task"] = self.gpus_per_task
        return out

    def describe(self) -> str:
        """One line, as ``sbatch`` options."""
        return " ".join(f"--{k.replace('_', '-')}={v}" for k, v in self.slurm_parameters().items())


class WriteRecord:
    """The callable a task runs: compute the run, then write its record atomically where the sweep expects it."""

    def __init__(self, fn: Callable[[RunSpec], dict], results_dir: str | Path):
        self.fn = fn
        self.results_dir = str(Path(results_dir).resolve())

    def __call__(self, spec: RunSpec) -> str:
        from lautum.records import write_record

        return str(write_record(spec.record_path(self.results_dir), self.fn(spec)))


def submissions_folder(spec: RunSpec, results_dir: str | Path) -> Path:
    """``<results_dir>/<experiment>/<profile>/.slurm``: one sub-folder per submission."""
    return spec.record_path(results_dir).parent / ".slurm"


def read_journals(folder: str | Path) -> list[dict]:
    """Every submission journal under ``folder`` (a ``.slurm`` folder), oldest first."""
    out = []
    for path in sorted(Path(folder).glob(f"*/{JOURNAL}")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # a journal is written atomically; an unreadable one belongs to no finished submission
    return out


def _run_command(cmd: list[str], timeout_s: float = 30) -> str | None:
    """stdout of ``cmd``, or None if it is missing, fails or hangs (the controller may be briefly unreachable)."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def slurm_live_jobs(job_names: list[str]) -> set[str] | None:
    """Ids (``<array>_<task>``) of the queued or running jobs named in ``job_names``; None if squeue failed.

    Asking by job name, not id, keeps an earlier cluster's reused ids out.
    """
    if not job_names:
        return set()
    out = _run_command(["squeue", "--noheader", "--array", f"--name={','.join(job_names)}", "--format=%i"])
    return None if out is None else {line.strip() for line in out.splitlines() if line.strip()}


def _sacct_state(job_id: str, job_name: str) -> str:
    out = _run_command(["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={job_id}",
                        f"--name={job_name}", "--format=State"])
    states = [s.strip() for s in (out or "").splitlines() if s.strip()]
    return states[-1].split()[0] if states else "UNKNOWN"


#: SLURM end states of a task that broke (others, e.g. CANCELLED, mean it was stopped).
FAILED_STATES = ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE")


def ended_task_outcome(task: dict, job_name: str, cluster: str) -> tuple[str, str]:
    """``(kind, detail)`` of a task that ended without a record: kind ``failed`` or ``missing`` (cancelled, lost).

    The detail is the remote traceback when the run raised, else the SLURM state.
    """
    result = Path(task["result"])
    if result.exists():
        from submitit.core.utils import pickle_load

        try:
            outcome, value = pickle_load(result)
        except Exception as err:  # a half-written pickle of a killed task
            return "failed", f"unreadable result {result}: {err}"
        if outcome == "error":
            return "failed", str(value)
        return "missing", "the task finished but its record is gone (deleted?)"
    if cluster != "slurm":
        return "missing", "the task stopped without a result (killed?)"
    state = _sacct_state(task["job_id"], job_name)
    return ("failed" if state in FAILED_STATES else "missing"), f"SLURM state {state}"


class SubmititExecutor:
    """Run a sweep's specs as a submitit job array; the tasks write their records themselves.

    Parameters
    ----------
    results_dir : path
        The sweep's results folder, shared by the submitter and every node.
    cluster : {"slurm", "local"}
        ``slurm``: a SLURM job array (``sbatch``); ``local``: submitit's local
        executor, one subprocess per task on this machine (same code path, no cluster).
    resources : Resources
        What each task asks SLURM for (ignored by ``local`` but for the time limit).
    dry_run : bool
        Print what would be submitted and raise :class:`DryRun` instead of submitting.
    poll_s : float
        Seconds between two looks at the records.
    queue_every_s : float
        Seconds between two looks at the queue (``squeue``), which finds tasks that ended without a record.
    wait_timeout_s : float, optional
        Stop waiting after this long (:class:`WaitTimeoutError`); the tasks keep running.
    """

    def __init__(self, results_dir: str | Path, cluster: str = "slurm", resources: Resources | None = None, *,
                 dry_run: bool = False, poll_s: float = 2.0, queue_every_s: float = 10.0,
                 wait_timeout_s: float | None = None, out=None):
        if cluster not in ("slurm", "local"):
            raise ValueError(f"cluster={cluster!r}: expected 'slurm' or 'local'")
        self.results_dir = Path(results_dir).resolve()
        self.cluster = cluster
        self.resources = resources or Resources()
        self.dry_run = dry_run
        self.poll_s = poll_s
        self.queue_every_s = queue_every_s
        self.wait_timeout_s = wait_timeout_s
        self.out = out or sys.stdout

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def run(self, fn: Callable[[RunSpec], dict], specs: list[RunSpec], done: Callable[[RunSpec, dict], None]) -> None:
        """Submit the specs (less those a live task of an earlier submission computes), then watch them finish."""
        if not specs:
            return
        folder = submissions_folder(specs[0], self.results_dir)
        watched = self._reattach(folder, specs) if self.cluster == "slurm" else {}
        new = [s for s in specs if s not in watched]
        if self.dry_run:
            if watched:
                self._say(f"{len(watched)} run(s) are queued or running from an earlier submission: not resubmitted")
            self._print_plan(new, folder)
            raise DryRun(f"dry run: {len(new)} task(s) not submitted")
        if watched:
            self._say(f"{len(watched)} run(s) are still queued or running from an earlier submission: watching them")
        local_jobs: dict[RunSpec, Any] = {}
        if new:
            submitted, local_jobs = self._submit(fn, new, folder)
            watched.update(submitted)
        self._watch(watched, local_jobs, done)

    def _print_plan(self, specs: list[RunSpec], folder: Path) -> None:
        where = "a SLURM job array" if self.cluster == "slurm" else "local subprocesses (submitit)"
        self._say(f"dry run: would submit {len(specs)} task(s) as {where}; nothing submitted")
        if self.cluster == "slurm":
            self._say(f"resources per task: {self.resources.describe()}")
        self._say(f"logs and journal under {folder}/<submission>/")
        for spec in specs[:5]:
            self._say(f"  {spec.name}  ({spec.experiment}, profile {spec.profile}, config {spec.config_hash})")
        if len(specs) > 5:
            self._say(f"  ... and {len(specs) - 5} more")

    def _reattach(self, folder: Path, specs: list[RunSpec]) -> dict[RunSpec, tuple[dict, str]]:
        journals = read_journals(folder)
        live = slurm_live_jobs([j["job_name"] for j in journals])
        if not live:
            return {}
        by_record = {str(s.record_path(self.results_dir)): s for s in specs}
        out = {}
        for journal in journals:  # oldest first: a later submission of the same run wins
            for task in journal["tasks"]:
                if task["job_id"] in live and task["record"] in by_record:
                    out[by_record[task["record"]]] = (task, journal["job_name"])
        return out

    def _submit(self, fn, specs: list[RunSpec], folder: Path):
        import submitit

        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        job_name = f"lautum-{stamp}"
        sub = folder / stamp
        if self.cluster == "slurm":
            executor = submitit.SlurmExecutor(folder=sub)
            executor.update_parameters(job_name=job_name, **self.resources.slurm_parameters())
        else:
            executor = submitit.LocalExecutor(folder=sub)
            executor.update_parameters(timeout_min=self.resources.time_min)
        jobs = executor.map_array(WriteRecord(fn, self.results_dir), specs)
        tasks = [{"run": spec.name, "record": str(spec.record_path(self.results_dir)),
                  "spec": {**asdict(spec), "params": dict(spec.params)}, "job_id": str(job.job_id),
                  "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
                  "result": str(job.paths.result_pickle)} for spec, job in zip(specs, jobs, strict=True)]
        journal = {"cluster": self.cluster, "job_name": job_name, "submitted": datetime.now().isoformat(),
                   "resources": asdict(self.resources), "tasks": tasks}
        from lautum.records import atomic_write_bytes

        atomic_write_bytes(sub / JOURNAL, (json.dumps(journal, indent=2) + "\n").encode())
        first = jobs[0].job_id.split("_")[0]
        self._say(f"submitted {len(specs)} task(s) ({'SLURM job ' + first if self.cluster == 'slurm' else 'local'}, "
                  f"name {job_name}); logs under {sub}")
        watched = {spec: (task, job_name) for spec, task in zip(specs, tasks, strict=True)}
        return watched, dict(zip(specs, jobs, strict=True))

    def _live(self, watched, local_jobs) -> set[RunSpec] | None:
        """The specs whose task is still queued or running; None when the queue could not be read."""
        if self.cluster == "local":
            return {s for s in watched if not local_jobs[s].done()}
        live = slurm_live_jobs(sorted({name for _, name in watched.values()}))
        return None if live is None else {s for s, (task, _) in watched.items() if task["job_id"] in live}

    def _watch(self, watched: dict[RunSpec, tuple[dict, str]], local_jobs, done) -> None:
        from lautum.records import is_complete, read_record

        start = time.monotonic()
        last_queue = start
        ended: list[tuple[RunSpec, dict, str, str, str]] = []
        try:
            while watched:
                for spec in [s for s in watched if is_complete(s.record_path(self.results_dir))]:
                    done(spec, read_record(spec.record_path(self.results_dir)))
                    del watched[spec]
                now = time.monotonic()
                if watched and now - last_queue >= self.queue_every_s:
                    last_queue = now
                    live = self._live(watched, local_jobs)
                    for spec in [s for s in watched if live is not None and s not in live]:
                        if is_complete(spec.record_path(self.results_dir)):  # finished since the last look
                            continue
                        task, name = watched.pop(spec)
                        kind, detail = ended_task_outcome(task, name, self.cluster)
                        ended.append((spec, task, name, kind, detail))
                if watched and self.wait_timeout_s is not None and now - start > self.wait_timeout_s:
                    raise WaitTimeoutError(
                        f"stopped waiting after {self.wait_timeout_s:.0f} s with {len(watched)} task(s) still queued "
                        f"or running; their records arrive as they finish. Run the same command again to watch them, "
                        f"or `lautum status` to see where the sweep stands.")
                if watched:
                    time.sleep(min(self.poll_s, self.queue_every_s))
        except KeyboardInterrupt:
            if self.cluster == "slurm":
                self._say(f"\nsubmitter stopped: {len(watched)} task(s) keep running in SLURM and write their records "
                          f"under {self.results_dir}. Run the same command again to watch them (nothing is submitted "
                          f"twice), or `lautum status` to see where the sweep stands.")
            raise
        if ended:
            report = self._failure_report(ended)
            self._say(report)
            names = ", ".join(spec.name for spec, *_ in ended[:5]) + (", ..." if len(ended) > 5 else "")
            raise TasksFailedError(report, f"{len(ended)} task(s) ended without writing their record ({names}); "
                                           f"their errors and logs are listed above. Fix the cause and run the same "
                                           f"command again: it submits only the runs without a record.")

    def _failure_report(self, ended) -> str:
        lines = [f"{len(ended)} task(s) ended without writing their record (nothing partial was written):"]
        for i, (spec, task, name, kind, detail) in enumerate(ended):
            params = ", ".join(f"{k}={v}" for k, v in spec.params)
            lines.append(f"- {spec.name} [{kind}]: experiment {spec.experiment}, method {spec.method}, seed {spec.seed}"
                         f"{', ' + params if params else ''}, profile {spec.profile}, config {spec.config_hash}; "
                         f"job {task['job_id']} ({name}); log {task['stderr']}")
            if i < 3:  # the full traceback of the first few; the logs hold every one
                lines.extend("    " + line for line in detail.rstrip().splitlines())
        lines.append("Fix the cause, then run the same command again: it submits only the runs without a record.")
        return "\n".join(lines)


def add_executor_arguments(parser) -> None:
    """Add ``--executor`` and the SLURM resource options to ``lautum run``'s argument parser."""
    g = parser.add_argument_group("cluster", "run each missing run as one task of a job array (submitit)")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: in this process (default); slurm: a SLURM job array; submitit-local: submitit's "
                        "local subprocesses (the slurm code path without a cluster)")
    g.add_argument("--partition", default=None, help="SLURM partition")
    g.add_argument("--time", default="60", help="time limit per task: minutes or D-HH:MM:SS (default 60)")
    g.add_argument("--cpus-per-task", type=int, default=None,
                   help="CPUs per task (default: the experiment's threads setting, at least 1)")
    g.add_argument("--mem", default=None, help="memory per task as sbatch takes it, e.g. 8G")
    g.add_argument("--gpus-per-task", type=int, default=0, help="GPUs per task (default 0)")
    g.add_argument("--array-parallelism", type=int, default=256, help="at most this many tasks at once")
    g.add_argument("--account", default=None, help="SLURM account to charge")
    g.add_argument("--qos", default=None, help="SLURM quality of service")
    g.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS",
                   help="stop watching after this long (tasks keep running; run again to watch them)")
    g.add_argument("--dry-run", action="store_true",
                   help="print the number of tasks, the resources and the first runs; submit nothing")


def make_executor(args, threads: int = 0) -> SubmititExecutor | None:
    """The executor ``args`` ask for (None for ``--executor local``, the sweep's default).

    ``threads`` is the experiment's thread setting: the default ``--cpus-per-task``.
    """
    if args.executor == "local":
        if args.dry_run:
            raise ValueError("--dry-run shows what a cluster executor would submit: add --executor slurm")
        return None
    resources = Resources(partition=args.partition, time_min=parse_time_minutes(args.time),
                          cpus_per_task=args.cpus_per_task or max(threads, 1), mem=args.mem,
                          gpus_per_task=args.gpus_per_task, array_parallelism=args.array_parallelism,
                          account=args.account, qos=args.qos)
    return SubmititExecutor(args.results_dir, "slurm" if args.executor == "slurm" else "local", resources,
                            dry_run=args.dry_run, wait_timeout_s=args.wait_timeout)

"""Start a single-node SLURM on 127.0.0.1, run one command against it, and always tear it down.

    python tools/slurm_cluster.py -- COMMAND ...      (what `make test-cluster` runs)

The cluster is Debian's own slurmctld + slurmd (installed with apt when missing and
this runs as root; otherwise it prints what to install and exits 0, skipped). Every
file it writes -- configuration, state, spool, logs, PID files -- lies in one short
temporary folder, removed at the end. The command runs with ``SLURM_CONF`` pointing at
the cluster and ``LAUTUM_SLURM=1``. Teardown, also on an error or a signal: cancel
every job, wait for an empty queue (job processes outlive slurmd), then stop each
daemon by the PID this script started it with, never by name.

No accounting daemon (slurmdbd + MariaDB) is started: the sweep executor watches the
queue with ``squeue`` and every wait has a timeout, so nothing waits on ``sacct``.
Without it, ``sacct`` answers nothing and a task that hit its time limit is reported as
missing rather than failed; a cancelled task is missing either way.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client"]
DAEMONS = ["slurmctld", "slurmd", "sinfo", "squeue", "sbatch", "scancel", "scontrol"]


def _ensure_slurm() -> str | None:
    """None when SLURM is there (installing it if we may), else the reason to skip."""
    if all(shutil.which(d) or Path(f"/usr/sbin/{d}").exists() for d in DAEMONS):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return (f"SLURM not installed and cannot install it here (needs root and apt); "
                f"install {' '.join(PACKAGES)} to run the cluster tests")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return None


def _write_config(root: Path, ctld_port: int) -> Path:
    cpus = os.cpu_count() or 1
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    conf = root / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=lautumci",
        "SlurmctldHost=localhost(127.0.0.1)",
        "SlurmUser=root",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={ctld_port + 1}",
        "AuthType=auth/none",
        "CredType=cred/none",
        f"StateSaveLocation={root}/state",
        f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid",
        f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/slurmctld.log",
        f"SlurmdLogFile={root}/slurmd.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerParameters=batch_sched_delay=0",  # array waves 1 s apart instead of 3 s
        "ReturnToService=2",
        "MpiDefault=none",
        # Job ids restart at 1 on a fresh cluster; start from the clock so ids of runs a few minutes apart differ.
        f"FirstJobId={int(time.time()) % 1_000_000 + 1}",
        f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb // 2} State=UNKNOWN",
        "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
        "",
    ]))
    (root / "cgroup.conf").write_text("CgroupPlugin=autodetect\n")
    return conf


def _wait(what: str, check, timeout_s: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p}\n" + (p.read_text()[-1500:] if p.exists() else "(none)") for p in logs)
    raise RuntimeError(f"SLURM did not come up: {what} within {timeout_s:.0f} s\n{tails}")


def _ok(cmd: list[str], env: dict) -> str | None:
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    return res.stdout if res.returncode == 0 else None


def _stop(pid: int, grace_s: float = 5.0) -> None:
    """Stop one daemon this script started: SIGTERM, then SIGKILL (slurmd may ignore SIGTERM without its controller)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    reason = _ensure_slurm()
    if reason:
        print(f"cluster tests skipped: {reason}")
        return 0
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGHUP, _raise_exit)
    root = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))  # socket paths must stay short
    env = {**os.environ, "SLURM_CONF": str(_write_config(root, ctld_port=6917))}
    daemons: list[int] = []
    t0 = time.monotonic()
    try:
        ctld = subprocess.Popen(["slurmctld", "-D", "-i", "-f", env["SLURM_CONF"]], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(root / "slurmctld.err", "w"))
        daemons.append(ctld.pid)
        _wait("slurmctld answering `scontrol ping`",
              lambda: "UP" in (_ok(["scontrol", "ping"], env) or ""), 30, [root / "slurmctld.log"])
        slurmd = subprocess.Popen(["slurmd", "-D", "-N", "localhost", "-f", env["SLURM_CONF"]], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(root / "slurmd.err", "w"))
        daemons.append(slurmd.pid)
        _wait("node `localhost` idle in sinfo",
              lambda: (_ok(["sinfo", "--noheader", "--format=%T"], env) or "").strip() == "idle", 30,
              [root / "slurmctld.log", root / "slurmd.log", root / "slurmd.err"])
        print(f"single-node SLURM up in {time.monotonic() - t0:.1f} s (SLURM_CONF={env['SLURM_CONF']})", flush=True)
        return subprocess.run(argv, env={**env, "LAUTUM_SLURM": "1"}).returncode
    finally:
        if daemons:
            subprocess.run(["scancel", "--full", "--user", str(os.geteuid())], env=env, capture_output=True,
                           timeout=10)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (_ok(["squeue", "--noheader"], env) or "").strip():
                time.sleep(0.5)
        for pid in reversed(daemons):
            _stop(pid)
        shutil.rmtree(root, ignore_errors=True)
        if daemons:
            print(f"SLURM torn down (PIDs {', '.join(map(str, daemons))})", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

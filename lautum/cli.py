"""The ``lautum`` command line: thin over the module.

    lautum [--kernels avx2|native] [--debug] COMMAND ...
    lautum run EXPERIMENT --profile quick|medium|full [--set KEY=VALUE ...] [--stale stop|rerun|keep]
               [--executor local|slurm|submitit-local [--partition P --time T --cpus-per-task N --mem M
               --gpus-per-task G --array-parallelism N --account A --qos Q --wait-timeout S --dry-run]]
    lautum status EXPERIMENT --profile P [--set KEY=VALUE ...]
    lautum rerun NOTEBOOK [-p NAME VALUE ...] [--profile full]
    lautum data list | fetch NAME...
    lautum bench [NAME ...]
    lautum verify RECORD...
    lautum env

Every expected failure (a bad setting, missing or corrupt data, an unwritable
folder, a diverged run, ...) ends in one line on stderr, ``lautum COMMAND: what
was wrong; what to do``, and exit status 2; ``--debug`` shows its traceback. An
unexpected error (a bug) says so in one line, exit status 1, traceback with
``--debug``. Ctrl-C exits 130 and says how many runs finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

__all__ = ["main", "build_parser", "CommandLineError"]


class CommandLineError(ValueError):
    """The command line itself is wrong (a missing argument, a malformed value)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse's usage block plus message becomes one actionable line.
        raise CommandLineError(f"{message} (see `{self.prog} --help`)")


def _config(args):
    """The experiment module and its config from ``EXPERIMENT --profile P --set KEY=VALUE ...``."""
    from lautum.experiments import get_experiment

    exp = get_experiment(args.experiment)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise CommandLineError(f"--set expects KEY=VALUE, got {item!r} (e.g. --set seeds=0,1)")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    return exp, exp.make_config(args.profile, **overrides)


def _cmd_run(args) -> int:
    from lautum.executors import DryRun, make_executor

    exp, cfg = _config(args)
    try:
        table = exp.run(cfg, results_dir=args.results_dir, data_dir=args.data_dir, progress=not args.quiet,
                        stale=args.stale, allow_dirty=args.allow_dirty,
                        executor=make_executor(args, threads=getattr(cfg, "threads", 0)))
    except DryRun:
        return 0
    import pandas as pd

    with pd.option_context("display.max_rows", 500, "display.width", 200):
        print(table.to_string(index=False))
    return 0


def _cmd_status(args) -> int:
    from lautum.status import format_status, sweep_status

    exp, cfg = _config(args)
    print(format_status(sweep_status(exp.specs(cfg), args.results_dir)))
    return 0


def _cmd_rerun(args) -> int:
    from lautum.notebook import parse_cli_value, rerun

    values = {name: parse_cli_value(value) for name, value in args.p}
    if args.profile:
        values["profile"] = args.profile
    out = rerun(args.notebook, values, output_dir=args.output_dir, timeout=args.timeout)
    print(f"executed copy written to {out}")
    return 0


def _cmd_data(args) -> int:
    from lautum import data

    if args.action == "list":
        print(f"data root: {data.resolve_data_root(args.root)}")
        for st in data.data_status(args.root):
            state = ("verified" if st.verified else "corrupt" if st.corrupt else "missing" if st.missing
                     else "present, not verified")
            detail = [f"missing {', '.join(st.missing)}"] if st.missing else []
            detail += [f"corrupt {c}" for c in st.corrupt]
            if (st.missing or st.corrupt) and not st.fetchable:
                detail.append("no public download: see the data README")
            print(f"  {st.name:<9} {state:<22} ({st.layout}){'  ' + '; '.join(detail) if detail else ''}")
        return 0
    if not args.names:
        raise CommandLineError("name at least one data set to fetch, e.g. `lautum data fetch mnist` "
                               "(`lautum data list` shows them all)")
    for name in args.names:
        paths = data.fetch(name, root=args.root, base_url=args.base_url)
        print(f"{name}: ready ({len(paths)} files)")
    return 0


def _cmd_bench(args) -> int:
    from lautum.bench import BENCHMARKS
    from lautum.experiments.config import check_device

    check_device(args.device)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise CommandLineError(f"unknown benchmark(s) {unknown}; available: {', '.join(BENCHMARKS)}")
    results = []
    for name in names:
        fn, fmt = BENCHMARKS[name]
        r = fn(device=args.device)
        results.append(r)
        print(fmt(r))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _cmd_verify(args) -> int:
    from lautum.verify import verify_record

    ok = True
    for path in args.records:
        res = verify_record(path, data_dir=args.data_dir, tolerance=args.tolerance, exact_only=args.exact)
        print(res.report())
        ok &= res.reproduced
    return 0 if ok else 1


def _cmd_env(args) -> int:
    from lautum.experiments.config import check_device
    from lautum.records import atomic_write_bytes, environment_markdown

    check_device(args.device)
    text = environment_markdown(args.device)
    if args.output:
        atomic_write_bytes(args.output, text.encode())
    else:
        print(text, end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from lautum.executors import add_executor_arguments
    from lautum.status import add_status_command

    p = _Parser(
        prog="lautum",
        description="Run the lautum book's experiments, rerun its chapters, manage data, benchmark.",
    )
    p.add_argument("--kernels", choices=["avx2", "native"], default=None,
                   help="CPU kernels torch runs: avx2 (default; records reproduce bit for bit on any x86 CPU) or "
                        "native (this CPU's fastest, e.g. AVX-512; records say so). Same as $LAUTUM_KERNELS.")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of a failure (by default an expected failure is one line on stderr)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="run an experiment's grid (methods × settings × seeds), resumable",
                       description="Run every configuration of an experiment, writing one JSON record per run "
                                   "under RESULTS_DIR/EXPERIMENT/PROFILE/. Runs whose record is complete are "
                                   "skipped, so an interrupted sweep resumes where it stopped.")
    r.add_argument("experiment", help="experiment name (e.g. transfer-baseline)")
    r.add_argument("--profile", default="quick", help="quick (CPU, minutes), medium (CPU, ≤1 h) or full (GPU)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting; tuples are comma-separated (--set ks=5,20)")
    r.add_argument("--results-dir", default="results", help="where records go (default: results)")
    r.add_argument("--data-dir", default=None, help="data root (default: $LAUTUM_DATA or ~/.cache/lautum/data)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--stale", choices=["stop", "rerun", "keep"], default="stop",
                   help="finished records made by other code: stop and say so (default), recompute them, or keep "
                        "them explicitly")
    r.add_argument("--allow-dirty", action="store_true",
                   help="make records of a committed profile (medium, full) from uncommitted code; every record "
                        "is stamped dirty")
    add_executor_arguments(r)
    r.set_defaults(fn=_cmd_run)
    add_status_command(sub, _cmd_status)

    rr = sub.add_parser("rerun", help="execute a chapter with other parameters (papermill)",
                        description="Execute NOTEBOOK with papermill into _build/reruns/, never over the source. "
                                    "Parameter names and types are checked against the notebook's parameters "
                                    "cell first: an unknown name or a wrong type executes nothing.")
    rr.add_argument("notebook")
    rr.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="set a parameter (values parsed as int, float, bool, None or string)")
    rr.add_argument("--profile", choices=["quick", "medium", "full"], help="shorthand for -p profile VALUE")
    rr.add_argument("--output-dir", default="_build/reruns")
    rr.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    rr.set_defaults(fn=_cmd_rerun)

    d = sub.add_parser("data", help="list or fetch data sets",
                       description="`lautum data list` shows which data sets are present and verified under the "
                                   "data root; `lautum data fetch NAME` downloads the missing files of NAME from "
                                   "its public source, checks their md5 and places them atomically. Nothing is "
                                   "ever downloaded without this command.")
    d.add_argument("action", choices=["list", "fetch"])
    d.add_argument("names", nargs="*", help="data sets to fetch (mnist, usps, mnist_m, notmnist, svhn, cifar10, "
                                            "cifar100)")
    d.add_argument("--root", default=None, help="data root (default: $LAUTUM_DATA or ~/.cache/lautum/data)")
    d.add_argument("--base-url", default=None, help="mirror to fetch from instead of the public source")
    d.set_defaults(fn=_cmd_data)

    b = sub.add_parser("bench", help="measure speed (img/s of a plain step, regularizer overheads, ...)",
                       description="Run benchmarks and print their timings; speed claims live here, not in tests.")
    b.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    b.add_argument("--device", default="auto")
    b.add_argument("--json", action="store_true", help="also print the results as JSON")
    b.set_defaults(fn=_cmd_bench)

    v = sub.add_parser("verify", help="rerun a committed run record and check that it reproduces",
                       description="Rerun the exact configuration and seed of each RECORD from scratch and compare "
                                   "its metrics: bit-identical on a CPU with the same torch version, within "
                                   "--tolerance otherwise. Exits 1 if any record does not reproduce.")
    v.add_argument("records", nargs="+")
    v.add_argument("--data-dir", default=None)
    v.add_argument("--tolerance", type=float, default=0.02,
                   help="off the exact path: absolute tolerance, or relative for values above 1")
    v.add_argument("--exact", action="store_true",
                   help="fail unless the check can be bit for bit here (same torch, threads and CPU kernels)")
    v.set_defaults(fn=_cmd_verify)

    e = sub.add_parser("env", help="print the environment (versions, device) as a Markdown table",
                       description="Print Python, torch, CUDA, device and package versions as a Markdown table "
                                   "(the book's status page includes it).")
    e.add_argument("--device", default="auto")
    e.add_argument("--output", default=None, help="write to this file instead of printing")
    e.set_defaults(fn=_cmd_env)
    return p


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures a person can act on: shown as one line, exit 2."""
    from lautum.data.errors import DataFetchError
    from lautum.data.image_folders import FullScaleDataError
    from lautum.executors import TasksFailedError
    from lautum.experiments.protocol import DirtyTreeError
    from lautum.notebook import NotebookFailed, ParameterError
    from lautum.sweep import StaleRecordsError
    from lautum.train import DivergenceError

    return (ValueError, KeyError, OSError, DataFetchError, FullScaleDataError, DirtyTreeError, StaleRecordsError,
            DivergenceError, ParameterError, NotebookFailed, TasksFailedError)


def one_line(err: BaseException) -> str:
    """An error's message in one line: its ``summary`` where it has one, else its lines joined."""
    msg = getattr(err, "summary", None) or (err.args[0] if isinstance(err, KeyError) and err.args else str(err))
    return " ".join(part.strip() for part in str(msg).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    command = "lautum"
    try:
        from lautum import kernels

        args = build_parser().parse_args(argv)
        command = f"lautum {args.command}"
        if args.kernels:
            kernels.apply(args.kernels)  # before anything imports torch
        return args.fn(args)
    except KeyboardInterrupt as err:
        # A sweep says how many runs finished; records are written atomically, so none is half-written.
        print(f"{command}: interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return 130
    except SystemExit:
        raise  # --help and --version
    except Exception as err:
        expected = isinstance(err, _expected_errors())
        if debug:
            traceback.print_exc()
            return 2 if expected else 1
        if expected:
            print(f"{command}: {one_line(err)}", file=sys.stderr)
            return 2
        print(f"{command}: internal error ({type(err).__name__}: {one_line(err)}). This is a bug in lautum: rerun "
              "with --debug for the traceback and report it.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``lautum`` command line: thin over the module.

    lautum [--kernels avx2|native] COMMAND ...
    lautum run EXPERIMENT --profile quick|medium|full [--set KEY=VALUE ...] [--stale stop|rerun|keep]
    lautum rerun NOTEBOOK [-p NAME VALUE ...] [--profile full]
    lautum data list | fetch NAME...
    lautum bench [NAME ...]
    lautum verify RECORD...
    lautum env
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main", "build_parser"]


def _cmd_run(args) -> int:
    from lautum.experiments import get_experiment

    exp = get_experiment(args.experiment)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    cfg = exp.make_config(args.profile, **overrides)
    table = exp.run(cfg, results_dir=args.results_dir, data_dir=args.data_dir, progress=not args.quiet,
                    stale=args.stale, allow_dirty=args.allow_dirty)
    import pandas as pd

    with pd.option_context("display.max_rows", 500, "display.width", 200):
        print(table.to_string(index=False))
    return 0


def _cmd_rerun(args) -> int:
    from lautum.notebook import ParameterError, parse_cli_value, rerun

    values = {name: parse_cli_value(value) for name, value in args.p}
    if args.profile:
        values["profile"] = args.profile
    try:
        out = rerun(args.notebook, values, output_dir=args.output_dir, timeout=args.timeout)
    except ParameterError as err:
        print(f"lautum rerun: {err}", file=sys.stderr)
        return 2
    print(f"executed copy written to {out}")
    return 0


def _cmd_data(args) -> int:
    from lautum import data

    if args.action == "list":
        print(f"data root: {data.resolve_data_root(args.root)}")
        for st in data.data_status(args.root):
            state = "verified" if st.verified else ("present, not verified" if st.present else "missing")
            detail = [f"missing {', '.join(st.missing)}"] if st.missing else []
            detail += [f"corrupt {c}" for c in st.corrupt]
            if (st.missing or st.corrupt) and not st.fetchable:
                detail.append("no public download: see the data README")
            print(f"  {st.name:<9} {state:<22} ({st.layout}){'  ' + '; '.join(detail) if detail else ''}")
        return 0
    if not args.names:
        raise SystemExit("lautum data fetch: name at least one data set (see `lautum data list`)")
    for name in args.names:
        paths = data.fetch(name, root=args.root, base_url=args.base_url)
        print(f"{name}: ready ({len(paths)} files)")
    return 0


def _cmd_bench(args) -> int:
    from lautum.bench import BENCHMARKS

    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; available: {', '.join(BENCHMARKS)}")
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
    from lautum.records import atomic_write_bytes, environment_markdown

    text = environment_markdown(args.device)
    if args.output:
        atomic_write_bytes(args.output, text.encode())
    else:
        print(text, end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lautum",
        description="Run the lautum book's experiments, rerun its chapters, manage data, benchmark.",
    )
    p.add_argument("--kernels", choices=["avx2", "native"], default=None,
                   help="CPU kernels torch runs: avx2 (default; records reproduce bit for bit on any x86 CPU) or "
                        "native (this CPU's fastest, e.g. AVX-512; records say so). Same as $LAUTUM_KERNELS.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    r.set_defaults(fn=_cmd_run)

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


def main(argv: list[str] | None = None) -> int:
    from lautum import kernels

    args = build_parser().parse_args(argv)
    if args.kernels:
        kernels.apply(args.kernels)  # before anything imports torch
    from lautum.data.errors import DataFetchError
    from lautum.experiments.protocol import DirtyTreeError
    from lautum.sweep import StaleRecordsError

    try:
        return args.fn(args)
    except (ValueError, KeyError, FileNotFoundError, DataFetchError, DirtyTreeError, StaleRecordsError) as err:
        # Errors meant for a person: print the message, not a traceback.
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"lautum {args.command}: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Root conftest: keep pytest out of build folders, and let nbval's one execution serve the book.

With ``--nb-cache DIR``, every notebook whose cells all pass under nbval is stored,
with its outputs and its execution time, in the jupyter-cache at ``DIR``. The book
build (``execute_notebooks: cache`` in ``_config.yml``) finds it there and does not
execute it again, so ``make test`` runs each notebook once.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import lautum  # noqa: F401  (pins torch's CPU kernels to AVX2 before any test, or nbval's kernels, runs an op)

collect_ignore = ["_build", ".venv"]

_runs: dict[str, dict] = {}


def pytest_addoption(parser):
    parser.addoption("--nb-cache", default=None, metavar="DIR",
                     help="store notebooks that pass under nbval, with outputs, in the jupyter-cache DIR")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not item.config.getoption("--nb-cache") or type(item).__name__ != "IPyNbCell":
        return
    run = _runs.setdefault(str(item.parent.path), {"outputs": {}, "failed": False, "seconds": 0.0})
    if report.failed:
        run["failed"] = True
    if report.when == "call":
        run["seconds"] += call.duration
        if report.passed:
            run["outputs"][item.cell_num] = item.test_outputs or []


def pytest_sessionfinish(session, exitstatus):
    cache_dir = session.config.getoption("--nb-cache")
    if not cache_dir or not _runs:
        return
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(cache_dir)
    for path, run in _runs.items():
        if run["failed"]:
            continue
        nb = nbformat.read(path, as_version=4)
        executed = copy.deepcopy(nb)
        code = [c for c in executed.cells if c.cell_type == "code"]
        for i, cell in enumerate(code):
            cell.outputs = run["outputs"].get(i, [])
            cell.execution_count = i + 1
            for out in cell.outputs:
                if out.get("output_type") == "execute_result":
                    out["execution_count"] = i + 1
        cache.cache_notebook_bundle(
            CacheBundleIn(executed, str(Path(path).resolve()), data={"execution_seconds": run["seconds"]}),
            check_validity=False, overwrite=True,
        )

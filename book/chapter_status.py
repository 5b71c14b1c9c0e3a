"""When each chapter was last executed and how long it took, read from the book's jupyter-cache.

The status page and the instructor notes show this table. They are MyST-NB text
notebooks executed on every build (``execution_mode: force``), so the times they
show are those of the cache the build uses, never numbers typed into a page.
``make execute`` fills the cache (nbval runs every chapter once and stores it with
its execution time, see the root ``conftest.py``) before ``jupyter-book build``
reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat
import yaml

__all__ = ["ChapterRun", "chapter_title", "chapter_runs", "runs_markdown", "format_seconds"]

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ChapterRun:
    """One chapter of the table of contents and its last execution, if the cache holds one."""

    docname: str  # e.g. "notebooks/01-lautum-information"
    title: str
    seconds: float | None  # execution time of the cached run; None: not in the cache
    executed: datetime | None
    current: bool  # the cached run is of the chapter's current code cells


def chapter_title(path: Path) -> str:
    """The text of the notebook's first Markdown heading, e.g. ``Lautum information``."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    raise ValueError(f"{path} has no Markdown heading; start its first cell with '# Title' so the book can name it")


def _toc_notebooks(repo: Path) -> list[str]:
    toc = yaml.safe_load((repo / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [f for f in files if (repo / f"{f}.ipynb").exists()]


def _cache_dir(repo: Path) -> Path:
    config = yaml.safe_load((repo / "_config.yml").read_text())
    return repo / config.get("execute", {}).get("cache", "_build/.jupyter_cache")


def chapter_runs(repo: Path = REPO) -> list[ChapterRun]:
    """Every notebook chapter of ``_toc.yml``, in book order, with its last cached execution.

    A chapter whose code cells changed since its cached run is marked not ``current``
    (the book build executes it again); one the cache does not hold has no time.
    """
    cache_dir = _cache_dir(repo)
    cache = None
    if cache_dir.exists():  # opening a cache that does not exist would create an empty one
        from jupyter_cache import get_cache

        cache = get_cache(str(cache_dir))
    runs = []
    for docname in _toc_notebooks(repo):
        path = repo / f"{docname}.ipynb"
        record, current = None, False
        if cache is not None:
            by_uri = [r for r in cache.list_cache_records() if Path(r.uri).resolve() == path.resolve()]
            record = max(by_uri, key=lambda r: r.created, default=None)
            if record is not None:
                try:
                    current = cache.match_cache_notebook(nbformat.read(path, as_version=4)).pk == record.pk
                except KeyError:  # no cached run of these code cells
                    current = False
        seconds = None if record is None else record.data.get("execution_seconds")
        runs.append(ChapterRun(docname, chapter_title(path), seconds, None if record is None else record.created,
                               current))
    return runs


def format_seconds(seconds: float) -> str:
    """``42 s`` below two minutes, ``3.4 min`` above.

    >>> format_seconds(41.6), format_seconds(204)
    ('42 s', '3.4 min')
    """
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def runs_markdown(runs: list[ChapterRun], page: str = "book/status") -> str:
    """A MyST table: chapter title (linked), date of its last run, run time, whether it is current."""
    prefix = "../" * page.count("/")
    lines = ["| chapter | last executed (UTC) | run time | status |", "|---|---|---|---|"]
    for run in runs:
        link = f"{{doc}}`{run.title} <{prefix}{run.docname}>`"
        if run.seconds is None:
            lines.append(f"| {link} | – | – | not executed yet: the build executes it |")
            continue
        status = "current" if run.current else "changed since: the build executes it again"
        lines.append(f"| {link} | {run.executed:%Y-%m-%d %H:%M} | {format_seconds(run.seconds)} | {status} |")
    return "\n".join(lines)

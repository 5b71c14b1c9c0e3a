"""Student edition of the book: every exercise solution removed (not hidden), exercises kept.

A solution is either a gated block, from the Markdown that opens ```` ```{solution-start} ````
to the one that closes ```` ```{solution-end} ```` (in a notebook, every cell in between,
code cells included), or a single ```` ```{solution} ```` (or ``:::{solution}``) directive.
Exercises, the ``parameters`` cell and everything else stay.

``make student`` (``python -m tools.student_edition``) writes:

- ``_build/student/html``: the site, built from the executed chapters the main build left in
  its jupyter-cache (nothing is executed again: the stripped copies are stored in a
  cache of their own, which the student build reads, with their run times);
- ``_build/student/notebooks.zip``: the stripped, unexecuted source notebooks;

and then searches both for every removed solution (:func:`leaks`), failing if any is found.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import yaml

# An opening fence of a directive or code block: ``` or ::: (three or more), then its info.
_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\s*(?P<info>.*?)\s*$")
_DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
_LABEL_OPTION = re.compile(r"^\s*:label:\s*(\S+)")


@dataclass
class Solution:
    """One removed solution: the exercise it answers, its own label if any, and its source text."""

    answers: str
    text: str
    label: str | None = None

    def snippets(self, words: int = 6) -> list[str]:
        """Runs of ``words`` or more plain prose words from the solution, as a reader would see them.

        Words holding math, markup, quotes or dashes are skipped: their rendering differs
        from the source. Longest first. A solution without such a run (all formulas and
        code) gives its longest line free of markup instead, usually a line of its code.
        """
        runs, run = [], []
        for token in self.text.split():
            if re.fullmatch(r"[A-Za-z][A-Za-z-]*[,.;:]?", token) and "--" not in token:
                run.append(token.rstrip(",.;:"))
                if token[-1] in ",.;:":  # punctuation ends a run, so the HTML text matches exactly
                    runs.append(run)
                    run = []
            else:
                runs.append(run)
                run = []
        runs.append(run)
        found = sorted((" ".join(r) for r in runs if len(r) >= words), key=len, reverse=True)
        if found:
            return found
        # A solution in formulas and code: its longest line free of markup (often code).
        lines = [" ".join(line.split()) for line in self.text.splitlines()
                 if not re.search(r"[$\\`{}|*_'\"]|^\s*:", line) or re.fullmatch(r"\s*[\w ,=.+\-*()/]+", line)]
        lines = [line for line in lines if len(line) >= 15 and not _FENCE.match(line)]
        return sorted(lines, key=len, reverse=True)[:1]


def _directive(line: str) -> tuple[str, str, str] | None:
    """``(fence, name, argument)`` if ``line`` opens a directive, else None."""
    fence = _FENCE.match(line)
    if not fence:
        return None
    directive = _DIRECTIVE.match(fence["info"])
    return (fence["fence"], directive["name"], directive["arg"]) if directive else None


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(fence) and set(stripped) == {fence[0]}


def strip_text(text: str, inside: Solution | None = None) -> tuple[str, Solution | None, list[Solution]]:
    """Remove the solutions from Markdown (a page, or one notebook cell).

    Parameters
    ----------
    text : str
        MyST Markdown.
    inside : Solution, optional
        The gated solution that an earlier cell opened and has not closed yet, if any.

    Returns
    -------
    kept : str
        The text without its solutions.
    inside : Solution or None
        The gated solution still open at the end of ``text`` (its text so far included).
    removed : list of Solution
        The solutions that ended in ``text``.
    """
    lines = text.splitlines(keepends=True)
    kept, removed = [], []
    code_fence = None  # inside a literal code block: nothing there is a directive
    i = 0
    while i < len(lines):
        line = lines[i]
        if inside is not None:
            opened = _directive(line)
            if opened and opened[1] == "solution-end":
                i = _skip_block(lines, i, opened[0])
                removed.append(inside)
                inside = None
                continue
            inside.text += line
            label = _LABEL_OPTION.match(line)
            if label and inside.label is None:
                inside.label = label[1]
            i += 1
            continue
        if code_fence is not None:
            kept.append(line)
            code_fence = None if _closes(line, code_fence) else code_fence
            i += 1
            continue
        opened = _directive(line)
        if opened and opened[1] == "solution":
            end = _skip_block(lines, i, opened[0])
            body = "".join(lines[i + 1:end - 1])
            label = next((m[1] for m in map(_LABEL_OPTION.match, lines[i + 1:end]) if m), None)
            removed.append(Solution(opened[2], body, label))
            i = end
            continue
        if opened and opened[1] == "solution-start":
            inside = Solution(opened[2], "")
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence and not opened and not _closes(line, fence["fence"]):
            code_fence = fence["fence"]
        kept.append(line)
        i += 1
    return "".join(kept), inside, removed


def _skip_block(lines: list[str], start: int, fence: str) -> int:
    """Index just past the fence that closes the block opened at ``lines[start]``."""
    for j in range(start + 1, len(lines)):
        if _closes(lines[j], fence):
            return j + 1
    return len(lines)


def strip_notebook(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[Solution]]:
    """A copy of ``nb`` without its solutions, and the solutions removed.

    Cells inside a gated solution are dropped whatever their type; a Markdown cell that
    only held (part of) a solution is dropped, one with other text keeps that text.

    Raises
    ------
    ValueError
        If a ``solution-start`` is never closed by a ``solution-end`` (the whole rest of the
        notebook would otherwise vanish from the student edition).
    """
    out = copy.deepcopy(nb)
    cells, removed, inside = [], [], None
    for cell in out.cells:
        if cell.cell_type != "markdown":
            if inside is None:
                cells.append(cell)
            else:
                inside.text += "\n" + cell.source + "\n"
            continue
        was_inside = inside is not None
        kept, inside, done = strip_text(cell.source, inside)
        removed += done
        if not (was_inside or done or inside is not None):
            cells.append(cell)  # untouched
        elif kept.strip():
            cell.source = kept.strip("\n")
            cells.append(cell)
    if inside is not None:
        raise ValueError(f"solution-start for {inside.answers!r} has no solution-end; close it with "
                         "a Markdown cell holding ```{solution-end}``` before the next section")
    out.cells = cells
    return out, removed


def strip_page(text: str) -> tuple[str, list[Solution]]:
    """A MyST page without its solutions, and the solutions removed (see :func:`strip_notebook`)."""
    kept, inside, removed = strip_text(text)
    if inside is not None:
        raise ValueError(f"solution-start for {inside.answers!r} has no solution-end")
    return kept, removed


def _site_text(path: Path) -> tuple[str, _TextParser]:
    """The text a file of the built site shows or carries (whitespace collapsed), and its HTML parse."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    parser = _TextParser()
    if path.suffix == ".html":
        parser.feed(raw)
        raw = "".join(parser.parts)  # "" keeps code tokens, split over <span>s, together
    elif path.suffix == ".ipynb":
        nb = json.loads(raw)
        raw = " ".join("".join(c.get("source", "")) + " " + json.dumps(c.get("outputs", []))
                       for c in nb.get("cells", []))
    return " ".join(raw.split()), parser


class _TextParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.solution_elements = 0
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "solution" in (attrs.get("class") or "").split():
            self.solution_elements += 1
        if attrs.get("id"):
            self.ids.add(attrs["id"])

    def handle_data(self, data):
        self.parts.append(data)


def leaks(paths: list[Path], solutions: list[Solution]) -> list[str]:
    """Where any removed solution still shows: its text, its label, a solution element, its directive.

    Parameters
    ----------
    paths : list of Path
        Files and folders to search (a built site, stripped notebooks, a zip of them).
    solutions : list of Solution
        The solutions removed from the sources; each must have at least one snippet.
    """
    needles = [(s.answers, snippet) for s in solutions for snippet in s.snippets()[:2]]
    found = []
    labels = {s.label for s in solutions if s.label}
    for path, text, parser in _texts(paths):
        found += [f"{path}: solution to {label!r} shows: {snippet!r}" for label, snippet in needles if snippet in text]
        if parser.solution_elements:
            found.append(f"{path}: {parser.solution_elements} element(s) with class 'solution'")
        found += [f"{path}: has the solution label {label!r} as an anchor" for label in sorted(labels & parser.ids)]
    for path, answers in _directives(paths):
        found.append(f"{path}: holds a solution directive for {answers!r}")
    return found


def _directives(paths):
    """``(file, exercise label)`` of each solution directive left in a notebook or page.

    Parsed as :func:`strip_text` does, so directive syntax shown in a code block is no leak.
    """
    for name, path in _files(paths):
        if path.suffix == ".ipynb":
            sources = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
        elif path.suffix == ".md":
            sources = [path.read_text(encoding="utf-8", errors="replace")]
        else:
            continue
        for source in sources:
            _, inside, removed = strip_text(source)
            for solution in removed + ([inside] if inside else []):
                yield name, solution.answers


def _files(paths):
    """``(name to report, path to read)`` of every file under ``paths``; a zip's members are
    named ``archive.zip!member``."""
    for top in map(Path, paths):
        if top.suffix == ".zip":
            with zipfile.ZipFile(top) as archive, tempfile.TemporaryDirectory() as tmp:
                archive.extractall(tmp)
                for _, path in _files([Path(tmp)]):
                    yield f"{top}!{path.relative_to(tmp)}", path
            continue
        yield from ((str(p), p) for p in sorted([top] if top.is_file() else top.rglob("*")) if p.is_file())


def unseen(paths: list[Path], solutions: list[Solution]) -> list[Solution]:
    """Solutions none of whose snippets appear in ``paths`` (the main site, which shows them all).

    :func:`leaks` is blind to such a solution, so the student edition's check would pass
    vacuously for it.
    """
    texts = [text for _, text, _ in _texts(paths)]
    return [s for s in solutions if not any(snippet in text for snippet in s.snippets()[:2] for text in texts)]


def _texts(paths):
    for name, path in _files(paths):
        if path.suffix in (".html", ".ipynb", ".md", ".txt", ".js"):
            yield (name, *_site_text(path))


def _executed_copy(cache, source: Path) -> tuple[nbformat.NotebookNode, float | None]:
    """The executed notebook that the main build cached for ``source``'s current code."""
    nb = nbformat.read(source, as_version=4)
    try:
        record = cache.match_cache_notebook(nb)
    except KeyError:
        raise RuntimeError(
            f"student edition: {source} has no executed copy of its current code in the book's "
            "jupyter-cache; run `make book` (or `make test`) first, then `make student`") from None
    _, executed = cache.merge_match_into_notebook(nb)
    return executed, record.data.get("execution_seconds")


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def build_student_edition(root: Path, out: Path, nb_cache: Path | None) -> tuple[list[Solution], list[str]]:
    """Strip every solution, build the student site and zip its notebooks, and check for leaks.

    Parameters
    ----------
    root : Path
        The book (``_config.yml``, ``_toc.yml``, ``book/``, ``notebooks/``).
    out : Path
        Output folder: ``html/`` and ``notebooks.zip`` are written there (``src/`` holds the
        stripped book the site is built from).
    nb_cache : Path or None
        The main build's jupyter-cache. With it, the site shows the executed chapters (nothing
        runs again); None builds from the unexecuted notebooks (no outputs), as tests do.

    Returns
    -------
    solutions : list of Solution
        Every solution removed.
    leaks : list of str
        Where a removed solution still shows (empty when the edition is clean).
    """
    root, out = Path(root).resolve(), Path(out).resolve()
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(root, src, ignore=shutil.ignore_patterns(
        "_build", ".venv", ".git", "results", "tests", "lautum", "*.egg-info", ".*cache*", ".hypothesis"))
    if (root / "_build" / "environment.md").is_file():  # the status page includes it
        (src / "_build").mkdir(exist_ok=True)
        shutil.copy2(root / "_build" / "environment.md", src / "_build" / "environment.md")
    config = yaml.safe_load((src / "_config.yml").read_text())
    config["title"] = f"{config.get('title', 'Book')} (student edition)"
    config["execute"]["execute_notebooks"] = "cache" if nb_cache else "off"
    # Absolute: Jupyter Book reads a relative cache path from the caller's directory, which
    # would be the main build's cache.
    config["execute"]["cache"] = str(src / "_build" / ".jupyter_cache")
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    main_cache = get_cache(str(nb_cache)) if nb_cache else None
    student_cache = get_cache(str(src / "_build" / ".jupyter_cache"))
    solutions: list[Solution] = []
    unexecuted = []
    for source in sorted((root / "notebooks").glob("*.ipynb")):
        stripped, removed = strip_notebook(nbformat.read(source, as_version=4))
        solutions += removed
        unexecuted.append((source.name, stripped))
        target = src / "notebooks" / source.name
        if main_cache is not None:
            executed, seconds = _executed_copy(main_cache, source)
            stripped_executed, _ = strip_notebook(executed)
            nbformat.write(stripped_executed, target)
            student_cache.cache_notebook_bundle(
                CacheBundleIn(stripped_executed, str(target), data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)
        else:
            nbformat.write(stripped, target)
    for page in sorted((root / "book").glob("*.md")):
        text, removed = strip_page(page.read_text())
        solutions += removed
        (src / "book" / page.name).write_text(text)

    jb = Path(sys.executable).with_name("jupyter-book")
    run = subprocess.run([str(jb), "build", str(src), "-n", "-W", "--keep-going"],
                         capture_output=True, text=True, cwd=src)
    (out / "build.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        raise RuntimeError(f"student edition: the site build failed; see {out / 'build.log'}:\n"
                           f"{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    # Every chapter came from the cache: anything the build executed would be a project record.
    executed_here = [r.uri for r in student_cache.list_project_records()]
    if executed_here:
        raise RuntimeError(f"student edition: the build executed {executed_here} instead of reading the "
                           "stripped copies from the cache; this is a bug in tools/student_edition.py")
    html = out / "html"
    shutil.rmtree(html, ignore_errors=True)
    os.replace(src / "_build" / "html", html)

    def write_zip(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, nb in unexecuted:
                archive.writestr(f"notebooks/{name}", nbformat.writes(nb))
    _write_atomic(out / "notebooks.zip", write_zip)
    return solutions, leaks([html, out / "notebooks.zip"], solutions)


def main(argv: list[str] | None = None) -> int:
    """Command line of ``make student``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--out", type=Path, default=Path("_build/student"))
    parser.add_argument("--nb-cache", type=Path, default=Path("_build/.jupyter_cache"),
                        help="the main build's jupyter-cache (make book fills it)")
    parser.add_argument("--main-html", type=Path, default=Path("_build/html"),
                        help="the main site, where every solution's snippets must be found")
    args = parser.parse_args(argv)
    if not (args.nb_cache / "global.db").exists():
        print(f"student edition: no jupyter-cache at {args.nb_cache}; run `make book` (or `make test`) first")
        return 2
    try:
        solutions, found = build_student_edition(args.root, args.out, args.nb_cache)
    except (RuntimeError, ValueError) as err:  # a message that says what to do, not a traceback
        print(err)
        return 1
    for leak in found:
        print(f"LEAK {leak}")
    if (args.main_html / "index.html").is_file():
        for blind in unseen([args.main_html], solutions):
            found.append(blind)
            print(f"BLIND the solution to {blind.answers!r} is not found in {args.main_html} by its snippets "
                  f"{blind.snippets()[:2]}, so its absence proves nothing: fix Solution.snippets")
    print(f"student edition: {len(solutions)} solutions removed; site {args.out / 'html'}, "
          f"notebooks {args.out / 'notebooks.zip'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

"""The student edition removes every solution (not hides it), and keeps exercises and parameters.

The stripping is tested on a tiny notebook and on every real chapter; the site and zip are
tested on a fixture book built in seconds (the full edition is ``make student``, which runs
the same leak check on its output, and which the last test checks when it exists).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools.student_edition import build_student_edition, leaks, strip_notebook, strip_page

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))

EXERCISE = "```{exercise}\n:label: ex-tiny\n\nPredict the sign of the effect before running anything.\n```"
SOLUTION_START = "```{solution-start} ex-tiny\n:class: dropdown\n```\n\nThe effect is negative because the penalty pulls every weight back."
SOLUTION_CODE = "effect_of_the_penalty = -0.25\nassert effect_of_the_penalty < 0"
SOLUTION_END = "Both directions were checked above.\n\n```{solution-end}\n```\n\n## Next section"
INLINE = ("```{exercise}\n:label: ex-two\n\nSay why.\n```\n\n"
          "````{solution} ex-two\n:class: dropdown\n\nBecause the inner block\n```python\nx = 1\n```\nis part of it.\n````\n"
          "\nText after the solution stays.")
LITERAL = "````md\n```{solution} ex-shown-as-syntax\n```\n````"


def tiny_notebook():
    params = new_code_cell("profile = 'quick'  # rerun: papermill -p profile full")
    params.metadata["tags"] = ["parameters"]
    return new_notebook(cells=[
        new_markdown_cell("# Tiny chapter"), params, new_markdown_cell(EXERCISE),
        new_markdown_cell(SOLUTION_START), new_code_cell(SOLUTION_CODE), new_markdown_cell(SOLUTION_END),
        new_markdown_cell(INLINE), new_markdown_cell(LITERAL), new_code_cell("print('after')"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def test_strip_notebook_removes_gated_and_inline_solutions():
    stripped, removed = strip_notebook(tiny_notebook())
    sources = [c.source for c in stripped.cells]
    assert sources == ["# Tiny chapter", "profile = 'quick'  # rerun: papermill -p profile full", EXERCISE,
                       "## Next section", INLINE.split("````{solution}")[0] + "\nText after the solution stays.",
                       LITERAL, "print('after')"]
    assert stripped.cells[1].metadata["tags"] == ["parameters"]
    assert [s.answers for s in removed] == ["ex-tiny", "ex-two"]
    assert "pulls every weight back" in removed[0].text and SOLUTION_CODE in removed[0].text
    assert "Both directions were checked above." in removed[0].text
    assert "x = 1" in removed[1].text


def test_snippets_are_prose_a_reader_sees():
    _, removed = strip_notebook(tiny_notebook())
    assert removed[0].snippets()[0] == "The effect is negative because the penalty pulls every weight back"


def test_an_unclosed_gated_solution_is_an_error():
    nb = new_notebook(cells=[new_markdown_cell(SOLUTION_START), new_markdown_cell("## The rest")])
    with pytest.raises(ValueError, match="no solution-end"):
        strip_notebook(nb)


def test_strip_page_removes_directive_solutions():
    text, removed = strip_page(f"# Page\n\n{INLINE}\n")
    assert "{solution" not in text and "Because the inner block" not in text
    assert "Text after the solution stays." in text and [s.answers for s in removed] == ["ex-two"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_loses_its_solutions_and_keeps_its_exercises(path):
    nb = nbformat.read(path, as_version=4)
    stripped, removed = strip_notebook(nb)
    exercises = sum(c.source.count("{exercise") for c in nb.cells if c.cell_type == "markdown")
    if exercises:
        assert removed, f"{path.name} has exercises but no solution was found: the check below would be vacuous"
    assert all(s.snippets() for s in removed), [s.answers for s in removed if not s.snippets()]
    assert sum(c.source.count("{exercise") for c in stripped.cells if c.cell_type == "markdown") == exercises
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert params == [c for c in stripped.cells if "parameters" in c.metadata.get("tags", [])]
    text = "\n".join(c.source for c in stripped.cells)
    assert "{solution" not in text
    assert not [snip for s in removed for snip in s.snippets()[:2] if " ".join(snip.split()) in " ".join(text.split())]


@pytest.fixture(scope="module")
def fixture_edition(tmp_path_factory):
    """A one-chapter book with the project's configuration, stripped and built without a cache."""
    root = tmp_path_factory.mktemp("student-book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["sphinx"]["local_extensions"] = {
        name: str((ROOT / path).resolve()) for name, path in config["sphinx"]["local_extensions"].items()}
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/tiny\n")
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text(f"# Intro\n\n{INLINE.replace('ex-two', 'ex-page')}\n")
    for bib in config.get("bibtex_bibfiles", []):
        (root / bib).write_text((ROOT / bib).read_text())
    (root / "notebooks").mkdir()
    nbformat.write(tiny_notebook(), root / "notebooks" / "tiny.ipynb")
    out = root / "_build" / "student"
    solutions, found = build_student_edition(root, out, nb_cache=None)
    return out, solutions, found


def test_fixture_edition_has_no_solution_anywhere(fixture_edition):
    out, solutions, found = fixture_edition
    assert [s.answers for s in solutions] == ["ex-tiny", "ex-two", "ex-page"]  # chapter, then the page
    assert found == []
    page = (out / "html" / "notebooks" / "tiny.html").read_text()
    assert "Predict the sign of the effect" in page and "Next section" in page


def test_fixture_zip_holds_the_stripped_unexecuted_notebook(fixture_edition):
    out, _, _ = fixture_edition
    with zipfile.ZipFile(out / "notebooks.zip") as archive:
        assert archive.namelist() == ["notebooks/tiny.ipynb"]
        nb = nbformat.reads(archive.read("notebooks/tiny.ipynb").decode(), as_version=4)
    assert "parameters" in nb.cells[1].metadata["tags"]
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")
    assert SOLUTION_CODE not in "\n".join(c.source for c in nb.cells)


def test_leak_check_finds_a_solution_left_in_the_site(fixture_edition, tmp_path):
    # The check must be able to fail: the same site with one solution sentence put back.
    out, solutions, _ = fixture_edition
    page = tmp_path / "page.html"
    page.write_text((out / "html" / "notebooks" / "tiny.html").read_text().replace(
        "</body>", f"<p>{solutions[0].snippets()[0]}</p></body>"))
    assert leaks([page], solutions) == [f"{page}: solution to 'ex-tiny' shows: '{solutions[0].snippets()[0]}'"]


def test_built_student_edition_has_no_solution():
    site, archive = ROOT / "_build" / "student" / "html", ROOT / "_build" / "student" / "notebooks.zip"
    if not (site / "index.html").is_file():
        pytest.skip("no _build/student; `make student` builds it (and runs this check itself)")
    solutions = [s for path in CHAPTERS for s in strip_notebook(nbformat.read(path, as_version=4))[1]]
    solutions += [s for page in sorted((ROOT / "book").glob("*.md")) for s in strip_page(page.read_text())[1]]
    assert solutions
    assert leaks([site, archive], solutions) == []


def test_a_solution_label_left_as_an_anchor_is_a_leak(tmp_path):
    _, removed = strip_page("```{solution} ex-x\n:label: sol-x\n:class: dropdown\n\n$x$\n```\n")
    assert removed[0].label == "sol-x"
    page = tmp_path / "page.html"
    page.write_text('<html><body><div id="sol-x"><p>moved</p></div></body></html>')
    assert leaks([page], removed) == [f"{page}: has the solution label 'sol-x' as an anchor"]

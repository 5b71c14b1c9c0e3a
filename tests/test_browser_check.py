"""The browser check reports each kind of breakage, and passes a page that has none.

Runs headless Chromium on small fixture pages (seconds); skipped, with the reason, where
Chromium or Playwright is missing. ``make test-browser`` runs it before checking the book.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import browser_check
from tools.offline_mathjax import copy_mathjax

pytestmark = pytest.mark.skipif(bool(browser_check.missing_browser()), reason=str(browser_check.missing_browser()))

HEAD = '<html><head><meta charset="utf-8">{scripts}</head><body>{body}</body></html>'
MATHJAX = ('<script>window.MathJax = {"options": {"processHtmlClass": "math"}}</script>'
           '<script defer src="_static/mathjax/tex-mml-chtml.js"></script>')
# A dropdown like sphinx-togglebutton's: the title's click shows the content.
DROPDOWN = """<div class="solution dropdown admonition" id="sol-{name}"><p class="admonition-title">Solution</p>
<section style="display:none"><p>The answer.</p></section></div>"""
OPENS = """<script>document.querySelectorAll('.solution .admonition-title').forEach(t =>
  t.addEventListener('click', () => { t.nextElementSibling.style.display = 'block'; }));</script>"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("browser-fixture")
    copy_mathjax(root / "_static" / "mathjax")
    Image.new("RGB", (8, 8), "white").save(root / "figure.png")
    (root / "good.html").write_text(HEAD.format(scripts=MATHJAX, body=(
        '<p>Inline <span class="math">\\(I(X;Y)\\ge0\\)</span>, code <code>$HOME</code>.</p>'
        '<img src="figure.png" alt="a figure">' + DROPDOWN.format(name="good") + OPENS)))
    (root / "bad.html").write_text(HEAD.format(scripts='<script src="https://cdn.example.org/mathjax.js"></script>',
                                               body=(
        '<p>A formula left as TeX: <span class="math">\\(x^2\\)</span> and $y$.</p>'
        '<img src="missing.png" alt="gone">' + DROPDOWN.format(name="bad")
        + "<script>notDefinedAnywhere();</script>")))
    (root / "texerror.html").write_text(HEAD.format(scripts=MATHJAX, body=(
        '<p>A missing argument: <span class="math">\\(\\frac{1}\\)</span></p>')))
    (root / "status.html").write_text(HEAD.format(scripts="", body=(
        '<table><tr><td><a href="good.html">good</a></td><td>1.52</td></tr>'
        '<tr><td><a href="other.html">other</a></td><td>-</td></tr></table>')))
    return root


@pytest.fixture(scope="module")
def results(site, tmp_path_factory):
    shots = tmp_path_factory.mktemp("shots")
    found = browser_check.check_pages(site, ["good", "bad", "texerror", "status"], shots, status_page="status",
                                      chapters=["good", "bad", "other"])
    return {r.page: r for r in found}, shots


def test_a_sound_page_passes(results):
    pages, shots = results
    good = pages["good"]
    assert good.problems == []
    assert (good.formulas, good.images, good.dropdowns) == (1, 1, 1)
    assert (shots / "good.png").stat().st_size > 0


@pytest.mark.parametrize("expected", [
    "console pageerror: notDefinedAnywhere is not defined",   # a JavaScript error
    "network request (fails offline): https://cdn.example.org/mathjax.js",
    "MathJax did not load: the page has math but no working MathJax",
    "formula not typeset: \\(x^2\\)",
    "image not loaded: missing.png",
    "solution dropdown does not open: sol-bad",
])
def test_each_breakage_is_reported(results, expected):
    assert expected in results[0]["bad"].problems


def test_raw_tex_in_visible_text_is_reported(results):
    raw = [p for p in results[0]["bad"].problems if p.startswith("raw TeX in the text")]
    assert any("$y$" in p for p in raw) and any("\\(x^2\\)" in p for p in raw), results[0]["bad"].problems


def test_a_tex_error_is_reported(results):
    assert [p for p in results[0]["texerror"].problems if p.startswith("MathJax error")], results[0]["texerror"]


def test_status_page_needs_every_chapter_with_a_time(results):
    assert results[0]["status"].problems == [
        "status page has no row for chapter bad",
        "status page row of other has no run time: ['other', '-']",
    ]


def test_toc_pages_lists_the_book_in_reading_order():
    pages = browser_check.toc_pages(Path(__file__).resolve().parents[1] / "_toc.yml")
    assert pages[0] == "book/intro" and "book/status" in pages
    assert len(pages) == len(set(pages))

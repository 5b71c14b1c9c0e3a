"""The built book renders offline: MathJax is served from the site, nothing else is fetched remotely.

A two-page fixture book is built in a temporary folder with the project's own
``_config.yml`` (only its paths redirected), so the test checks the real configuration in
seconds, without executing the notebooks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.offline_mathjax import MATHJAX_PATH
from tools.remote_assets import remote_assets

ROOT = Path(__file__).resolve().parents[1]

PAGE = """# Fixture chapter

Inline $I(X;Y)\\ge 0$ and a display

$$
L(X;Y) = D(P_X \\otimes P_Y \\,\\Vert\\, P_{XY}).
$$

A [plain link](https://example.org) is not a load.
"""


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    """Build a fixture book with the project's configuration; return its ``_build/html``."""
    book = tmp_path_factory.mktemp("offline-book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["sphinx"]["local_extensions"] = {
        name: str((ROOT / path).resolve()) for name, path in config["sphinx"]["local_extensions"].items()}
    config["execute"]["cache"] = str(book / "_build" / ".jupyter_cache")
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n")
    (book / "intro.md").write_text("# Fixture\n\nNo math on this page.\n")
    (book / "chapter.md").write_text(PAGE)
    for bib in config.get("bibtex_bibfiles", []):
        (book / bib).parent.mkdir(parents=True, exist_ok=True)
        (book / bib).write_text((ROOT / bib).read_text())
    jb = Path(sys.executable).with_name("jupyter-book")
    run = subprocess.run([str(jb), "build", str(book), "-W", "-n"], capture_output=True, text=True)
    assert run.returncode == 0, f"fixture book build failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return book / "_build" / "html"


def test_no_page_loads_anything_remote(built_site):
    found = remote_assets(built_site)
    assert found == {}, f"pages load remote resources (they fail offline): {found}"


def test_math_page_loads_the_local_mathjax(built_site):
    html = (built_site / "chapter.html").read_text()
    assert f'src="_static/{MATHJAX_PATH}"' in html, "the math page does not load the site's own MathJax"
    mathjax = built_site / "_static" / "mathjax"
    assert (mathjax / "tex-mml-chtml.js").stat().st_size > 100_000
    assert list((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("MathJax_Main-Regular.woff"))
    assert (mathjax / "LICENSE").is_file(), "MathJax's Apache-2.0 licence must travel with its files"


def test_remote_assets_reports_a_cdn_script(tmp_path):
    # The checker itself must be able to fail: a page with a CDN script and a web font.
    (tmp_path / "index.html").write_text(
        '<html><head><script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/a.css"><link rel="canonical" href="https://x.org/">'
        '</head><body><a href="https://github.com/x">repo</a><style>@font-face{src:url("https://f.org/a.woff")}'
        "</style></body></html>")
    found = remote_assets(tmp_path)
    assert found == {"index.html": [
        "<script src=https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js>",
        "<link href=//fonts.example.org/a.css>",
        "css url https://f.org/a.woff",
    ]}

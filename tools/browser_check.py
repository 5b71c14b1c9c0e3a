"""Open every page of the built book in headless Chromium, offline, and report what a reader would see wrong.

Each page is loaded from ``file://`` with every other request aborted (no network), and
checked by one function per concern:

- :func:`console_errors`: console errors, uncaught exceptions and blocked network requests;
- :func:`math_problems`: formulas MathJax did not typeset, TeX errors, and TeX delimiters
  (``$...$``, ``$$``, ``\\(``, ``\\[``) left in the visible text;
- :func:`broken_images`: ``<img>`` elements that did not load (``naturalWidth == 0``);
- :func:`closed_dropdowns`: solution dropdowns whose content does not show when clicked;
- :func:`status_problems`: on the status page, chapters without a row and a run time.

A full-page screenshot of each page is saved. Chromium is Debian's ``/usr/bin/chromium``
driven by Playwright (no browser download). Run it after a build::

    python -m tools.browser_check _build/html --screenshots _build/screenshots

It exits 0 when every page passes, 1 when any check fails, and 0 with a one-line
``SKIP`` reason when Chromium or Playwright is missing, unless ``LAUTUM_REQUIRE_BROWSER=1``
(set by ``.ci/run`` where it installed them), which turns the skip into a failure (exit 2).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: Debian's package puts the browser here (a wrapper script around /usr/lib/chromium).
CHROMIUM = os.environ.get("LAUTUM_CHROMIUM", "/usr/bin/chromium")
#: Viewport of the screenshots: a laptop screen.
VIEWPORT = {"width": 1280, "height": 900}
#: Longest wait, in milliseconds, for MathJax to finish or an image to load on one page.
WAIT_MS = 30_000

# Text inside these is code or typeset output, where `$` and `\(` are legitimate.
_NOT_PROSE = "mjx-container, pre, code, script, style, textarea, .highlight, .cell_output, .output"
_TEX_LEFT = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|(?<![\w\\])\$[^$\s][^$]*?(?<!\s)\$")

# A run time as the status page prints it: "7.69", "42 s", "3.4 min".
_RUN_TIME = re.compile(r"\d+(\.\d+)?( ?(s|min|h))?")

_VISIBLE_TEXT_JS = """(notProse) => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!el || el.closest(notProse) || !el.checkVisibility()) continue;
    out.push(walker.currentNode.textContent);
  }
  return out.join(' ');
}"""


@dataclass
class PageResult:
    """What one page's checks found; ``problems`` is empty when the page passes."""

    page: str
    problems: list[str] = field(default_factory=list)
    formulas: int = 0
    images: int = 0
    dropdowns: int = 0


def console_errors(messages: list[tuple[str, str]], blocked: list[str]) -> list[str]:
    """Console errors, uncaught page errors and requests that needed the network.

    Parameters
    ----------
    messages : list of (str, str)
        ``(type, text)`` of every console message and page error collected while loading.
    blocked : list of str
        URLs the page requested that are not ``file:`` (aborted: the book must work offline).
    """
    found = [f"console {kind}: {text}" for kind, text in messages if kind in ("error", "pageerror")]
    return found + [f"network request (fails offline): {url}" for url in blocked]


def math_problems(page) -> tuple[list[str], int]:
    """Formulas left as TeX: untypeset math elements, MathJax errors, delimiters in visible text.

    Returns
    -------
    problems : list of str
    formulas : int
        The number of math elements on the page (0 means the page has no math).
    """
    counts = page.evaluate("""() => {
      const math = Array.from(document.querySelectorAll('.math'));
      return {total: math.length,
              untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.trim()),
              errors: Array.from(document.querySelectorAll('mjx-merror'))
                           .map(e => e.getAttribute('data-mjx-error') || e.textContent)};
    }""")
    problems = [f"formula not typeset: {tex[:80]}" for tex in counts["untypeset"][:5]]
    if len(counts["untypeset"]) > 5:
        problems.append(f"... and {len(counts['untypeset']) - 5} more formulas not typeset")
    problems += [f"MathJax error: {err[:80]}" for err in counts["errors"]]
    text = page.evaluate(_VISIBLE_TEXT_JS, _NOT_PROSE)
    raw = [f"raw TeX in the text: ...{text[max(m.start() - 30, 0):m.end() + 30]}..." for m in _TEX_LEFT.finditer(text)]
    problems += list(dict.fromkeys(raw))[:5]  # an opening and a closing delimiter show the same excerpt
    return problems, counts["total"]


def broken_images(page) -> tuple[list[str], int]:
    """Images that did not load (``naturalWidth`` 0), after asking lazy ones to load now."""
    page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
    try:
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=WAIT_MS)
    except Exception:  # reported below as images that are not loaded
        pass
    images = page.evaluate(
        "() => Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
    return [f"image not loaded: {src}" for src, ok in images if not ok], len(images)


def closed_dropdowns(page) -> tuple[list[str], int]:
    """Click every solution dropdown's title; report those whose content stays hidden."""
    dropdowns = page.locator(".solution.dropdown")
    problems = []
    for i in range(dropdowns.count()):
        dropdown = dropdowns.nth(i)
        name = dropdown.get_attribute("id") or f"solution {i + 1}"
        content = dropdown.locator(":scope > :not(.admonition-title)").first
        try:
            dropdown.locator(".admonition-title").first.click(timeout=5_000)
            content.wait_for(state="visible", timeout=5_000)
        except Exception:
            problems.append(f"solution dropdown does not open: {name}")
    return problems, dropdowns.count()


def status_problems(page, chapters: list[str]) -> list[str]:
    """On the status page, every chapter needs a table row linking to it with a run time.

    Parameters
    ----------
    chapters : list of str
        Docnames of the executed chapters (``notebooks/01-...``), as in ``_toc.yml``.
    """
    rows = page.evaluate("""() => Array.from(document.querySelectorAll('table tr')).map(r => ({
        links: Array.from(r.querySelectorAll('a[href]')).map(a => a.href.split('#')[0]),
        cells: Array.from(r.querySelectorAll('td')).map(c => c.textContent.trim())}))""")
    problems = []
    for chapter in chapters:
        row = next((r for r in rows if any(link.endswith(f"/{chapter}.html") for link in r["links"])), None)
        if row is None:
            problems.append(f"status page has no row for chapter {chapter}")
        elif not any(_RUN_TIME.fullmatch(cell) for cell in row["cells"]):
            problems.append(f"status page row of {chapter} has no run time: {row['cells']}")
    return problems


def toc_pages(toc: Path) -> list[str]:
    """Docnames of every page in a Jupyter Book ``_toc.yml``, in reading order."""
    data = yaml.safe_load(Path(toc).read_text())
    pages = [data["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("chapters"))
            walk(entry.get("sections"))
    for part in data.get("parts", [{"chapters": data.get("chapters")}]):
        walk(part.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", page) for page in pages]


def check_pages(html_dir: Path, pages: list[str], screenshots: Path | None = None,
                status_page: str | None = None, chapters: list[str] = ()) -> list[PageResult]:
    """Open each page offline in headless Chromium and run every check on it.

    Parameters
    ----------
    html_dir : Path
        The built site (``_build/html``).
    pages : list of str
        Docnames to open (``notebooks/01-lautum-information`` opens ``notebooks/01-lautum-information.html``).
    screenshots : Path, optional
        Folder for one full-page PNG per page (``notebooks__01-lautum-information.png``).
    status_page : str, optional
        Docname of the page whose table must list every chapter of ``chapters`` with a time.
    """
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir).resolve()
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            for name in pages:
                results.append(_check_one(browser, html_dir, name, screenshots, status_page, chapters))
        finally:
            browser.close()
    return results


def _check_one(browser, html_dir, name, screenshots, status_page, chapters) -> PageResult:
    result = PageResult(name)
    path = html_dir / f"{name}.html"
    if not path.is_file():
        result.problems.append(f"page not built: {path}")
        return result
    context = browser.new_context(viewport=VIEWPORT)
    blocked: list[str] = []
    messages: list[tuple[str, str]] = []

    def route(request_route):
        # Only the site's own files may load: this is the book opened with the network off.
        if request_route.request.url.startswith("file:"):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()
    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: messages.append((m.type, m.text)))
    page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
    try:
        page.goto(path.as_uri(), wait_until="load")
        if page.locator(".math").count():
            _wait_for_mathjax(page, result)
        problems, result.formulas = math_problems(page)
        result.problems += problems
        problems, result.images = broken_images(page)
        result.problems += problems
        if name == status_page:
            result.problems += status_problems(page, list(chapters))
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshots / f"{name.replace('/', '__')}.png"), full_page=True)
        problems, result.dropdowns = closed_dropdowns(page)
        result.problems += problems
        # Console errors last: clicking and scrolling can raise some, too.
        result.problems = console_errors(messages, blocked) + result.problems
    finally:
        context.close()
    return result


def _wait_for_mathjax(page, result: PageResult) -> None:
    # After "load", MathJax's deferred script has run: no startup object means it never loaded.
    if not page.evaluate("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)"):
        result.problems.append("MathJax did not load: the page has math but no working MathJax")
        return
    page.evaluate(f"() => Promise.race([MathJax.startup.promise, new Promise(r => setTimeout(r, {WAIT_MS}))])")


def missing_browser() -> str | None:
    """Why the check cannot run here (one line), or None when Chromium and Playwright are present."""
    if shutil.which(CHROMIUM) is None:
        return (f"{CHROMIUM} not found; install Debian's chromium (apt-get install chromium) "
                "or set LAUTUM_CHROMIUM")
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Python package playwright not installed; run `make setup`"
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line: check every page of a built book; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", type=Path, nargs="?", default=Path("_build/html"))
    parser.add_argument("--toc", type=Path, default=Path("_toc.yml"))
    parser.add_argument("--screenshots", type=Path, default=None)
    parser.add_argument("--status-page", default="book/status")
    args = parser.parse_args(argv)
    why = missing_browser()
    if why:
        if os.environ.get("LAUTUM_REQUIRE_BROWSER") == "1":
            print(f"browser check: cannot run although LAUTUM_REQUIRE_BROWSER=1: {why}")
            return 2
        print(f"SKIP browser check: {why}")
        return 0
    if not (args.html_dir / "index.html").is_file():
        print(f"browser check: {args.html_dir}/index.html not found; build the book first (make book)")
        return 2
    pages = toc_pages(args.toc)
    chapters = [p for p in pages if p.startswith("notebooks/")]
    results = check_pages(args.html_dir, pages, args.screenshots, args.status_page, chapters)
    for r in results:
        print(f"{'FAIL' if r.problems else 'ok  '} {r.page}: {r.formulas} formulas, {r.images} images, "
              f"{r.dropdowns} solution dropdowns")
        for problem in r.problems:
            print(f"       {problem}")
    failed = sum(bool(r.problems) for r in results)
    if args.screenshots:
        print(f"screenshots: {args.screenshots}")
    print(f"browser-check: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

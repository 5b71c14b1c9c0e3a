"""Find what a built HTML site loads from the network to render: scripts, styles, fonts, frames.

Plain hyperlinks (``<a href>``), such as the repository and launch buttons, are not loads
and are ignored. Used by ``tests/test_offline_math.py`` on a fixture build and runnable on
the real one: ``python -m tools.remote_assets _build/html`` (exit 1 when anything is found).
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

# Tag -> attributes whose URL the browser fetches while rendering the page.
_LOADED = {"script": ("src",), "link": ("href",), "img": ("src", "srcset"), "iframe": ("src",),
           "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",),
           "embed": ("src",), "object": ("data",)}
# <link rel=...> values that make the browser fetch the target (canonical, alternate... do not).
_FETCHED_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "manifest", "prefetch"}
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*((?:https?:)?//[^'")\s]+)""", re.I)


def is_remote(url: str) -> bool:
    """Whether ``url`` needs the network (``http(s)://`` or protocol-relative ``//``)."""
    url = url.strip().lower()
    return url.startswith(("http://", "https://", "//"))


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and not _FETCHED_RELS & set((attrs.get("rel") or "").lower().split()):
            return
        for name in _LOADED.get(tag, ()):
            for url in (attrs.get(name) or "").split(","):
                url = url.strip().split(" ")[0]
                if url and is_remote(url):
                    self.found.append(f"<{tag} {name}={url}>")


def remote_assets(html_dir: Path) -> dict[str, list[str]]:
    """Map each page or stylesheet under ``html_dir`` to the remote resources it loads.

    Parameters
    ----------
    html_dir : Path
        A built HTML site (``_build/html``).

    Returns
    -------
    dict of str to list of str
        Relative file path -> descriptions such as ``<script src=https://...>``; only files
        that load something remote are listed, so an empty dict means the site renders offline.
    """
    html_dir = Path(html_dir)
    found: dict[str, list[str]] = {}
    for page in sorted(html_dir.rglob("*.html")):
        collector = _Collector()
        collector.feed(page.read_text(encoding="utf-8", errors="replace"))
        # Inline <style> blocks are scanned as CSS, too.
        hits = collector.found + [f"css url {u}" for u in _CSS_URL.findall(_inline_styles(page))]
        if hits:
            found[str(page.relative_to(html_dir))] = hits
    for sheet in sorted(html_dir.rglob("*.css")):
        hits = [f"css url {u}" for u in _CSS_URL.findall(sheet.read_text(encoding="utf-8", errors="replace"))]
        if hits:
            found[str(sheet.relative_to(html_dir))] = hits
    return found


def _inline_styles(page: Path) -> str:
    text = page.read_text(encoding="utf-8", errors="replace")
    return "\n".join(re.findall(r"<style[^>]*>(.*?)</style>", text, flags=re.S | re.I))


def main(argv: list[str] | None = None) -> int:
    """Print every remote load under the given site; return 1 if there is any."""
    html_dir = Path((argv or sys.argv[1:] or ["_build/html"])[0])
    if not (html_dir / "index.html").is_file():
        print(f"remote_assets: {html_dir}/index.html not found; build the book first (make book)")
        return 2
    found = remote_assets(html_dir)
    for path, hits in found.items():
        for hit in hits:
            print(f"{path}: {hit}")
    print(f"remote_assets: {sum(map(len, found.values()))} remote loads in {len(found)} files under {html_dir}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

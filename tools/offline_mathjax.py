"""Sphinx extension: the built site carries its own MathJax 3, so formulas typeset offline.

Sphinx loads MathJax from a CDN by default; opened from ``file://`` without a network,
every formula then shows as raw TeX. This extension copies MathJax's ES5 components from
the ``django-static-mathjax`` wheel (MathJax 3.2.2, Apache-2.0; its version is the wheel's
first three numbers) into ``_static/mathjax`` of the HTML output, where ``mathjax_path``
points. ``mathjax3_config`` keeps working: Sphinx still writes it before the script.

Enable it in ``_config.yml``::

    sphinx:
      local_extensions: {offline_mathjax: tools}
      config:
        mathjax_path: mathjax/tex-mml-chtml.js
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: The component Sphinx's default CDN URL names (TeX and MathML input, CommonHTML output).
ENTRY = "tex-mml-chtml.js"
#: What that component loads on demand: TeX extensions, CHTML fonts, the menu and its
#: accessibility tools. The other all-in-one bundles and the SVG output are left out.
PARTS = (ENTRY, "input", "output/chtml", "output/chtml.js", "ui", "a11y", "sre", "adaptors")
#: Relative to ``_static``, as Sphinx resolves a ``mathjax_path`` without a scheme.
MATHJAX_PATH = f"mathjax/{ENTRY}"


def mathjax_root() -> Path:
    """Return the folder of MathJax's ES5 components shipped by ``django-static-mathjax``.

    Raises
    ------
    RuntimeError
        If the package is missing or does not hold ``es5/tex-mml-chtml.js``.
    """
    try:
        import mathjax
    except ImportError as err:
        raise RuntimeError(
            "offline_mathjax: the package 'django-static-mathjax' (import name 'mathjax') is not "
            "installed; run `make setup` or `pip install -r requirements/pinned.txt`") from err
    root = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (root / ENTRY).is_file():
        raise RuntimeError(
            f"offline_mathjax: {root / ENTRY} is missing; the installed 'mathjax' package is not "
            "django-static-mathjax 3.x. Reinstall the pinned version from requirements/pinned.txt")
    return root


def copy_mathjax(destination: Path) -> None:
    """Copy the MathJax components the book needs, and MathJax's licence, into ``destination``.

    Parameters
    ----------
    destination : Path
        Folder to create or refresh (``<html>/_static/mathjax``).
    """
    root = mathjax_root()
    for part in PARTS:
        source = root / part
        if source.is_dir():
            shutil.copytree(source, destination / part, dirs_exist_ok=True)
        else:
            (destination / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / part)
    shutil.copy2(root.parent / "LICENSE", destination / "LICENSE")


def _check_config(app, config) -> None:
    # Fail at the start of the build, not after it, when the copy could not be made.
    if not _is_remote(config.mathjax_path):
        if config.mathjax_path != MATHJAX_PATH:
            raise RuntimeError(
                f"offline_mathjax: mathjax_path is {config.mathjax_path!r}; set it to {MATHJAX_PATH!r} "
                "(under _static/mathjax, where this extension copies MathJax) or to a full URL")
        mathjax_root()


def _copy_after_build(app, exception) -> None:
    if exception is None and app.builder.format == "html" and not _is_remote(app.config.mathjax_path):
        copy_mathjax(Path(app.outdir) / "_static" / "mathjax")


def _is_remote(path: str) -> bool:
    return "://" in path or path.startswith("//")


def setup(app):
    """Register the extension with Sphinx."""
    app.setup_extension("sphinx.ext.mathjax")
    app.connect("config-inited", _check_config)
    app.connect("build-finished", _copy_after_build)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

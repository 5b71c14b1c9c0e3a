"""Sphinx extension: pages of the book raise no JavaScript console errors from the theme stack.

Two errors appear on every page built by Jupyter Book 1.0.4 (sphinx-book-theme 1.3.0,
pydata-sphinx-theme 0.17.1, sphinx-thebe 0.3.1), seen by ``tools/browser_check.py``:

- ``Identifier 'THEBE_JS_URL' has already been declared``: sphinx-thebe's inline
  configuration script is added twice; the second copy redeclares its constants. Identical
  inline scripts are kept once.
- ``Got invalid theme mode: . Resetting to auto.``: pydata-sphinx-theme reads the template
  variable ``default_mode``, which nothing sets; it is given pydata's own default, ``auto``
  (the reader's system setting), unless the configuration sets it in ``html_context``.
"""

from __future__ import annotations


def _fix_page(app, pagename, templatename, context, doctree) -> None:
    context.setdefault("default_mode", "auto")
    scripts = context.get("script_files")
    if scripts:
        seen, kept = set(), []
        for script in scripts:
            body = getattr(script, "attributes", {}).get("body")
            key = (script.filename or "", body)  # the same script is added once as None, once as ""
            # Only inline scripts are compared by body; files Sphinx already keeps unique.
            if body and key in seen:
                continue
            seen.add(key)
            kept.append(script)
        scripts[:] = kept  # in place: it is the builder's list, which later handlers extend


def setup(app):
    """Register the extension with Sphinx."""
    # Late, after the handlers that add scripts to the page (default priority 500).
    app.connect("html-page-context", _fix_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

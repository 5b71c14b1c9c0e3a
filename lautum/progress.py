"""Progress bars: on in a terminal and in notebooks, off in batch jobs, always overridable."""

from __future__ import annotations

import sys

__all__ = ["progress_bar", "in_notebook"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where ``sys.stderr`` is not a terminal but a person may watch)."""
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_bar(show: bool | None = None, **kwargs):
    """A tqdm bar; ``show=None`` means: in a terminal or a notebook, not otherwise.

    In a notebook the widget bar is used when ipywidgets is installed, the text bar otherwise.
    """
    if show is None:
        show = sys.stderr.isatty() or in_notebook()
    try:
        import ipywidgets  # noqa: F401

        from tqdm.auto import tqdm
    except ImportError:
        from tqdm.std import tqdm
    return tqdm(disable=not show, **kwargs)

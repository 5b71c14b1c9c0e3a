"""The setup every chapter runs after its parameters cell: profile, sizes, seed, device, display.

A chapter's parameters cell holds literals that papermill can override. Sizes
that grow with the profile (Monte Carlo draws, grid points, ...) are ``None``
there, meaning "the profile's value"; the chapter names its profiles once::

    ch = setup(profile, seed=seed, device=device,
               sizes={"quick": {"n_mc": 200_000}, "full": {"n_mc": 2_000_000}}, n_mc=n_mc)
    n_mc = ch.sizes["n_mc"]

so no chapter multiplies its sizes by hand, and an unknown profile fails at once
with the names it has.

The display half is for readers of the rendered book: :func:`setup` sets figures to
150 dpi with legible legend and tick sizes, :func:`show_table` shows a table without
pandas' row numbers (split in two when it has more columns than fit the text
column), and :func:`say` shows a sentence built from results as Markdown, which
wraps with the text instead of running off the right edge as printed lines do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lautum.device import describe_device, resolve_device, seed_everything

__all__ = ["Chapter", "setup", "READABLE_FIGURES", "MAX_COLUMNS", "show_table", "split_columns", "say", "provenance", "glue"]

#: matplotlib settings for the rendered book: figures are drawn at 150 dpi and scaled to the
#: text column (about 750 px), so a font must be at least 9 pt to stay readable there.
READABLE_FIGURES = {"figure.dpi": 150, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 10,
                    "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
                    "legend.title_fontsize": 9, "figure.titlesize": 11}
#: Cell padding for displayed tables: a Styler's HTML carries no class the book's theme styles, so without it
#: neighbouring columns run together.
_TABLE_STYLE = [{"selector": "th, td", "props": "padding: 0.25em 0.75em; text-align: left;"}]
#: Most columns a displayed table keeps side by side before :func:`show_table` splits it.
MAX_COLUMNS = 6


@dataclass
class Chapter:
    """What a chapter's cells use: its profile, sizes, device and a seeded generator."""

    profile: str
    seed: int
    device: torch.device
    sizes: dict[str, Any] = field(default_factory=dict)
    generator: torch.Generator | None = None

    def describe(self) -> str:
        """One line for the chapter's output, e.g. ``profile=quick; device=cpu (2 threads); n_mc=200000``."""
        sizes = "".join(f"; {k}={v}" for k, v in self.sizes.items())
        return f"profile={self.profile}; device={describe_device(self.device)}{sizes}"


def setup(profile: str, *, seed: int = 0, device: str = "auto", sizes: dict[str, dict[str, Any]] | None = None,
          precision: int = 6, **given: Any) -> Chapter:
    """Validate the profile, fill the sizes the parameters cell left ``None``, seed, pick the device.

    Parameters
    ----------
    profile : str
        The chapter's profile; must be a key of ``sizes`` (default profiles ``quick`` and ``full``).
    seed : int
        Seeds Python, NumPy and torch, and the returned ``generator``.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    sizes : dict of dict, optional
        ``{profile: {name: value}}``: each profile's sizes.
    precision : int
        pandas display precision.
    **given
        The parameters cell's values of those names; ``None`` takes the profile's value.

    Examples
    --------
    >>> ch = setup("full", sizes={"quick": {"n": 10}, "full": {"n": 100}}, n=None)
    >>> ch.sizes, ch.device.type in ("cpu", "cuda")
    ({'n': 100}, True)
    >>> setup("full", sizes={"quick": {"n": 10}, "full": {"n": 100}}, n=7).sizes
    {'n': 7}
    >>> setup("medium")
    Traceback (most recent call last):
    ...
    ValueError: profile='medium' is not a profile of this chapter; it has: quick, full (rerun with -p profile quick)
    """
    import pandas as pd

    sizes = sizes or {"quick": {}, "full": {}}
    if profile not in sizes:
        raise ValueError(f"profile={profile!r} is not a profile of this chapter; it has: {', '.join(sizes)} "
                         f"(rerun with -p profile {next(iter(sizes))})")
    unknown = set(given) - set(sizes[profile])
    if unknown:
        raise ValueError(f"sizes {sorted(unknown)} were given but profile {profile!r} does not define them")
    chosen = {k: (given[k] if given.get(k) is not None else v) for k, v in sizes[profile].items()}
    seed_everything(seed)
    pd.set_option("display.precision", precision)
    import matplotlib as mpl

    mpl.rcParams.update(READABLE_FIGURES)  # after `%matplotlib inline`, which resets them
    return Chapter(profile, seed, resolve_device(device), chosen, torch.Generator().manual_seed(seed))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def show_table(table, keys: int = 1, max_columns: int = MAX_COLUMNS) -> None:
    """Display ``table`` for readers: no row numbers, floats as ``:g``, missing values as a dash.

    A table with more than ``max_columns`` columns is shown as several tables, each
    repeating the first ``keys`` columns (the row labels), so none is wider than the
    text column.

    Parameters
    ----------
    table : pandas.DataFrame
        Already in reader form: human column names, numbers rounded (e.g. by a
        ``format_*`` function of :mod:`lautum.reports`).
    keys : int
        How many leading columns identify a row and are repeated in every part.
    max_columns : int
        Most columns per part, keys included.
    """
    from IPython.display import display

    for part in split_columns(table, keys, max_columns):
        display(part.style.hide(axis="index").format(_cell, na_rep="–").set_table_styles(_TABLE_STYLE))


def split_columns(table, keys: int = 1, max_columns: int = MAX_COLUMNS) -> list:
    """``table`` as parts of at most ``max_columns`` columns, each starting with its first ``keys`` columns.

    >>> import pandas as pd
    >>> t = pd.DataFrame([[1, 2, 3, 4, 5]], columns=list("abcde"))
    >>> [list(p.columns) for p in split_columns(t, keys=1, max_columns=3)]
    [['a', 'b', 'c'], ['a', 'd', 'e']]
    """
    if not 0 <= keys < max_columns:
        raise ValueError(f"keys={keys} must be at least 0 and below max_columns={max_columns}")
    columns = list(table.columns)
    head, rest = columns[:keys], columns[keys:]
    width = max_columns - keys
    return [table[head + rest[i:i + width]] for i in range(0, max(len(rest), 1), width)]


def say(text: str) -> None:
    """Display ``text`` (Markdown, usually an f-string of computed values) as part of the page's prose."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def provenance(records) -> str:
    """:func:`lautum.analysis.provenance_label` in reader words: a ``-dirty`` commit becomes "with uncommitted changes".

    >>> provenance([{"profile": "quick", "provenance": {"git_commit": "abc1234def-dirty"}}]).endswith(
    ...     "commit abc1234 with uncommitted changes")
    True
    """
    import re

    from lautum.analysis import provenance_label

    return re.sub(r"(\b[0-9a-f]{7})-dirty\b", r"\1 with uncommitted changes", provenance_label(records))


def glue(name: str, value: Any) -> None:
    """Store ``value`` under ``name`` for ``{glue:text}`` in other pages of the book, without displaying it.

    A no-op where MyST-NB is not installed (e.g. on Colab), where nothing reads it.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=False)

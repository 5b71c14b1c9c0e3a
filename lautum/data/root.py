"""Where the data sets live (read-only) and where derived files are cached (writable).

Two directories, never confused:

* the **data root** holds the files as published (or as fetched by
  ``lautum data fetch``). It may be read-only, e.g. a shared offline copy; the
  module only ever writes into it when asked to fetch.
* the **cache dir** holds files derived from the data (e.g. the extracted and
  decoded notMNIST). Deleting it is always safe: it is rebuilt on demand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DATA_ENV",
    "CACHE_ENV",
    "DEFAULT_DATA_ROOT",
    "DEFAULT_CACHE_DIR",
    "resolve_data_root",
    "resolve_cache_dir",
    "RootChoice",
    "explain_data_root",
]

DATA_ENV = "LAUTUM_DATA"
CACHE_ENV = "LAUTUM_CACHE"
DEFAULT_DATA_ROOT = "~/.cache/lautum/data"
DEFAULT_CACHE_DIR = "~/.cache/lautum"


@dataclass(frozen=True)
class RootChoice:
    """The data root in use and how it was chosen (for error messages).

    Attributes
    ----------
    path : Path
        The data root in use (absolute, ``~`` expanded).
    source : str
        ``"root= argument"``, ``"$LAUTUM_DATA"`` or ``"default"``.
    candidates : tuple of (str, str or None)
        Every rule in order of precedence with its value (``None``: not set).
    """

    path: Path
    source: str
    candidates: tuple[tuple[str, str | None], ...]

    def describe(self) -> str:
        """One line per rule, marking the one in use."""
        lines = []
        for label, value in self.candidates:
            mark = "  <- in use" if label == self.source else ""
            lines.append(f"    {label}: {value if value is not None else '(not set)'}{mark}")
        return "\n".join(lines)


def explain_data_root(root: str | os.PathLike | None = None) -> RootChoice:
    """Resolve the data root and record which rule chose it.

    Parameters
    ----------
    root : str or path-like, optional
        Explicit root; wins over ``$LAUTUM_DATA`` and the default.

    Returns
    -------
    RootChoice

    Examples
    --------
    >>> choice = explain_data_root("/srv/data")
    >>> choice.path.as_posix(), choice.source
    ('/srv/data', 'root= argument')
    """
    env = os.environ.get(DATA_ENV) or None  # an empty variable counts as unset
    candidates = (
        ("root= argument", None if root is None else os.fspath(root)),
        (f"${DATA_ENV}", env),
        ("default", DEFAULT_DATA_ROOT),
    )
    for label, value in candidates:
        if value is not None:
            return RootChoice(Path(value).expanduser().absolute(), label, candidates)
    raise AssertionError("unreachable: the default is never None")


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """The directory holding the data sets.

    Precedence: the explicit ``root`` argument, then the environment variable
    ``LAUTUM_DATA``, then ``~/.cache/lautum/data``. Nothing is created or checked
    here; readers raise :class:`~lautum.data.DataNotFoundError` when files are absent.

    Parameters
    ----------
    root : str or path-like, optional
        Explicit data root.

    Returns
    -------
    Path
        Absolute path with ``~`` expanded.

    Examples
    --------
    >>> resolve_data_root("/srv/data").as_posix()
    '/srv/data'
    >>> resolve_data_root("~/d") == Path.home() / "d"
    True
    """
    return explain_data_root(root).path


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The writable directory for derived files (extracted archives, decoded arrays).

    Precedence: the explicit argument, then ``LAUTUM_CACHE``, then ``~/.cache/lautum``.
    It is created on first use by the code that writes into it, not here.

    Examples
    --------
    >>> resolve_cache_dir("/tmp/c").as_posix()
    '/tmp/c'
    """
    value = os.fspath(cache_dir) if cache_dir is not None else (os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)
    return Path(value).expanduser().absolute()

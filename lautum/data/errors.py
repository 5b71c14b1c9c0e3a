"""Errors raised by :mod:`lautum.data`, with messages that say what to do next."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lautum.data.domains import Domain
    from lautum.data.root import RootChoice

__all__ = ["DataNotFoundError", "DataFetchError", "fetch_command"]


def fetch_command(name: str, choice: RootChoice) -> str:
    """The shell command that downloads ``name`` into the root in use."""
    cmd = f"lautum data fetch {name}"
    return cmd if choice.source == "default" else f"{cmd} --root {shlex.quote(str(choice.path))}"


class DataNotFoundError(FileNotFoundError):
    """A domain's files are missing or corrupt under the data root.

    The message names the domain, the files expected (with checksums), what is
    wrong with each, every data-root rule with its value, and what to do: the
    fetch command where the broken layout has a public download, restoring a copy
    where it has none. :attr:`summary` is the same in one line (for the CLI).
    Nothing is ever downloaded implicitly.
    """

    def __init__(self, domain: Domain, choice: RootChoice, problems: Sequence[tuple[str, str, str]], split: str,
                 fetchable: bool | None = None):
        # problems: (layout name, file description, what is wrong)
        self.domain = domain.name
        self.root = choice.path
        self.problems = list(problems)
        fetchable = domain.recipe is not None if fetchable is None else fetchable
        corrupt = any(what != "missing" for _, _, what in self.problems)
        if fetchable:
            todo = (f"run `{fetch_command(domain.name, choice)}` (it downloads only what is missing"
                    f"{' and replaces what is corrupt' if corrupt else ''}), or point $LAUTUM_DATA (or "
                    "`lautum run --data-dir`, root= in Python) at a folder that already holds these files")
        else:
            todo = (f"`{fetch_command(domain.name, choice)}` cannot repair them (no public URL for this layout): "
                    "restore them from an intact copy (e.g. the project's offline data folder) and point "
                    "$LAUTUM_DATA (or `lautum run --data-dir`, root= in Python) at it")
        head = (f"data for domain {domain.name!r} ({domain.title}), {split} split, "
                f"{'is corrupt' if corrupt else 'is missing'} under the data root {choice.path} "
                f"(chosen by {choice.source})")
        bad = [(desc.split(" (")[0], what) for _, desc, what in self.problems if what != "missing"] or \
              [(desc.split(" (")[0], what) for _, desc, what in self.problems]
        self.summary = f"{head}: " + "; ".join(f"{path}: {what}" for path, what in bad[:3]) + \
            (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "") + f". To fix: {todo}."
        lines = [f"{head}.", "Data roots, in order of precedence (the first one set is used):", choice.describe(),
                 "Files expected (relative to the data root):"]
        lines += [f"    [{layout}] {desc}: {what}" for layout, desc, what in self.problems]
        lines.append(f"What to do: {todo}.")
        super().__init__("\n".join(lines))


class DataFetchError(RuntimeError):
    """A download failed or delivered the wrong bytes; nothing was left at the final path."""

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
    wrong with each, every data-root rule with its value, and the command that
    fetches the data. Nothing is ever downloaded implicitly.
    """

    def __init__(self, domain: Domain, choice: RootChoice, problems: Sequence[tuple[str, str, str]], split: str):
        # problems: (layout name, file description, what is wrong)
        self.domain = domain.name
        self.root = choice.path
        self.problems = list(problems)
        recipe = domain.recipe
        lines = [
            f"data for domain {domain.name!r} ({domain.title}), {split} split, is missing or corrupt "
            f"under the data root {choice.path}.",
            "Data roots, in order of precedence (the first one set is used):",
            choice.describe(),
            "Files expected (relative to the data root):",
        ]
        for layout, desc, what in self.problems:
            lines.append(f"    [{layout}] {desc}: {what}")
        lines.append("What to do:")
        if recipe is not None:
            lines.append(f"    run `{fetch_command(domain.name, choice)}` (downloads only what is missing),")
            lines.append("    or point --root / root= / $LAUTUM_DATA at a directory that already holds these files.")
        else:
            lines.append(
                f"    `{fetch_command(domain.name, choice)}` cannot download these files (no public URL): copy them "
                "from an existing copy (e.g. the project's offline data folder) and point root= or $LAUTUM_DATA at it."
            )
        if any(what != "missing" for _, _, what in self.problems):
            lines.append("    A file with the wrong size or checksum is corrupt: delete it and fetch again.")
        super().__init__("\n".join(lines))


class DataFetchError(RuntimeError):
    """A download failed or delivered the wrong bytes; nothing was left at the final path."""

"""The import graph of ``lautum/``: no cycle between modules, and the layers import downwards only.

Every module is parsed with :mod:`ast` and **every** ``lautum`` import counts,
including those inside functions (a function-level import hides a cycle from
``python -c "import ..."`` but not from this test). ``from lautum.x import y``
is an edge to ``lautum.x.y`` when that is a module, else to ``lautum.x``; importing
``lautum.x.y`` also runs the package ``lautum.x``, so that is an edge too (unless
the importer lives inside ``lautum.x``, which is then already being imported).

Allowed: the two-module loop of a package ``__init__`` and one of its own
submodules (``lautum.data`` imports ``lautum.data.splits``, which reads a name
from ``lautum.data``). Imports under ``if TYPE_CHECKING:`` never run, so they make
no cycle; they do count for the layer rules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LAUTUM = Path(__file__).resolve().parents[1] / "lautum"

# Who may import lautum.experiments: the experiments themselves, the front ends that run them and the
# reports that present their records.
MAY_IMPORT_EXPERIMENTS = ("lautum.experiments", "lautum.cli", "lautum.verify", "lautum.bench", "lautum.notebook",
                          "lautum.reports")

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LAUTUM.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(LAUTUM.rglob("*.py")) if "__pycache__" not in p.parts}


MODULES = _modules()
PACKAGES = {name for name, p in MODULES.items() if p.name == "__init__.py"}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _known(name: str) -> str | None:
    """The module ``name`` names, or the closest enclosing module (``lautum.x.attr`` -> ``lautum.x``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def _imports(module: str, source: str | None = None, *, is_package: bool = False) -> list[tuple[str, bool]]:
    """``(imported lautum module, typing only?)`` for every import statement of ``module`` (or of ``source``)."""
    if source is None:
        source, is_package = MODULES[module].read_text(), module in PACKAGES
    tree = ast.parse(source)
    typing_only = _type_checking_nodes(tree)
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names if _within(a.name, "lautum")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if not _within(base, "lautum"):
                continue
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            resolved = _known(target)
            if resolved is None:
                continue
            # Importing lautum.a.b first runs the package lautum.a (unless the importer is inside it).
            chain = [resolved]
            parent = resolved.rpartition(".")[0]
            while parent and not _within(module, parent):
                chain.append(parent)
                parent = parent.rpartition(".")[0]
            out += [(t, id(node) in typing_only) for t in chain if t != module]
    return out


def _graph(include_typing: bool) -> dict[str, set[str]]:
    return {m: {t for t, typing in _imports(m) if include_typing or not typing} for m in MODULES}


def _allowed(cycle: tuple[str, ...]) -> bool:
    """A package ``__init__`` and one of its own submodules."""
    if len(cycle) != 2:
        return False
    a, b = cycle
    return (a in PACKAGES and _within(b, a)) or (b in PACKAGES and _within(a, b))


def simple_cycles(graph: dict[str, set[str]], limit: int = 10_000) -> list[tuple[str, ...]]:
    """Every elementary cycle, each once, starting at its smallest node (a plain DFS; the graph is small).

    >>> simple_cycles({"a": {"b"}, "b": {"a", "c"}, "c": {"a"}, "d": {"d"}})
    [('a', 'b'), ('a', 'b', 'c'), ('d',)]
    """
    cycles: list[tuple[str, ...]] = []
    for start in sorted(graph):
        stack = [(start, iter(sorted(n for n in graph[start] if n >= start)))]
        path, on_path = [start], {start}
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.discard(path.pop())
            elif child == start:
                cycles.append(tuple(path))
                if len(cycles) >= limit:
                    return cycles
            elif child not in on_path:
                path.append(child)
                on_path.add(child)
                stack.append((child, iter(sorted(n for n in graph.get(child, ()) if n >= start))))
    return sorted(cycles)


def _cycles() -> list[tuple[str, ...]]:
    return [c for c in simple_cycles(_graph(include_typing=False)) if not _allowed(c)]


def _arrows(cycle: tuple[str, ...]) -> str:
    return " -> ".join((*cycle, cycle[0]))


def test_the_parser_sees_function_level_relative_and_typing_imports():
    source = """
from typing import TYPE_CHECKING
import torch
from . import fisher
from .starting_point import L2SP
from .. import models
from lautum.data import image_folders, DOMAINS
if TYPE_CHECKING:
    from lautum.train import Trainer
def f():
    import lautum.experiments.l2sp_paper as L
    from lautum.data.splits import make_transfer_split
"""
    got = _imports("lautum.regularizers.example", source)
    assert got == [("lautum.regularizers.fisher", False), ("lautum.regularizers.starting_point", False),
                   ("lautum.models", False), ("lautum.data.image_folders", False), ("lautum.data", False),
                   ("lautum.data", False), ("lautum.train", True), ("lautum.experiments.l2sp_paper", False),
                   ("lautum.experiments", False), ("lautum.data.splits", False), ("lautum.data", False)]
    # On the real tree.
    regularizers = dict(_imports("lautum.regularizers"))
    assert "lautum.regularizers.starting_point" in regularizers  # from .starting_point import ...
    assert "lautum.kernels" in dict(_imports("lautum"))  # from lautum import kernels as _kernels
    assert len(MODULES) > 30 and "lautum.experiments.l2sp_paper" in MODULES


def test_no_import_cycle_between_lautum_modules():
    new = _cycles()
    assert not new, "import cycles in lautum/ (every import counts, function-level ones too):\n" + "\n".join(
        _arrows(c) for c in new)


def _importers_of(layer: str) -> dict[str, set[str]]:
    graph = _graph(include_typing=True)
    return {m: {t for t in targets if _within(t, layer)} for m, targets in graph.items()
            if any(_within(t, layer) for t in targets)}


def _experiment_importers() -> dict[str, set[str]]:
    return {m: t for m, t in _importers_of("lautum.experiments").items()
            if not any(_within(m, ok) or m.startswith("lautum.bench") for ok in MAY_IMPORT_EXPERIMENTS)}


def test_only_the_front_ends_import_the_experiments():
    offenders = _experiment_importers()
    assert not offenders, f"modules below the experiments import them: {offenders}"


@pytest.mark.parametrize("lower,upper", [("lautum.regularizers", "lautum.experiments"),
                                         ("lautum.models", "lautum.experiments"),
                                         ("lautum.models", "lautum.regularizers"),
                                         ("lautum.data", "lautum.experiments"),
                                         ("lautum.data", "lautum.regularizers")])
def test_lower_layers_do_not_import_upper_ones(lower, upper):
    offenders = {m: t for m, t in _importers_of(upper).items() if _within(m, lower)}
    assert not offenders, f"{lower} must not import {upper}: {offenders}"

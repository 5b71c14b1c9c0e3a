"""Which source files compute an experiment's runs, and their hash (the code a record names).

A record holds ``code_hash``: a hash of the files of the package that its
experiment's module imports, directly or not — every ``lautum`` import counts,
those inside functions too — less the modules that never compute a run (CLI,
notebook helpers, analysis, reports, benchmarks, ``lautum verify``). So a change to
the L2-SP experiment makes the L2-SP records stale, and not the Lautum ones; a
new experiment module makes no record stale.

The closure is found by reading the sources with :mod:`ast` (nothing is imported),
so the same hash can be computed from a git commit's files.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import lautum

__all__ = ["NOT_RUN_CODE", "is_run_code", "package_files", "module_closure", "code_hash"]

#: Files that never compute a run: editing them makes no record stale.
NOT_RUN_CODE = ("lautum/cli.py", "lautum/notebook.py", "lautum/chapter.py", "lautum/analysis.py",
                "lautum/verify.py", "lautum/bench/", "lautum/reports/", "lautum/executors.py", "lautum/status.py",
                "lautum/experiments/__init__.py")  # the registry: adding an experiment changes no run


def is_run_code(relpath: str) -> bool:
    """Whether the file at ``relpath`` (relative to the repository root) can compute a run.

    >>> is_run_code("lautum/train.py"), is_run_code("lautum/cli.py"), is_run_code("lautum/bench/sinkhorn.py")
    (True, False, False)
    """
    return (relpath.startswith("lautum/") and relpath.endswith(".py")
            and not any(relpath == p or (p.endswith("/") and relpath.startswith(p)) for p in NOT_RUN_CODE))


def package_files() -> dict[str, bytes]:
    """The installed package's ``.py`` files, by repository-relative path."""
    root = Path(lautum.__file__).resolve().parent.parent
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "lautum").rglob("*.py"))}


def _path_of(module: str, files: dict[str, bytes]) -> str | None:
    base = module.replace(".", "/")
    for rel in (f"{base}.py", f"{base}/__init__.py"):
        if rel in files:
            return rel
    return None


def _imported(module: str, rel: str, source: bytes, files: dict[str, bytes]) -> set[str]:
    package = module if rel.endswith("__init__.py") else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if _path_of(f"{base}.{a.name}", files))
    found = set()
    for name in out:
        if name == "lautum" or name.startswith("lautum."):
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # parents run first
    return {m for m in found if _path_of(m, files)}


def module_closure(module: str, files: dict[str, bytes]) -> list[str]:
    """The files ``module`` runs when imported: itself, its packages and every ``lautum`` module it imports.

    >>> files = {"lautum/__init__.py": b"", "lautum/a.py": b"def f():\\n    from lautum import b\\n",
    ...          "lautum/b.py": b"from .c import x\\n", "lautum/c.py": b"x = 1\\n", "lautum/d.py": b""}
    >>> module_closure("lautum.a", files)
    ['lautum/__init__.py', 'lautum/a.py', 'lautum/b.py', 'lautum/c.py']
    """
    parts = module.split(".")
    todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        rel = _path_of(name, files)
        if name in seen or rel is None:
            continue
        seen.add(name)
        todo.extend(_imported(name, rel, files[rel], files) - seen)
    return sorted(p for p in (_path_of(m, files) for m in seen) if p is not None)


def code_hash(module: str = "lautum", files: dict[str, bytes] | None = None, length: int = 12) -> str:
    """A short hash of the run code in ``module``'s import closure (see the module docstring).

    ``files`` maps repository-relative paths to contents (default: :func:`package_files`).

    >>> files = {"lautum/__init__.py": b"", "lautum/a.py": b"import lautum.cli\\n", "lautum/cli.py": b""}
    >>> code_hash("lautum.a", files) == code_hash("lautum.a", {**files, "lautum/cli.py": b"edited"})
    True
    >>> code_hash("lautum.a", files) == code_hash("lautum.a", {**files, "lautum/a.py": b"import lautum.cli  # edited"})
    False
    """
    files = package_files() if files is None else files
    h = hashlib.sha256()
    for rel in (f for f in module_closure(module, files) if is_run_code(f)):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()[:length]

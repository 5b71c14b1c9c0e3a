"""Rerun a chapter with other parameters (papermill), validating them first.

Every notebook's first code cell is tagged ``parameters`` and assigns literals
(``profile = "quick"``, ``seed = 0`` ...). :func:`rerun` reads those defaults,
checks each requested name and value type against them, and the profile against
the profiles the chapter offers (the ``sizes`` of its ``setup(...)`` call, whose
values also type the parameters that default to ``None``), and only then executes
the notebook with papermill into ``_build/reruns/`` — never over the source. A
notebook that fails raises :class:`NotebookFailed` naming the error and the copy
that holds the traceback.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat

__all__ = ["ParameterError", "NotebookFailed", "parameters_cell", "notebook_parameters", "chapter_profiles",
           "validate_parameters", "parse_cli_value", "rerun_path", "rerun"]


class ParameterError(ValueError):
    """A requested notebook parameter is unknown or has the wrong type."""


class NotebookFailed(RuntimeError):
    """A rerun notebook raised in one of its cells; the executed copy holds the traceback."""


def parameters_cell(nb: nbformat.NotebookNode, path: str | Path = "notebook"):
    """The first code cell, which must be tagged ``parameters``."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or "parameters" not in code[0].get("metadata", {}).get("tags", []):
        raise ParameterError(f"{path}: the first code cell is not tagged 'parameters', so it cannot be rerun "
                             "with other values; tag that cell 'parameters' in the notebook.")
    return code[0]


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """The defaults of the notebook's parameters cell, as Python values.

    Only literal assignments (``name = 1``, ``name = "x"``, ``name = None``) count.
    """
    path = Path(path)
    cell = parameters_cell(nbformat.read(path, as_version=4), path)
    params: dict[str, Any] = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                params[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                raise ParameterError(f"{path}: parameter {node.targets[0].id!r} is not a literal "
                                     "(the parameters cell may only assign literals)") from None
    return params


def chapter_profiles(path: str | Path) -> dict[str, dict[str, Any]] | None:
    """The profiles a chapter offers and their sizes, read from its ``setup(profile, ..., sizes=...)`` call.

    ``setup`` without ``sizes`` offers ``quick`` and ``full``; ``None`` if no cell calls ``setup``.
    """
    for cell in nbformat.read(Path(path), as_version=4).cells:
        if cell.cell_type != "code" or "setup(" not in cell.source:
            continue
        code = "\n".join(ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return None
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup":
                sizes = next((kw.value for kw in node.keywords if kw.arg == "sizes"), None)
                if sizes is None:
                    return {"quick": {}, "full": {}}
                try:
                    return ast.literal_eval(sizes)
                except ValueError:
                    return None
    return None


def _type_name(v: Any) -> str:
    return "None" if v is None else type(v).__name__


def validate_parameters(path: str | Path, values: dict[str, Any]) -> dict[str, Any]:
    """Check names and types of ``values`` against the notebook's parameters cell.

    An int is accepted where the default is a float; a default of ``None``
    accepts any literal; otherwise the type must match the default's.
    """
    defaults = notebook_parameters(path)
    profiles = chapter_profiles(path)
    problems = []
    profile = values.get("profile", defaults.get("profile"))
    if profiles is not None and "profile" in values and values["profile"] not in profiles:
        problems.append(f"profile {values['profile']!r} is not offered by this chapter (it has "
                        f"{', '.join(map(str, profiles))})")
    # A size that defaults to None ("the profile's value") is typed by the profile's value.
    sized = (profiles or {}).get(profile) or next(iter((profiles or {}).values()), {})
    for name, value in values.items():
        if name not in defaults:
            problems.append(f"unknown parameter {name!r}")
            continue
        default = defaults[name] if defaults[name] is not None else sized.get(name)
        if default is None or value is None:
            continue
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(default, bool) and isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float))
        else:
            ok = type(value) is type(default)
        if not ok:
            problems.append(f"parameter {name!r} expects {_type_name(default)} (default {default!r}), "
                            f"got {_type_name(value)} {value!r}")
    if problems:
        valid = ", ".join(f"{k} ({_type_name(v)}, default {v!r})" for k, v in defaults.items())
        raise ParameterError(f"{Path(path).name}: {'; '.join(problems)}. Nothing was executed. "
                             f"This notebook's parameters are: {valid}.")
    return values


def parse_cli_value(text: str) -> Any:
    """Parse a command-line value the way papermill's ``-p`` does (int, float, bool, None, else str).

    >>> [parse_cli_value(t) for t in ["3", "1e-3", "True", "none", "full"]]
    [3, 0.001, True, None, 'full']
    """
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def rerun_path(path: str | Path, values: dict[str, Any], output_dir: str | Path) -> Path:
    """``<output_dir>/<stem>[-name=value...].ipynb`` (file-safe)."""
    tag = "-".join(f"{k}={v}" for k, v in sorted(values.items()))
    tag = re.sub(r"[^A-Za-z0-9_.=+-]", "_", tag)
    return Path(output_dir) / (Path(path).stem + (f"-{tag}" if tag else "") + ".ipynb")


def rerun(path: str | Path, values: dict[str, Any] | None = None, *, output_dir: str | Path = "_build/reruns",
          timeout: int = 3600, progress: bool = True) -> Path:
    """Validate ``values`` and execute the notebook with papermill; return the output path.

    The notebook runs with its own folder as working directory (as in the book
    build); on failure papermill still writes the output, with the traceback.
    """
    import papermill

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give one notebook file, e.g. {path / 'NAME.ipynb'} "
                                f"({len(list(path.glob('*.ipynb')))} notebooks there)")
    if not path.exists():
        raise FileNotFoundError(f"no notebook at {path}")
    values = validate_parameters(path, dict(values or {}))
    out = rerun_path(path, values, output_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(path), str(out), parameters=values, kernel_name="python3",
                                   cwd=str(path.resolve().parent), execution_timeout=timeout,
                                   progress_bar=progress)
    except papermill.PapermillExecutionError as err:
        raise NotebookFailed(f"{path.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}; the "
                             f"executed copy with the traceback is {out}") from err
    return out

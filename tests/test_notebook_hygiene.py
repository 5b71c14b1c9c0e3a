"""Every chapter is committed clean, rerunnable and in the table of contents."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from lautum.notebook import notebook_parameters

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
REQUIRED_PARAMETERS = {"profile": "quick", "seed": int, "device": "auto", "data_dir": None, "results_dir": str}


def _toc_files():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    for cell in code:
        assert not cell.get("outputs"), f"stored outputs in cell: {cell.source[:60]!r}"
        assert cell.get("execution_count") is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_has_quick_cpu_defaults(path):
    params = notebook_parameters(path)
    for name, expected in REQUIRED_PARAMETERS.items():
        assert name in params, f"parameters cell lacks {name!r}"
        if isinstance(expected, type):
            assert isinstance(params[name], expected), f"{name} should be {expected.__name__}"
        else:
            assert params[name] == expected, f"{name} should default to {expected!r}"


def test_toc_lists_every_notebook_and_only_existing_files():
    files = _toc_files()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in files, f"{path.name} is not in _toc.yml"
    for f in files:
        assert list(REPO.glob(f + ".*")), f"_toc.yml lists {f}, which does not exist"

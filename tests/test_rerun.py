"""`lautum rerun`: parameters validated against the parameters cell before anything executes."""

from __future__ import annotations

import nbformat
import pytest

from lautum.cli import main
from lautum.notebook import ParameterError, notebook_parameters, rerun_path, validate_parameters


def _notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "quick"\nseed = 0\nlr = 0.1\ndata_dir = None\nfast = True')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "from pathlib import Path\n"
        "Path('ran.txt').write_text(f'{profile} {seed} {lr} {fast}')"
    )
    nb.cells = [nbformat.v4.new_markdown_cell("# toy"), params, body]
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, path)
    return path


def test_reads_defaults(tmp_path):
    assert notebook_parameters(_notebook(tmp_path)) == {
        "profile": "quick", "seed": 0, "lr": 0.1, "data_dir": None, "fast": True}


@pytest.mark.parametrize("values,match", [
    ({"no_such_param": 1}, "unknown parameter 'no_such_param'"),
    ({"seed": "three"}, "'seed' expects int"),
    ({"seed": 1.5}, "'seed' expects int"),
    ({"fast": 1}, "'fast' expects bool"),
])
def test_invalid_values_are_rejected(tmp_path, values, match):
    with pytest.raises(ParameterError, match=match):
        validate_parameters(_notebook(tmp_path), values)


def test_accepted_values(tmp_path):
    path = _notebook(tmp_path)
    values = {"lr": 1, "data_dir": "/data", "profile": "full", "seed": 3, "fast": False}
    out = validate_parameters(path, dict(values))
    # Returned as given, never cast: an int for a float default stays an int, and a
    # default of None (data_dir) accepts a string.
    assert out == values
    assert {k: type(v) for k, v in out.items()} == {
        "lr": int, "data_dir": str, "profile": str, "seed": int, "fast": bool}
    # None is accepted for any parameter, a float for a float default, and nothing at all.
    assert validate_parameters(path, {"lr": 0.5, "seed": None}) == {"lr": 0.5, "seed": None}
    assert type(validate_parameters(path, {"lr": 0.5})["lr"]) is float
    assert validate_parameters(path, {}) == {}


@pytest.mark.parametrize("args", [["-p", "no_such_param", "1"], ["-p", "seed", "abc"]])
def test_cli_rejects_and_executes_nothing(tmp_path, capsys, args):
    path = _notebook(tmp_path)
    out_dir = tmp_path / "reruns"
    code = main(["rerun", str(path), *args, "--output-dir", str(out_dir)])
    assert code != 0
    err = capsys.readouterr().err
    assert "Nothing was executed" in err and "seed (int, default 0)" in err
    assert not (tmp_path / "ran.txt").exists()
    assert not out_dir.exists()


def test_cli_rerun_executes_into_the_output_dir(tmp_path):
    path = _notebook(tmp_path)
    out_dir = tmp_path / "reruns"
    code = main(["rerun", str(path), "-p", "seed", "3", "--profile", "full", "--output-dir", str(out_dir)])
    assert code == 0
    out = rerun_path(path, {"seed": 3, "profile": "full"}, out_dir)
    assert out.exists()
    executed = nbformat.read(out, as_version=4)
    assert executed.metadata.papermill.parameters == {"seed": 3, "profile": "full"}
    # It ran in the notebook's own folder, with the new values.
    assert (tmp_path / "ran.txt").read_text() == "full 3 0.1 True"
    # The source notebook is untouched (no outputs written into it).
    src = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in src.cells if c.cell_type == "code")


def test_untagged_notebook_is_refused(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("seed = 0")]
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ParameterError, match="not tagged 'parameters'"):
        notebook_parameters(path)

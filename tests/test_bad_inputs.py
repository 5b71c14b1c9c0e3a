"""Bad inputs and faults, tried as a new user would: through the ``lautum`` command, in a subprocess.

Each case asserts the exit code (2: the input or the situation is wrong and the
message says what to do), that stderr is one line starting ``lautum`` and naming
the fault (a regex), and that nothing was written: no record, no temporary file,
no rerun copy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LAUTUM_DATA", ROOT.parent / "shared" / "data"))
needs_data = pytest.mark.skipif(not (DATA / "MNIST").is_dir(), reason="needs the offline data sets")

# The smallest real transfer-baseline sweep: one fine-tuning run of 2 steps.
TINY = ["run", "transfer-baseline", "--quiet", "--set", "seeds=0", "--set", "ks=5", "--set", "methods=fine-tune",
        "--set", "n_source_train=300", "--set", "source_epochs=1", "--set", "finetune_steps=2",
        "--set", "n_target_test=100"]
TINY_L2SP = ["run", "l2sp-paper", "--quiet", "--set", "seeds=0", "--set", "targets=usps", "--set", "methods=l2sp",
             "--set", "alphas=0.01", "--set", "n_source_train=300", "--set", "source_epochs=1",
             "--set", "finetune_steps=2", "--set", "n_target_test=100", "--set", "fisher_samples=20"]


def lautum(args, tmp_path, env=None, timeout=300):
    """Run ``lautum ARGS`` with results, cache and rerun copies under ``tmp_path``."""
    full_env = {**os.environ, "LAUTUM_DATA": str(DATA), "LAUTUM_CACHE": str(tmp_path / "cache"),
                "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", "lautum.cli", *args], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def written(folder: Path) -> list[str]:
    """Files under ``folder`` that a failed command must not leave: records, temporaries, rerun copies."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and (p.suffix in (".json", ".ipynb", ".tmp") or p.name.startswith(".tmp")))


def one_line_error(proc, pattern):
    # Progress bars of a notebook execution (papermill) are progress, not the message.
    lines = [ln for ln in proc.stderr.strip().splitlines()
             if ln.strip() and not ln.startswith(("Executing:", "[IPKernelApp]"))]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert lines[0].startswith("lautum"), lines[0]
    assert "Traceback" not in proc.stderr
    import re

    assert re.search(pattern, lines[0], re.I), f"{pattern!r} not in {lines[0]!r}"


def _corrupt_copy(tmp_path: Path, rel: str, offset: int) -> Path:
    """A copy of the data root (links) in which ``rel`` has one byte changed, same size."""
    root = tmp_path / "data"
    root.mkdir()
    top = rel.split("/")[0]
    for item in DATA.iterdir():
        if item.name != top:
            (root / item.name).symlink_to(item.resolve())
    src = DATA / rel
    shutil.copytree((DATA / top).resolve(), root / top)
    dst = root / rel
    dst.unlink()
    data = bytearray(src.read_bytes())
    data[offset] = (data[offset] + 1) % 256
    dst.write_bytes(bytes(data))
    return root


def _file(tmp_path, name="a-file"):
    p = tmp_path / name
    p.write_text("not a folder\n")
    return p


# (id, argv, expected stderr pattern); argv may use {tmp}.
CASES = [
    # the command line itself
    ("no-command", [], r"command"),
    ("unknown-command", ["nosuch"], r"nosuch"),
    ("bad-kernels", ["--kernels", "sse", "env"], r"kernels"),
    ("unknown-experiment", ["run", "nosuch"], r"nosuch.*transfer-baseline"),
    ("unknown-profile", ["run", "transfer-baseline", "--profile", "bogus"], r"profile.*bogus"),
    ("unknown-setting", ["run", "transfer-baseline", "--set", "nosuch=1"], r"nosuch"),
    ("set-without-equals", ["run", "transfer-baseline", "--set", "noequals"], r"KEY=VALUE.*noequals"),
    ("set-wrong-type", ["run", "transfer-baseline", "--set", "ks=abc"], r"ks"),
    ("empty-seeds", ["run", "transfer-baseline", "--set", "seeds="], r"seeds.*empty"),
    ("empty-methods", ["run", "transfer-baseline", "--set", "methods="], r"methods.*empty"),
    ("k-zero", ["run", "transfer-baseline", "--set", "ks=0"], r"ks.*0"),
    ("k-negative", ["run", "transfer-baseline", "--set", "ks=-3"], r"ks.*-3"),
    ("steps-zero", ["run", "transfer-baseline", "--set", "finetune_steps=0"], r"finetune_steps"),
    ("epochs-negative", ["run", "transfer-baseline", "--set", "source_epochs=-1"], r"source_epochs"),
    ("batch-zero", ["run", "transfer-baseline", "--set", "finetune_batch_size=0"], r"finetune_batch_size"),
    ("lr-negative", ["run", "transfer-baseline", "--set", "finetune_lr=-0.1"], r"finetune_lr"),
    ("lr-nan", ["run", "transfer-baseline", "--set", "finetune_lr=nan"], r"finetune_lr"),
    ("seed-negative", ["run", "transfer-baseline", "--set", "seeds=-1"], r"seeds"),
    ("threads-negative", ["run", "transfer-baseline", "--set", "threads=-2"], r"threads"),
    ("n-source-zero", ["run", "transfer-baseline", "--set", "n_source_train=0"], r"n_source_train"),
    ("unknown-method", ["run", "transfer-baseline", "--set", "methods=nosuch"], r"nosuch"),
    ("unknown-target", ["run", "transfer-baseline", "--set", "target=nosuch"], r"target.*nosuch.*usps"),
    ("unknown-source", ["run", "l2sp-paper", "--set", "source=nosuch"], r"source.*nosuch"),
    ("unknown-target-l2sp", ["run", "l2sp-paper", "--set", "targets=usps,nosuch"], r"targets.*nosuch"),
    ("k-zero-l2sp", ["run", "l2sp-paper", "--set", "ks=0"], r"ks.*0"),
    ("alpha-negative", ["run", "l2sp-paper", "--set", "alphas=-1"], r"alphas"),
    ("ablation-bad-value", ["run", "lautum-paper", "--set", "ablations=noise_scale=abc"], r"noise_scale.*abc"),
    ("ablation-bad-key", ["run", "lautum-paper", "--set", "ablations=nosuch=1"], r"nosuch"),
    ("device-bogus", ["run", "transfer-baseline", "--set", "device=bogus"], r"device.*bogus"),
    ("stale-choice", ["run", "transfer-baseline", "--stale", "maybe"], r"stale"),
    # places to write
    ("results-dir-is-file", TINY + ["--results-dir", "{tmp}/a-file"], r"cannot write records under .*a-file"),
    ("results-dir-under-file", TINY + ["--results-dir", "{tmp}/a-file/results"], r"cannot write records under .*a-file"),
    ("data-dir-missing", TINY + ["--data-dir", "{tmp}/nowhere"], r"mnist.*lautum data fetch"),
    # rerun
    ("rerun-missing-notebook", ["rerun", "nosuch.ipynb"], r"nosuch.ipynb"),
    ("rerun-directory", ["rerun", "{root}/notebooks"], r"notebooks.*notebook file"),
    ("rerun-unknown-parameter", ["rerun", "{root}/notebooks/01-lautum-information.ipynb", "-p", "nosuch", "1"],
     r"nosuch"),
    ("rerun-wrong-type", ["rerun", "{root}/notebooks/01-lautum-information.ipynb", "-p", "seed", "abc"], r"seed"),
    ("rerun-size-wrong-type", ["rerun", "{root}/notebooks/01-lautum-information.ipynb", "-p", "n_mc", "many"],
     r"n_mc"),
    ("rerun-profile-not-offered", ["rerun", "{root}/notebooks/01-lautum-information.ipynb", "--profile", "medium"],
     r"medium.*quick"),
    # data, bench, verify, env
    ("fetch-no-name", ["data", "fetch"], r"name"),
    ("fetch-unknown", ["data", "fetch", "nosuch"], r"nosuch"),
    ("bench-unknown", ["bench", "nosuch"], r"nosuch"),
    ("verify-missing", ["verify", "{tmp}/nosuch.json"], r"nosuch.json"),
    ("verify-not-json", ["verify", "{tmp}/a-file"], r"a-file"),
    ("env-output-under-file", ["env", "--output", "{tmp}/a-file/env.md"], r"a-file"),
    ("env-device-bogus", ["env", "--device", "bogus"], r"bogus"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_early_in_one_line(case, tmp_path):
    _id, argv, pattern = case
    _file(tmp_path)
    argv = [a.format(tmp=tmp_path, root=ROOT) for a in argv]
    proc = lautum(argv + (["--results-dir", str(tmp_path / "results")] if argv[:1] == ["run"]
                          and "--results-dir" not in argv else []), tmp_path)
    assert proc.returncode == 2, proc.stderr
    one_line_error(proc, pattern)
    assert written(tmp_path) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only folders")
@pytest.mark.parametrize("which", ["results", "cache"])
def test_read_only_output_place_fails_before_any_run(which, tmp_path):
    place = tmp_path / which
    place.mkdir()
    place.chmod(0o500)
    try:
        proc = lautum(TINY + ["--results-dir", str(tmp_path / "results")], tmp_path,
                      env={"LAUTUM_CACHE": str(tmp_path / "cache")})
    finally:
        place.chmod(0o700)
    assert proc.returncode == 2
    one_line_error(proc, which)


def test_cache_under_a_file_fails_before_any_run(tmp_path):
    proc = lautum(TINY + ["--results-dir", str(tmp_path / "r")], tmp_path,
                  env={"LAUTUM_CACHE": str(_file(tmp_path) / "cache")})
    assert proc.returncode == 2
    one_line_error(proc, r"cannot write cached models under .*a-file.*LAUTUM_CACHE")
    assert written(tmp_path) == []


def test_cuda_asked_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = lautum(TINY + ["--set", "device=cuda", "--results-dir", str(tmp_path / "r")], tmp_path)
    assert proc.returncode == 2
    one_line_error(proc, r"cuda.*no CUDA")
    assert written(tmp_path) == []


@needs_data
@pytest.mark.parametrize("argv", [TINY + ["--set", "finetune_lr=1e10"], TINY_L2SP + ["--set", "finetune_lr=1e10"]],
                         ids=["transfer-baseline", "l2sp-paper"])
def test_divergence_writes_no_record(argv, tmp_path):
    proc = lautum(argv + ["--results-dir", str(tmp_path / "r")], tmp_path)
    assert proc.returncode == 2, proc.stderr
    one_line_error(proc, r"non-finite|became")
    assert written(tmp_path / "r") == []


@needs_data
def test_size_preserving_corruption_stops_before_training(tmp_path):
    # One byte of the MNIST test labels changed (past the header): the size is right, the md5 is not.
    root = _corrupt_copy(tmp_path, "MNIST/raw/t10k-labels-idx1-ubyte", 100)
    proc = lautum(TINY + ["--data-dir", str(root), "--results-dir", str(tmp_path / "r")], tmp_path)
    assert proc.returncode == 2
    one_line_error(proc, r"t10k-labels-idx1-ubyte.*md5 [0-9a-f]{32}.*expected.*[0-9a-f]{32}.*(delete|fetch|copy)")
    assert written(tmp_path / "r") == []


@needs_data
def test_corrupt_file_without_public_source_says_copy_not_fetch(tmp_path):
    root = _corrupt_copy(tmp_path, "usps-alt/usps.h5", 5000)
    proc = lautum(TINY + ["--data-dir", str(root), "--results-dir", str(tmp_path / "r")], tmp_path)
    assert proc.returncode == 2
    one_line_error(proc, r"usps.h5.*md5")
    assert "run `lautum data fetch" not in proc.stderr and "cannot repair" in proc.stderr


@needs_data
def test_data_list_says_corrupt_for_a_file_of_the_wrong_size(tmp_path):
    root = _corrupt_copy(tmp_path, "usps-alt/usps.h5", 0)
    (root / "usps-alt" / "usps.h5").write_bytes(b"short")
    proc = lautum(["data", "list", "--root", str(root)], tmp_path)
    line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith("usps"))
    assert "corrupt" in line and "missing" not in line.split("(")[0], line


def test_rerun_of_a_failing_notebook_is_one_line(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("raise RuntimeError('boom in cell two')")]
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, path)
    proc = lautum(["rerun", str(path), "--output-dir", str(tmp_path / "out")], tmp_path)
    assert proc.returncode == 2
    one_line_error(proc, r"failing.ipynb.*RuntimeError.*boom in cell two.*out")


def test_debug_shows_the_traceback(tmp_path):
    proc = lautum(["--debug", "run", "transfer-baseline", "--set", "ks=0"], tmp_path)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


@needs_data
def test_ctrl_c_says_what_finished_and_how_to_resume(tmp_path):
    argv = [a if a != "seeds=0" else "seeds=0,1,2,3,4,5" for a in TINY] + ["--results-dir", str(tmp_path / "r")]
    env = {**os.environ, "LAUTUM_DATA": str(DATA), "LAUTUM_CACHE": str(tmp_path / "cache")}
    # A job started in the background inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: give the child the default disposition, as a terminal would.
    proc = subprocess.Popen([sys.executable, "-m", "lautum.cli", *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    folder = tmp_path / "r" / "transfer-baseline" / "quick"
    deadline = time.time() + 240
    while time.time() < deadline and not list(folder.glob("*.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    done = len(list(folder.glob("*.json")))
    assert 1 <= done < 6
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and f"{done} of 6 runs finished" in lines[0] and "same command" in lines[0], err
    for p in folder.glob("*.json"):
        json.loads(p.read_text())  # every file there is a complete record

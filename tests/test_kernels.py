"""The AVX2 kernel pin: set by `import lautum`, recorded, and checked by `lautum verify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lautum import kernels

REPO = Path(__file__).resolve().parents[1]
AVX2 = kernels.host_cpu()["avx2"]
AVX512 = kernels.host_cpu()["avx512"]
TINY = ["--set", "ks=2", "--set", "seeds=0", "--set", "methods=fine-tune", "--set", "n_source_train=300",
        "--set", "n_target_test=200", "--set", "source_epochs=1", "--set", "finetune_steps=3", "--set", "width=8",
        "--set", "feature_dim=16", "--set", "device=cpu"]


def _env(**overrides) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*kernels.PIN_VARIABLES, kernels.ENV)}
    env.update(overrides)
    return env


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(**env), cwd=REPO,
                          timeout=120)


IN_EFFECT = "import json, lautum.kernels as k; print(json.dumps(k.in_effect()))"


@pytest.mark.skipif(not AVX2, reason="the host has no AVX2: nothing to pin")
def test_import_lautum_pins_avx2_in_a_fresh_process():
    out = _python("import lautum, torch, json, lautum.kernels as k; torch.ones(3).sum(); print(json.dumps(k.in_effect()))")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"kernels": "avx2", "cpu_capability": "AVX2", "onednn_max_cpu_isa": "AVX2",
                                      "mkl_cbwr": "COMPATIBLE"}


@pytest.mark.skipif(not AVX2, reason="the host has no AVX2: nothing to pin")
def test_import_lautum_after_torch_still_pins_if_no_op_ran():
    out = _python("import torch, lautum, json, lautum.kernels as k; print(json.dumps(k.in_effect()))")
    assert json.loads(out.stdout)["cpu_capability"] == "AVX2", out.stderr


@pytest.mark.skipif(not AVX512, reason="needs an AVX-512 host, where torch's own choice differs from AVX2")
def test_torch_that_already_ran_an_op_is_detected_and_explained():
    out = _python("import torch; torch.ones(3).sum(); " + IN_EFFECT.replace("import json,", "import json, lautum,"))
    assert json.loads(out.stdout)["cpu_capability"] == "AVX512"
    assert "KernelPinWarning" in out.stderr and "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2" in out.stderr


def test_native_mode_sets_nothing_and_says_so():
    out = _python(IN_EFFECT, LAUTUM_KERNELS="native")
    got = json.loads(out.stdout)
    assert got["kernels"] == "native" and got["onednn_max_cpu_isa"] == got["mkl_cbwr"] == "native"
    if AVX512:
        assert got["cpu_capability"] == "AVX512"


def test_an_explicit_user_setting_wins():
    out = _python(IN_EFFECT, ATEN_CPU_CAPABILITY="default")
    assert json.loads(out.stdout)["cpu_capability"] == "DEFAULT"


def test_an_unknown_mode_is_an_actionable_error():
    out = _python("import lautum", LAUTUM_KERNELS="avx9")
    assert out.returncode != 0 and "LAUTUM_KERNELS='avx9' is not a kernel mode; use one of avx2, native" in out.stderr


def _lautum(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lautum.cli", *args], capture_output=True, text=True,
                          env=_env(**env), cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def pinned_record(tmp_path_factory, ) -> Path:
    shared = Path(os.environ.get("LAUTUM_DATA", REPO.parent / "shared" / "data"))
    if not (shared / "MD5SUMS").exists():
        pytest.skip("offline data not found")
    tmp = tmp_path_factory.mktemp("pin")
    out = _lautum("run", "transfer-baseline", *TINY, "--results-dir", str(tmp), "--data-dir", str(shared), "--quiet",
                  LAUTUM_CACHE=str(tmp / "cache"))
    assert out.returncode == 0, out.stderr
    (path,) = tmp.rglob("fine-tune*.json")
    return path


@pytest.mark.skipif(not AVX2, reason="the host has no AVX2: nothing to pin")
def test_a_record_made_under_the_pin_records_it_and_verifies_exactly(pinned_record):
    prov = json.loads(pinned_record.read_text())["provenance"]
    assert (prov["kernels"], prov["cpu_capability"], prov["onednn_max_cpu_isa"], prov["mkl_cbwr"]) == (
        "avx2", "AVX2", "AVX2", "COMPATIBLE")
    assert prov["cpu"]["avx512"] == AVX512 and prov["code_hash"]
    out = _lautum("verify", "--exact", str(pinned_record))
    assert out.returncode == 0 and "comparing exact (bit for bit)" in out.stdout and "REPRODUCED" in out.stdout, out


@pytest.mark.parametrize("lift", [{"ATEN_CPU_CAPABILITY": "default"}, {"LAUTUM_KERNELS": "native"}],
                         ids=["capability-default", "native"])
def test_lifting_the_pin_is_detected_and_the_exact_setting_named(pinned_record, lift):
    if "LAUTUM_KERNELS" in lift and not AVX512:
        pytest.skip("native equals AVX2 on a host without AVX-512")
    out = _lautum("verify", str(pinned_record), **lift)
    assert "comparing within" in out.stdout, out.stdout
    assert "not bit-comparable: cpu_capability is" in out.stdout
    assert "For an exact check, run with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=COMPATIBLE" in out.stdout
    strict = _lautum("verify", "--exact", str(pinned_record), **lift)
    assert strict.returncode == 1 and "an exact check was required (--exact)" in strict.stdout

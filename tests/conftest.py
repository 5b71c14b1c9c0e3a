"""Shared fixtures: every test is seeded, and device/dtype grids cover CUDA when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from lautum.device import seed_everything

REPO = Path(__file__).resolve().parents[1]
# The offline copies of the real data sets (beside the checkout on every dev/CI machine).
SHARED_DATA = Path(os.environ.get("LAUTUM_DATA", REPO.parent / "shared" / "data"))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


@pytest.fixture(autouse=True)
def _seed_every_test():
    seed_everything(0)


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def shared_data() -> Path:
    """The offline data root; tests that need real data skip only if it is absent."""
    if not (SHARED_DATA / "MD5SUMS").exists():
        pytest.skip(f"offline data not found at {SHARED_DATA}")
    return SHARED_DATA

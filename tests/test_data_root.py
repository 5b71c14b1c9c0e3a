"""Data root and cache dir resolution: explicit argument > environment > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from lautum.data import resolve_cache_dir, resolve_data_root
from lautum.data.root import explain_data_root


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("LAUTUM_DATA", raising=False)
    monkeypatch.delenv("LAUTUM_CACHE", raising=False)
    return monkeypatch


def test_default_root_is_under_home(clean_env):
    assert resolve_data_root() == Path.home() / ".cache" / "lautum" / "data"
    assert explain_data_root().source == "default"


def test_env_beats_default(clean_env, tmp_path):
    clean_env.setenv("LAUTUM_DATA", str(tmp_path / "env"))
    assert resolve_data_root() == tmp_path / "env"
    assert explain_data_root().source == "$LAUTUM_DATA"


def test_explicit_beats_env(clean_env, tmp_path):
    clean_env.setenv("LAUTUM_DATA", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    choice = explain_data_root(str(tmp_path / "arg"))
    assert choice.source == "root= argument"
    # Every rule is listed with its value, for error messages.
    text = choice.describe()
    assert str(tmp_path / "arg") in text and str(tmp_path / "env") in text and "~/.cache/lautum/data" in text


def test_empty_env_counts_as_unset(clean_env):
    clean_env.setenv("LAUTUM_DATA", "")
    assert explain_data_root().source == "default"


def test_relative_and_tilde_paths_are_made_absolute(clean_env, tmp_path):
    clean_env.chdir(tmp_path)
    assert resolve_data_root("rel") == tmp_path / "rel"
    assert resolve_data_root("~/x") == Path.home() / "x"


def test_cache_dir_order(clean_env, tmp_path):
    assert resolve_cache_dir() == Path.home() / ".cache" / "lautum"
    clean_env.setenv("LAUTUM_CACHE", str(tmp_path / "c"))
    assert resolve_cache_dir() == tmp_path / "c"
    assert resolve_cache_dir(tmp_path / "d") == tmp_path / "d"


def test_nothing_is_created(clean_env, tmp_path):
    resolve_data_root(tmp_path / "absent")
    resolve_cache_dir(tmp_path / "absent2")
    assert list(tmp_path.iterdir()) == []

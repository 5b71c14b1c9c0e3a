"""Experiment configurations: profiles, overrides, and errors before anything runs."""

from __future__ import annotations

import pytest

from lautum.experiments import get_experiment
from lautum.experiments.config import ConfigError

tb = get_experiment("transfer-baseline")


def test_profiles_and_overrides():
    cfg = tb.make_config("medium", seeds="0,1", finetune_lr="0.1")
    assert cfg.profile == "medium" and cfg.seeds == (0, 1) and cfg.finetune_lr == 0.1
    assert cfg.n_source_train is None  # from the medium preset
    assert tb.make_config("quick", n_source_train="none").n_source_train is None


@pytest.mark.parametrize("kw,match", [({"no_such": 1}, "unknown setting 'no_such'"),
                                      ({"ks": "a,b"}, "ks"),
                                      ({"finetune_steps": 1.5}, "wrong type")])
def test_bad_settings_are_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        tb.make_config("quick", **kw)


def test_unknown_profile_and_method():
    with pytest.raises(ConfigError, match="unknown profile"):
        tb.make_config("huge")
    with pytest.raises(ValueError, match="unknown method"):
        tb.make_config("quick", methods=("magic",))


def test_unknown_experiment():
    with pytest.raises(KeyError, match="known experiments"):
        get_experiment("nope")


def test_specs_grid():
    cfg = tb.make_config("quick", seeds=(0, 1), ks=(5, 20))
    specs = tb.specs(cfg)
    # per seed: target-only ×2 k, source-only ×1, fine-tune ×2 k
    assert len(specs) == 2 * 5
    assert len({s.record_path("r") for s in specs}) == len(specs)
    # The device does not change what a run computes, so it does not change the record's name.
    assert tb.specs(tb.make_config("quick", seeds=(0, 1), ks=(5, 20), device="cpu")) == specs

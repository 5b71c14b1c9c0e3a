"""The trainer: learning happens, CPU runs are bit-identical, resume is exact, divergence is named."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lautum.models import small_cnn
from lautum.train import DivergenceError, Term, TrainConfig, Trainer


def _blobs(n=256, seed=0):
    """A tiny real classification problem: 4 classes of noisy prototype images.

    The prototypes are the same for every ``seed``; only the samples differ.
    """
    protos = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1234))
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = protos[y] + 0.3 * torch.randn(n, 1, 28, 28, generator=g)
    return x, y


def _trainer(epochs=3, checkpoint=None, terms=None, **kw):
    torch.manual_seed(0)
    model = small_cnn(4, width=8, feature_dim=16)
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=0.05, device="cpu", progress=False, **kw)
    return Trainer(model, cfg, terms=terms, checkpoint=checkpoint)


def test_loss_decreases_and_accuracy_rises():
    x, y = _blobs()
    xt, yt = _blobs(128, seed=1)
    t = _trainer(epochs=4)
    hist = t.fit({"source": (x, y)}, eval_sets={"test": (xt, yt)})
    first = sum(r["loss"] for r in hist.steps[:4]) / 4
    last = sum(r["loss"] for r in hist.steps[-4:]) / 4
    assert last < 0.5 * first
    assert hist.final("acc/test") > 0.9


def test_two_cpu_runs_are_bit_identical():
    x, y = _blobs()
    h1 = _trainer().fit((x, y)).steps
    h2 = _trainer().fit((x, y)).steps
    assert h1 == h2


def test_resume_continues_exactly(tmp_path):
    x, y = _blobs()
    straight = _trainer(epochs=4)
    straight.fit((x, y))
    ckpt = tmp_path / "ckpt.pt"
    _trainer(epochs=2, checkpoint=ckpt).fit((x, y))
    assert ckpt.exists()
    resumed = _trainer(epochs=4, checkpoint=ckpt)
    hist = resumed.fit((x, y))
    assert hist.steps == straight.history.steps
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


class _Exploding(nn.Module):
    def forward(self, z):
        return z.sum() * float("inf")


def test_divergence_names_the_term():
    x, y = _blobs(64)
    term = Term("boom", _Exploding(), inputs=lambda c: (c.features["labeled"],), weight=1.0)
    with pytest.raises(DivergenceError, match="'boom'"):
        _trainer(epochs=1, terms=[term]).fit((x, y))


class _FeatureNorm(nn.Module):
    def forward(self, z):
        return z.pow(2).mean()


def test_terms_are_logged_separately_with_weights_and_read_unlabeled_data():
    x, y = _blobs(64)
    xu, _ = _blobs(96, seed=2)
    term = Term("norm_u", _FeatureNorm(), inputs=lambda c: (c.features_unlabeled,), weight=lambda s: 0.1 * s)
    hist = _trainer(epochs=1, terms=[term]).fit((x, y), unlabeled=xu)
    assert [r["weight/norm_u"] for r in hist.steps] == [0.0, 0.1]
    assert all("norm_u" in r and "ce/labeled" in r for r in hist.steps)
    # The total is CE + weight·term.
    r = hist.steps[1]
    assert r["loss"] == pytest.approx(r["ce/labeled"] + 0.1 * r["norm_u"], rel=1e-5)


def test_unlabeled_term_without_unlabeled_data_is_an_error():
    x, y = _blobs(64)
    term = Term("norm_u", _FeatureNorm(), inputs=lambda c: (c.features_unlabeled,))
    with pytest.raises(ValueError, match="unlabeled"):
        _trainer(epochs=1, terms=[term]).fit((x, y))


# 64 samples, batch 32, 2 epochs: 4 steps; the last step (s = 3) is after the milestone.
@pytest.mark.parametrize("schedule,expected_last", [("step", 0.05 * 0.1),
                                                    ("cosine", 0.05 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))])
def test_schedules(schedule, expected_last):
    x, y = _blobs(64)
    hist = _trainer(epochs=2, schedule=schedule, milestones=(1,)).fit((x, y))
    lrs = [r["lr"] for r in hist.steps]
    assert lrs[0] == pytest.approx(0.05)
    assert lrs[-1] == pytest.approx(expected_last, rel=1e-9)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")


def test_trainer_follows_the_device(device):
    x, y = _blobs(64)
    model = small_cnn(4, width=8, feature_dim=16)
    t = Trainer(model, TrainConfig(epochs=1, batch_size=32, device=str(device), progress=False))
    t.fit((x, y))
    assert next(t.model.parameters()).device.type == device.type

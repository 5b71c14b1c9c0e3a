"""The trainer: learning happens, CPU runs are bit-identical, resume is exact, divergence is named."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lautum.models import small_cnn
from lautum.train import DivergenceError, Term, TrainConfig, Trainer, evaluate


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


# --------------------------------------------------------------------------- batch sources and step budgets


class _SameOrderSampler(torch.utils.data.Sampler):
    """Yields, epoch after epoch, the index batches the tensor path draws for the first labeled set
    (the permutation of ``torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7)``)."""

    def __init__(self, n, batch_size, seed=0):
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0

    def __len__(self):
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 7)
        perm = torch.randperm(self.n, generator=g)
        self.epoch += 1
        for i in range(0, self.n, self.batch_size):
            yield perm[i : i + self.batch_size].tolist()


def _loader(x, y, batch_size=32):
    return DataLoader(TensorDataset(x, y), batch_sampler=_SameOrderSampler(len(x), batch_size))


def _same_model(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_a_loader_with_the_same_batches_trains_exactly_as_the_tensors():
    x, y = _blobs(80)  # 3 batches per epoch, the last one short
    xt, yt = _blobs(40, seed=1)
    kw = dict(epochs=3, schedule="step", milestones=(2,), terms=[Term("norm", _FeatureNorm(),
                                                                      inputs=lambda c: (c.features["labeled"],),
                                                                      weight=0.01)])
    by_tensors = _trainer(**kw)
    h1 = by_tensors.fit((x, y), eval_sets={"test": (xt, yt)})
    kw["terms"] = [Term("norm", _FeatureNorm(), inputs=lambda c: (c.features["labeled"],), weight=0.01)]
    by_loader = _trainer(**kw)
    h2 = by_loader.fit(_loader(x, y), eval_sets={"test": TensorDataset(xt, yt)})
    assert len(h1.steps) == 9 and h1.steps == h2.steps and h1.evals == h2.evals
    assert _same_model(by_tensors.model, by_loader.model)


def test_step_budget_is_honoured_and_cycles_through_epochs():
    x, y = _blobs(64)  # 2 batches per epoch
    for data in ((x, y), _loader(x, y)):
        hist = _trainer(epochs=100, steps=5).fit(data)
        assert [r["step"] for r in hist.steps] == [0, 1, 2, 3, 4]
        assert [r["epoch"] for r in hist.steps] == [0, 0, 1, 1, 2]
        assert hist.evals[-1]["step"] == 5
    # A budget of whole epochs is the epochs run, bit for bit.
    by_epochs, by_steps = _trainer(epochs=2), _trainer(epochs=7, steps=4)
    assert by_epochs.fit((x, y)).steps == by_steps.fit((x, y)).steps
    assert _same_model(by_epochs.model, by_steps.model)


def test_step_milestones_count_optimizer_steps():
    x, y = _blobs(64)
    hist = _trainer(steps=5, schedule="step", milestones=(3,), milestone_unit="step").fit(_loader(x, y))
    assert [r["lr"] for r in hist.steps] == pytest.approx([0.05, 0.05, 0.05, 0.005, 0.005], rel=1e-12)
    with pytest.raises(ValueError, match="milestone_unit"):
        TrainConfig(milestone_unit="iteration")


def test_a_plain_iterable_of_batches_needs_no_length():
    x, y = _blobs(64)

    class Batches:  # re-iterable, no __len__
        def __iter__(self):
            return iter([(x[:32], y[:32]), (x[32:], y[32:])])

    hist = _trainer(steps=3).fit(Batches())
    assert len(hist.steps) == 3
    with pytest.raises(ValueError, match="no len"):
        _trainer(epochs=1, schedule="cosine").fit(Batches())
    with pytest.raises(ValueError, match="not a mix"):
        _trainer(epochs=1).fit({"a": (x, y), "b": Batches()})


def test_loader_batches_follow_the_device_and_keep_their_dtype(device):
    x, y = _blobs(64)
    model = small_cnn(4, width=8, feature_dim=16).double()
    t = Trainer(model, TrainConfig(steps=3, batch_size=32, device=str(device), progress=False))
    hist = t.fit(DataLoader(TensorDataset(x.double(), y), batch_size=32))
    p = next(t.model.parameters())
    assert p.device.type == device.type and p.dtype == torch.float64
    assert len(hist.steps) == 3 and all(math.isfinite(r["loss"]) for r in hist.steps)
    m = evaluate(t.model, TensorDataset(x.double(), y), batch_size=20)
    assert m == evaluate(t.model, x.double().to(device), y.to(device), batch_size=20)
    assert m == evaluate(t.model, DataLoader(TensorDataset(x.double(), y), batch_size=20))


# --------------------------------------------------------------------------- what counts as a divergence


def test_a_monitor_at_weight_zero_may_be_non_finite():
    x, y = _blobs(64)
    monitor = Term("monitor", _Exploding(), inputs=lambda c: (c.features["labeled"],), weight=0.0)
    hist = _trainer(epochs=1, terms=[monitor]).fit((x, y))
    assert len(hist.steps) == 2
    assert all(not math.isfinite(r["monitor"]) and math.isfinite(r["loss"]) for r in hist.steps)
    # A ramp at 0 on step 0 is a monitor there; from step 1 on the term counts and its divergence is named.
    ramp = Term("ramp", _Exploding(), inputs=lambda c: (c.features["labeled"],), weight=lambda s: float(s >= 1))
    with pytest.raises(DivergenceError, match="'ramp' became .* at step 1"):
        _trainer(epochs=1, terms=[ramp]).fit((x, y))


def test_a_divergence_in_the_last_step_is_caught(tmp_path):
    x, y = _blobs(32)
    ckpt = tmp_path / "ckpt.pt"
    # One step: its loss is finite, the update sends the weights to inf; no later step would notice.
    cfg = TrainConfig(epochs=1, batch_size=32, lr=float("inf"), device="cpu", progress=False)
    trainer = Trainer(small_cnn(4, width=8, feature_dim=16), cfg, checkpoint=ckpt)
    with pytest.raises(DivergenceError, match="last optimizer step, step 0"):
        trainer.fit((x, y))
    assert math.isfinite(trainer.history.steps[0]["loss"])
    assert not ckpt.exists()  # no state written from a diverged run


def test_evaluate_refuses_non_finite_outputs():
    net = small_cnn(3, width=4, feature_dim=8)
    with torch.no_grad():
        net.head.weight.fill_(float("inf"))
    with pytest.raises(DivergenceError, match="non-finite"):
        evaluate(net, torch.rand(6, 1, 28, 28), torch.randint(0, 3, (6,)))

"""Temporal Ensembling: hand-computed targets, masking, state round-trips, ramp-up."""

from __future__ import annotations

import io
import math

import pytest
import torch

from lautum.models import small_cnn
from lautum.regularizers.consistency import TemporalEnsembling, rampup_weight
from lautum.train import Term, TrainConfig, Trainer

P1 = [0.5, 0.25, 0.25]
P2 = [0.2, 0.3, 0.5]
P3 = [0.1, 0.8, 0.1]


def _logits(*rows, dtype=torch.float64):
    return torch.log(torch.tensor(rows, dtype=dtype))  # softmax(log p) = p


def _te(dtype=torch.float64, n=3):
    return TemporalEnsembling(n, 3, momentum=0.6).to(dtype)


def test_three_visits_by_hand():
    te = _te()
    # visit 1 of sample 0: no target yet
    assert te(_logits(P1), torch.tensor([0])).item() == 0.0
    assert torch.allclose(te.ensemble[0], 0.4 * torch.tensor(P1, dtype=torch.float64))
    # visit 2 of sample 0 (target Z/(1-0.6) = p1) with the first visit of sample 2 (masked)
    loss2 = te(_logits(P2, P3), torch.tensor([0, 2]))
    assert loss2.item() == pytest.approx((0.09 + 0.0025 + 0.0625) / 6, rel=1e-12)
    # visit 3 of sample 0: Z = 0.24 p1 + 0.4 p2, target Z / (1 - 0.36) = (0.3125, 0.28125, 0.40625)
    z = te.targets(torch.tensor([0]))[0][0]
    assert torch.allclose(z, torch.tensor([0.3125, 0.28125, 0.40625], dtype=torch.float64), rtol=1e-12)
    loss3 = te(_logits(P3), torch.tensor([0]))
    expected = ((0.1 - 0.3125) ** 2 + (0.8 - 0.28125) ** 2 + (0.1 - 0.40625) ** 2) / 3
    assert loss3.item() == pytest.approx(expected, rel=1e-12)
    assert te.visits.tolist() == [3, 0, 1]
    # after 3 visits: Z = 0.6 (0.24 p1 + 0.4 p2) + 0.4 p3
    z3 = 0.144 * torch.tensor(P1, dtype=torch.float64) + 0.24 * torch.tensor(P2, dtype=torch.float64) \
        + 0.4 * torch.tensor(P3, dtype=torch.float64)
    assert torch.allclose(te.ensemble[0], z3, rtol=1e-12)
    assert torch.equal(te.ensemble[1], torch.zeros(3, dtype=torch.float64))


def test_zero_loss_and_zero_gradient_before_any_target():
    te = _te()
    logits = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    loss = te(logits, torch.tensor([2, 0, 1]))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


def test_gradient_flows_to_logits_not_to_the_target():
    te = _te()
    te(_logits(P1), torch.tensor([1]))
    logits = _logits(P2).requires_grad_(True)
    te(logits, torch.tensor([1])).backward()
    p = torch.softmax(logits.detach(), 1)
    target = torch.tensor([P1], dtype=torch.float64)
    # d/dz mean((p - t)^2) with t constant: J_softmax^T 2 (p - t) / C
    g = 2 * (p - target) / 3
    expected = p * (g - (g * p).sum(1, keepdim=True))
    assert torch.allclose(logits.grad, expected, rtol=1e-10)


def test_state_dict_round_trip_continues_identically():
    a = _te(torch.float32, n=5)
    for step in range(3):
        a(torch.randn(4, 3), torch.tensor([step, step + 1, 4, 0]) % 5 if step else torch.tensor([0, 1, 2, 3]))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = TemporalEnsembling(5, 3)
    b.load_state_dict(torch.load(buf))
    assert set(a.state_dict()) == {"ensemble", "visits"}
    logits, idx = torch.randn(5, 3), torch.tensor([4, 3, 2, 1, 0])
    assert torch.equal(a(logits, idx), b(logits, idx))
    assert torch.equal(a.ensemble, b.ensemble) and torch.equal(a.visits, b.visits)


def test_buffers_follow_to(device, dtype):
    te = TemporalEnsembling(4, 3).to(device=device, dtype=dtype)
    assert te.ensemble.dtype == dtype and te.ensemble.device.type == device.type
    assert te.visits.dtype == torch.long
    loss = te(torch.randn(2, 3, device=device, dtype=dtype), torch.tensor([0, 3], device=device))
    loss = te(torch.randn(2, 3, device=device, dtype=dtype), torch.tensor([0, 3], device=device))
    assert loss.dtype == dtype and loss.device.type == device.type and loss > 0


def test_half_precision_logits_give_float32_loss():
    te = TemporalEnsembling(2, 3)
    te(torch.randn(2, 3).bfloat16(), torch.tensor([0, 1]))
    assert te(torch.randn(2, 3).bfloat16(), torch.tensor([0, 1])).dtype == torch.float32


def test_bad_inputs():
    te = TemporalEnsembling(3, 2)
    with pytest.raises(ValueError, match="repeated"):
        te(torch.randn(2, 2), torch.tensor([1, 1]))
    with pytest.raises(IndexError):
        te(torch.randn(1, 2), torch.tensor([3]))
    with pytest.raises(ValueError):
        te(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(TypeError):
        te(torch.randn(2, 2), torch.tensor([0.0, 1.0]))
    for kw in ({"momentum": 1.0}, {"momentum": -0.1}):
        with pytest.raises(ValueError):
            TemporalEnsembling(3, 2, **kw)
    with pytest.raises(ValueError):
        TemporalEnsembling(0, 2)


def test_rampup_values():
    assert rampup_weight(0, 80, 30.0) == pytest.approx(30.0 * math.exp(-5.0), rel=1e-15)
    assert rampup_weight(40, 80, 30.0) == pytest.approx(30.0 * math.exp(-1.25), rel=1e-15)
    assert rampup_weight(80, 80, 30.0) == 30.0
    assert rampup_weight(1000, 80, 30.0) == 30.0
    assert rampup_weight(-5, 80, 1.0) == rampup_weight(0, 80, 1.0)
    assert rampup_weight(3, 0, 2.0) == 2.0
    ws = [rampup_weight(s, 10, 1.0) for s in range(12)]
    assert ws == sorted(ws)


def test_trainer_resume_restores_the_ensemble(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 1, 28, 28, generator=g), torch.randint(0, 3, (32,), generator=g)
    xu = torch.rand(32, 1, 28, 28, generator=g)

    def trainer(epochs, ckpt=None):
        torch.manual_seed(0)
        te = TemporalEnsembling(len(xu), 3)
        term = Term("te", te, lambda c: (c.logits_unlabeled, c.idx_unlabeled), 1.0)
        cfg = TrainConfig(epochs=epochs, batch_size=16, device="cpu", progress=False)
        return Trainer(small_cnn(3, width=4, feature_dim=8), cfg, terms=[term], checkpoint=ckpt), te

    straight, te_straight = trainer(3)
    h_straight = straight.fit((x, y), unlabeled=xu).steps
    ckpt = tmp_path / "ckpt.pt"
    trainer(1, ckpt)[0].fit((x, y), unlabeled=xu)
    resumed, te_resumed = trainer(3, ckpt)
    h_resumed = resumed.fit((x, y), unlabeled=xu).steps
    assert h_resumed == h_straight
    assert torch.equal(te_resumed.ensemble, te_straight.ensemble)
    assert te_straight.visits.tolist() == [3] * 32 and h_straight[-1]["te"] > 0

"""attnlab.train: the schedule, the loop, evaluation, checkpoints and the loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.train import (
    History,
    TrainConfig,
    fit,
    load_checkpoint,
    lr_at,
    save_checkpoint,
    sequence_loss,
)


def linear_problem():
    x = torch.linspace(-1, 1, 32)[:, None]
    return x, 2 * x - 1


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    c = TrainConfig(steps=200, lr=1e-2, warmup=20, min_lr_ratio=0.1)
    lrs = [lr_at(s, c) for s in range(200)]
    assert lrs[0] == pytest.approx(5e-4) and lrs[19] == pytest.approx(1e-2)
    assert all(a <= b for a, b in zip(lrs[:20], lrs[1:21]))
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:]))
    assert lr_at(200, c) == pytest.approx(1e-3)


def test_fit_learns_evaluates_and_checkpoints(tmp_path, capsys):
    x, y = linear_problem()
    model = torch.nn.Linear(1, 1)
    calls = []

    def eval_fn(m):
        calls.append(m.training)
        return {"mse": F.mse_loss(m(x), y)}

    history = fit(model, lambda step, g: (x, y), lambda m, b: F.mse_loss(m(b[0]), b[1]),
                  TrainConfig(steps=200, lr=0.1, warmup=5, eval_every=50, device="cpu",
                              weight_decay=0.0, checkpoint=str(tmp_path / "ck.pt")), eval_fn)
    assert isinstance(history, History)
    assert history.eval_steps == [50, 100, 150, 200] and calls == [False] * 4
    assert history.last["mse"] < 1e-4 < history.loss[0]
    assert history.steps[0] == 0 and history.steps[-1] == 199
    assert capsys.readouterr().err == ""  # no progress bar when stderr is not a terminal
    other = torch.nn.Linear(1, 1)
    assert load_checkpoint(tmp_path / "ck.pt", other) == 200
    torch.testing.assert_close(other.weight, model.weight)


def test_fit_batches_are_seeded():
    def run():
        model = torch.nn.Linear(1, 1)
        torch.nn.init.zeros_(model.weight)
        torch.nn.init.zeros_(model.bias)
        seen = []
        def batch_fn(step, g):
            i = torch.randint(0, 32, (4,), generator=g)
            seen.append(i)
            x, y = linear_problem()
            return x[i], y[i]
        fit(model, batch_fn, lambda m, b: F.mse_loss(m(b[0]), b[1]),
            TrainConfig(steps=5, device="cpu", seed=3))
        return torch.stack(seen), model.weight.detach().clone()
    (a, wa), (b, wb) = run(), run()
    assert torch.equal(a, b) and torch.equal(wa, wb)


def test_fit_stops_on_a_non_finite_loss():
    model = torch.nn.Linear(1, 1)
    with pytest.raises(FloatingPointError, match="the loss is nan at step 0"):
        fit(model, lambda s, g: torch.ones(1, 1), lambda m, b: m(b).sum() * float("nan"),
            TrainConfig(steps=3, device="cpu"))


def test_fit_checks_the_loss_every_n_steps_only(monkeypatch):
    # Reading the loss waits for the device: fit checks it at steps 0, n, 2n, ... and the last.
    checked = []
    real = torch.isfinite

    def counting(t):
        checked.append(t.numel())
        return real(t)

    monkeypatch.setattr(torch, "isfinite", counting)
    x, y = linear_problem()
    fit(torch.nn.Linear(1, 1), lambda s, g: (x, y),
        lambda m, b: F.mse_loss(m(b[0]), b[1]), TrainConfig(steps=25, check_every=10,
                                                             device="cpu"))
    assert len(checked) == 4  # steps 0, 10, 20 and 24

    def nan_from_step_3(m, b):
        loss = F.mse_loss(m(b[0]), b[1])
        return loss * float("nan") if len(calls) > 3 else loss

    calls = []
    with pytest.raises(FloatingPointError, match="at step 5"):
        fit(torch.nn.Linear(1, 1), lambda s, g: calls.append(s) or (x, y), nan_from_step_3,
            TrainConfig(steps=20, check_every=5, device="cpu"))
    with pytest.raises(ValueError, match="check_every"):
        fit(torch.nn.Linear(1, 1), lambda s, g: (x, y), nan_from_step_3,
            TrainConfig(steps=2, check_every=0, device="cpu"))


def test_fit_bf16_autocast_on_the_cpu_only_when_asked():
    x, y = linear_problem()
    seen = []

    def loss_fn(m, b):
        out = m(b[0])
        seen.append(out.dtype)
        return F.mse_loss(out.float(), b[1])

    for amp_cpu in (False, True):
        fit(torch.nn.Linear(1, 1), lambda s, g: (x, y), loss_fn,
            TrainConfig(steps=2, device="cpu", amp_cpu=amp_cpu))
    assert seen == [torch.float32] * 2 + [torch.bfloat16] * 2


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", torch.nn.Linear(1, 1))
    torch.save({"weights": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not an attnlab checkpoint"):
        load_checkpoint(tmp_path / "bad.pt", torch.nn.Linear(1, 1))
    save_checkpoint(tmp_path / "sub" / "ok.pt", torch.nn.Linear(2, 2), step=7)
    assert load_checkpoint(tmp_path / "sub" / "ok.pt", torch.nn.Linear(2, 2)) == 7


def test_sequence_loss_counts_only_the_masked_positions():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, 0], [4, 0, 0]])
    full = F.cross_entropy(logits[targets != 0], targets[targets != 0])
    torch.testing.assert_close(sequence_loss(logits, targets), full)
    mask = torch.tensor([[False, True, False], [True, False, False]])
    expected = F.cross_entropy(logits[mask], targets[mask])
    torch.testing.assert_close(sequence_loss(logits, targets, mask), expected)
    with pytest.raises(ValueError, match=r"logits must be \(B, T, V\)"):
        sequence_loss(logits, targets[:, :2])


def test_history_throughput_uses_the_logged_times():
    h = History(steps=[0, 10, 20, 30], times=[5.0, 6.0, 7.0, 8.0])
    assert h.throughput(100) == pytest.approx(100 * 20 / 2.0)
    assert h.throughput(100, skip=0) == pytest.approx(100 * 30 / 3.0)
    with pytest.raises(ValueError, match="more than 4 logged steps"):
        h.throughput(1, skip=4)


def test_history_leaves_evaluation_time_out_of_training_time():
    import time as _time

    x, y = linear_problem()
    history = fit(torch.nn.Linear(1, 1), lambda step, g: (x, y),
                  lambda m, b: F.mse_loss(m(b[0]), b[1]),
                  TrainConfig(steps=4, eval_every=1, log_every=1, device="cpu"),
                  lambda m: (_time.sleep(0.2), {"mse": 0.0})[1])
    assert history.eval_seconds >= 0.6  # three evaluations during training, 0.2 s each
    assert history.seconds < history.eval_seconds
    assert history.times == sorted(history.times) and history.times[-1] < 0.5

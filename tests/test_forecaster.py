"""attnlab.models.forecaster: the model's shapes and mask, baselines and metrics by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab.layers import TransformerBlock
from attnlab.models.forecaster import (
    Forecaster,
    ForecasterConfig,
    LinearForecaster,
    mae,
    mase,
    naive_forecast,
    peak_lags,
    seasonal_naive_forecast,
    seasonal_scale,
)
from attnlab.train import TrainConfig, fit

SMALL = ForecasterConfig(context=24, horizon=6, dim=16, depth=2, num_heads=2, ff_dim=32)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_shapes_weights_and_determinism():
    torch.manual_seed(0)
    a = Forecaster(SMALL).eval()
    torch.manual_seed(0)
    b = Forecaster(SMALL).eval()
    x = randn(5, 24)
    out, w = a(x, need_weights=True)
    assert out.shape == (5, 6) and w.shape == (5, 2, 2, 30, 30)
    torch.testing.assert_close(w.sum(-1), torch.ones(5, 2, 2, 30))
    assert w[..., 24:].abs().max() == 0  # no token attends to a horizon token
    torch.testing.assert_close(a(x), out)  # the path without weights agrees
    assert torch.equal(b(x), a(x))
    assert a.horizon_attention(w).shape == (5, 2, 2, 6, 24)


def test_forward_equals_a_reference_built_from_pytorch_layers():
    torch.manual_seed(0)
    model = Forecaster(SMALL).eval()
    reference = [nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu",
                                            batch_first=True, norm_first=True)
                 for _ in range(SMALL.depth)]
    model.blocks = nn.ModuleList(TransformerBlock.from_torch(layer) for layer in reference)
    x = randn(3, 24, seed=1)
    level = x.mean(1, keepdim=True)
    tokens = (x - level)[..., None] * model.value_embed.weight[:, 0] + model.value_embed.bias
    tokens = torch.cat([tokens, model.horizon_token.expand(3, 6, -1)], dim=1)
    tokens = tokens + model.pos_embed.embedding.weight
    blocked = torch.arange(30)[None, :].expand(30, 30) >= 24  # PyTorch: True = blocked
    for layer in reference:
        tokens = layer(tokens, src_mask=blocked)
    expected = model.head(model.norm(tokens[:, 24:]))[..., 0] + level
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


def test_centering_makes_the_forecast_shift_with_the_level():
    torch.manual_seed(0)
    model = Forecaster(SMALL).eval()
    x = randn(4, 24, seed=2)
    torch.testing.assert_close(model(x + 7.0), model(x) + 7.0, atol=1e-4, rtol=0)
    torch.manual_seed(0)
    raw = Forecaster(ForecasterConfig(**{**SMALL.__dict__, "center": False})).eval()
    assert (raw(x + 7.0) - raw(x) - 7.0).abs().max() > 1e-2


def test_forecaster_learns_a_seasonal_series():
    # a noiseless period-6 series: a trained model beats the naive forecast by far
    t = torch.arange(400.0)
    y = torch.sin(2 * torch.pi * t / 6) + 0.5 * torch.cos(4 * torch.pi * t / 6)
    idx = torch.arange(0, 400 - 30)[:, None] + torch.arange(30)  # (W, 30)
    windows = y[idx]
    ctx, tgt = windows[:, :24], windows[:, 24:]
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(context=24, horizon=6, dim=16, depth=1, num_heads=2,
                                        ff_dim=32))

    def batch(step, g):
        rows = torch.randint(0, len(ctx), (32,), generator=g)
        return ctx[rows], tgt[rows]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and safe on a busy machine
    try:
        fit(model, batch, lambda m, b: (m(b[0]) - b[1]).abs().mean(),
            TrainConfig(steps=200, lr=1e-2, warmup=10, device="cpu"))
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        assert mae(model(ctx), tgt) < 0.3 * mae(naive_forecast(ctx, 6), tgt)


def test_input_errors():
    model = Forecaster(SMALL)
    with pytest.raises(ValueError, match=r"\(B, L\) with L=24"):
        model(torch.zeros(2, 20))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model(torch.zeros(24))
    with pytest.raises(ValueError, match="floating"):
        model(torch.zeros(2, 24, dtype=torch.long))
    with pytest.raises(ValueError, match="positive"):
        ForecasterConfig(context=0)


def test_naive_and_seasonal_naive_by_hand():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    assert naive_forecast(x, 3).tolist() == [[6.0] * 3, [1.0] * 3]
    # period 3: the last season is (4, 5, 6), repeated
    assert seasonal_naive_forecast(x, 5, 3).tolist() == [[4.0, 5.0, 6.0, 4.0, 5.0],
                                                         [3.0, 2.0, 1.0, 3.0, 2.0]]
    assert seasonal_naive_forecast(x, 2, 1).tolist() == naive_forecast(x, 2).tolist()
    assert seasonal_naive_forecast(x, 2, 6).tolist() == [[1.0, 2.0], [6.0, 5.0]]
    with pytest.raises(ValueError, match="period"):
        seasonal_naive_forecast(x, 2, 7)


def test_seasonal_naive_against_a_loop():
    y = randn(300, seed=3)
    L, F, P = 40, 15, 12
    ctx = torch.stack([y[i : i + L] for i in range(0, 200, 7)])  # (B, L)
    got = seasonal_naive_forecast(ctx, F, P)
    for b in range(ctx.shape[0]):
        series = ctx[b].tolist()
        for h in range(1, F + 1):  # y[t + h] = y[t + h - P * ceil(h / P)]
            k = -(-h // P)
            assert got[b, h - 1] == series[L - 1 + h - P * k]


def test_seasonal_naive_is_exact_on_a_periodic_series():
    t = torch.arange(100.0)
    y = torch.sin(2 * torch.pi * t / 10)
    ctx, tgt = y[None, :80], y[None, 80:95]
    torch.testing.assert_close(seasonal_naive_forecast(ctx, 15, 10), tgt, atol=1e-5, rtol=0)
    assert mae(seasonal_naive_forecast(ctx, 15, 9), tgt) > 0.1  # off by one period: wrong


def test_linear_forecaster_recovers_a_linear_rule():
    ctx = randn(500, 8, seed=4)
    weight = randn(3, 8, seed=5)
    target = ctx @ weight.T + 0.5  # (500, 3)
    model = LinearForecaster.fit(ctx, target, ridge=0.0, center=False)
    torch.testing.assert_close(model.linear.weight, weight, atol=1e-4, rtol=0)
    torch.testing.assert_close(model.linear.bias, torch.full((3,), 0.5), atol=1e-4, rtol=0)
    # centred: a level shift of the context moves the forecast with it
    centred = LinearForecaster.fit(ctx, target)
    torch.testing.assert_close(centred(ctx + 2.0), centred(ctx) + 2.0, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"\(W, F\)"):
        LinearForecaster.fit(ctx, target[:10])


def test_metrics_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    y = torch.tensor([[2.0, 2.0], [1.0, 1.0]])
    assert float(mae(f, y)) == pytest.approx(7 / 4)
    assert mae(f, y, dim=0).tolist() == [1.5, 2.0]
    assert mae(f, y, dim=1).tolist() == [0.5, 3.0]
    # MASE: window 0 of a series with scale 1, window 1 of one with scale 2
    assert float(mase(f, y, torch.tensor([1.0, 2.0]))) == pytest.approx((0.5 + 1.5) / 2)
    assert float(mase(f, y, 0.5)) == pytest.approx(7 / 2)
    history = torch.tensor([[0.0, 1.0, 2.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    assert seasonal_scale(history, 1).tolist() == pytest.approx([4 / 3, 0.0])
    assert seasonal_scale(history, 2).tolist() == [2.5, 0.0]
    with pytest.raises(ValueError, match="same shape"):
        mae(f, y[:1])
    with pytest.raises(ValueError, match="positive"):
        mase(f, y, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\(B,\)"):
        mase(f, y, torch.ones(3))


def test_seasonal_naive_has_mase_one_in_sample():
    y = randn(1, 200, seed=6).cumsum(1)
    P, L = 5, 20
    idx = torch.arange(L - 1, 199)  # origins with a context and one target
    ctx = torch.stack([y[0, o - L + 1 : o + 1] for o in idx])  # (W, L)
    tgt = torch.stack([y[0, o + 1 : o + 2] for o in idx])  # (W, 1)
    scale = seasonal_scale(y[:, L - P :], P)[0]  # the same differences as the windows' errors
    assert float(mase(seasonal_naive_forecast(ctx, 1, P), tgt, scale)) == pytest.approx(1.0)


def test_peak_lags_by_hand():
    L, F = 10, 3
    w = torch.zeros(2, F, L)
    for j in range(F):
        w[0, j, L + j - 4] = 1.0  # every step looks 4 back from itself
        w[1, j, 0] = 1.0  # every step looks at the oldest context step
    assert peak_lags(w).tolist() == [[4, 4, 4], [10, 11, 12]]
    with pytest.raises(ValueError):
        peak_lags(torch.zeros(5))

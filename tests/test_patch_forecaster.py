"""attnlab.models.patch_forecaster: the patch Transformer, instance normalisation, linear."""

from __future__ import annotations

import pytest
import torch

from attnlab.models.forecaster import LinearForecaster
from attnlab.models.patch_forecaster import (
    LinearCovariateForecaster,
    PatchForecaster,
    PatchForecasterConfig,
    instance_norm,
)

SMALL = PatchForecasterConfig(context=24, horizon=12, patch=6, num_covariates=2, dim=16)


def test_instance_norm_standardises_each_window_and_inverts():
    x = torch.randn(5, 30) * torch.arange(1.0, 6.0)[:, None] + 7
    z, mean, std = instance_norm(x)
    torch.testing.assert_close(z.mean(1), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(1, unbiased=False), torch.ones(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(z * std + mean, x)
    with pytest.raises(ValueError, match="context must be a floating-point"):
        instance_norm(torch.ones(3, dtype=torch.long))


def test_shapes_and_weights():
    model = PatchForecaster(SMALL)
    y, x = torch.randn(3, 24), torch.randn(3, 36, 2)
    out, w = model(y, x, need_weights=True)
    assert out.shape == (3, 12) and w.shape == (3, 2, 4, 6, 6)  # T = 36 / 6
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 4, 6))


def test_revin_makes_the_forecast_follow_level_and_scale():
    model = PatchForecaster(SMALL).eval()
    y, x = torch.randn(4, 24), torch.randn(4, 36, 2)
    torch.testing.assert_close(model(3.0 * y - 2.0, x), 3.0 * model(y, x) - 2.0,
                               atol=1e-4, rtol=1e-4)
    plain = PatchForecaster(PatchForecasterConfig(**{**SMALL.__dict__, "revin": False})).eval()
    assert not torch.allclose(plain(3.0 * y - 2.0, x), 3.0 * plain(y, x) - 2.0, atol=1e-3)


def test_future_covariates_matter_and_the_past_is_all_read():
    torch.manual_seed(0)
    model = PatchForecaster(SMALL).eval()
    y, x = torch.randn(2, 24), torch.randn(2, 36, 2)
    base = model(y, x)
    x2 = x.clone()
    x2[:, 30:, 0] += 1.0  # the temperature of the last horizon patch
    assert not torch.allclose(model(y, x2), base)
    y2 = y.clone()
    y2[:, :6] += 1.0  # the first context patch
    assert not torch.allclose(model(y2, x), base)


def test_without_covariates():
    config = PatchForecasterConfig(context=24, horizon=12, patch=6, num_covariates=0, dim=16)
    model = PatchForecaster(config)
    assert model(torch.randn(2, 24)).shape == (2, 12)
    with pytest.raises(ValueError, match="num_covariates=0"):
        model(torch.randn(2, 24), torch.randn(2, 36, 1))


def test_bad_inputs_are_named():
    model = PatchForecaster(SMALL)
    with pytest.raises(ValueError, match=r"context must be \(B, 24\)"):
        model(torch.randn(2, 20), torch.randn(2, 32, 2))
    with pytest.raises(ValueError, match=r"covariates must be \(B, L \+ F, K\)"):
        model(torch.randn(2, 24), torch.randn(2, 24, 2))
    with pytest.raises(ValueError, match="covariates must be"):
        model(torch.randn(2, 24))
    with pytest.raises(ValueError, match="must divide"):
        PatchForecasterConfig(context=25, horizon=12, patch=6)
    with pytest.raises(ValueError, match="positive"):
        PatchForecasterConfig(patch=0)


def test_trains_on_a_seasonal_series():
    torch.manual_seed(0)
    t = torch.arange(1000.0)
    series = torch.sin(2 * torch.pi * t / 6) + 0.05 * torch.randn(1000)
    idx = torch.arange(0, 960, 8)[:, None] + torch.arange(36)  # 120 windows
    windows = series[idx]  # (W, 36)
    x = torch.zeros(len(idx), 36, 2)
    model = PatchForecaster(SMALL)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(80):
        loss = (model(windows[:, :24], x) - windows[:, 24:]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.2  # the naive (last value) forecast's MAE is about 1


def test_linear_with_covariates_recovers_a_linear_rule():
    g = torch.Generator().manual_seed(1)
    y, x = torch.randn(300, 12, generator=g), torch.randn(300, 16, 2, generator=g)
    # a rule that follows the level (the model centres the context)
    target = y[:, -4:] - 0.5 * y[:, :4] + 0.5 * y.mean(1, keepdim=True)
    target = target - 2.0 * x[:, 12:, 0] + x[:, 12:, 1] + 0.3
    model = LinearCovariateForecaster.fit(y, x, target)
    torch.testing.assert_close(model(y, x), target, atol=1e-3, rtol=0)


def test_linear_without_covariates_equals_linear_forecaster():
    g = torch.Generator().manual_seed(2)
    y, target = torch.randn(100, 10, generator=g), torch.randn(100, 3, generator=g)
    ours = LinearCovariateForecaster.fit(y, None, target, ridge=1e-3)
    theirs = LinearForecaster.fit(y, target, ridge=1e-3)
    torch.testing.assert_close(ours(y), theirs(y), atol=1e-4, rtol=1e-4)


def test_linear_bad_inputs_are_named():
    y, x, target = torch.randn(20, 8), torch.randn(20, 10, 1), torch.randn(20, 2)
    with pytest.raises(ValueError, match="one row per context"):
        LinearCovariateForecaster.fit(y, x, target[:5])
    with pytest.raises(ValueError, match="covariates must be"):
        LinearCovariateForecaster.fit(y, x[:, :8], target)
    with pytest.raises(ValueError, match="ridge"):
        LinearCovariateForecaster.fit(y, x, target, ridge=-1.0)
    model = LinearCovariateForecaster.fit(y, x, target)
    with pytest.raises(ValueError, match="same covariates"):
        model(y)

"""attnlab.data.series: deterministic series, windows without leakage, train-only scaling."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.data.series import (
    SeriesConfig,
    Standardizer,
    forecasting_task,
    generate_series,
    make_windows,
    time_splits,
)

SMALL = SeriesConfig(n_series=3, length=84 * 4)


def test_generate_is_deterministic_and_seed_dependent():
    a, b = generate_series(SMALL, seed=2), generate_series(SMALL, seed=2)
    assert a.shape == (3, 84 * 4) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, generate_series(SMALL, seed=3))


def test_generate_has_the_promised_periods():
    # without noise, trend and shift, each series repeats exactly after the longest period
    clean = SeriesConfig(n_series=2, length=84 * 3, trend=0.0, shift=0.0, noise=0.0)
    y = generate_series(clean, seed=0)
    torch.testing.assert_close(y[:, 84:], y[:, :-84], atol=1e-4, rtol=0)
    assert (y[:, 12:] - y[:, :-12]).abs().max() > 0.1  # the weekly cycle: not 12-periodic
    # the spectrum peaks at the week, the day and the day's second harmonic
    spectrum = torch.fft.rfft(y - y.mean(dim=1, keepdim=True)).abs()  # (N, n/2 + 1)
    top = spectrum.mean(0).topk(3).indices.sort().values.tolist()
    assert top == [3, 21, 42]  # 252 steps hold 3 weeks and 21 days


def test_generate_noise_level():
    pure = SeriesConfig(n_series=4, length=2000, trend=0.0, shift=0.0, noise=0.0)
    noisy = SeriesConfig(n_series=4, length=2000, trend=0.0, shift=0.0, noise=0.5)
    diff = generate_series(noisy, seed=1) - generate_series(pure, seed=1)
    assert abs(float(diff.std()) - 0.5) < 0.02


def test_time_splits():
    assert time_splits(100) == (70, 85)
    assert time_splits(10, (0.5, 0.2)) == (5, 7)
    with pytest.raises(ValueError, match="fractions"):
        time_splits(100, (0.7, 0.4))


def test_make_windows_by_hand():
    y = torch.arange(30.0).reshape(2, 15)  # series 0: 0..14, series 1: 15..29
    w = make_windows(y, context=3, horizon=2, start=5, stop=10)
    # targets in [5, 10): origins 4..7 in each series
    assert w.origin.tolist() == [4, 5, 6, 7] * 2
    assert w.series.tolist() == [0] * 4 + [1] * 4
    assert w.context[0].tolist() == [2.0, 3.0, 4.0] and w.target[0].tolist() == [5.0, 6.0]
    assert w.context[4].tolist() == [17.0, 18.0, 19.0] and w.target[-1].tolist() == [23.0, 24.0]
    assert w.target_times().min() == 5 and w.target_times().max() == 9
    for k in range(len(w)):  # every row is the series cut at its origin
        o, s = int(w.origin[k]), int(w.series[k])
        assert torch.equal(w.context[k], y[s, o - 2 : o + 1])
        assert torch.equal(w.target[k], y[s, o + 1 : o + 3])
    strided = make_windows(y, 3, 2, 0, 15, stride=4)
    assert strided.origin.tolist() == [2, 6, 10] * 2


def test_make_windows_errors():
    y = torch.zeros(1, 10)
    with pytest.raises(ValueError, match=r"\(N, N_t\)"):
        make_windows(torch.zeros(10), 3, 2, 0, 10)
    with pytest.raises(ValueError, match="no window"):
        make_windows(y, 8, 3, 0, 10)
    with pytest.raises(ValueError, match="positive"):
        make_windows(y, 0, 3, 0, 10)


def test_standardizer_uses_the_given_range_only():
    y = torch.tensor([[1.0, 3.0, 50.0, 70.0], [0.0, 4.0, -9.0, 9.0]])
    s = Standardizer.fit(y, stop=2)
    assert s.mean.flatten().tolist() == [2.0, 2.0]
    assert s.std.flatten().tolist() == [1.0, 2.0]
    z = s.transform(y)
    assert z[:, :2].tolist() == [[-1.0, 1.0], [-1.0, 1.0]]
    torch.testing.assert_close(s.inverse(z), y)
    rows = torch.tensor([1, 1, 0])  # windows of series 1, 1, 0
    w = torch.tensor([[4.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    torch.testing.assert_close(s.transform(w, rows), torch.tensor([[1.0, -1.0], [0.0, 0.0],
                                                                   [1.0, -1.0]]))
    with pytest.raises(ValueError, match="series="):
        s.transform(w)


def test_task_splits_are_ordered_and_disjoint():
    task = forecasting_task(SeriesConfig(n_series=2, length=84 * 6), context=24, horizon=6)
    a, b = task.splits
    tr, va, te = (w.target_times() for w in (task.train, task.val, task.test))
    assert tr.max() < a <= va.min() and va.max() < b <= te.min()
    assert te.max() == 84 * 6 - 1  # the test range is used to its end
    # no target time is shared, in any series
    for s in range(2):
        sets = [set(t[w.series == s].flatten().tolist())
                for t, w in zip((tr, va, te), (task.train, task.val, task.test))]
        assert not (sets[0] & sets[1]) and not (sets[1] & sets[2]) and not (sets[0] & sets[2])
    # scaled with training statistics: the training range has mean 0 and std 1, per series
    z = task.scaler.transform(task.series)
    torch.testing.assert_close(z[:, :a].mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(z[:, :a].std(1, unbiased=False), torch.ones(2), atol=1e-5,
                               rtol=0)
    # the windows hold the scaled series
    k = len(task.test) - 1
    o, s = int(task.test.origin[k]), int(task.test.series[k])
    torch.testing.assert_close(task.test.target[k], z[s, o + 1 : o + 7])


def test_task_scaler_ignores_the_test_range():
    config = SeriesConfig(n_series=2, length=84 * 6)
    task = forecasting_task(config, context=24, horizon=6)
    a = task.splits[0]
    changed = task.series.clone()
    changed[:, a:] += 100.0  # whatever happens after the training range ...
    assert torch.equal(Standardizer.fit(changed, a).mean, task.scaler.mean)  # ... is unseen
    assert not math.isclose(float(Standardizer.fit(changed, changed.shape[1]).mean[0]),
                            float(task.scaler.mean[0]))

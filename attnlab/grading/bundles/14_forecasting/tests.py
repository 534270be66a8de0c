"""Tests of the exercise set '14_forecasting', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex14-05)
# TESTS
SNAIVE = """
import torch
from attnlab.models.forecaster import seasonal_naive_forecast
def seasonal_naive(context, horizon, period):
    return seasonal_naive_forecast(context, horizon, period)
"""
SNAIVE_CODE = """
import torch
def seasonal_naive(context, horizon, period):
    L = context.shape[1]
    j = torch.arange(horizon)
    return context[:, L - period + j % period]
"""
g = torch.Generator().manual_seed(1)
question(
    "q1", points=2, function="seasonal_naive", reference=SNAIVE,
    public=[
        case(torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]), 4, 3,
             note="the context 1..6, period 3, horizon 4"),
    ],
    hidden=[
        case(torch.randn(4, 24, generator=g), 12, 12, note="a batch, period 12, one day ahead"),
        case(torch.randn(3, 20, generator=g), 13, 5, note="a horizon more than twice the period"),
        case(torch.randn(2, 10, generator=g), 3, 10, note="a period as long as the context"),
        case(torch.randn(2, 8, generator=g), 4, 1, note="period 1 (the naive forecast)"),
    ],
    misconceptions=[
        misconception(
            "Off by one: your forecast of step h copies the value P + 1 steps before it. "
            "The value one period before time t + h is y[t + h - P], at index L - 1 + h - P "
            "of the context (h = 1 .. F)",
            code=edited(SNAIVE_CODE, ("L - period + j % period", "L - period - 1 + j % period"))),
        misconception(
            "Off by one: your forecast of step h copies the value P - 1 steps before it. "
            "The value one period before time t + h is y[t + h - P], at index L - 1 + h - P "
            "of the context (h = 1 .. F)",
            code=edited(SNAIVE_CODE, ("L - period + j % period",
                                      "(L - period + 1 + j % period).clamp(max=L - 1)"))),
        misconception(
            "You copied the same value, one period before t + 1, for every step: each step "
            "h needs its own value, one period before t + h",
            code=edited(SNAIVE_CODE, ("L - period + j % period", "L - period + 0 * j"))),
        misconception(
            "You repeated the last value: that is the naive forecast. Copy the value one "
            "period before each step instead",
            code=edited(SNAIVE_CODE, ("L - period + j % period", "L - 1 + 0 * j"))),
        misconception(
            "You copied the first period of the context, not the last one: the forecast of "
            "t + h comes from one period before t + h, at the end of the context",
            code=edited(SNAIVE_CODE, ("L - period + j % period", "j % period"))),
    ],
    hint="Step h = j + 1 reads context index L - P + (j mod P)",
)

# --- cell 10 (ex14-09)
# TESTS
WINDOWS = """
import torch
def split_windows(series, context, horizon, cut):
    n = series.shape[0]
    size = context + horizon
    windows = torch.stack([series[s : s + size] for s in range(n - size + 1)])
    first_target = torch.arange(n - size + 1) + context
    train = first_target + horizon <= cut
    test = first_target >= cut
    return (windows[train, :context], windows[train, context:],
            windows[test, :context], windows[test, context:])
"""
g = torch.Generator().manual_seed(2)
question(
    "q2", points=2, function="split_windows", reference=WINDOWS,
    public=[case(torch.arange(10.0), 3, 2, 6, note="the series 0..9, L=3, F=2, cut at 6")],
    hidden=[
        case(torch.randn(60, generator=g), 12, 4, 40, note="60 random values, L=12, F=4"),
        case(torch.arange(30.0), 5, 1, 20, note="a horizon of one step"),
        case(torch.randn(50, generator=g), 8, 6, 25, note="L=8, F=6, cut in the middle"),
    ],
    misconceptions=[
        misconception(
            "Leakage: some of your training windows have targets at or after the cut. A "
            "training window needs ALL its targets before the cut (its last target < cut)",
            code=edited(WINDOWS, ("train = first_target + horizon <= cut",
                                  "train = first_target < cut"))),
        misconception(
            "You dropped the first test windows: a test window's context may reach back before "
            "the cut, only its targets must lie at or after it",
            code=edited(WINDOWS, ("test = first_target >= cut",
                                  "test = first_target - context >= cut"))),
        misconception(
            "You split at the window's start instead of its targets: a window belongs to the "
            "split that holds its targets",
            code=edited(WINDOWS, ("train = first_target + horizon <= cut\n"
                                  "    test = first_target >= cut",
                                  "train = first_target - context < cut\n"
                                  "    test = first_target - context >= cut"))),
        misconception(
            "You missed the last window: it ends exactly at the end of the series",
            code=edited(WINDOWS, ("for s in range(n - size + 1)", "for s in range(n - size)"),
                        ("first_target = torch.arange(n - size + 1)",
                         "first_target = torch.arange(n - size)"))),
    ],
    hint="The first target of the window starting at s is at time s + context; its last at "
         "s + context + horizon - 1",
)

# --- cell 14 (ex14-13)
# TESTS
STANDARDIZE = """
import torch
def standardize(series, cut):
    train = series[:, :cut]
    mean = train.mean(dim=1, keepdim=True)
    std = train.std(dim=1, unbiased=False, keepdim=True)
    return (series - mean) / std
"""
g = torch.Generator().manual_seed(3)
trend = torch.arange(40.0)[None] * torch.tensor([[0.1], [-0.3], [0.05]])   # (3, 40)
question(
    "q3", points=2, function="standardize", reference=STANDARDIZE,
    public=[case(torch.tensor([[1.0, 3.0, 5.0, 9.0], [10.0, 14.0, 12.0, 20.0]]), 2,
                 note="two short series, cut at 2")],
    hidden=[
        case(trend + torch.randn(3, 40, generator=g), 30, note="three series with trends"),
        case(5 + 3 * torch.randn(2, 25, generator=g), 20, note="two noisy series"),
        case(torch.randn(1, 12, generator=g).cumsum(1), 6, note="one random walk"),
    ],
    misconceptions=[
        misconception(
            "You used the statistics of the whole series, test range included: that leaks the "
            "future (where the trend and the level will be). Compute them on series[:, :cut]",
            code=edited(STANDARDIZE, ("train = series[:, :cut]", "train = series"))),
        misconception(
            "You used the statistics of the range after the cut (the test range): only the "
            "training range series[:, :cut] may be used",
            code=edited(STANDARDIZE, ("train = series[:, :cut]", "train = series[:, cut:]"))),
        misconception(
            "You pooled all series into one mean and one standard deviation: each series needs "
            "its own (keep dim=1)",
            code=edited(STANDARDIZE,
                        ("mean = train.mean(dim=1, keepdim=True)", "mean = train.mean()"),
                        ("std = train.std(dim=1, unbiased=False, keepdim=True)",
                         "std = train.std(unbiased=False)"))),
        misconception(
            "You divided by the sample standard deviation (n - 1): use the population one, "
            "std(..., unbiased=False)",
            code=edited(STANDARDIZE, ("unbiased=False", "unbiased=True"))),
    ],
)

# --- cell 18 (ex14-17)
# TESTS
MASE = """
import torch
def mase(forecast, target, train_series, period):
    error = (forecast - target).abs().mean()
    scale = (train_series[period:] - train_series[:-period]).abs().mean()
    return error / scale
"""
g = torch.Generator().manual_seed(4)
t = torch.arange(120.0)
seasonal = torch.sin(2 * torch.pi * t / 12) + 0.3 * torch.randn(120, generator=g)
question(
    "q4", points=2, function="mase", reference=MASE,
    public=[case(torch.tensor([[2.0, 2.0], [3.0, 1.0]]), torch.tensor([[1.0, 4.0], [3.0, 3.0]]),
                 torch.tensor([0.0, 1.0, 3.0, 4.0, 6.0]), 2,
                 note="two windows of two steps, a short training series, period 2"),
            case(torch.tensor([[1.0, 5.0, 2.0], [0.0, 1.0, 1.0]]),
                 torch.tensor([[2.0, 2.0, 4.0], [1.0, 0.0, 3.0]]),
                 torch.tensor([0.0, 2.0, 1.0, 5.0, 3.0, 4.0, 2.0]), 3,
                 note="two windows of three steps, period 3")],
    hidden=[
        case(torch.stack([seasonal[96:108], seasonal[102:114]]) + 0.2,
             torch.stack([seasonal[96:108], seasonal[102:114]]), seasonal[:96], 12,
             note="a seasonal series, period 12"),
        case(torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g),
             torch.randn(50, generator=g).cumsum(0), 3, note="five windows of a random walk"),
        case(torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g), seasonal[:60], 1,
             note="period 1 (the naive scale)"),
    ],
    misconceptions=[
        misconception(
            "You scaled by the one-step differences y_t - y_(t-1): the scale is the error of "
            "the SEASONAL-naive forecast, y_t - y_(t-P)",
            code=edited(MASE, ("train_series[period:] - train_series[:-period]",
                               "train_series[1:] - train_series[:-1]"))),
        misconception(
            "You computed the scale from the targets (the test data): MASE's scale comes from "
            "the training range only, so that it is known before the test",
            code=edited(MASE, ("scale = (train_series[period:] - train_series[:-period])",
                               "scale = (target.flatten()[period:] - "
                               "target.flatten()[:-period])"))),
        misconception(
            "You averaged the signed errors: positive and negative errors cancel. Take the "
            "absolute values first, in the error and in the scale",
            code=edited(MASE, ("error = (forecast - target).abs().mean()",
                               "error = (forecast - target).mean().abs()"))),
        misconception(
            "You used squared errors: MASE is built from absolute errors",
            code=edited(MASE, ("error = (forecast - target).abs().mean()",
                               "error = ((forecast - target) ** 2).mean()"),
                        ("scale = (train_series[period:] - train_series[:-period]).abs().mean()",
                         "scale = ((train_series[period:] - train_series[:-period]) ** 2)"
                         ".mean()"))),
    ],
)

# --- cell 22 (ex14-21)
# TESTS
question(
    "q5", points=1, variable="q5_lag", expected=96 + 11 - 23,
    misconceptions=[
        misconception("73 is the lag before t + 1, the first forecast step: the last one is "
                      "11 steps later", value=96 - 23),
        misconception("72 is the lag before t, the last observed step: the forecast step is "
                      "t + 12", value=95 - 23),
        misconception("23 is the column, not the lag: count the steps from column 23 to the "
                      "forecast step", value=23),
        misconception("One step too many: column 95 is time t, so column 23 is time t - 72, "
                      "and t + 12 is 12 steps after t", value=96 + 12 - 23),
    ],
    hint="Column c is time t - (95 - c); the forecast step is t + 12",
)

# --- cell 28 (ex14-28)
# TESTS
def _baseline_errors():
    from attnlab.data.series import forecasting_task
    from attnlab.models.forecaster import mae, naive_forecast, seasonal_naive_forecast

    test = forecasting_task(seed=0).test
    return {name: mae(f, test.target, dim=0) for name, f in (
        ("naive", naive_forecast(test.context, 12)),
        ("daily", seasonal_naive_forecast(test.context, 12, 12)),
        ("weekly", seasonal_naive_forecast(test.context, 12, 84)))}


_e = _baseline_errors()
# B is what the measurement shows; each of A, C and D contradicts a printed number.
assert int(_e["naive"].argmax()) == 5 and _e["naive"][-1] < _e["naive"][5] / 2, _e
assert abs(float(_e["naive"][-1] - _e["daily"][-1])) < 0.05, _e
assert bool((_e["weekly"] < _e["daily"]).all()) and _e["naive"][0] > _e["daily"][0], _e
question(
    "q6", points=1, variable="q6_answer", expected="B",
    misconceptions=[
        misconception("Read the naive row to the end: its error peaks at h = 6 and falls back "
                      "by h = 12, because the series repeats every 12 steps (a day)",
                      value="A"),
        misconception("The weekly seasonal-naive forecast (P = 84) has a smaller error than "
                      "the daily one at every h: it is the baseline to beat", value="C"),
        misconception("Compare the first column: even at h = 1 both seasonal-naive forecasts "
                      "have a smaller error than the naive one", value="D"),
    ],
    hint="Read each row from h = 1 to h = 12, and compare the rows column by column",
)

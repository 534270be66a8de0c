"""Synthetic multi-seasonal time series, cut into forecasting windows without leakage.

Each series is a sum of parts that real demand-like series have (a load curve,
traffic counts): a daily cycle with a second harmonic, a weekly cycle, a linear
trend, a level shift at a random time, and Gaussian noise. One step is two
hours, so the default periods are 12 steps (a day) and 84 steps (a week):
short enough that a context of 96 steps (eight days) holds a whole week.

- :class:`SeriesConfig`, :func:`generate_series` -- N seeded series of a length;
- :func:`time_splits` -- the cut points of a split by time;
- :func:`make_windows` -- (context, target) pairs whose targets lie in a time
  range, with their series and forecast origins;
- :class:`Standardizer` -- per-series mean and standard deviation, fitted on
  the training range only;
- :func:`forecasting_task` -- all of the above: a :class:`ForecastTask` with
  train, validation and test windows, normalised.

Shapes: N series of length N_t; a window has a context of L steps and a
horizon of F steps (F, not H: H counts attention heads in this book).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from attnlab._validate import shape_str

__all__ = [
    "SeriesConfig",
    "generate_series",
    "time_splits",
    "Windows",
    "make_windows",
    "Standardizer",
    "ForecastTask",
    "forecasting_task",
]


@dataclass
class SeriesConfig:
    """How the series are drawn; the defaults are the chapter's data (two-hour steps)."""

    n_series: int = 16  # N: a global model learns from all of them at once
    length: int = 84 * 26  # N_t: half a year of two-hour steps
    periods: tuple[int, ...] = (12, 84)  # a day and a week, in steps
    amplitudes: tuple[float, ...] = (1.0, 0.6)  # mean amplitude of each cycle
    harmonic: float = 0.4  # the daily cycle's second harmonic, relative to its first
    trend: float = 0.5  # the largest change of level over the whole series, from the trend
    shift: float = 1.0  # the largest level shift (one per series, at a random time)
    noise: float = 0.25  # the standard deviation of the Gaussian noise
    level: float = 5.0  # the mean level; each series draws its own scale around it

    def __post_init__(self) -> None:
        if not self.periods or len(self.periods) != len(self.amplitudes):
            raise ValueError(f"periods {self.periods} and amplitudes {self.amplitudes} must "
                             "be non-empty and of the same length")
        if min(self.periods) < 2:
            raise ValueError(f"every period must be at least 2 steps, got {self.periods}")
        if self.n_series < 1 or self.length < 2 * max(self.periods):
            raise ValueError(f"need n_series >= 1 and length >= 2 * the longest period, got "
                             f"n_series={self.n_series}, length={self.length}")
        if self.noise < 0:
            raise ValueError(f"noise must be non-negative, got {self.noise}")


def generate_series(config: SeriesConfig | None = None, seed: int = 0) -> torch.Tensor:
    r"""Draw ``config.n_series`` series of ``config.length`` steps.

    Series i is

    .. math::

        y_t = s_i\Big(\ell + \sum_p a_{ip} \big[\sin(2\pi t / P_p + \phi_{ip})
              + h\, \mathbb{1}_{p=0} \sin(4\pi t / P_p + \psi_{i})\big]\Big)
              + b_i t / N_t + c_i\, \mathbb{1}_{t \ge \tau_i} + \varepsilon_t

    with random scale :math:`s_i`, amplitudes :math:`a_{ip}`, phases, trend
    :math:`b_i`, level shift :math:`c_i` at time :math:`\tau_i`, and noise
    :math:`\varepsilon_t \sim \mathcal N(0, \sigma^2)`; the harmonic is added
    to the first (shortest) period only.

    Args:
        config: a :class:`SeriesConfig` (default: the chapter's).
        seed: the seed of the generator; the same seed gives the same series.

    Shape:
        returns (N, N_t) float32.

    Example:
        >>> y = generate_series(SeriesConfig(n_series=3, length=200), seed=1)
        >>> tuple(y.shape), torch.equal(y, generate_series(SeriesConfig(3, 200), seed=1))
        ((3, 200), True)
    """
    c = config or SeriesConfig()
    g = torch.Generator().manual_seed(seed)
    N, n = c.n_series, c.length

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)

    t = torch.arange(n, dtype=torch.float64)  # (N_t,)
    y = torch.full((N, n), c.level, dtype=torch.float64)
    for k, (period, amp) in enumerate(zip(c.periods, c.amplitudes)):
        a = amp * uniform(0.6, 1.4, N, 1)  # (N, 1)
        phase = uniform(0.0, 2 * math.pi, N, 1)
        y = y + a * torch.sin(2 * math.pi * t / period + phase)  # (N, N_t)
        if k == 0 and c.harmonic:
            psi = uniform(0.0, 2 * math.pi, N, 1)
            y = y + c.harmonic * a * torch.sin(4 * math.pi * t / period + psi)
    y = y * uniform(0.5, 1.5, N, 1)  # each series its own scale
    y = y + uniform(-c.trend, c.trend, N, 1) * t / n  # the trend
    when = torch.randint(n // 10, n - n // 10, (N, 1), generator=g)  # (N, 1)
    y = y + uniform(-c.shift, c.shift, N, 1) * (t >= when)  # the level shift
    y = y + c.noise * torch.randn(N, n, generator=g, dtype=torch.float64)
    return y.float()


def time_splits(length: int, fractions: tuple[float, float] = (0.7, 0.15)) -> tuple[int, int]:
    """Cut points ``(a, b)`` of a split by time: train ``[0, a)``, validation ``[a, b)``,
    test ``[b, length)``.

    Args:
        length: N_t, the number of time steps.
        fractions: the shares of the training and validation ranges; the test
            range gets the rest.

    Example:
        >>> time_splits(100, (0.7, 0.15))
        (70, 85)
    """
    f_train, f_val = fractions
    if f_train <= 0 or f_val < 0 or f_train + f_val >= 1:
        raise ValueError(f"fractions must be positive and sum to less than 1, got {fractions}")
    a = round(length * f_train)
    b = round(length * (f_train + f_val))
    if not 0 < a <= b < length:
        raise ValueError(f"length {length} is too short for the fractions {fractions}")
    return a, b


@dataclass
class Windows:
    """Forecasting windows: for each, L steps of context and the F steps that follow.

    ``origin[w]`` is the time of the last context step of window w, so its
    targets are the times ``origin + 1 .. origin + F`` of series ``series[w]``.
    """

    context: torch.Tensor  # (W, L)
    target: torch.Tensor  # (W, F)
    series: torch.Tensor  # (W,) int64, which series
    origin: torch.Tensor  # (W,) int64, the time of the last context step

    def __len__(self) -> int:
        return self.context.shape[0]

    def target_times(self) -> torch.Tensor:
        """The time of every target step, (W, F)."""
        F = self.target.shape[1]
        return self.origin[:, None] + torch.arange(1, F + 1)  # (W, F)


def make_windows(series: torch.Tensor, context: int, horizon: int, start: int, stop: int,
                 stride: int = 1) -> Windows:
    """Every window whose F target steps lie in ``[start, stop)``.

    The context may reach back before ``start``: those steps are the past, known
    when the forecast is made. No target is outside ``[start, stop)``, so windows
    cut from disjoint ranges share no target.

    Args:
        series: the series (N, N_t).
        context: L, the steps the forecaster sees.
        horizon: F, the steps it forecasts.
        start, stop: the range of the target times.
        stride: the step between two forecast origins.

    Shape:
        series (N, N_t) -> Windows with context (W, L) and target (W, F),
        ordered by series, then by time.

    Example:
        >>> y = torch.arange(20.0)[None]                # one series: 0, 1, ..., 19
        >>> w = make_windows(y, context=4, horizon=2, start=10, stop=14)
        >>> w.context.tolist()
        [[6.0, 7.0, 8.0, 9.0], [7.0, 8.0, 9.0, 10.0], [8.0, 9.0, 10.0, 11.0]]
        >>> w.target.tolist(), w.origin.tolist()
        ([[10.0, 11.0], [11.0, 12.0], [12.0, 13.0]], [9, 10, 11])
    """
    if not isinstance(series, torch.Tensor) or series.dim() != 2:
        got = shape_str(series) if isinstance(series, torch.Tensor) else type(series).__name__
        raise ValueError(f"series must be (N, N_t), got {got}")
    n = series.shape[1]
    if context < 1 or horizon < 1 or stride < 1:
        raise ValueError(f"context, horizon and stride must be positive, got {context}, "
                         f"{horizon}, {stride}")
    first = max(start, context) - 1  # the first origin: a full context before it
    last = stop - horizon - 1  # the last origin: every target before stop
    if not 0 <= start < stop <= n or last < first:
        raise ValueError(f"no window of context {context} and horizon {horizon} has its "
                         f"targets in [{start}, {stop}) of a series of length {n}")
    origins = torch.arange(first, last + 1, stride)  # (W0,)
    steps = torch.arange(-context + 1, horizon + 1)  # (L + F,)
    idx = origins[:, None] + steps  # (W0, L + F)
    cut = series[:, idx]  # (N, W0, L + F)
    N, W0 = cut.shape[:2]
    cut = cut.reshape(N * W0, context + horizon)  # (W, L + F)
    return Windows(
        context=cut[:, :context].contiguous(),
        target=cut[:, context:].contiguous(),
        series=torch.arange(N).repeat_interleave(W0),
        origin=origins.repeat(N),
    )


@dataclass
class Standardizer:
    """Per-series standardisation, ``(y - mean) / std``, with statistics from one range.

    Example:
        >>> y = torch.tensor([[1.0, 3.0, 100.0]])
        >>> s = Standardizer.fit(y, stop=2)            # the first two steps only
        >>> s.mean.tolist(), s.transform(y).tolist()
        ([[2.0]], [[-1.0, 1.0, 98.0]])
    """

    mean: torch.Tensor  # (N, 1)
    std: torch.Tensor  # (N, 1)

    @classmethod
    def fit(cls, series: torch.Tensor, stop: int) -> Standardizer:
        """Mean and (population) standard deviation of ``series[:, :stop]``, per series."""
        if series.dim() != 2 or not 1 < stop <= series.shape[1]:
            raise ValueError(f"need series (N, N_t) and 1 < stop <= N_t, got "
                             f"{shape_str(series)} and stop={stop}")
        part = series[:, :stop]
        return cls(part.mean(dim=1, keepdim=True), part.std(dim=1, unbiased=False,
                                                            keepdim=True).clamp_min(1e-8))

    def transform(self, values: torch.Tensor, series: torch.Tensor | None = None) -> torch.Tensor:
        """Standardise (N, ...) values, or window rows (W, ...) of the given ``series``."""
        mean, std = self._stats(values, series)
        return (values - mean) / std

    def inverse(self, values: torch.Tensor, series: torch.Tensor | None = None) -> torch.Tensor:
        """Undo :meth:`transform`."""
        mean, std = self._stats(values, series)
        return values * std + mean

    def _stats(self, values: torch.Tensor, series: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = (self.mean, self.std) if series is None else (self.mean[series],
                                                                  self.std[series])
        if values.shape[0] != mean.shape[0]:
            raise ValueError(f"values {shape_str(values)} need one row per series "
                             f"({mean.shape[0]}); pass series= for windows")
        extra = (1,) * (values.dim() - 2)
        return mean.view(-1, 1, *extra), std.view(-1, 1, *extra)


@dataclass
class ForecastTask:
    """A forecasting task: the series, the split, the scaler and the windows (normalised)."""

    series: torch.Tensor  # (N, N_t), in the original units
    splits: tuple[int, int]  # (a, b): train [0, a), validation [a, b), test [b, N_t)
    scaler: Standardizer  # fitted on [0, a) only
    train: Windows
    val: Windows
    test: Windows
    periods: tuple[int, ...]


def forecasting_task(config: SeriesConfig | None = None, context: int = 96, horizon: int = 12,
                     fractions: tuple[float, float] = (0.7, 0.15), seed: int = 0,
                     test_stride: int = 1) -> ForecastTask:
    """Series, split by time, standardised with training statistics, cut into windows.

    Args:
        config: a :class:`SeriesConfig` (default: the chapter's).
        context: L, the steps the forecaster sees.
        horizon: F, the steps it forecasts.
        fractions: the shares of the training and validation time ranges.
        seed: the seed of :func:`generate_series`.
        test_stride: the step between the origins of validation and test windows.

    Returns:
        A :class:`ForecastTask` whose windows hold standardised values; every
        training target comes before every validation target, which comes
        before every test target.

    Example:
        >>> task = forecasting_task(SeriesConfig(n_series=2, length=600), context=24,
        ...                         horizon=6)
        >>> task.splits, task.train.context.shape[1], task.test.target.shape[1]
        ((420, 510), 24, 6)
        >>> bool(task.train.target_times().max() < task.val.target_times().min())
        True
    """
    c = config or SeriesConfig()
    y = generate_series(c, seed)
    a, b = time_splits(c.length, fractions)
    scaler = Standardizer.fit(y, stop=a)
    z = scaler.transform(y)  # (N, N_t)
    return ForecastTask(
        series=y, splits=(a, b), scaler=scaler,
        train=make_windows(z, context, horizon, 0, a),
        val=make_windows(z, context, horizon, a, b, stride=test_stride),
        test=make_windows(z, context, horizon, b, c.length, stride=test_stride),
        periods=tuple(c.periods),
    )

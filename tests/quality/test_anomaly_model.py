"""The anomaly model alone: trend + weekly seasonality, a robust scale, no verdict without history."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from lakeplane.quality.anomaly import MIN_POINTS, forecast

START = dt.datetime(2026, 9, 7, tzinfo=dt.UTC)  # a Monday
WEEKLY = (1.0, 1.05, 1.1, 1.08, 1.2, 0.6, 0.5)  # weekends are quiet


def series(days: int, seed: int, *, noise: float = 0.02) -> list[tuple[dt.datetime, float]]:
    """Daily row counts: 10 000 growing 40 a day, times a weekly pattern, with 2 % noise."""
    rng = random.Random(seed)
    points = []
    for day in range(days):
        moment = START + dt.timedelta(days=day)
        level = (10_000 + 40 * day) * WEEKLY[moment.weekday()]
        points.append((moment, level * (1 + rng.gauss(0, noise))))
    return points


def expected_at(day: int) -> float:
    moment = START + dt.timedelta(days=day)
    return (10_000 + 40 * day) * WEEKLY[moment.weekday()]


@pytest.mark.parametrize("seed", range(8))
def test_clean_days_of_a_trending_weekly_series_are_not_flagged(seed: int) -> None:
    history = series(60, seed)
    for day in range(35, 60):  # each day against the days before it
        earlier, (moment, value) = history[:day], history[day]
        band = forecast(earlier, moment)
        assert band is not None and band.seasonal
        assert band.contains(value), (day, value, band.describe())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("factor", [1.5, 0.6, 0.0])
def test_planted_spikes_and_drops_are_flagged(seed: int, factor: float) -> None:
    history = series(42, seed)
    for day in (42, 45, 47):  # a weekday, a Saturday, a Monday
        moment = START + dt.timedelta(days=day)
        band = forecast(history, moment)
        assert band is not None
        assert not band.contains(expected_at(day) * factor), (day, band.describe())


def test_a_weekend_value_on_a_weekday_is_flagged_only_with_seasonality() -> None:
    history = series(42, 1, noise=0.01)
    friday = START + dt.timedelta(days=46)
    band = forecast(history, friday)
    assert band is not None and band.seasonal
    assert not band.contains(expected_at(47) / WEEKLY[0] * WEEKLY[5]), "a Saturday's count on a Friday"
    assert band.contains(expected_at(46))
    short = forecast(history[-10:], friday)  # ten days: too short for weekly offsets
    assert short is not None and not short.seasonal


def test_outliers_in_the_history_do_not_widen_the_band() -> None:
    history = series(42, 3)
    history[20] = (history[20][0], history[20][1] * 5)
    history[30] = (history[30][0], 0.0)
    band = forecast(history, START + dt.timedelta(days=42))
    assert band is not None
    assert band.contains(expected_at(42))
    assert not band.contains(expected_at(42) * 1.3)


def test_a_level_shift_is_flagged_on_its_first_day() -> None:
    history = series(35, 5)
    for factor in (2.0, 0.5):
        band = forecast(history, START + dt.timedelta(days=35))
        assert band is not None and not band.contains(expected_at(35) * factor)


def test_too_little_history_gives_no_verdict() -> None:
    history = series(MIN_POINTS - 1, 0)
    assert forecast(history, START + dt.timedelta(days=MIN_POINTS)) is None
    later_points_do_not_count = [*history, (START + dt.timedelta(days=99), 1.0)]
    assert forecast(later_points_do_not_count, START + dt.timedelta(days=MIN_POINTS)) is None
    enough = forecast(series(MIN_POINTS, 0), START + dt.timedelta(days=MIN_POINTS))
    assert enough is not None and not enough.seasonal


def test_a_metric_that_never_moved_may_move_a_little_only() -> None:
    flat = [(START + dt.timedelta(days=d), 1.0) for d in range(14)]
    band = forecast(flat, START + dt.timedelta(days=14))
    assert band is not None and band.expected == pytest.approx(1.0)
    assert band.contains(0.999) and not band.contains(0.99)


def test_the_model_is_deterministic_and_checks_its_sensitivity() -> None:
    history = series(40, 2)
    at = START + dt.timedelta(days=40)
    assert forecast(history, at) == forecast(list(reversed(history)), at)
    narrow, wide = forecast(history, at, sensitivity=1), forecast(history, at, sensitivity=8)
    assert narrow is not None and wide is not None and wide.high - wide.low > narrow.high - narrow.low
    with pytest.raises(ValueError, match="sensitivity"):
        forecast(history, at, sensitivity=0)

"""The anomaly model of ``DetectAnomalies``: what a metric's next value should be, from its history.

A metric's history is a series of ``(time, value)`` points (one per recorded check). The model
explains it as a straight trend plus, when the history is long enough, a weekly pattern, and calls a
new value anomalous when it falls outside a band around the value the model expects:

- **Proportions**: a series whose values are all positive (row counts, sums, completeness) is
  modelled on its logarithm, so growth and the weekly pattern are proportions (Saturdays are half of
  a weekday, whatever the level). Any other series is modelled as it is.
- **Trend**: the Theil-Sen slope (the median of the slopes between two points) over the last
  :data:`MAX_POINTS` points, so that a few outliers in the history do not tilt it; with weekly
  seasonality only pairs of points on the same day of the week count, so the pattern does not tilt
  it either. Time is in days.
- **Weekly seasonality**: when the points cover at least :data:`SEASONAL_MIN_DAYS` days and every
  day of the week has at least :data:`SEASONAL_MIN_PER_DAY` points, each day of the week gets an
  offset: the median of its de-trended values, less the mean of the seven medians (the level).
- **Scale**: a robust standard deviation of the noise, 1.4826 times the median absolute deviation
  (MAD) of the residuals; with seasonality, of the week-over-week changes divided by the square
  root of 2 (residuals around medians of a few points understate the noise). It is widened by the
  error of the expected value itself (a factor ``sqrt(1 + pi / (2 n))`` for a median of ``n``
  points) and never falls below :data:`RELATIVE_FLOOR` of the expected value (0.1 %): a metric
  that never moved, a completeness of 1.0, may move a little without being called anomalous, but
  not by much.
- **Band**: expected ± ``sensitivity`` × scale (on the logarithm for a positive series, so the
  band is a proportion); :data:`DEFAULT_SENSITIVITY` is 4.

With fewer than :data:`MIN_POINTS` earlier points there is no verdict: :func:`forecast` returns
``None`` and ``DetectAnomalies`` passes, saying so (as a dynamic bound without history does). The
model is pure Python and deterministic: the same history gives the same band.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

#: Fewest earlier points that give a verdict.
MIN_POINTS = 7
#: The model reads at most this many of the most recent points.
MAX_POINTS = 90
#: Weekly offsets need the points to span this many days and each weekday to have this many points.
SEASONAL_MIN_DAYS, SEASONAL_MIN_PER_DAY = 21, 2
#: Half the band's width in scales.
DEFAULT_SENSITIVITY = 4.0
#: The scale is at least this share of the expected value's magnitude.
RELATIVE_FLOOR = 0.001
_MAD_TO_SIGMA = 1.4826
_DAY = 86_400.0

Point = tuple[dt.datetime, float]


class TimedHistory(Protocol):
    """Earlier values of a table's metrics with their times (a
    :class:`~lakeplane.quality.history.MetricHistory`): what ``DetectAnomalies`` models."""

    @property
    def cutoff(self) -> dt.datetime | None:
        """The time the values under check describe (the run's date); earlier points only."""
        ...

    def points(self, metric_key: str, n: int) -> Sequence[Point]:
        """Up to ``n`` earlier points of ``metric_key``, most recent first."""
        ...


@dataclass(frozen=True)
class Forecast:
    """What the model expects at one time, and how far from it a value may be."""

    expected: float
    low: float
    high: float
    scale: float
    slope_per_day: float
    seasonal: bool  # weekly offsets were used
    relative: bool  # fitted on the logarithm: growth and seasonality in proportions
    points: int  # earlier points the model read

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        model = "trend + weekly seasonality" if self.seasonal else "trend"
        return (
            f"expected {_num(self.expected)}, band [{_num(self.low)}, {_num(self.high)}] "
            f"({model} on {self.points} earlier values)"
        )


def forecast(
    history: Iterable[Point], at: dt.datetime, *, sensitivity: float = DEFAULT_SENSITIVITY
) -> Forecast | None:
    """The value expected at ``at`` from ``history`` (earlier points, any order), or ``None`` when
    there are fewer than :data:`MIN_POINTS` of them.

    Raises:
        ValueError: ``sensitivity`` is not positive.
    """
    if sensitivity <= 0:
        raise ValueError(f"sensitivity must be positive, not {sensitivity}")
    moment = _utc(at)
    points = sorted((_utc(t), float(v)) for t, v in history if _utc(t) < moment)[-MAX_POINTS:]
    if len(points) < MIN_POINTS:
        return None
    origin = points[0][0]
    days = [(t - origin).total_seconds() / _DAY for t, _ in points]
    weekdays = [t.weekday() for t, _ in points]
    relative = all(v > 0 for _, v in points)
    values = [math.log(v) if relative else v for _, v in points]
    seasonal = _covers_weeks(days, weekdays)
    slope = _theil_sen_slope(days, values, weekdays if seasonal else None)
    detrended = [v - slope * d for d, v in zip(days, values, strict=True)]
    offsets, intercept = (
        _offsets(detrended, weekdays) if seasonal else ([0.0] * 7, statistics.median(detrended))
    )
    residuals = [r - intercept - offsets[w] for r, w in zip(detrended, weekdays, strict=True)]
    centre = intercept + slope * (moment - origin).total_seconds() / _DAY + offsets[moment.weekday()]
    mad = _weekly_mad(detrended, weekdays) if seasonal else _mad(residuals)
    floor = RELATIVE_FLOOR if relative else RELATIVE_FLOOR * abs(centre)
    # the expected value is itself estimated (a median of ``fitted_on`` points): widen by its error
    fitted_on = weekdays.count(moment.weekday()) if seasonal else len(values)
    scale = max(_MAD_TO_SIGMA * mad * math.sqrt(1 + math.pi / (2 * max(fitted_on, 1))), floor, 1e-9)
    low, high = centre - sensitivity * scale, centre + sensitivity * scale
    if relative:
        centre, low, high = math.exp(centre), math.exp(low), math.exp(high)
        slope = centre * slope  # per day, near ``at``
    return Forecast(centre, low, high, scale, slope, seasonal, relative, len(points))


def _theil_sen_slope(x: list[float], y: list[float], weekdays: list[int] | None) -> float:
    """The median slope between two points (on the same day of the week, given ``weekdays``, so
    that the weekly pattern does not tilt it)."""
    pairs = (
        (i, j)
        for i in range(len(x))
        for j in range(i + 1, len(x))
        if x[j] != x[i] and (weekdays is None or weekdays[i] == weekdays[j])
    )
    slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i, j in pairs]
    return statistics.median(slopes) if slopes else 0.0


def _covers_weeks(days: list[float], weekdays: list[int]) -> bool:
    per_day = [weekdays.count(w) for w in range(7)]
    return days[-1] - days[0] >= SEASONAL_MIN_DAYS and min(per_day) >= SEASONAL_MIN_PER_DAY


def _mad(values: list[float]) -> float:
    middle = statistics.median(values)
    return statistics.median(abs(v - middle) for v in values)


def _weekly_mad(detrended: list[float], weekdays: list[int]) -> float:
    """The residuals' MAD, from the changes between consecutive values of the same weekday.

    Residuals around seven medians of a few points each are smaller than the noise (each median
    sits on its own points); a week-over-week change holds two draws of the noise and no fitted
    part, so its MAD divided by the square root of 2 estimates the noise's.
    """
    last: dict[int, float] = {}
    changes = []
    for value, day in zip(detrended, weekdays, strict=True):
        if day in last:
            changes.append(value - last[day])
        last[day] = value
    return _mad(changes) / math.sqrt(2)


def _offsets(detrended: list[float], weekdays: list[int]) -> tuple[list[float], float]:
    """Each weekday's offset (the median of its de-trended values, centred) and the level."""
    medians = [
        statistics.median(r for r, w in zip(detrended, weekdays, strict=True) if w == day) for day in range(7)
    ]
    level = statistics.fmean(medians)
    return [m - level for m in medians], level


def _utc(moment: dt.datetime) -> dt.datetime:
    """Naive times are UTC, as the metric history stores them."""
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _num(value: float) -> str:
    return f"{value:.6g}"

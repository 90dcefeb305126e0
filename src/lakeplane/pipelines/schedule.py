"""Cron schedules: which pipelines are due, and a loop that runs them.

A schedule is a five-field cron expression in UTC (minute hour day-of-month month day-of-week, with
``*``, lists, ranges and ``/steps``). A pipeline is due when its latest scheduled time has passed and
no run of it started since; the run is for the day before that time (a nightly job processes
yesterday). ``lakeplane schedule --once`` runs what is due and exits (for cron or a systemd timer);
without ``--once`` it checks every minute until stopped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lakeplane.errors import ConfigError

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 6))


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = text.split()
        if len(parts) != 5:
            raise ConfigError(f"schedule '{text}': a cron expression has 5 fields, not {len(parts)}",
                              key="schedule")
        sets = [_field(part, name, low, high, text) for part, (name, low, high) in zip(parts, _FIELDS,
                                                                                        strict=True)]
        weekdays = frozenset(7 if d == 7 else d for d in sets[4])
        return cls(text, sets[0], sets[1], sets[2], sets[3], frozenset(d % 7 for d in weekdays),
                   parts[2] == "*", parts[4] == "*")

    def day_matches(self, day: dt.date) -> bool:
        day_ok = day.day in self.days
        weekday_ok = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # cron: when both are restricted, either may match
            return day.month in self.months and day_ok and weekday_ok
        return day.month in self.months and (day_ok or weekday_ok)

    def latest(self, now: dt.datetime, lookback_days: int = 366) -> dt.datetime | None:
        """The most recent scheduled minute at or before ``now``."""
        for back in range(lookback_days + 1):
            day = now.date() - dt.timedelta(days=back)
            if not self.day_matches(day):
                continue
            for hour in sorted(self.hours, reverse=True):
                for minute in sorted(self.minutes, reverse=True):
                    fired = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=now.tzinfo)
                    if fired <= now:
                        return fired
        return None


def _field(part: str, name: str, low: int, high: int, text: str) -> frozenset[int]:
    values: set[int] = set()
    for item in part.split(","):
        body, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                start, end = (int(x) for x in body.split("-", 1))
            else:
                start = end = int(body)
        except ValueError:
            raise ConfigError(f"schedule '{text}': '{item}' is not a valid {name}", key="schedule") from None
        top = 7 if name == "day of week" else high
        if not (low <= start <= end <= top) or step < 1:
            raise ConfigError(f"schedule '{text}': {name} '{item}' is out of range {low}-{high}",
                              key="schedule")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def due(schedule: str, last_started: dt.datetime | None, now: dt.datetime) -> dt.date | None:
    """The business date to run for, if the schedule fired since ``last_started``; else None."""
    fired = Cron.parse(schedule).latest(now)
    if fired is None or (last_started is not None and last_started >= fired):
        return None
    return (fired - dt.timedelta(days=1)).date()

"""Cron schedules: which pipelines are due, and a loop that runs them.

A schedule is a five-field cron expression in UTC (minute hour day-of-month month day-of-week), read
by croniter: ``*``, lists, ranges, steps (``*/15``, ``5/15``), month and weekday names (``MON``,
``JAN``), ``L`` and ``#`` forms, and the aliases ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``,
``@yearly``. When both day-of-month and day-of-week are restricted, either may match (cron's rule).
A pipeline is due when its latest scheduled time has passed and no run of it started since; the run
is for the day before that time (a nightly job processes yesterday). ``lakeplane schedule --once``
runs what is due and exits (for cron or a systemd timer); without ``--once`` it checks every minute
until stopped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from croniter import CroniterBadDateError, CroniterError, croniter

from lakeplane.errors import ConfigError

#: croniter reads a sixth field as seconds and a seventh as the year; a schedule has minute
#: precision, so only the five classic fields (or an ``@`` alias) are accepted.
_FIELDS = 5


@dataclass(frozen=True)
class Cron:
    """A cron expression that croniter accepted."""

    text: str

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Check ``text`` as a schedule.

        Raises:
            ConfigError: not a five-field cron expression or alias, or a field croniter refuses
                (``key="schedule"``, ``expression`` = the text).
        """
        parts = text.split()
        if not (len(parts) == 1 and parts[0].startswith("@")) and len(parts) != _FIELDS:
            raise ConfigError(
                f"schedule '{text}': a cron expression has {_FIELDS} fields, not {len(parts)}",
                key="schedule",
                value=text,
            )
        try:
            croniter.expand(text)
        except CroniterError as exc:
            raise ConfigError(
                f"schedule '{text}' is not a valid cron expression: {exc}", key="schedule", value=text
            ) from None
        return cls(text)

    def latest(self, now: dt.datetime, lookback_days: int = 366) -> dt.datetime | None:
        """The most recent scheduled minute at or before ``now``; None if none in ``lookback_days``."""
        # croniter's get_prev is strictly before its start: start a minute after ``now``'s minute,
        # so a schedule firing in ``now``'s own minute counts.
        start = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        try:
            fired: dt.datetime = croniter(
                self.text, start, ret_type=dt.datetime, max_years_between_matches=lookback_days // 365 + 1
            ).get_prev()
        except CroniterBadDateError:  # a date that never comes (30 February) fires never
            return None
        return fired if now - fired <= dt.timedelta(days=lookback_days) else None


def due(schedule: str, last_started: dt.datetime | None, now: dt.datetime) -> dt.date | None:
    """The business date to run for, if the schedule fired since ``last_started``; else None."""
    fired = Cron.parse(schedule).latest(now)
    if fired is None or (last_started is not None and last_started >= fired):
        return None
    return (fired - dt.timedelta(days=1)).date()

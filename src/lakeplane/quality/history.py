"""Metric history for dynamic rules: earlier values of each metric, kept in a SQLite file.

``RowCount > avg(last(10))`` compares today's row count with the last ten recorded for the same
table. :class:`MetricHistory` is the ``history`` callback :func:`~lakeplane.quality.evaluate` takes.
Values are stamped with the time they describe (a run's business date, say): :meth:`MetricHistory.before`
sees only earlier ones, so a backfill of an old day compares it with the days before it, and
recording the same metric at the same time again (a rerun) replaces the value instead of adding one.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

from lakeplane.quality.evaluate import RuleOutcome


class MetricHistory:
    """Values of each metric of one dataset (a table), most recent first.

    Args:
        path: the SQLite file (created on first write).
        dataset: whose metrics these are, e.g. the table's full name.
        before: see only values stamped earlier than this.
    """

    def __init__(self, path: str | os.PathLike[str], dataset: str, before: dt.datetime | None = None) -> None:
        self.path = Path(path)
        self.dataset = dataset
        self.cutoff = before

    def before(self, moment: dt.datetime) -> MetricHistory:
        """The same history, seeing only values stamped before ``moment``."""
        return MetricHistory(self.path, self.dataset, moment)

    def __call__(self, metric_key: str, n: int) -> list[float]:
        """Up to ``n`` earlier values of ``metric_key``, most recent first."""
        if not self.path.exists():
            return []
        cutoff = _stamp(self.cutoff) if self.cutoff else "9999"
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT value FROM dq_metrics WHERE dataset = ? AND metric_key = ? AND recorded_at < ? "
                "ORDER BY recorded_at DESC LIMIT ?", (self.dataset, metric_key, cutoff, n)).fetchall()
        return [float(value) for (value,) in rows]

    def record(self, outcomes: Iterable[RuleOutcome], at: dt.datetime) -> int:
        """Store each metric measured in ``outcomes`` (composite parts included) at ``at``.

        Returns:
            How many metrics were stored (a metric used by several rules counts once).
        """
        values = {o.metric_key: float(o.observed) for o in _flatten(outcomes)
                  if o.metric_key and isinstance(o.observed, float) and not o.error}
        with closing(self._connect()) as connection, connection:  # the inner ``with`` commits
            connection.executemany(
                "INSERT OR REPLACE INTO dq_metrics VALUES (?, ?, ?, ?)",
                [(self.dataset, key, _stamp(at), value) for key, value in values.items()])
        return len(values)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path)
        connection.execute("CREATE TABLE IF NOT EXISTS dq_metrics (dataset TEXT NOT NULL, "
                           "metric_key TEXT NOT NULL, recorded_at TEXT NOT NULL, value REAL NOT NULL, "
                           "PRIMARY KEY (dataset, metric_key, recorded_at))")
        return connection


def _stamp(moment: dt.datetime) -> str:
    """UTC, without a zone suffix, so that stamps sort as text (a naive time is read as UTC)."""
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return utc.isoformat(timespec="microseconds")


def _flatten(outcomes: Iterable[RuleOutcome]) -> Iterable[RuleOutcome]:
    for outcome in outcomes:
        yield outcome
        yield from _flatten(outcome.children)

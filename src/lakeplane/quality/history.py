"""Metric history for dynamic rules: earlier values of each metric, in the catalog's database.

``RowCount > avg(last(10))`` compares today's row count with the last ten recorded for the same
table. :class:`MetricHistory` is the ``history`` callback :func:`~lakeplane.quality.evaluate` takes.
Values are stamped with the time they describe (a run's business date, say): :meth:`MetricHistory.before`
sees only earlier ones, so a backfill of an old day compares it with the days before it, and
recording the same metric at the same time again (a rerun) replaces the value instead of adding one.

The values live in ``lakeplane_dq_metrics`` in the catalog's database
(:attr:`~lakeplane.catalog.LakeCatalog.state_engine`), so every lake opened on a shared PostgreSQL
catalog sees the same history.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from lakeplane.catalog.state import ensure_tables
from lakeplane.quality.evaluate import RuleOutcome

_META = sa.MetaData()
METRICS = sa.Table(
    "lakeplane_dq_metrics",
    _META,
    sa.Column("dataset", sa.Text, primary_key=True),
    sa.Column("metric_key", sa.Text, primary_key=True),
    sa.Column("recorded_at", sa.String(32), primary_key=True),  # see _stamp: sorts as text
    sa.Column("value", sa.Float, nullable=False),
)


class MetricHistory:
    """Values of each metric of one dataset (a table), most recent first.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``); the table is created in it
            if it is missing.
        dataset: whose metrics these are, e.g. the table's full name.
        before: see only values stamped earlier than this.
    """

    def __init__(self, engine: sa.Engine, dataset: str, before: dt.datetime | None = None) -> None:
        self.engine = engine
        self.dataset = dataset
        self.cutoff = before
        ensure_tables(engine, METRICS)

    def before(self, moment: dt.datetime) -> MetricHistory:
        """The same history, seeing only values stamped before ``moment``."""
        seen = copy.copy(self)
        seen.cutoff = moment
        return seen

    def __call__(self, metric_key: str, n: int) -> list[float]:
        """Up to ``n`` earlier values of ``metric_key``, most recent first."""
        query = (
            sa.select(METRICS.c.value)
            .where(METRICS.c.dataset == self.dataset, METRICS.c.metric_key == metric_key)
            .order_by(METRICS.c.recorded_at.desc())
            .limit(n)
        )
        if self.cutoff is not None:
            query = query.where(METRICS.c.recorded_at < _stamp(self.cutoff))
        with self.engine.connect() as conn:
            return [float(value) for value in conn.execute(query).scalars()]

    def record(self, outcomes: Iterable[RuleOutcome], at: dt.datetime) -> int:
        """Store each metric measured in ``outcomes`` (composite parts included) at ``at``.

        Returns:
            How many metrics were stored (a metric used by several rules counts once).
        """
        values = {
            o.metric_key: float(o.observed)
            for o in _flatten(outcomes)
            if o.metric_key and isinstance(o.observed, float) and not o.error
        }
        if not values:
            return 0
        rows = [
            {"dataset": self.dataset, "metric_key": key, "recorded_at": _stamp(at), "value": value}
            for key, value in values.items()
        ]
        # An upsert, so that two runs recording the same day at once both succeed (the last one wins).
        _insert(self.engine, rows, replace=True)
        return len(values)


def adopt_history_file(path: Path, engine: sa.Engine) -> int:
    """Move the values kept in ``path``, the private SQLite file earlier versions kept metric history
    in (``.lakeplane/dq_history.sqlite``), into ``engine``'s ``lakeplane_dq_metrics``; then rename the
    file to ``*.adopted`` so this happens once. Values already in the table are kept.

    Returns:
        How many values the file held (0 when there is no file).
    """
    if not path.exists():
        return 0
    ensure_tables(engine, METRICS)
    with contextlib.closing(sqlite3.connect(path)) as old:
        found = old.execute("SELECT dataset, metric_key, recorded_at, value FROM dq_metrics").fetchall()
    rows = [dict(zip(("dataset", "metric_key", "recorded_at", "value"), row, strict=True)) for row in found]
    if rows:
        _insert(engine, rows, replace=False)
    with contextlib.suppress(FileNotFoundError):  # another process adopted it at the same time
        path.rename(path.with_name(path.name + ".adopted"))
    return len(rows)


def _insert(engine: sa.Engine, rows: list[dict[str, Any]], *, replace: bool) -> None:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite  # the catalog's two kinds
    insert = dialect.insert(METRICS)
    keys = list(METRICS.primary_key.columns)
    statement = (
        insert.on_conflict_do_update(index_elements=keys, set_={"value": insert.excluded.value})
        if replace
        else insert.on_conflict_do_nothing(index_elements=keys)
    )
    with engine.begin() as conn:
        conn.execute(statement, rows)


def _stamp(moment: dt.datetime) -> str:
    """UTC, without a zone suffix, so that stamps sort as text (a naive time is read as UTC)."""
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return utc.isoformat(timespec="microseconds")


def _flatten(outcomes: Iterable[RuleOutcome]) -> Iterable[RuleOutcome]:
    for outcome in outcomes:
        yield outcome
        yield from _flatten(outcome.children)

"""Metric history for dynamic rules: earlier values of each metric, in the catalog's database.

``RowCount > avg(last(10))`` compares today's row count with the last ten recorded for the same
table. :class:`MetricHistory` is the ``history`` callback :func:`~lakeplane.quality.evaluate` takes.
Values are stamped with the time they describe (a run's business date, say): :meth:`MetricHistory.before`
sees only earlier ones, so a backfill of an old day compares it with the days before it, and
recording the same metric at the same time again (a rerun) replaces the value instead of adding one.

Each value belongs to a *series*: the checks that record it and read it. A pipeline's gates and
quality steps keep theirs in :data:`PIPELINE_SERIES`; ``lakeplane dq check`` keeps its in
:data:`ADHOC_SERIES` unless told otherwise, so that trying a ruleset by hand does not move the bounds
a gate compares with. Values recorded before series existed belong to :data:`PIPELINE_SERIES`.

The values live in ``lakeplane_dq_metrics`` in the catalog's database
(:attr:`~lakeplane.catalog.LakeCatalog.state_engine`), so every lake opened on a shared PostgreSQL
catalog sees the same history.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import importlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables
from lakeplane.quality.analyzers import AnalyzerOutcome
from lakeplane.quality.evaluate import RuleOutcome

#: The series of pipeline gates and quality steps, and of values recorded before series existed.
PIPELINE_SERIES = "pipeline"
#: The series ``lakeplane dq check`` reads and records by default.
ADHOC_SERIES = "adhoc"

_META = sa.MetaData()
METRICS = sa.Table(
    "lakeplane_dq_metrics",
    _META,
    sa.Column("dataset", sa.Text, primary_key=True),
    sa.Column("series", sa.Text, primary_key=True),
    sa.Column("metric_key", sa.Text, primary_key=True),
    sa.Column("recorded_at", sa.String(32), primary_key=True),  # see _stamp: sorts as text
    sa.Column("value", sa.Float, nullable=False),
)


class MetricHistory:
    """Values of each metric of one dataset (a table) in one series, most recent first.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``); the table is created in it
            if it is missing, and given its ``series`` column if an earlier version made it.
        dataset: whose metrics these are, e.g. the table's full name.
        before: see only values stamped earlier than this.
        series: which checks' values these are (:data:`PIPELINE_SERIES`, :data:`ADHOC_SERIES`, or a
            name of the caller's).
    """

    def __init__(
        self,
        engine: sa.Engine,
        dataset: str,
        before: dt.datetime | None = None,
        series: str = PIPELINE_SERIES,
    ) -> None:
        self.engine = engine
        self.dataset = dataset
        self.cutoff = before
        self.series = series
        ensure_tables(engine, METRICS)
        add_series_column(engine)

    def with_series(self, series: str) -> MetricHistory:
        """The same dataset's values in ``series``."""
        other = copy.copy(self)
        other.series = series
        return other

    def before(self, moment: dt.datetime) -> MetricHistory:
        """The same history, seeing only values stamped before ``moment``."""
        seen = copy.copy(self)
        seen.cutoff = moment
        return seen

    def __call__(self, metric_key: str, n: int) -> list[float]:
        """Up to ``n`` earlier values of ``metric_key``, most recent first."""
        return [value for _, value in self.points(metric_key, n)]

    def points(self, metric_key: str, n: int) -> list[tuple[dt.datetime, float]]:
        """Up to ``n`` earlier values of ``metric_key`` with their (UTC) stamps, most recent first."""
        query = (
            sa.select(METRICS.c.recorded_at, METRICS.c.value)
            .where(
                METRICS.c.dataset == self.dataset,
                METRICS.c.series == self.series,
                METRICS.c.metric_key == metric_key,
            )
            .order_by(METRICS.c.recorded_at.desc())
            .limit(n)
        )
        if self.cutoff is not None:
            query = query.where(METRICS.c.recorded_at < _stamp(self.cutoff))
        with self.engine.connect() as conn:
            return [
                (dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC), float(value))
                for stamp, value in conn.execute(query)
            ]

    def record(
        self, outcomes: Iterable[RuleOutcome], at: dt.datetime, analyzed: Iterable[AnalyzerOutcome] = ()
    ) -> int:
        """Store each metric measured in ``outcomes`` (composite parts included) and by the
        analyzers in ``analyzed`` at ``at``, in this history's series.

        Returns:
            How many metrics were stored (a metric used by several rules counts once).
        """
        values: dict[str, float] = {}
        for o in _flatten(outcomes):
            if o.metric_key and isinstance(o.observed, float) and not o.error:
                values[o.metric_key] = float(o.observed)
            values.update(o.metrics)
        for analyzer in analyzed:
            values.update(analyzer.metrics)
        if not values:
            return 0
        rows = [
            {
                "dataset": self.dataset,
                "series": self.series,
                "metric_key": key,
                "recorded_at": _stamp(at),
                "value": value,
            }
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
        add_series_column(engine)
        _insert(engine, [{**row, "series": PIPELINE_SERIES} for row in rows], replace=False)
    with contextlib.suppress(FileNotFoundError):  # another process adopted it at the same time
        path.rename(path.with_name(path.name + ".adopted"))
    return len(rows)


def add_series_column(engine: sa.Engine) -> bool:
    """Give a ``lakeplane_dq_metrics`` made before series existed its ``series`` column, its values
    all in :data:`PIPELINE_SERIES` (the series key is part of the primary key, so the table is built
    again: a new table, the values copied, the old one dropped, the new one renamed, in one
    transaction that holds the table's write lock, so that two processes opening an old database at
    once migrate it once).

    Returns:
        Whether the table was migrated (``False`` when it already had the column).
    """
    try:
        if _has_series(engine):
            return False
    except sa.exc.NoSuchTableError:
        # Its catalog was read in two queries while another process swapped in the rebuilt table
        # (PostgreSQL): the name pointed at the old table, dropped by the time its columns were read.
        pass
    with _write_locked(engine) as conn:
        if _has_series(conn):  # another process did it while this one waited for the lock
            return False
        _rebuild_with_series(conn)
    return True


def _has_series(bind: sa.Engine | sa.Connection) -> bool:
    return "series" in {c["name"] for c in sa.inspect(bind).get_columns(METRICS.name)}


@contextlib.contextmanager
def _write_locked(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that holds the metrics table's write lock from its start."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql(f"LOCK TABLE {METRICS.name} IN ACCESS EXCLUSIVE MODE")
            yield conn
        return
    # pysqlite would begin at the first write; BEGIN IMMEDIATE takes the lock now
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")


def _rebuild_with_series(conn: sa.Connection) -> None:
    staging = METRICS.to_metadata(sa.MetaData(), name=f"{METRICS.name}_series")
    staging.create(conn)
    old = sa.table(METRICS.name, *(sa.column(c) for c in ("dataset", "metric_key", "recorded_at", "value")))
    copied = sa.select(
        old.c.dataset, sa.literal(PIPELINE_SERIES), old.c.metric_key, old.c.recorded_at, old.c.value
    )
    conn.execute(
        staging.insert().from_select(["dataset", "series", "metric_key", "recorded_at", "value"], copied)
    )
    conn.exec_driver_sql(f"DROP TABLE {METRICS.name}")
    conn.exec_driver_sql(f"ALTER TABLE {staging.name} RENAME TO {METRICS.name}")


def _insert(engine: sa.Engine, rows: list[dict[str, Any]], *, replace: bool) -> None:
    insert = dialect_insert(engine, METRICS)
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


def dialect_insert(engine: sa.Engine, table: sa.Table) -> Any:
    """The catalog's own ``INSERT`` for ``table`` (SQLite's or PostgreSQL's, which both take ``ON
    CONFLICT``); the dialect module is imported only when used, as PostgreSQL's loads its driver."""
    name = "postgresql" if engine.dialect.name == "postgresql" else "sqlite"  # the catalog's two kinds
    return importlib.import_module(f"sqlalchemy.dialects.{name}").insert(table)

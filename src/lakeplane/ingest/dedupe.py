"""Exactly once across days: a keyed row is dropped when its key is already published on another day.

Ingesting day X of a dataset with a key and a window of ``w`` days drops every row whose key the
processed table holds on any other day of ``[X - w, X + w]``. A re-delivery on a later day is
dropped, so is an event of a late-arriving earlier day that a later day already published, and
re-running day X keeps the rows it had (no other day took X's keys).

Only the key columns of the window's other days are read (the table is partitioned by ``ds``, so
pyiceberg prunes the scan to their files), and the day's keys they hold are anti-joined in the
statement that already dedupes the day. A table without such files costs nothing.

Two processes ingesting two days of one table at once would each miss the other's uncommitted rows.
So the window is read at one snapshot and the day is committed only while the table is still at it:
when another writer committed first and changed the window's files, the day is computed again
against the new files; when it changed other days only, the same files are committed again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyiceberg.expressions import And, BooleanExpression, GreaterThanOrEqual, LessThanOrEqual, NotEqualTo
from pyiceberg.types import IcebergType, IntegerType, LongType, StringType
from sqlglot import exp

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.catalog.scan import plan_scan
from lakeplane.catalog.writer import WriteResult
from lakeplane.engines.base import EngineSession, ScanSource
from lakeplane.errors import CommitConflictError
from lakeplane.ingest.parse import ACCEPTED

#: The view of the window's other days, as the ingest session names it.
WINDOW = "__window"
#: The keys of the day that another day of the window published.
PUBLISHED = "__published"
#: The snapshot summary key telling how often the day was computed again as the window changed.
RECOMPUTED_KEY = "lakeplane.window-recomputed"


@dataclass(frozen=True)
class KeyRange:
    """The smallest and largest value of the day's first key column (None: the day has none).

    A file of the window whose bounds on that column lie outside the range cannot hold a key of the
    day, so pyiceberg's metrics evaluation leaves it out of the scan: with keys that grow over time
    (time-ordered ids, sequence numbers) most of the window is never opened.
    """

    column: str
    low: str | int | None
    high: str | int | None


def day_key_range(session: EngineSession, key: list[str]) -> KeyRange | None:
    """The range of the day's first key column, when its values are text or integers."""
    column = exp.column(key[0], quoted=True)
    bounds = exp.select(exp.Min(this=column), exp.Max(this=column)).from_(ACCEPTED)
    low, high = session.execute(bounds.sql(dialect=session.dialect))[0]
    if low is not None and not (isinstance(low, str | int) and not isinstance(low, bool)):
        return None
    return KeyRange(key[0], low, high)


@dataclass(frozen=True)
class DayWindow:
    """The other days of ``ds``'s window in a processed table, as of one snapshot.

    Attributes:
        snapshot_id: the table's head when the window was read (None: no table or no snapshot yet).
        source: the window's files that may hold a key of the day (key columns are all that is read
            of them); None when there are none.
    """

    table: str
    ds: dt.date
    days: int
    keys: KeyRange | None
    snapshot_id: int | None
    source: ScanSource | None

    @property
    def files(self) -> frozenset[str]:
        return frozenset(self.source.files) if self.source else frozenset()


def read_window(
    catalog: LakeCatalog, ref: TableRef, ds: dt.date, days: int, keys: KeyRange | None
) -> DayWindow:
    """The files of ``ref`` on the days of ``[ds - days, ds + days]`` other than ``ds`` that may hold
    a key in ``keys``, at the table's head."""
    table = catalog.load(ref) if catalog.table_exists(ref) else None
    snapshot = table.current_snapshot() if table else None
    if table is None or snapshot is None or (keys and keys.low is None):
        return DayWindow(str(ref), ds, days, keys, snapshot.snapshot_id if snapshot else None, None)
    span = dt.timedelta(days=days)
    others: BooleanExpression = And(
        GreaterThanOrEqual("ds", (ds - span).isoformat()),  # type: ignore[call-arg, arg-type]
        LessThanOrEqual("ds", (ds + span).isoformat()),  # type: ignore[call-arg, arg-type]
        NotEqualTo("ds", ds.isoformat()),  # type: ignore[call-arg, arg-type]
    )
    if keys and _bounds_bind(table.schema().find_field(keys.column).field_type, keys.low):
        others = And(
            others,
            GreaterThanOrEqual(keys.column, keys.low),  # type: ignore[call-arg, arg-type]
            LessThanOrEqual(keys.column, keys.high),  # type: ignore[call-arg, arg-type]
        )
    source = plan_scan(
        catalog, str(ref), others, snapshot.snapshot_id, bounds_of=keys.column if keys else None
    )
    return DayWindow(str(ref), ds, days, keys, snapshot.snapshot_id, source if source.files else None)


def _bounds_bind(column_type: IcebergType, value: object) -> bool:
    """Whether ``value`` is a literal of the column's own type (planning never falls back on a full
    scan, which would drop the filter on ``ds`` too)."""
    if isinstance(column_type, StringType):
        return isinstance(value, str)
    return isinstance(column_type, IntegerType | LongType) and isinstance(value, int)


def drop_published(
    session: EngineSession, rows: exp.Query, key: list[str], columns: list[str], window: DayWindow
) -> exp.Query:
    """``rows`` (the day's, from :data:`~lakeplane.ingest.parse.ACCEPTED`) without those whose key
    ``window`` holds.

    The keys of the day that the window holds are found first, by a hash semi-join on the key
    columns alone, and only those few are anti-joined to the rows as they stream to the writer. A
    key with a NULL part is never taken for one published on another day.
    """
    if window.source is None:
        return rows
    session.register_scan(WINDOW, window.source)
    first = exp.column(key[0], quoted=True)
    # Only the day's keys within the window's range on the first key column can match, so the hash
    # table holds those keys alone. The range comes from the files' statistics in the manifests
    # when every file has them, else from reading the window's keys.
    if window.source.bounds is not None:
        low, high = window.source.bounds
        in_range = exp.Between(this=first, low=exp.convert(low), high=exp.convert(high))
    else:
        in_range = exp.Between(
            this=first,
            low=exp.select(exp.Min(this=first)).from_(WINDOW).subquery(),
            high=exp.select(exp.Max(this=first)).from_(WINDOW).subquery(),
        )
    day_keys = exp.select(*[exp.column(k, quoted=True) for k in key]).from_(ACCEPTED).where(in_range)
    same = exp.and_(*[exp.column(k, "w", quoted=True).eq(exp.column(k, "a", quoted=True)) for k in key])
    published = (
        exp.select(*[exp.column(k, "w", quoted=True) for k in key])
        .from_(exp.to_table(WINDOW).as_("w"))
        .join(day_keys.subquery("a"), on=same, join_type="semi")
    )
    session.execute(f"CREATE OR REPLACE TEMP TABLE {PUBLISHED} AS {published.sql(dialect=session.dialect)}")
    if not session.execute(f"SELECT count(*) FROM {PUBLISHED}")[0][0]:
        return rows
    same = exp.and_(*[exp.column(k, "d", quoted=True).eq(exp.column(k, "p", quoted=True)) for k in key])
    return (
        exp.select(*[exp.column(c, "d", quoted=True) for c in columns])
        .from_(rows.subquery("d"))
        .join(exp.to_table(PUBLISHED).as_("p"), on=same, join_type="anti")
    )


def commit_unless_window_changed(
    commit: Callable[[int | None], WriteResult],
    catalog: LakeCatalog,
    ref: TableRef,
    window: DayWindow,
    retries: int,
) -> tuple[WriteResult | None, DayWindow]:
    """Run ``commit`` (given the snapshot the day was computed at) while the window stays as read.

    Returns:
        the commit and its window, or None and the window as it now is when another writer changed
        the window's files first: the day must then be computed again.

    Raises:
        CommitConflictError: the commit kept losing to writers that did not change the window.
    """
    for _ in range(retries + 1):
        try:
            return commit(window.snapshot_id), window
        except CommitConflictError:
            now = read_window(catalog, ref, window.ds, window.days, window.keys)
            if now.snapshot_id == window.snapshot_id:
                raise  # lost for another reason than a new head: retrying cannot help
            if now.files != window.files:
                return None, now
            window = now
    raise CommitConflictError(
        f"{ref}: the table kept changing while {window.ds.isoformat()} was committed; run the step again",
        table=str(ref),
        operation="overwrite_partitions",
        attempts=retries + 1,
    )

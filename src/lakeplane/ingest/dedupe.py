"""Exactly once across days: a keyed row is dropped when its key is already published on another day.

Ingesting day X of a dataset with a key and a window of ``w`` days drops every row whose key the
processed table holds on any other day of ``[X - w, X + w]``. A re-delivery on a later day is
dropped, so is an event of a late-arriving earlier day that a later day already published, and
re-running day X keeps the rows it had (no other day took X's keys).

Only the key columns of the window's other days are read (the table is partitioned by ``ds``, so
pyiceberg prunes the scan to their files), and they are anti-joined in the statement that already
dedupes the day. A table without such files costs nothing.

Two processes ingesting two days of one table at once would each miss the other's uncommitted rows.
So the window is read at one snapshot and the day is committed only while the table is still at it:
when another writer committed first and changed the window's files, the day is computed again
against the new files; when it changed other days only, the same files are committed again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyiceberg.expressions import And, GreaterThanOrEqual, LessThanOrEqual, NotEqualTo
from sqlglot import exp

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.catalog.scan import plan_scan
from lakeplane.catalog.writer import WriteResult
from lakeplane.engines.base import EngineSession, ScanSource
from lakeplane.errors import CommitConflictError

#: The view of the window's other days, as the ingest session names it.
WINDOW = "__window"
#: The snapshot summary key telling how often the day was computed again as the window changed.
RECOMPUTED_KEY = "lakeplane.window-recomputed"
#: How many copies of a key the day holds, next to each repeated key.
COPIES = "__copies"


@dataclass(frozen=True)
class DayWindow:
    """The other days of ``ds``'s window in a processed table, as of one snapshot.

    Attributes:
        snapshot_id: the table's head when the window was read (None: no table or no snapshot yet).
        source: the window's files (key columns are all that is read of them); None when there are none.
    """

    table: str
    ds: dt.date
    days: int
    snapshot_id: int | None
    source: ScanSource | None

    @property
    def files(self) -> frozenset[str]:
        return frozenset(self.source.files) if self.source else frozenset()


def read_window(catalog: LakeCatalog, ref: TableRef, ds: dt.date, days: int) -> DayWindow:
    """The files of ``ref`` on the days of ``[ds - days, ds + days]`` other than ``ds``, at its head."""
    if not catalog.table_exists(ref):
        return DayWindow(str(ref), ds, days, None, None)
    snapshot = catalog.load(ref).current_snapshot()
    if snapshot is None:
        return DayWindow(str(ref), ds, days, None, None)
    span = dt.timedelta(days=days)
    others = And(
        GreaterThanOrEqual("ds", (ds - span).isoformat()),  # type: ignore[call-arg, arg-type]
        LessThanOrEqual("ds", (ds + span).isoformat()),  # type: ignore[call-arg, arg-type]
        NotEqualTo("ds", ds.isoformat()),  # type: ignore[call-arg, arg-type]
    )
    source = plan_scan(catalog, str(ref), others, snapshot.snapshot_id)
    return DayWindow(str(ref), ds, days, snapshot.snapshot_id, source if source.files else None)


def drop_published(
    session: EngineSession, rows: exp.Query, key: list[str], columns: list[str], window: DayWindow
) -> exp.Query:
    """``rows`` without those whose key ``window`` holds: one hash anti-join on the key columns.

    Keys compare as the day's own dedupe compares them: NULL matches NULL.
    """
    if window.source is None:
        return rows
    session.register_scan(WINDOW, window.source)
    published = exp.select(*[exp.column(k, quoted=True) for k in key]).from_(WINDOW).subquery("w")
    same = exp.and_(
        *[
            exp.NullSafeEQ(this=exp.column(k, "d", quoted=True), expression=exp.column(k, "w", quoted=True))
            for k in key
        ]
    )
    return (
        exp.select(*[exp.column(c, "d", quoted=True) for c in columns])
        .from_(rows.subquery("d"))
        .join(published, on=same, join_type="anti")
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
            now = read_window(catalog, ref, window.ds, window.days)
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

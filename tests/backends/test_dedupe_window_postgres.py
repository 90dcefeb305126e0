"""Exactly once across days with two processes on a shared PostgreSQL catalog, deterministically."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
from pathlib import Path

import pytest

from lakeplane.ingest.dedupe import RECOMPUTED_KEY
from lakeplane.lake import open_lake
from tests.conftest import DAY1, DAY2
from tests.ingest.test_dedupe_window import deliver, make_lake, orders_file


def _ingest(project: str, day: str) -> None:
    open_lake(project).ingest("pos/orders", dt.date.fromisoformat(day))


@pytest.mark.slow
def test_both_days_read_before_either_commits_on_postgresql(tmp_path: Path, pg_catalog_uri: str) -> None:
    """The table's catalog row is locked until both processes wait to commit: both read the window
    before either commits, and the one that commits second must compute its day again."""
    import psycopg

    lake = make_lake(tmp_path, catalog=pg_catalog_uri)
    deliver(lake, "ndjson fast path", DAY1 - dt.timedelta(days=60), [10**9])  # the table exists
    lake.land("pos/orders", [orders_file(tmp_path / "one.ndjson", [1, 2, 3, 4])], DAY1)
    lake.land("pos/orders", [orders_file(tmp_path / "two.ndjson", [3, 4, 5])], DAY2)
    context = multiprocessing.get_context("spawn")
    with psycopg.connect(pg_catalog_uri) as holder:
        holder.execute("SELECT 1 FROM iceberg_tables WHERE table_name = 'orders' FOR UPDATE")
        procs = [
            context.Process(target=_ingest, args=(str(lake.project_dir), day.isoformat()))
            for day in (DAY1, DAY2)
        ]
        for proc in procs:
            proc.start()
        waiting = 0
        for _ in range(600):
            with psycopg.connect(pg_catalog_uri, autocommit=True) as watcher:
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()[0]  # type: ignore[index]
            if waiting == 2 or not all(proc.is_alive() for proc in procs):
                break
            time.sleep(0.1)
        holder.rollback()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    assert waiting == 2, "both processes were waiting to commit their day"

    rows = lake.query("SELECT CAST(ds AS VARCHAR) AS ds, order_id FROM processed.orders WHERE order_id < 100")
    days: dict[int, list[str]] = {}
    for row in rows.to_pylist():
        days.setdefault(row["order_id"], []).append(row["ds"])
    assert sorted(days) == [1, 2, 3, 4, 5] and all(len(d) == 1 for d in days.values()), days
    table = lake.catalog.load("shop.processed.orders")
    recomputed = [s.summary.additional_properties.get(RECOMPUTED_KEY) for s in table.snapshots() if s.summary]
    assert recomputed.count("1") == 1, "the second to commit found the first's day and computed again"

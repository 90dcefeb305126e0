"""Metric history in the catalog's database: what dynamic rules compare with."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakeplane.lake import open_lake
from lakeplane.quality import MetricHistory, RuleOutcome
from lakeplane.quality.history import adopt_history_file

DAY = dt.datetime(2026, 3, 1)


def outcome(metric: str, value: float, *children: RuleOutcome) -> RuleOutcome:
    return RuleOutcome(f"{metric} > 0", metric, True, value, metric_key=metric, children=list(children))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield engine
    engine.dispose()


def test_values_come_back_newest_first_and_a_rerun_replaces_its_day(engine: sa.Engine) -> None:
    history = MetricHistory(engine, "shop.orders")
    assert history("RowCount", 5) == []
    assert (
        history.record([outcome("RowCount", 6.0), outcome("Mean", 30.0, outcome("RowCount", 6.0))], DAY) == 2
    )
    assert history.record([outcome("RowCount", 7.0)], DAY) == 1  # the same day again: replaced
    history.record([outcome("RowCount", 60.0)], DAY + dt.timedelta(days=1))
    assert history("RowCount", 5) == [60.0, 7.0] and history("RowCount", 1) == [60.0]
    assert history("Mean", 5) == [30.0]
    assert MetricHistory(engine, "shop.other")("RowCount", 5) == []  # per dataset


def test_before_sees_only_earlier_stamps(engine: sa.Engine) -> None:
    history = MetricHistory(engine, "shop.orders")
    for day in range(3):
        history.record([outcome("RowCount", float(day))], DAY + dt.timedelta(days=day))
    backfill = history.before(DAY + dt.timedelta(days=1))
    assert backfill("RowCount", 5) == [0.0] and history("RowCount", 5) == [2.0, 1.0, 0.0]
    aware = dt.datetime(2026, 3, 2, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # 2026-03-01 23:00 UTC
    assert history.before(aware)("RowCount", 5) == [0.0]


def test_errors_and_non_numbers_are_not_recorded(engine: sa.Engine) -> None:
    history = MetricHistory(engine, "shop.orders")
    broken = RuleOutcome('Mean "x" > 1', "Mean", False, None, metric_key='Mean "x"', error=True)
    text = RuleOutcome("ColumnDataType", "ColumnDataType", True, "INTEGER", metric_key="ColumnDataType")
    assert history.record([broken, text], DAY) == 0
    assert history('Mean "x"', 5) == [] and history("ColumnDataType", 5) == []


def test_concurrent_first_users_create_the_table_once(tmp_path: Path) -> None:
    path, threads = tmp_path / "catalog.db", 8
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def first_use(number: int) -> None:
        engine = sa.create_engine(f"sqlite:///{path}")  # one engine each, as separate processes have
        try:
            start.wait()
            MetricHistory(engine, "shop.orders").record(
                [outcome("RowCount", float(number))], DAY + dt.timedelta(days=number)
            )
        except BaseException as error:
            errors.append(error)
        finally:
            engine.dispose()

    workers = [threading.Thread(target=first_use, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    engine = sa.create_engine(f"sqlite:///{path}")
    assert MetricHistory(engine, "shop.orders")("RowCount", 20) == [
        float(n) for n in reversed(range(threads))
    ]
    engine.dispose()


def test_a_lake_keeps_history_in_its_catalog_database(tmp_path: Path) -> None:
    lake = open_lake(tmp_path)
    MetricHistory(lake.catalog.state_engine, "t.z.x").record([outcome("RowCount", 1.0)], DAY)
    again = open_lake(tmp_path)
    assert MetricHistory(again.catalog.state_engine, "t.z.x")("RowCount", 1) == [1.0]
    assert sa.inspect(again.catalog.state_engine).has_table("iceberg_tables")
    assert not (tmp_path / ".lakeplane" / "dq_history.sqlite").exists()


def test_an_old_private_history_file_is_adopted_once(tmp_path: Path, engine: sa.Engine) -> None:
    old = tmp_path / ".lakeplane" / "dq_history.sqlite"
    old.parent.mkdir()
    with sqlite3.connect(old) as connection:  # the table as earlier versions wrote it
        connection.execute(
            "CREATE TABLE dq_metrics (dataset TEXT NOT NULL, metric_key TEXT NOT NULL, "
            "recorded_at TEXT NOT NULL, value REAL NOT NULL, "
            "PRIMARY KEY (dataset, metric_key, recorded_at))"
        )
        connection.executemany(
            "INSERT INTO dq_metrics VALUES (?, ?, ?, ?)",
            [
                ("shop.orders", "RowCount", "2026-03-01T00:00:00.000000", 5.0),
                ("shop.orders", "RowCount", "2026-03-02T00:00:00.000000", 6.0),
            ],
        )
    connection.close()
    history = MetricHistory(engine, "shop.orders")
    history.record([outcome("RowCount", 60.0)], DAY + dt.timedelta(days=1))  # newer than the file's
    assert adopt_history_file(old, engine) == 2
    assert history("RowCount", 5) == [60.0, 5.0]  # the table's own value of that day is kept
    assert not old.exists() and old.with_name("dq_history.sqlite.adopted").exists()
    assert adopt_history_file(old, engine) == 0

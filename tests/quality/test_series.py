"""Metric-history series: a gate's dynamic bounds see only the gate's values, ad-hoc checks only
theirs (unless asked), and a metrics table made before series existed is migrated when opened."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.lake import Lake
from lakeplane.quality import MetricHistory, RuleOutcome
from lakeplane.quality.history import ADHOC_SERIES, PIPELINE_SERIES, add_series_column
from tests.quality.shop import order_ids, shop_lake

#: A day before the ad-hoc checks (stamped now) and one after: a check sees only earlier stamps, so
#: each direction is tested where mixing the series would show.
DAY1, DAY2 = dt.date(2026, 11, 1), dt.date.today() + dt.timedelta(days=400)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    opened = shop_lake(tmp_path, {"pos/orders": {DAY1: order_ids(range(3)), DAY2: order_ids(range(3, 8))}})
    (opened.project_dir / "grow.dqdl").write_text("Rules = [ RowCount > avg(last(5)) ]\n")
    return opened


def cli_check(lake: Lake, *extra: str) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        [
            "--lake",
            str(lake.project_dir),
            "--output",
            "json",
            "dq",
            "check",
            "processed.orders",
            str(lake.project_dir / "grow.dqdl"),
            *extra,
        ],
    )
    assert result.exit_code in (0, 1), result.output
    [outcome] = json.loads(result.output)
    assert isinstance(outcome, dict)
    return outcome


def gate(lake: Lake, day: dt.date) -> dict[str, object]:
    """What a model's gate or a pipeline's quality step runs: the day's rows, the day's stamp."""
    [outcome] = lake.dq_check("processed.orders", "grow.dqdl", ds=day, only_ds=True)
    return outcome


def test_a_gate_ignores_ad_hoc_checks_and_the_reverse(lake: Lake) -> None:
    day1 = gate(lake, DAY1)  # 3 rows, recorded in the pipelines' series
    assert day1["history_missing"] and day1["passed"], day1["message"]

    first = cli_check(lake)  # 8 rows: against the ad-hoc series, empty, not the gate's 3
    assert first["history_missing"] and first["passed"], first["message"]

    day2 = gate(lake, DAY2)  # 5 rows against the gate's 3, not avg(3, ad-hoc 8) = 5.5
    assert day2["passed"] and not day2["history_missing"], day2["message"]
    assert str(day2["message"]).endswith("(avg(last(5)) = 3)"), day2["message"]

    again = cli_check(lake)  # 8 rows against the ad-hoc 8, not avg(8, the gate's 3) = 5.5
    assert not again["passed"] and not again["history_missing"], again["message"]

    asked = cli_check(lake, "--series", PIPELINE_SERIES)  # asked for: 8 against the gate's 3
    assert asked["passed"] and str(asked["message"]).endswith("(avg(last(5)) = 3)"), asked["message"]
    kept = MetricHistory(lake.catalog.state_engine, "shop.processed.orders")
    assert kept("RowCount", 9) == [5.0, 8.0, 3.0], "the asked-for check recorded into the gate's series"
    assert kept.with_series(ADHOC_SERIES)("RowCount", 9) == [8.0, 8.0]


OLD_SCHEMA = """
CREATE TABLE lakeplane_dq_metrics (
    dataset TEXT NOT NULL,
    metric_key TEXT NOT NULL,
    recorded_at VARCHAR(32) NOT NULL,
    value FLOAT NOT NULL,
    PRIMARY KEY (dataset, metric_key, recorded_at)
)
"""


@pytest.fixture
def old_database(tmp_path: Path) -> Iterator[sa.Engine]:
    path = tmp_path / "catalog.db"
    with sqlite3.connect(path) as old:
        old.execute(OLD_SCHEMA)
        old.executemany(
            "INSERT INTO lakeplane_dq_metrics VALUES (?, ?, ?, ?)",
            [
                ("shop.orders", "RowCount", "2026-03-01T00:00:00.000000", 10.0),
                ("shop.orders", "RowCount", "2026-03-02T00:00:00.000000", 12.0),
                ("shop.other", 'Mean "x"', "2026-03-01T00:00:00.000000", 1.5),
            ],
        )
    engine = sa.create_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def test_an_old_metrics_table_gets_its_series_column_and_keeps_its_values(old_database: sa.Engine) -> None:
    history = MetricHistory(old_database, "shop.orders")
    assert history("RowCount", 5) == [12.0, 10.0], "old values belong to the pipelines' series"
    assert history.with_series(ADHOC_SERIES)("RowCount", 5) == []
    assert MetricHistory(old_database, "shop.other")('Mean "x"', 5) == [1.5]
    # the series is part of the key: two series may record the same metric at the same time
    same_time = dt.datetime(2026, 3, 2)
    history.with_series(ADHOC_SERIES).record(
        [RuleOutcome("", "RowCount", True, 99.0, metric_key="RowCount")], same_time
    )
    assert history("RowCount", 5) == [12.0, 10.0]
    assert history.with_series(ADHOC_SERIES)("RowCount", 5) == [99.0]
    columns = [c["name"] for c in sa.inspect(old_database).get_columns("lakeplane_dq_metrics")]
    assert columns == ["dataset", "series", "metric_key", "recorded_at", "value"]
    assert not add_series_column(old_database), "migrated once"


def migrate_at_once(engines: list[sa.Engine]) -> list[bool]:
    """Each engine's :func:`add_series_column`, all started at the same moment from threads."""
    migrated: list[bool] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def open_it(engine: sa.Engine) -> None:
        try:
            start.wait()
            migrated.append(add_series_column(engine))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return migrated


def test_processes_opening_an_old_table_at_once_migrate_it_once(
    old_database: sa.Engine, tmp_path: Path
) -> None:
    engines = [sa.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}") for _ in range(4)]
    assert migrate_at_once(engines).count(True) == 1
    assert MetricHistory(old_database, "shop.orders")("RowCount", 5) == [12.0, 10.0]
    for engine in engines:
        engine.dispose()

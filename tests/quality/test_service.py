"""QualityChecks on its own: real Iceberg tables in a temp lake, the service given only the lake's
collaborators (session opener, scan planner, name resolver, project folder, metric history)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakeplane.catalog.scan import plan_scan
from lakeplane.engines import Capability
from lakeplane.lake import Lake
from lakeplane.quality import DQDLError, MetricHistory
from lakeplane.quality.service import QualityChecks, _primary_view
from tests.quality.shop import orders, shop_lake

DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
NOW = dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return shop_lake(
        tmp_path,
        {
            "pos/orders": {DAY1: orders((1, 10.0), (2, 20.0), (3, None)), DAY2: orders((4, 5.0), (5, 7.0))},
            "crm/stores": {DAY1: [{"store": n} for n in range(5)]},
        },
    )


def service(lake: Lake) -> QualityChecks:
    return QualityChecks(
        open_session=lambda job: lake.compute.embedded(job, (Capability.SANDBOX,)),
        plan=lambda table, snapshot_id: plan_scan(lake.catalog, table, snapshot_id=snapshot_id),
        resolve=lake.resolve_table,
        project_dir=lake.project_dir,
        history_for=lambda table: MetricHistory(lake.catalog.state_engine, table),
    )


def rules(lake: Lake, name: str, text: str) -> str:
    (lake.project_dir / name).write_text(text)
    return name


def test_the_whole_table_or_only_one_day(lake: Lake) -> None:
    checks = service(lake)
    ruleset = rules(lake, "orders.dqdl", 'Rules = [ RowCount = 5, IsComplete "amount", Sum "amount" > 0 ]')
    everything = checks.check("processed.orders", ruleset, ds=DAY2, now=NOW, record=False)
    assert [o["passed"] for o in everything] == [True, False, True]
    assert everything[1]["failing_rows"] == 1

    day = checks.check("processed.orders", ruleset, ds=DAY2, now=NOW, record=False, only_ds=True)
    assert [o["observed"] for o in day] == [2.0, 1.0, 12.0], "only the rows of ds = DAY2"
    assert day == lake.dq_check("processed.orders", ruleset, ds=DAY2, now=NOW, record=False, only_ds=True)


def test_references_from_the_ruleset_and_from_the_caller(lake: Lake) -> None:
    checks = service(lake)
    ruleset = rules(
        lake,
        "match.dqdl",
        'DataSources = { "AdditionalDataSources": ["processed.stores"] }\n'
        'Rules = [ RowCountMatch "stores" = 1.0, RowCountMatch "other" = 1.0 ]',
    )
    [by_file, by_caller] = checks.check(
        "processed.orders", ruleset, references={"other": "processed.orders"}, now=NOW, record=False
    )
    assert by_file["passed"] and by_file["observed"] == 1.0
    assert by_caller["passed"]
    with pytest.raises(DQDLError, match="unknown reference dataset 'other'"):
        checks.check("processed.orders", ruleset, now=NOW, record=False)


def test_metrics_are_kept_for_later_days_only(lake: Lake) -> None:
    checks = service(lake)
    ruleset = rules(lake, "dynamic.dqdl", "Rules = [ RowCount > avg(last(3)) ]")
    first = checks.check("processed.orders", ruleset, ds=DAY1, now=NOW, only_ds=True)
    assert first[0]["history_missing"] and first[0]["passed"]
    second = checks.check("processed.orders", ruleset, ds=DAY2, now=NOW, only_ds=True)
    assert not second[0]["passed"], "2 rows on DAY2 against 3 recorded for DAY1"
    again = checks.check("processed.orders", ruleset, ds=DAY1, now=NOW, only_ds=True)
    assert again[0]["history_missing"], "a rerun of DAY1 sees no value from DAY2"


def test_an_earlier_snapshot_is_checked_when_named(lake: Lake) -> None:
    checks = service(lake)
    table = lake.catalog.load("shop.processed.orders")
    first_day = table.history()[0].snapshot_id
    ruleset = rules(lake, "count.dqdl", "Rules = [ RowCount = 3 ]")
    assert checks.check("processed.orders", ruleset, snapshot_id=first_day, now=NOW, record=False)[0][
        "passed"
    ]
    assert not checks.check("processed.orders", ruleset, now=NOW, record=False)[0]["passed"]


def test_the_primary_view_is_built_not_formatted() -> None:
    assert _primary_view(None).sql("duckdb") == "CREATE TEMPORARY VIEW dq_primary AS SELECT * FROM dq_table"
    assert _primary_view(DAY1).sql("duckdb") == (
        "CREATE TEMPORARY VIEW dq_primary AS SELECT * FROM dq_table WHERE ds = CAST('2026-11-01' AS DATE)"
    )

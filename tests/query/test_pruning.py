from __future__ import annotations

import datetime as dt

from pyiceberg.expressions import AlwaysTrue, EqualTo, Reference
from pyiceberg.expressions.literals import literal

from lakeplane.catalog.scan import plan_scan
from lakeplane.lake import Lake
from lakeplane.query.compiler import compile_query
from tests.conftest import DAY1, DAY2, land_drop


def filters(sql: str) -> dict[str, object]:
    compiled = compile_query(sql, lambda n: f"d.{n}", params={"ds": dt.date(2026, 11, 1)})
    return {b.table: b.row_filter for b in compiled.tables}


def test_where_conjuncts_on_the_table_become_row_filters() -> None:
    found = filters(
        "SELECT * FROM processed.a x JOIN processed.b y ON x.k = y.k "
        "WHERE x.ds = :ds AND y.n > 3 AND x.k = y.k AND lower(x.s) = 'q'"
    )
    assert repr(found["d.processed.a"]) == repr(EqualTo(term=Reference("ds"), value=literal("2026-11-01")))
    assert "GreaterThan" in repr(found["d.processed.b"])


def test_a_table_read_without_filter_somewhere_is_not_pruned() -> None:
    found = filters("SELECT * FROM processed.a x JOIN processed.a y ON x.k = y.k WHERE x.ds = :ds")
    assert found["d.processed.a"] == AlwaysTrue()
    found = filters("SELECT * FROM processed.a WHERE ds = 1 OR k = 2")
    assert found["d.processed.a"] == AlwaysTrue()


def test_planning_reads_only_the_days_asked_for(demo_lake: Lake, drops: dict) -> None:
    for day in (DAY1, DAY2):
        land_drop(demo_lake, drops[day])
        demo_lake.ingest("partner/impressions", day)
    sql = "SELECT count(*) AS n FROM processed.impressions WHERE ds = :ds"
    compiled = compile_query(sql, demo_lake.resolve_table, params={"ds": DAY1})
    [binding] = compiled.tables
    pruned = plan_scan(demo_lake.catalog, binding.table, binding.row_filter)
    everything = plan_scan(demo_lake.catalog, binding.table)
    assert pruned.files and all("ds=2026-11-01" in f for f in pruned.files)
    assert len(everything.files) == 2 * len(pruned.files)
    counted = demo_lake.query(sql, {"ds": DAY1}).to_pylist()[0]["n"]
    assert counted == pruned.records

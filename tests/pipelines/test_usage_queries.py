"""Queries record the bytes they scanned, by every path that runs them."""

from __future__ import annotations

from lakeplane.lake import Lake
from lakeplane.query.history import QueryHistory
from tests.query.workgroup_world import lakeplane, telco_drops, telco_lake

__all__ = ["telco_drops", "telco_lake"]

SQL = "SELECT region, count(*) AS calls FROM telco.processed.cdr GROUP BY region"


def test_lake_query_and_the_cli_record_bytes_scanned(telco_lake: Lake) -> None:
    expected = telco_lake.queries.estimate(SQL, principal="fred").bytes
    assert expected > 0
    telco_lake.query(SQL, principal="fred")
    done = lakeplane(telco_lake, "query", "--as", "ana", SQL, "--output", "json")
    assert done.returncode == 0, done.stderr
    rows = {row.principal: row for row in QueryHistory(telco_lake.catalog.state_engine).list(limit=None)}
    for principal in ("fred", "ana"):
        row = rows[principal]
        assert row.outcome == "ok" and row.cache_hit is False
        assert row.bytes_scanned == row.bytes_estimated == expected, row
        assert row.to_dict()["bytes_scanned"] == expected

"""The query history: a row for every query by every path, refused and failed ones too, and
``lakeplane queries`` reading it back."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from lakeplane.errors import AccessDenied, EngineError, QueryError, QueryRefused
from lakeplane.lake import Lake, open_lake
from lakeplane.query.estimate import athena_cost
from lakeplane.query.history import QueryHistory, QueryRecord
from tests.query.workgroup_world import CDR, invoke, lakeplane, telco_drops, telco_lake, with_workgroups

__all__ = ["telco_drops", "telco_lake"]

SQL = "SELECT region, count(*) AS calls FROM cdr WHERE ds = DATE '2026-11-02' GROUP BY region"
STAR = "SELECT * FROM cdr"
WORKGROUPS = """workgroups:
  analysts:
    members: [role:analyst]
    bytes_scanned_cutoff_per_query: 4KB
  default:
    max_concurrent: 8
"""


def history(lake: Lake) -> list[QueryRecord]:
    return QueryHistory(lake.catalog.state_engine).list(limit=None)


@pytest.fixture
def lake(telco_lake: Lake) -> Lake:
    return with_workgroups(telco_lake, WORKGROUPS)


def test_lake_query_leaves_a_full_row(lake: Lake) -> None:
    result = lake.query(SQL, principal="ana")
    estimate = lake.queries.estimate(SQL, principal="ana")
    [row] = history(lake)
    assert (row.principal, row.workgroup, row.sql, row.tables, row.outcome) == (
        "ana",
        "analysts",
        SQL,
        [CDR],
        "ok",
    )
    assert row.rows == result.num_rows and row.seconds is not None and 0 < row.seconds < 30
    assert row.bytes_estimated == row.bytes_scanned == estimate.bytes > 0
    assert row.cost_usd == pytest.approx(athena_cost(estimate.bytes)) and row.cache_hit is False
    assert row.reason is None and row.bytes_actual is None


def test_refused_and_failed_queries_are_recorded(lake: Lake) -> None:
    with pytest.raises(QueryRefused):
        lake.query(STAR, principal="ana")  # over the workgroup's 4 KB
    with pytest.raises(AccessDenied):
        lake.query(SQL, principal="ian")  # the intern may not read telco
    with pytest.raises(QueryError):
        lake.query("SELECT FROM WHERE", principal="ana")
    data = Path(lake.catalog.load(CDR).location().removeprefix("file://")) / "data"
    data.rename(data.with_name("gone"))
    with pytest.raises(EngineError):
        lake.query(SQL, principal="fred")
    rows = {f"{r.principal}:{r.sql[:9]}": r for r in history(lake)}
    capped = rows["ana:SELECT * "]
    assert capped.outcome == "refused" and "bytes_scanned_cutoff_per_query" in (capped.reason or "")
    assert capped.bytes_estimated is not None and capped.bytes_estimated > 4096 and capped.rows is None
    assert capped.bytes_scanned == 0 and capped.cost_usd == 0
    assert capped.workgroup == "analysts" and capped.tables == [CDR]
    denied = rows["ian:SELECT re"]
    assert (
        denied.outcome == "refused"
        and "may not read" in (denied.reason or "")
        and denied.workgroup == "default"
    )
    assert rows["ana:SELECT FR"].outcome == "failed" and "parse" in (rows["ana:SELECT FR"].reason or "")
    broken = rows["fred:SELECT re"]
    assert broken.outcome == "failed" and broken.bytes_estimated is not None and broken.workgroup == "default"


def test_an_ungoverned_lake_records_queries_without_a_principal(telco_lake: Lake) -> None:
    (telco_lake.project_dir / "policy.yaml").unlink()
    lake = open_lake(telco_lake.project_dir)
    lake.query(SQL)
    [row] = history(lake)
    assert row.principal is None and row.workgroup is None and row.outcome == "ok"


def test_queries_from_threads_each_leave_one_row(lake: Lake) -> None:
    threads = [
        threading.Thread(target=lake.query, args=(SQL,), kwargs={"principal": "fred"}) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    rows = history(lake)
    assert len(rows) == 8 and len({r.id for r in rows}) == 8 and {r.outcome for r in rows} == {"ok"}


def test_the_command_line_records_and_lists_queries(lake: Lake) -> None:
    assert invoke(lake, "query", "--as", "ana", SQL)[0] == 0
    assert invoke(lake, "query", "--as", "ana", STAR)[0] == 1  # refused
    lake.query(SQL, principal="fred")
    code, out = invoke(lake, "--output", "json", "queries")
    listed = json.loads(out)
    assert code == 0 and [r["principal"] for r in listed] == ["fred", "ana", "ana"]  # latest first
    assert [r["outcome"] for r in listed] == ["ok", "refused", "ok"]
    assert listed[0]["bytes_scanned"] == listed[2]["bytes_scanned"] == listed[2]["bytes_estimated"] > 0
    assert listed[1]["bytes_scanned"] == 0 and listed[1]["bytes_estimated"] > 4096  # refused: read nothing
    assert listed[1]["cost_usd"] == 0 and listed[0]["cost_usd"] > 0
    code, out = invoke(lake, "--output", "json", "queries", "--principal", "ana", "--limit", "1")
    assert code == 0 and [(r["principal"], r["outcome"]) for r in json.loads(out)] == [("ana", "refused")]
    code, out = invoke(lake, "queries", "--workgroup", "default", "--output", "json")
    assert code == 0 and [r["principal"] for r in json.loads(out)] == ["fred"]
    code, out = invoke(lake, "queries", "--workgroup", "analysts")
    assert code == 0 and "refused" in out and "analysts" in out and "fred" not in out


@pytest.mark.slow
def test_a_query_in_another_process_is_recorded(lake: Lake) -> None:
    ran = lakeplane(lake, "query", "--as", "eve", SQL)
    assert ran.returncode == 0, ran.stderr
    listed = lakeplane(lake, "queries", "--principal", "eve", "--output", "json")
    [row] = json.loads(listed.stdout)
    assert row["sql"] == SQL and row["outcome"] == "ok" and row["workgroup"] == "default"
    assert row["bytes_scanned"] == lake.queries.estimate(SQL, principal="eve").bytes

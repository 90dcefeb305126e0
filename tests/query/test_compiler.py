from __future__ import annotations

import datetime as dt

import pytest

from lakeplane.errors import QueryError
from lakeplane.query.compiler import compile_query, referenced_tables

KNOWN = {"ads.processed.events", "ads.processed.users"}


def resolve(name: str) -> str:
    full = name if name.count(".") == 2 else f"ads.{name}"
    if full not in KNOWN:
        raise QueryError(f"unknown table '{name}'")
    return full


def test_tables_in_ctes_subqueries_and_joins_are_replaced() -> None:
    compiled = compile_query(
        "WITH recent AS (SELECT * FROM processed.events WHERE ds = :ds) "
        "SELECT r.id FROM recent r JOIN ads.processed.users AS u ON u.id = r.user_id "
        "WHERE r.id IN (SELECT id FROM processed.events) UNION ALL SELECT 1",
        resolve,
        params={"ds": dt.date(2026, 11, 1)},
    )
    aliases = {b.table: b.alias for b in compiled.tables}
    assert set(aliases) == {"ads.processed.events", "ads.processed.users"}
    assert "processed" not in compiled.sql
    assert compiled.sql.count(f"{aliases['ads.processed.events']} AS events") == 2
    assert f"{aliases['ads.processed.users']} AS u" in compiled.sql
    assert "CAST('2026-11-01' AS DATE)" in compiled.sql
    assert "FROM recent AS r" in compiled.sql, "CTE references stay CTE references"


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT 1; SELECT 2", "expected one statement, got 2"),
        ("INSERT INTO t VALUES (1)", "only read-only queries are allowed, not INSERT"),
        ("COPY t TO '/tmp/x'", "only read-only queries"),
        ("ATTACH 'x.db'", "only read-only queries"),
        ("SELECT * FROM read_csv('/etc/passwd')", "not allowed"),
        ("SELECT * FROM 'data.parquet'", "unknown table 'data.parquet'"),
        ("SELECT FROM WHERE", "does not parse"),
    ],
)
def test_refused_sql(sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        compile_query(sql, resolve)


def test_referenced_tables_skip_ctes() -> None:
    sql = "WITH a AS (SELECT * FROM processed.x) SELECT * FROM a JOIN curated.y USING (k)"
    assert sorted(referenced_tables(sql)) == ["curated.y", "processed.x"]

"""The last step of a compile keeps a query's meaning in dialects without QUALIFY.

Each query is run twice on DuckDB: as written (DuckDB runs QUALIFY itself) and after the elimination
lakeplane applies for Spark, written back as DuckDB SQL; the answers must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from lakeplane.errors import QueryError
from lakeplane.query.compiler import compile_query
from lakeplane.query.transpile import eliminate_qualify

SCHEMA: dict[str, object] = {
    "t": {"a": "INT", "b": "INT", "ds": "DATE"},
    "u": {"a": "INT", "name": "VARCHAR"},
}


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT i % 5 AS a, (i * 7) % 11 AS b, DATE '2026-11-01' + CAST(i % 3 AS INTEGER) AS ds "
        "FROM range(40) AS r(i)"
    )
    con.execute("CREATE TABLE u AS SELECT i AS a, 'n' || i AS name FROM range(5) AS r(i)")
    yield con
    con.close()


QUERIES = [
    # the demo's shape: a QUALIFY inside a CTE, every column qualified by the governed rewrite
    "WITH latest AS (SELECT * FROM t WHERE ds <= DATE '2026-11-02' QUALIFY ds = max(ds) OVER ()) "
    "SELECT l.a, count(*) FROM latest AS l JOIN u ON u.a = l.a GROUP BY l.a",
    "SELECT a, b FROM t QUALIFY row_number() OVER (PARTITION BY a ORDER BY b DESC, ds) = 1",
    # ORDER BY and LIMIT act on the rows QUALIFY keeps, not before it
    "SELECT a, b, ds FROM t QUALIFY rank() OVER (PARTITION BY a ORDER BY b) <= 2 ORDER BY b, a, ds LIMIT 3",
    # DISTINCT too
    "SELECT DISTINCT a FROM t QUALIFY b = max(b) OVER (PARTITION BY a)",
    # grouped: the window reads an aggregate, ordering by a column that is not an output name
    "SELECT a, count(*) AS n FROM t GROUP BY a QUALIFY rank() OVER (ORDER BY count(*) DESC) <= 2 ORDER BY t.a",
    # the filter reads a column the query does not output
    "SELECT a FROM t QUALIFY ds = min(ds) OVER (PARTITION BY a) AND b > 3 ORDER BY 1",
    # unnamed outputs and a filter on an output's alias
    "SELECT a + 1, b AS bb FROM t QUALIFY bb = max(b) OVER (PARTITION BY a) ORDER BY 1, 2",
    # in a subquery and in a union member
    "SELECT count(*) FROM (SELECT a FROM t QUALIFY b = max(b) OVER (PARTITION BY a, ds)) AS s "
    "UNION ALL SELECT count(*) FROM t",
]


def rows(con: duckdb.DuckDBPyConnection, expression: exp.Expr) -> list[tuple[object, ...]]:
    return con.execute(expression.sql("duckdb")).fetchall()


@pytest.mark.parametrize("qualified", [False, True], ids=["as-written", "qualified"])
@pytest.mark.parametrize("sql", QUERIES)
def test_eliminated_qualify_gives_the_same_rows(
    con: duckdb.DuckDBPyConnection, sql: str, qualified: bool
) -> None:
    expression = sqlglot.parse_one(sql, read="duckdb")
    if qualified:  # what the governed rewrite does to every query
        expression = qualify(expression, schema=SCHEMA, dialect="duckdb")
    assert isinstance(expression, exp.Expression)
    expected = rows(con, expression)
    assert expected, "an empty answer would prove nothing"
    eliminated = eliminate_qualify(expression.copy(), "spark")
    assert not any(s.args.get("qualify") for s in eliminated.find_all(exp.Select))
    got = rows(con, eliminated)
    ordered = "ORDER BY" in sql and "LIMIT" in sql
    assert (got if ordered else sorted(got, key=repr)) == (
        expected if ordered else sorted(expected, key=repr)
    )


def test_spark_sql_reads_no_table_outside_its_scope() -> None:
    """The demo model's failure on Spark: the wrapper read ``campaigns.ds`` where only ``_t`` exists."""
    compiled = compile_query(
        "WITH campaigns AS (SELECT campaigns.* FROM processed.campaigns AS campaigns "
        "QUALIFY campaigns.ds = max(campaigns.ds) OVER ()) SELECT name FROM campaigns",
        lambda name: f"adtech.{name}",
        write="spark",
    )
    assert "QUALIFY" not in compiled.sql.upper()
    wrapper_filter = compiled.sql.split("AS _t WHERE", 1)[1]
    assert "campaigns" not in wrapper_filter.split(")")[0], compiled.sql


def test_duckdb_keeps_qualify() -> None:
    compiled = compile_query(
        "SELECT a FROM t QUALIFY a = max(a) OVER ()", lambda name: f"x.y.{name}", write="duckdb"
    )
    assert "QUALIFY" in compiled.sql


def _compiled(sql: str, read: str, write: str) -> str:
    return compile_query(sql, lambda name: f"x.y.{name}", read=read, write=write).sql


@pytest.mark.parametrize("write", ["duckdb", "spark"])
@pytest.mark.parametrize(
    "literal, cast",
    [
        ("decimal '0.06'", "CAST('0.06' AS DECIMAL(3, 2))"),
        ("DECIMAL '-12.50'", "CAST('-12.50' AS DECIMAL(4, 2))"),
        ("decimal '.5'", "CAST('.5' AS DECIMAL(2, 1))"),
        ("decimal '42'", "CAST('42' AS DECIMAL(2, 0))"),
        ("CAST(x AS DECIMAL)", "CAST(x AS DECIMAL(38, 0))"),
    ],
)
def test_trino_decimals_keep_their_type(literal: str, cast: str, write: str) -> None:
    assert cast in _compiled(f"SELECT {literal} FROM t", "trino", write)


@pytest.mark.parametrize(("read", "precision"), [("duckdb", "18, 3"), ("spark", "10, 0")])
def test_decimal_without_precision_is_the_dialects_default(read: str, precision: str) -> None:
    for write in ("duckdb", "spark"):
        assert f"AS DECIMAL({precision}))" in _compiled("SELECT CAST(x AS DECIMAL) FROM t", read, write)


def test_a_decimal_literal_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(QueryError, match="is not a decimal number"):
        compile_query("SELECT decimal 'abc'", lambda name: name, read="trino")
    with pytest.raises(QueryError, match="at most 38 fit"):
        compile_query(f"SELECT decimal '{'9' * 39}'", lambda name: name, read="trino")


def test_timestamps_without_time_zone_stay_so_on_spark() -> None:
    sql = "SELECT timestamp '2026-11-01 10:00:00.123', CAST(x AS TIMESTAMP(3)) FROM t"
    assert _compiled(sql, "trino", "spark").count("AS TIMESTAMP_NTZ)") == 2
    assert _compiled(sql, "trino", "duckdb").count("AS TIMESTAMP)") == 2


def test_fractions_have_duckdbs_decimal_type_on_spark() -> None:
    assert "CAST(0.06 AS DECIMAL(3, 2))" in _compiled("SELECT 0.06, 1.5", "trino", "spark")
    assert ", 1.5" in _compiled("SELECT 0.06, 1.5", "trino", "spark")


def test_a_date_moved_by_an_interval_stays_a_date_on_duckdb() -> None:
    sql = "SELECT date '2026-01-31' + interval '1' month, timestamp '2026-01-01 00:00:00' + interval '1' day"
    compiled = _compiled(sql, "trino", "duckdb")
    assert "CAST(CAST('2026-01-31' AS DATE) + INTERVAL '1' MONTH AS DATE)" in compiled
    assert ", CAST('2026-01-01 00:00:00' AS TIMESTAMP) + INTERVAL '1' DAY" in compiled  # a timestamp already


def test_time_is_refused_on_spark() -> None:
    with pytest.raises(QueryError, match="TIME values are not supported on spark"):
        compile_query("SELECT time '10:00:00'", lambda name: name, read="trino", write="spark")

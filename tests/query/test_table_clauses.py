"""A table reference's clauses go with it through the compile, or the query is refused naming them."""

from __future__ import annotations

import pytest
from pyiceberg.expressions import AlwaysTrue, EqualTo

from lakeplane.errors import QueryError
from lakeplane.query.compiler import compile_query


def resolve(name: str) -> str:
    return name if name.count(".") == 2 else f"ads.{name}"


@pytest.mark.parametrize(
    "sql, read, kept",
    [
        (
            "SELECT * FROM processed.events TABLESAMPLE BERNOULLI (10)",
            "trino",
            "TABLESAMPLE BERNOULLI (10 PERCENT)",
        ),
        (
            "SELECT * FROM processed.events AS e TABLESAMPLE SYSTEM (5)",
            "trino",
            "TABLESAMPLE SYSTEM (5 PERCENT)",
        ),
        ("SELECT * FROM processed.events TABLESAMPLE 10 ROWS", "duckdb", "(10 ROWS)"),
        (
            "SELECT k FROM processed.events UNPIVOT (v FOR k IN (a, b))",
            "duckdb",
            "UNPIVOT(v FOR k IN (a, b))",
        ),
        (
            "SELECT * FROM processed.events PIVOT (sum(v) FOR k IN (1, 2))",
            "duckdb",
            "PIVOT(SUM(v) FOR k IN (1, 2))",
        ),
        ("SELECT a FROM processed.events AS e(a, b)", "trino", "AS e(a, b)"),
    ],
)
def test_clauses_are_kept(sql: str, read: str, kept: str) -> None:
    compiled = compile_query(sql, resolve, read=read, write="duckdb")
    assert kept in compiled.sql
    assert "processed" not in compiled.sql


@pytest.mark.parametrize(
    "sql, clause",
    [
        ("SELECT * FROM processed.events FOR VERSION AS OF 3", "time travel (FOR VERSION/TIMESTAMP AS OF)"),
        ("SELECT * FROM processed.events WITH (NOLOCK)", "a table hint"),
    ],
)
def test_clauses_that_cannot_be_kept_are_refused(sql: str, clause: str) -> None:
    read = "trino" if "VERSION" in sql else "duckdb"
    with pytest.raises(QueryError, match="is not supported") as refused:
        compile_query(sql, resolve, read=read if "NOLOCK" not in sql else "spark")
    assert refused.value.clause == clause and refused.value.table == "processed.events"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM processed.events TABLESAMPLE 10 ROWS WHERE ds = '2026-11-01'",
        "SELECT * FROM processed.events AS e(ds, x) WHERE ds = '2026-11-01'",
        "SELECT * FROM processed.events UNPIVOT (ds FOR k IN (a, b)) WHERE ds = '2026-11-01'",
    ],
)
def test_no_pruning_through_a_sample_pivot_or_renaming(sql: str) -> None:
    """The WHERE filters the sampled rows or names the pivot's and the alias list's columns, not the
    table's: files are not pruned by it."""
    (binding,) = compile_query(sql, resolve).tables
    assert isinstance(binding.row_filter, AlwaysTrue)
    (plain,) = compile_query("SELECT * FROM processed.events WHERE ds = '2026-11-01'", resolve).tables
    assert isinstance(plain.row_filter, EqualTo)

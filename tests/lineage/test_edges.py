"""Tracing a compiled query's output columns to the lake columns they read."""

from __future__ import annotations

import pytest

from lakeplane.errors import LineageError
from lakeplane.lineage.edges import model_edges
from lakeplane.query.compiler import CompileContext, compile_sql

A, B = "d.processed.a", "d.processed.b"
COLUMNS = {A: ["id", "k", "x", "ds"], B: ["id", "k", "y", "ds"]}


def edges(sql: str) -> dict[str, set[tuple[str, str | None]]]:
    compiled = compile_sql(sql, CompileContext(resolve=lambda n: f"d.{n}", params={"ds": None}))
    found: dict[str, set[tuple[str, str | None]]] = {}
    for edge in model_edges(compiled, "d.curated.t", COLUMNS.__getitem__, "d.curated.t"):
        if edge.target_column is not None:
            found.setdefault(edge.target_column, set()).add((edge.source_table, edge.source_column))
    return found


def test_union_branches_by_position() -> None:
    found = edges("SELECT id, x AS v FROM processed.a UNION ALL SELECT k, y FROM processed.b")
    assert found == {"id": {(A, "id"), (B, "k")}, "v": {(A, "x"), (B, "y")}}


def test_scalar_subquery_and_star_through_a_derived_table() -> None:
    found = edges("SELECT s.*, (SELECT max(y) FROM processed.b) AS top FROM (SELECT * FROM processed.a) AS s")
    assert found["x"] == {(A, "x")} and found["ds"] == {(A, "ds")}
    assert found["top"] == {(B, "y")}


def test_row_counts_follow_the_rows_of_the_join() -> None:
    inner = edges("SELECT count(*) AS n FROM processed.a AS a JOIN processed.b AS b ON a.k = b.k")
    assert inner == {"n": {(A, None), (B, None)}}
    left = edges("SELECT count(*) AS n FROM processed.a AS a LEFT JOIN processed.b AS b ON a.k = b.k")
    assert left == {"n": {(A, None)}}
    semi = edges("SELECT count(*) AS n FROM processed.a AS a WHERE a.k IN (SELECT k FROM processed.b)")
    assert semi == {"n": {(A, None)}}


def test_literals_have_no_sources_and_filters_are_not_edges() -> None:
    found = edges("SELECT 1 AS one, a.x FROM processed.a AS a WHERE a.k = 'z' ORDER BY a.id")
    assert found == {"x": {(A, "x")}}


def test_a_column_no_input_has_is_an_error() -> None:
    with pytest.raises(LineageError, match=r"d\.curated\.t"):
        edges("SELECT a.nope FROM processed.a AS a")

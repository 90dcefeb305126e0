"""Lineage edges: which source tables and columns feed each output column of a model or ingest step.

A model's edges come from its compiled query (the one compiler, ungoverned: the names of the
tables and columns, never their values). The query is qualified with the input tables' schemas
(sqlglot's optimizer: stars expanded, every column bound to its source), then each output column is
walked down through CTEs, derived tables, unions and scalar subqueries to the lake tables it reads.
A column computed from rows rather than values (``count(*)``) depends on the table itself: its
edge starts at the table's node (``column`` None). Only direct dependencies are edges; columns that
are only joined, filtered or grouped on are not.

An ingest step's edges copy each declared field of the raw dataset to the processed table's column
of the same name; ``ds`` comes from the business date the batches were landed for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from lakeplane.errors import LineageError
from lakeplane.query.compiler import CompiledQuery

#: How a raw dataset is named as a lineage node: ``raw:<source>/<dataset>``.
RAW_PREFIX = "raw:"
#: What ``ds`` is in a processed table: not a field of the raw records.
BUSINESS_DATE = "the business date the batches were landed for"


@dataclass(frozen=True, order=True)
class Edge:
    """One lineage edge: ``source`` feeds ``target``.

    Attributes:
        source_table: the full name of the table read (``raw:<dataset>`` for a raw dataset).
        source_column: the column read; None when the target depends on the rows (``count(*)``)
            or, for a table-level edge, on the table as a whole.
        target_table: the table written.
        target_column: the column written; None for a table-level edge.
        transform: the expression computing the target, when it is not a plain copy.
        model: what wrote the edge: the model's table, or ``ingest:<dataset>``.
    """

    source_table: str
    source_column: str | None
    target_table: str
    target_column: str | None
    transform: str | None = None
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Edge:
        return cls(**data)


#: A table's column names, by the table's full name.
ColumnsOf = Callable[[str], list[str]]


def model_edges(compiled: CompiledQuery, target: str, columns_of: ColumnsOf, model: str) -> list[Edge]:
    """The table- and column-level edges of a model writing ``target`` from ``compiled``.

    Args:
        compiled: the model's query, compiled (its tables replaced by the aliases of their scans).
        target: the full name of the model's table.
        columns_of: the columns of each table the query reads.
        model: what the edges are recorded for (the model's name).

    Raises:
        LineageError: the query cannot be qualified (a column no input has).
    """
    table_of = {binding.alias: binding.table for binding in compiled.tables}
    schema: dict[str, object] = {
        alias: dict.fromkeys(columns_of(table), "VARCHAR") for alias, table in table_of.items()
    }
    written = (
        {s.alias_or_name: s for s in compiled.expression.selects}
        if isinstance(compiled.expression, exp.Query)
        else {}
    )
    try:
        qualified = qualify(
            compiled.expression.copy(),
            schema=schema,
            dialect="duckdb",
            quote_identifiers=False,
            validate_qualify_columns=True,
        )
    except OptimizeError as exc:
        raise LineageError(f"lineage of {model}: {exc}", table=target) from None
    root = build_scope(qualified)
    if root is None or not isinstance(qualified, exp.Query):
        return []
    tracer = _Tracer(table_of)
    edges = {Edge(table, None, target, None, None, model) for table in sorted(set(table_of.values()))}
    for position, select in enumerate(qualified.selects):
        name = select.alias_or_name
        as_written = written.get(name)
        expression = select.unalias()
        transform = None
        if not isinstance(expression, exp.Column) and as_written is not None:
            transform = as_written.unalias().sql(dialect="duckdb")
        for source_table, source_column in sorted(
            tracer.output(root, position), key=lambda s: (s[0], s[1] or "")
        ):
            edges.add(Edge(source_table, source_column, target, name, transform, model))
    return sorted(edges, key=_edge_order)


def ingest_edges(dataset: str, table: str, fields: Iterable[str]) -> list[Edge]:
    """The edges of the ingest step of ``dataset``: each field copied to its column, ``ds`` from the
    business date, and the table-level edge."""
    source, step = RAW_PREFIX + dataset, f"ingest:{dataset}"
    edges = [Edge(source, None, table, None, None, step)]
    edges += [Edge(source, field, table, field, None, step) for field in fields]
    edges.append(Edge(source, None, table, "ds", BUSINESS_DATE, step))
    return edges


def _edge_order(edge: Edge) -> tuple[str, str, str, str]:
    return (edge.target_column or "", edge.source_table, edge.source_column or "", edge.target_table)


Source = tuple[str, str | None]


class _Tracer:
    """Walks a qualified query's scopes from an output column down to lake table columns."""

    def __init__(self, table_of: Mapping[str, str]) -> None:
        self.table_of = table_of

    def output(self, scope: Scope, position: int) -> set[Source]:
        """The sources of the select at ``position`` of ``scope`` (each branch of a union)."""
        if scope.set_operation_scopes:
            found: set[Source] = set()
            for branch in scope.set_operation_scopes:
                found |= self.output(branch, position)
            return found
        selects = scope.expression.selects if isinstance(scope.expression, exp.Query) else []
        if position >= len(selects):
            return set()
        return self.expression(scope, selects[position].unalias())

    def named(self, scope: Scope, name: str) -> set[Source]:
        """The sources of the output column ``name`` of ``scope``."""
        target = scope
        while target.set_operation_scopes:  # a union's columns are named by its first branch
            target = target.set_operation_scopes[0]
        selects = target.expression.selects if isinstance(target.expression, exp.Query) else []
        for position, select in enumerate(selects):
            if select.alias_or_name == name:
                return self.output(scope, position)
        if any(isinstance(s, exp.Star) for s in selects):  # a source without a schema
            return self.rows(scope)
        return set()

    def expression(self, scope: Scope, node: exp.Expr) -> set[Source]:
        """The sources of ``node``, an expression evaluated in ``scope``."""
        found: set[Source] = set()
        nested = {id(s.expression): s for s in (*scope.subquery_scopes, *scope.udtf_scopes)}
        stack = [node]
        while stack:
            current = stack.pop()
            if id(current) in nested:  # a scalar subquery: what its output reads
                found |= self.output(nested[id(current)], 0)
                continue
            if isinstance(current, exp.Column):
                found |= self.column(scope, current)
                continue
            if isinstance(current, exp.Star) and isinstance(current.parent, exp.Count):
                found |= self.rows(scope)  # count(*) counts the rows of every source
                continue
            stack.extend(current.iter_expressions())
        return found

    def column(self, scope: Scope, column: exp.Column) -> set[Source]:
        source = scope.sources.get(column.table)
        if isinstance(source, exp.Table):
            table = self.table_of.get(source.name)
            return {(table, column.name)} if table else set()
        if isinstance(source, Scope):
            return self.named(source, column.name)
        return set()

    def rows(self, scope: Scope) -> set[Source]:
        """What ``scope``'s rows come from, as table-level sources: the lake tables its FROM and its
        inner joins read (a LEFT JOIN keeps the rows of its left side; a semi or anti join
        only filters them)."""
        found: set[Source] = set()
        if scope.set_operation_scopes:
            for branch in scope.set_operation_scopes:
                found |= self.rows(branch)
            return found
        for name in _row_sources(scope):
            source = scope.sources.get(name)
            if isinstance(source, exp.Table):
                table = self.table_of.get(source.name)
                if table:
                    found.add((table, None))
            elif isinstance(source, Scope):
                found |= self.rows(source)
        return found


def _row_sources(scope: Scope) -> list[str]:
    """The names of the sources of ``scope`` whose rows make its rows."""
    select = scope.expression
    if not isinstance(select, exp.Select):
        return list(scope.sources)
    from_ = select.args.get("from_") or select.args.get("from")
    names = [from_.this.alias_or_name] if from_ is not None else []
    for join in select.args.get("joins") or []:
        side, kind = join.side.upper(), join.kind.upper()
        if kind in ("SEMI", "ANTI") or side == "LEFT":
            continue
        if side == "RIGHT":
            names = []
        names.append(join.this.alias_or_name)
    return names

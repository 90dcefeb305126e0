"""The governed compile: every table becomes its secured form beneath the caller's query.

After the tables are resolved, the query is qualified (sqlglot) against the columns the caller may
see, so ``SELECT *`` expands to those columns only and a reference to a denied column fails with the
principal, table and column. Then each table reference is replaced by a subquery that selects the
visible columns, masked ones already masked, from rows the caller's row filters allow. Whatever the
query does above it (aliases, functions, grouping, filtering, joins, set operations) only ever sees
masked values and allowed rows. Partition pruning keeps working, except on masked columns, whose raw
values must not decide which files are read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression
from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.schema import MappingSchema

from lakeplane.errors import AccessDenied, QueryError
from lakeplane.governance.access import TableAccess
from lakeplane.governance.masks import mask_expression, sql_type
from lakeplane.query.compiler import (
    CompileContext,
    TableBinding,
    bind_parameters,
    parse_single_select,
    refuse_unsafe,
    resolve_tables,
)
from lakeplane.query.pruning import scan_filter

_UNRESOLVED = re.compile(r"Column '([^']+)' could not be resolved|Unknown column: (\S+)")


@dataclass(frozen=True)
class SecuredQuery:
    """Secured SQL for one engine, what it reads, and what the policy applied."""

    sql: str
    tables: list[TableBinding]
    access: dict[str, TableAccess]
    columns_read: list[str]
    expression: exp.Expression

    @property
    def masks(self) -> dict[str, str]:
        return {f"{a.table}.{c}": m.kind for a in self.access.values() for c, m in a.masked.items()}

    @property
    def filters(self) -> list[str]:
        return [f"{a.table}: {f.sql()}" for a in self.access.values() for f in a.row_filters]


def compile_secured(sql: str, resolve: Callable[[str], str], access_for: Callable[[str], TableAccess],
                    key: bytes, *, principal: str, read: str = "duckdb", write: str = "duckdb",
                    params: Mapping[str, Any] | None = None) -> SecuredQuery:
    """Compile ``sql`` for ``principal``: checked, secured and transpiled.

    Raises:
        AccessDenied: the query reads a table or column the principal may not see.
        QueryError: the query is not a single read-only statement, or names unknown things.
    """
    expression = parse_single_select(sql, read)
    read = "trino" if read == "athena" else read
    ctx = CompileContext(resolve=resolve, params=params or {})
    expression = refuse_unsafe(expression, ctx)
    for table in expression.find_all(exp.Table):
        if table.args.get("version") or table.args.get("when"):
            raise QueryError("time travel is not allowed in governed queries", table=table.sql())
    expression = resolve_tables(bind_parameters(expression, ctx), ctx)
    access = {b.alias: access_for(b.table) for b in ctx.bindings.values()}
    for table_access in access.values():
        if not table_access.visible:
            reasons = sorted({c.because for c in table_access.columns})
            raise AccessDenied(f"principal '{principal}' may not read table {table_access.table} "
                               f"({'; '.join(reasons)})",
                               principal=principal, table=table_access.table, column=None)
    _refuse_denied_replacements(expression, access, principal)
    expression = _qualify(expression, access, principal, read)
    columns_read = _columns_read(expression, access)
    bindings = [_pruned(b, expression, access[b.alias]) for b in ctx.bindings.values()]
    expression = expression.transform(lambda node: _secure(node, access, key), copy=False)
    return SecuredQuery(expression.sql(dialect=write, copy=False), bindings, access, columns_read, expression)


@functools.lru_cache(maxsize=256)
def _type_sql(column_type: str, dialect: str) -> str:
    return sql_type(column_type).sql(dialect)


def _column_denied(principal: str, table_access: TableAccess, column: str, because: str) -> AccessDenied:
    return AccessDenied(f"principal '{principal}' may not read column {table_access.table}.{column} "
                        f"({because})", principal=principal, table=table_access.table, column=column)


def _refuse_denied_replacements(expression: exp.Expression, access: dict[str, TableAccess],
                                principal: str) -> None:
    """``* REPLACE (expr AS col)`` names ``col`` itself: a denied one is refused, not dropped."""
    for star in expression.find_all(exp.Star):
        for item in star.args.get("replace") or []:
            name = item.alias_or_name
            for table_access in access.values():
                decision = table_access.column(name)
                if decision is not None and decision.access == "denied" and not any(
                        (d := a.column(name)) is not None and d.access != "denied" for a in access.values()):
                    raise _column_denied(principal, table_access, name, decision.because)


def _qualify(expression: exp.Expression, access: dict[str, TableAccess], principal: str,
             dialect: str) -> exp.Expression:
    schema = MappingSchema(
        {alias: {c.column: _type_sql(c.type, dialect) for c in a.visible} for alias, a in access.items()},
        dialect=dialect)
    try:
        return qualify(expression, schema=schema, dialect=dialect, validate_qualify_columns=True)
    except OptimizeError as exc:
        match = _UNRESOLVED.search(str(exc))
        name = (match.group(1) or match.group(2)) if match else None
        if name is None:  # e.g. a denied column in JOIN ... USING: sqlglot cannot join on it
            using = [c.name for join in expression.find_all(exp.Join) for c in join.args.get("using") or []]
            name = next((c for c in using for a in access.values()
                         if (d := a.column(c)) is not None and d.access == "denied"), None)
        for table_access in access.values():
            decision = table_access.column(name) if name else None
            if name and decision is not None and decision.access == "denied":
                raise _column_denied(principal, table_access, name, decision.because) from None
        raise QueryError(f"cannot resolve the query's columns: {exc}", column=name) from None


def _columns_read(expression: exp.Expression, access: dict[str, TableAccess]) -> list[str]:
    found: list[str] = []
    for scope in traverse_scope(expression):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table) and source.name in access:
                name = f"{access[source.name].table}.{column.name}"
                if name not in found:
                    found.append(name)
    return found


def _pruned(binding: TableBinding, expression: exp.Expression, access: TableAccess) -> TableBinding:
    """The binding with row filters for planning, leaving out conditions on masked columns."""
    masked = set(access.masked)
    filters = []
    for table in expression.find_all(exp.Table):
        if table.name != binding.alias:
            continue
        condition = scan_filter(table)
        filters.append(_without(condition, masked))
    return TableBinding(binding.table, binding.alias, tuple(filters))


def _without(condition: BooleanExpression, columns: set[str]) -> BooleanExpression:
    if isinstance(condition, And):
        left, right = _without(condition.left, columns), _without(condition.right, columns)
        if isinstance(left, AlwaysTrue):
            return right
        return left if isinstance(right, AlwaysTrue) else And(left, right)
    term = getattr(condition, "term", None)
    return AlwaysTrue() if term is not None and term.name in columns else condition


def _secure(node: exp.Expression, access: dict[str, TableAccess], key: bytes) -> exp.Expression:
    if not isinstance(node, exp.Table) or node.name not in access:
        return node
    table_access = access[node.name]
    source = exp.to_identifier(node.name)
    projections = []
    for column in table_access.visible:
        ref = exp.column(column.column, table=source.copy())
        value = mask_expression(column.mask, ref, column.type, key) if column.mask else ref
        projections.append(exp.alias_(value, column.column, quoted=True, copy=False))
    select = exp.Select(expressions=projections).from_(
        exp.Table(this=source, alias=exp.TableAlias(this=source.copy())), copy=False)
    if table_access.row_filters:
        condition = exp.and_(*[_qualified(f, source) for f in table_access.row_filters], copy=False)
        select = select.where(condition, copy=False)
    alias = node.alias or node.name
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _qualified(condition: exp.Expression, source: exp.Identifier) -> exp.Expression:
    def qualify_column(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table:
            return exp.column(node.name, table=source.copy())
        return node

    return condition.copy().transform(qualify_column, copy=False)

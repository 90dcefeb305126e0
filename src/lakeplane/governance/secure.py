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
    KEPT_TABLE_CLAUSES,
    CompileContext,
    CompiledQuery,
    Rewrite,
    TableBinding,
    bind_parameters,
    compile_sql,
    pruning_filter,
    refuse_unsafe,
    resolve_tables,
)

_UNRESOLVED = re.compile(
    r"Column '([^']+)' could not be resolved|Unknown column: (\S+)|Ambiguous column '([^']+)'"
)


#: A governed compile's result; the same type as any compile's.
SecuredQuery = CompiledQuery


def refuse_time_travel(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """Governed queries read the current state only: policies bind to today's schema."""
    for table in expression.find_all(exp.Table):
        if table.args.get("version") or table.args.get("when"):
            raise QueryError("time travel is not allowed in governed queries", table=table.sql())
    return expression


def decide_access(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """Decide each bound table for the principal; a table it may not read at all is refused."""
    assert ctx.access_for is not None, "a governed compile needs access_for"
    ctx.access = {b.alias: ctx.access_for(b.table) for b in ctx.bindings.values()}
    for table_access in ctx.access.values():
        if not table_access.visible:
            reasons = sorted({c.because for c in table_access.columns})
            raise AccessDenied(
                f"principal '{ctx.principal}' may not read table {table_access.table} ({'; '.join(reasons)})",
                principal=ctx.principal or "",
                table=table_access.table,
                column=None,
            )
    return expression


def refuse_denied_replacements(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """``* REPLACE (expr AS col)`` names ``col`` itself: a denied one is refused, not dropped."""
    access = ctx.access
    for star in expression.find_all(exp.Star):
        for item in star.args.get("replace") or []:
            name = item.alias_or_name
            for table_access in access.values():
                decision = table_access.column(name)
                if (
                    decision is not None
                    and decision.access == "denied"
                    and not any(
                        (d := a.column(name)) is not None and d.access != "denied" for a in access.values()
                    )
                ):
                    raise _column_denied(ctx.principal, table_access, name, decision.because)
    return expression


def refuse_denied_positions(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """A column alias list (``FROM t AS s(a, b)``) names the table's first columns by position: one of
    them the principal may not see is refused, or the list would name other columns for it."""
    for table in expression.find_all(exp.Table):
        alias = table.args.get("alias")
        if table.name not in ctx.access or alias is None or not alias.columns:
            continue
        table_access = ctx.access[table.name]
        for decision in table_access.columns[: len(alias.columns)]:
            if decision.access == "denied":
                raise _column_denied(ctx.principal, table_access, decision.column, decision.because)
    return expression


def qualify_visible_columns(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """Qualify against the visible columns only: ``*`` expands to them, a denied one is refused."""
    access, dialect = ctx.access, ctx.read
    schema = MappingSchema(
        {alias: {c.column: _type_sql(c.type, dialect) for c in a.visible} for alias, a in access.items()},
        dialect=dialect,
    )
    try:
        return qualify(expression, schema=schema, dialect=dialect, validate_qualify_columns=True)
    except OptimizeError as exc:
        match = _UNRESOLVED.search(str(exc))
        name = next((g for g in match.groups() if g), None) if match else None
        if name is None:  # e.g. a denied column in JOIN ... USING: sqlglot cannot join on it
            using = [c.name for join in expression.find_all(exp.Join) for c in join.args.get("using") or []]
            name = next(
                (
                    c
                    for c in using
                    for a in access.values()
                    if (d := a.column(c)) is not None and d.access == "denied"
                ),
                None,
            )
        for table_access in access.values():
            decision = table_access.column(name) if name else None
            if name and decision is not None and decision.access == "denied":
                raise _column_denied(ctx.principal, table_access, name, decision.because) from None
        raise QueryError(f"cannot resolve the query's columns: {exc}", column=name) from None


def note_columns_read(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """Record ``table.column`` of every column the query reads (for the audit log)."""
    for scope in traverse_scope(expression):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table) and source.name in ctx.access:
                name = f"{ctx.access[source.name].table}.{column.name}"
                if name not in ctx.columns_read:
                    ctx.columns_read.append(name)
    return expression


def prune_without_masked(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """Planning prunes by the query's filters, leaving out conditions on masked columns: their raw
    values must not decide which files are read."""
    for table_name, binding in ctx.bindings.items():
        masked = set(ctx.access[binding.alias].masked)
        filters = tuple(
            _without(pruning_filter(table), masked)
            for table in expression.find_all(exp.Table)
            if table.name == binding.alias
        )
        ctx.bindings[table_name] = TableBinding(binding.table, binding.alias, filters)
    return expression


def secure_tables(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """Each table reference becomes a subquery of its visible, masked columns and allowed rows."""
    return expression.transform(lambda node: _secure(node, ctx.access, ctx.key), copy=False)


GOVERNED_REWRITES: tuple[Rewrite, ...] = (
    refuse_unsafe,
    refuse_time_travel,
    bind_parameters,
    resolve_tables,
    decide_access,
    refuse_denied_replacements,
    refuse_denied_positions,
    qualify_visible_columns,
    note_columns_read,
    prune_without_masked,
    secure_tables,
)


def compile_secured(
    sql: str,
    resolve: Callable[[str], str],
    access_for: Callable[[str], TableAccess],
    key: bytes,
    *,
    principal: str,
    read: str = "duckdb",
    write: str = "duckdb",
    params: Mapping[str, Any] | None = None,
    rewrites: tuple[Rewrite, ...] = GOVERNED_REWRITES,
    salt_buckets: int | None = None,
) -> CompiledQuery:
    """Compile ``sql`` for ``principal``: checked, secured and transpiled.

    Raises:
        AccessDenied: the query reads a table or column the principal may not see.
        QueryError: the query is not a single read-only statement, or names unknown things.
    """
    ctx = CompileContext(
        resolve=resolve,
        params=params or {},
        read=read,
        principal=principal,
        access_for=access_for,
        key=key,
        salt_buckets=salt_buckets,
    )
    return compile_sql(sql, ctx, rewrites, write=write)


@functools.lru_cache(maxsize=256)
def _type_sql(column_type: str, dialect: str) -> str:
    return sql_type(column_type).sql(dialect)


def _column_denied(
    principal: str | None, table_access: TableAccess, column: str, because: str
) -> AccessDenied:
    return AccessDenied(
        f"principal '{principal}' may not read column {table_access.table}.{column} ({because})",
        principal=principal or "",
        table=table_access.table,
        column=column,
    )


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
        exp.Table(this=source, alias=exp.TableAlias(this=source.copy())), copy=False
    )
    if table_access.row_filters:
        condition = exp.and_(*[_qualified(f, source) for f in table_access.row_filters], copy=False)
        select = select.where(condition, copy=False)
    # The sample, the pivots and the column alias list apply to the secured rows: a sample is drawn
    # from the rows the filters allow, a pivot turns masked values, an alias list names visible columns.
    # A partial alias list is completed with the other visible columns' own names, as DuckDB reads
    # it (Spark wants every column named).
    written = node.args.get("alias")
    named = [c.copy() for c in written.columns] if written is not None else []
    if named:
        named += [exp.to_identifier(c.column, quoted=True) for c in table_access.visible[len(named) :]]
    alias = exp.TableAlias(this=exp.to_identifier(node.alias or node.name), columns=named or None)
    kept = {clause: node.args[clause] for clause in KEPT_TABLE_CLAUSES if node.args.get(clause)}
    return exp.Subquery(this=select, alias=alias, **kept)


def _qualified(condition: exp.Expression, source: exp.Identifier) -> exp.Expression:
    def qualify_column(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table:
            return exp.column(node.name, table=source.copy())
        return node

    return condition.copy().transform(qualify_column, copy=False)

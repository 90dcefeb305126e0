"""Compile user and model SQL into SQL an engine may run: the one compiler of lakeplane.

Every read goes through :func:`compile_sql`: parse with sqlglot once, accept exactly one read-only
statement, apply an ordered tuple of rewrite rules to that one tree, and transpile to the engine's
dialect. A rule is an ``(Expression, CompileContext) -> Expression`` function; the context carries
what rules need (how to resolve a table, the parameters, the principal's access) and collects what
they find (the tables read, the columns read, notes), so each rule can be tested alone. The plain
rules are :data:`REWRITES` (refuse unsafe functions, bind parameters, resolve tables); governance
adds its checks, masks and row filters (:data:`lakeplane.governance.secure.GOVERNED_REWRITES`) and
Spark jobs with a hot key add two-phase salting (:func:`lakeplane.query.skew.salt_hot_keys`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import sqlglot
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from lakeplane.errors import QueryError
from lakeplane.query.functions import SPARK_FUNCTIONS, SPARK_REFUSED, VALUE_FUNCTIONS
from lakeplane.query.pruning import combine, scan_filter
from lakeplane.query.transpile import decimal_defaults, decimal_literals, eliminate_qualify, typed_values

if TYPE_CHECKING:
    from lakeplane.governance.access import TableAccess

READ_ONLY_ROOTS = (exp.Select, exp.Union, exp.Except, exp.Intersect, exp.Subquery)


@dataclass(frozen=True)
class TableBinding:
    """One lake table a query reads: its name in the lake and its alias in the engine."""

    table: str
    alias: str
    filters: tuple[BooleanExpression, ...] = ()

    @property
    def row_filter(self) -> BooleanExpression:
        """What planning may prune by: the union of the filters of every place the table is read."""
        return combine(list(self.filters))


@dataclass
class CompileContext:
    """What the rules need, and what they found.

    Attributes:
        resolve: maps a table name as written to its full lake name, raising for unknown tables.
        params: values for ``:name`` placeholders.
        read: the dialect the SQL is written in.
        write: the engine's dialect the SQL is compiled for (:func:`compile_sql` sets it); on Spark
            only the functions of :mod:`lakeplane.query.functions` may be called.
        principal: who the query runs for (governed compiles only).
        access_for: decides a table's columns and rows for ``principal`` (governed compiles only).
        key: the hash-mask key (governed compiles only).
        salt_buckets: two-phase salting into this many buckets (Spark jobs with a hot key).
        bindings: found: the lake tables read, by full name.
        access: found: each bound table's access decision, by alias.
        columns_read: found: ``table.column`` of every column the query reads.
        notes: found: what a rule chose not to do, and why.
    """

    resolve: Callable[[str], str]
    params: Mapping[str, Any] = field(default_factory=dict)
    read: str = "duckdb"
    write: str = "duckdb"
    principal: str | None = None
    access_for: Callable[[str], TableAccess] | None = None
    key: bytes = b""
    salt_buckets: int | None = None
    bindings: dict[str, TableBinding] = field(default_factory=dict)
    access: dict[str, TableAccess] = field(default_factory=dict)
    columns_read: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CompiledQuery:
    """SQL ready for one engine, the lake tables it reads, and what governance applied."""

    sql: str
    tables: list[TableBinding]
    expression: exp.Expression
    access: dict[str, TableAccess] = field(default_factory=dict)
    columns_read: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def masks(self) -> dict[str, str]:
        return {f"{a.table}.{c}": m.kind for a in self.access.values() for c, m in a.masked.items()}

    @property
    def filters(self) -> list[str]:
        return [f"{a.table}: {f.sql()}" for a in self.access.values() for f in a.row_filters]


class Compiler(Protocol):
    """The compile callable that models, queries and pipelines share: SQL in, engine SQL out."""

    def __call__(
        self, sql: str, resolve: Callable[[str], str], params: Mapping[str, Any]
    ) -> CompiledQuery: ...


def parse_single_select(sql: str, dialect: str) -> exp.Expression:
    """Parse ``sql`` as exactly one read-only statement.

    Raises:
        QueryError: it does not parse, holds several statements, or is not a query.
    """
    if dialect not in READ_DIALECTS:
        raise QueryError(
            f"unsupported SQL dialect '{dialect}'; use one of {', '.join(READ_DIALECTS)}", dialect=dialect
        )
    dialect = "trino" if dialect == "athena" else dialect
    try:
        marked = decimal_literals(_mark_parameters(sql, dialect), dialect)
        statements = [s for s in sqlglot.parse(marked, read=dialect) if s is not None]
    except TokenError as exc:
        raise QueryError(f"SQL does not parse: {exc}") from None
    except ParseError as exc:
        detail = exc.errors[0] if exc.errors else {}
        where = f" at line {detail.get('line')}, column {detail.get('col')}" if detail else ""
        raise QueryError(
            f"SQL does not parse{where}: {detail.get('description', exc)}",
            line=detail.get("line"),
            column=detail.get("col"),
        ) from None
    if len(statements) != 1:
        raise QueryError(f"expected one statement, got {len(statements)}", statements=len(statements))
    statement = statements[0]
    if not isinstance(statement, READ_ONLY_ROOTS):
        kind = statement.key.upper()
        raise QueryError(f"only read-only queries are allowed, not {kind}", statement=kind)
    return statement


PARAMETER_MARK = "__lp_param_"


def _mark_parameters(sql: str, dialect: str) -> str:
    """``:name`` placeholders as marker identifiers, so they parse anywhere in every dialect.

    (DuckDB reads ``SELECT :x`` as its prefix-alias syntax.) Placeholders are found by the dialect's
    tokenizer, so a colon inside a string, a comment or a ``::`` cast is left alone.
    """
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except (TokenError, ValueError):
        return sql  # the parser will report it
    marks = [
        (colon.start, name.end)
        for previous, colon, name in zip([None, *tokens], tokens, tokens[1:], strict=False)
        if colon.token_type == TokenType.COLON
        and name.token_type == TokenType.VAR
        and name.start == colon.end + 1
        and (previous is None or previous.token_type != TokenType.COLON)
    ]
    for start, end in reversed(marks):
        sql = f"{sql[:start]}{PARAMETER_MARK}{sql[start + 1 : end + 1]}{sql[end + 1 :]}"
    return sql


def bind_parameters(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """Replace ``:name`` placeholders with typed literals (never string splicing)."""

    def bind(node: exp.Expression) -> exp.Expression:
        name = None
        if isinstance(node, exp.Placeholder) and node.name:
            name = node.name
        elif isinstance(node, exp.Column) and not node.table and node.name.startswith(PARAMETER_MARK):
            name = node.name[len(PARAMETER_MARK) :]
        if name is not None:
            if name not in ctx.params:
                raise QueryError(f"parameter ':{name}' has no value", parameter=name)
            return _literal(ctx.params[name])
        return node

    return expression.transform(bind, copy=False)  # the compile owns its parse tree


#: The dialects queries may be written in. Others normalise identifiers differently (upper case,
#: case-sensitive quoting), which would let a reference slip past the rewrite.
READ_DIALECTS = ("trino", "athena", "duckdb", "spark")
#: Functions that read files, other tables or the engine's own state, and the policy's own functions
#: (they mean something in a row filter only): never in a user's query, whatever the engine.
REFUSED_FUNCTIONS = re.compile(
    r"^(current_principal|current_principal_attr|"
    r"read_\w*|\w*_scan|scan_\w*|query|query_table|glob|duckdb_\w*|pragma_\w*|parquet_\w*|iceberg_\w*|"
    r"delta_\w*|sniff_\w*|json_execute_serialized_sql|current_query|current_setting|getvariable|getenv|"
    r"which_secret|sql_auto_complete|checkpoint|force_checkpoint|test_\w*)$",
    re.IGNORECASE,
)


def refuse_unsafe(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """Refuse table functions, LATERAL calls, script transforms and functions that reach past the
    values: on every engine those of :data:`REFUSED_FUNCTIONS`; on Spark (``ctx.write``) any function
    not on the allow-list of :mod:`lakeplane.query.functions`."""
    for node in expression.walk():
        if isinstance(node, exp.Lateral) and not isinstance(node.this, exp.Subquery | exp.Unnest):
            raise QueryError(f"table functions are not allowed: {node.sql()}", function=node.sql())
        if isinstance(node, exp.QueryTransform):  # Spark's TRANSFORM ... USING 'command' runs a program
            raise QueryError("script transforms (TRANSFORM ... USING) are not allowed", function="TRANSFORM")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if REFUSED_FUNCTIONS.match(name):
                raise QueryError(f"function {name}() is not allowed in a query", function=name)
            if ctx.write == "spark" and not _spark_may_call(node, name):
                raise QueryError(
                    f"function {name}() is not allowed on spark", function=name, dialect=ctx.write
                )
        if isinstance(node, exp.Table) and node.name.lower().startswith("__lp_"):
            raise QueryError(f"'{node.name}' is not a table", table=node.name)
    return expression


def _function_name(node: exp.Func) -> str:
    """The name a function call is known by: as written when sqlglot does not know it, else
    sqlglot's own name for it."""
    if isinstance(node, exp.Anonymous | exp.AnonymousAggFunc):
        return str(node.name or "").lower()
    return node.sql_name().lower()


def _spark_may_call(node: exp.Func, name: str) -> bool:
    if isinstance(node, exp.Anonymous | exp.AnonymousAggFunc):  # Spark resolves it by this name
        return name in SPARK_FUNCTIONS and name not in SPARK_REFUSED
    return type(node) in VALUE_FUNCTIONS


def refuse_spark_substitution(sql: str) -> str:
    """Spark substitutes ``${...}`` in the SQL text it is given with its settings, the driver's
    environment (``${env:NAME}``) and Java system properties, inside string literals too: SQL for
    Spark may not hold the sequence at all.

    Raises:
        QueryError: ``sql`` holds ``${``.
    """
    if "${" in sql:
        raise QueryError("'${' is not allowed in SQL for spark (Spark substitutes it)", dialect="spark")
    return sql


def _cte_in_scope(table: exp.Table) -> bool:
    """Whether a bare table name refers to a CTE visible where it stands.

    A CTE is visible to the main query of its WITH and to the CTEs written after it (and to itself
    only in a WITH RECURSIVE); a name that matches no visible CTE is a lake table, never a file.
    """
    if table.db or table.catalog:
        return False
    child: Any = table
    node: Any = table.parent
    while node is not None:
        with_ = (node.args.get("with_") or node.args.get("with")) if isinstance(node, exp.Query) else None
        if with_ is not None:
            ctes = list(with_.expressions)
            inside = next((i for i, cte in enumerate(ctes) if cte is child), None)
            if inside is None:  # the reference is in the main query: every CTE is visible
                visible = ctes
            else:
                visible = ctes[: inside + 1] if with_.args.get("recursive") else ctes[:inside]
            if any(cte.alias_or_name == table.name for cte in visible):
                return True
        child = node if not isinstance(node, exp.With) else child
        node = node.parent
    return False


#: Clauses of a table reference that go with it to the scan's alias: a sample (TABLESAMPLE), PIVOT
#: and UNPIVOT; the column alias list (``AS s(a, b)``) goes with the alias.
KEPT_TABLE_CLAUSES = ("sample", "pivots")
#: Clauses of a table reference that the compile cannot keep: refused by name, never dropped.
UNSUPPORTED_TABLE_CLAUSES = {
    "version": "time travel (FOR VERSION/TIMESTAMP AS OF)",
    "when": "time travel (AT/BEFORE)",
    "system_time": "FOR SYSTEM_TIME",
    "changes": "CHANGES",
    "partition": "PARTITION",
    "hints": "a table hint",
    "pattern": "MATCH_RECOGNIZE",
    "rows_from": "ROWS FROM",
    "ordinality": "WITH ORDINALITY",
    "indexed": "INDEXED BY",
    "only": "ONLY",
    "format": "FORMAT",
}


def resolve_tables(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """Replace each lake table reference with the alias its scan is registered under, keeping its
    sample, pivots and column alias list (:data:`KEPT_TABLE_CLAUSES`) and refusing clauses that cannot
    be kept (:data:`UNSUPPORTED_TABLE_CLAUSES`)."""

    def resolve(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Table):
            return node
        if not isinstance(node.this, exp.Identifier):
            raise QueryError(
                f"table functions and file paths are not allowed: {node.sql()}", table=node.sql()
            )
        if _cte_in_scope(node):
            return node
        name = ".".join(part.name for part in node.parts)
        for clause, written in UNSUPPORTED_TABLE_CLAUSES.items():
            if node.args.get(clause):
                raise QueryError(f"{written} on table {name} is not supported", table=name, clause=written)
        table = ctx.resolve(name)
        binding = ctx.bindings.get(table) or TableBinding(table, f"__lp_{len(ctx.bindings)}")
        ctx.bindings[table] = replace(binding, filters=(*binding.filters, pruning_filter(node)))
        written_alias = node.args.get("alias")
        alias = exp.TableAlias(
            this=exp.to_identifier(node.alias or node.name),
            columns=[c.copy() for c in written_alias.columns] if written_alias is not None else None,
        )
        kept = {clause: node.args.get(clause) for clause in KEPT_TABLE_CLAUSES if node.args.get(clause)}
        return exp.Table(this=exp.to_identifier(binding.alias), alias=alias, **kept)

    return expression.transform(resolve, copy=False)


def pruning_filter(table: exp.Table) -> BooleanExpression:
    """What planning may prune ``table``'s files by: the WHERE's conditions on it, unless the query's
    WHERE reads the table through a sample (it filters the sampled rows, not the table), a pivot or a
    column alias list (its names are not the table's)."""
    alias = table.args.get("alias")
    if any(table.args.get(c) for c in KEPT_TABLE_CLAUSES) or (alias is not None and alias.columns):
        return AlwaysTrue()
    return scan_filter(table)


Rewrite = Callable[[exp.Expression, CompileContext], exp.Expression]
REWRITES: tuple[Rewrite, ...] = (refuse_unsafe, bind_parameters, resolve_tables)


def compile_sql(
    sql: str, ctx: CompileContext, rewrites: tuple[Rewrite, ...] = REWRITES, *, write: str = "duckdb"
) -> CompiledQuery:
    """Parse ``sql`` once (in ``ctx.read``), apply ``rewrites`` in order, and transpile to ``write``."""
    expression = parse_single_select(sql, ctx.read)
    ctx.read = "trino" if ctx.read == "athena" else ctx.read
    ctx.write = write
    expression = decimal_defaults(expression, ctx.read)
    for rewrite in rewrites:
        expression = rewrite(expression, ctx)
    expression = eliminate_qualify(typed_values(expression, write), write)
    compiled = expression.sql(dialect=write, copy=False)
    return CompiledQuery(
        refuse_spark_substitution(compiled) if write == "spark" else compiled,
        list(ctx.bindings.values()),
        expression,
        ctx.access,
        ctx.columns_read,
        ctx.notes,
    )


def compile_query(
    sql: str,
    resolve: Callable[[str], str],
    *,
    read: str = "duckdb",
    write: str = "duckdb",
    params: Mapping[str, Any] | None = None,
    rewrites: tuple[Rewrite, ...] = REWRITES,
) -> CompiledQuery:
    """Compile ``sql`` for an engine, ungoverned.

    Args:
        sql: one read-only statement in the ``read`` dialect.
        resolve: maps a table name as written to its full lake name, raising for unknown tables.
        read: the dialect ``sql`` is written in.
        write: the engine's dialect.
        params: values for ``:name`` placeholders.
        rewrites: the ordered rewrite rules.
    """
    return compile_sql(
        sql, CompileContext(resolve=resolve, params=params or {}, read=read), rewrites, write=write
    )


def referenced_tables(sql: str, dialect: str = "duckdb") -> list[str]:
    """Lake tables ``sql`` reads, as written (CTE names left out), for ordering models."""
    expression = parse_single_select(sql, dialect)
    cte_names = {cte.alias_or_name for cte in expression.find_all(exp.CTE)}
    found = []
    for table in expression.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier) and (table.db or table.name not in cte_names):
            name = ".".join(part.name for part in table.parts)
            if name not in found:
                found.append(name)
    return found


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if value is None:
        return exp.Null()
    return exp.Literal.string(str(value))

"""The last step of a compile: make the rewritten tree mean the same thing in the engine's dialect.

sqlglot writes a tree out in any dialect, but a few constructs change meaning on the way unless they
are spelled out first:

* ``QUALIFY``: engines without it (Spark) get a wrapping query that filters on the window's value.
  sqlglot's own elimination keeps the filter's columns as written, so a qualified one (``t.ds``, as
  every column is after the governed rewrite qualifies the query) names a table the wrapper does not
  have; and it leaves ``DISTINCT``, ``ORDER BY`` and ``LIMIT`` beneath the filter, where they act on
  rows the filter would have removed. :func:`eliminate_qualify` projects what the filter reads under
  fresh names and lifts those clauses above it.
* Typed literals and types (:func:`decimal_literals`, :func:`decimal_defaults`, :func:`typed_values`):
  Trino's ``DECIMAL '0.06'`` is a DECIMAL(3, 2) of the literal's own digits, not a cast to the
  default DECIMAL (which is DECIMAL(10, 0) on Spark: 0); each dialect gives ``DECIMAL`` without
  precision its own default (Trino (38, 0), Spark (10, 0), DuckDB (18, 3)), which is written out so
  that every engine computes with the one the query's dialect means; a timestamp without time zone
  stays one on Spark (whose ``TIMESTAMP`` is local time), with microseconds on every engine; a
  fraction literal has the same decimal type on every engine (Spark types ``0.06`` DECIMAL(2, 2),
  DuckDB DECIMAL(3, 2)); ``DATE '...' + INTERVAL ...`` of whole days, months or years is a date on
  every engine, as in Trino and Spark (DuckDB makes it a timestamp).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.helper import find_new_name
from sqlglot.tokens import TokenType

from lakeplane.errors import QueryError

#: Dialects whose engines run ``QUALIFY`` as written.
KEEPS_QUALIFY = frozenset({"duckdb", "snowflake", "databricks", "bigquery", "clickhouse"})
#: What ``DECIMAL`` without precision means in each dialect a query may be written in.
DECIMAL_DEFAULTS = {"trino": (38, 0), "spark": (10, 0), "duckdb": (18, 3)}
MAX_DECIMAL_PRECISION = 38


def eliminate_qualify(expression: exp.Expression, write: str) -> exp.Expression:
    """Every ``SELECT ... QUALIFY`` as a filter over a wrapping query, for dialects without it."""
    if write in KEEPS_QUALIFY:
        return expression
    for select in reversed(list(expression.find_all(exp.Select))):
        if select.args.get("qualify") is not None:
            wrapper = _wrap_qualified(select)
            if select is expression:
                expression = wrapper
    return expression


#: The clauses evaluated after QUALIFY, which move to the wrapping query.
_AFTER_QUALIFY = ("distinct", "order", "limit", "offset")
#: The clauses evaluated before anything else, which move out of the wrapped query with them.
_SCOPE = ("with_", "with")


def _wrap_qualified(select: exp.Select) -> exp.Select:
    """``SELECT p FROM s QUALIFY f ORDER BY o LIMIT n`` as
    ``SELECT p FROM (SELECT p, <what f and o read> FROM s) AS _t WHERE f' ORDER BY o' LIMIT n``.

    What the filter and the ordering read (windows, aggregates, columns) is projected beneath under
    fresh names, unless it is one of the query's own outputs; the wrapper reads those names only.
    """
    place = exp.Null()
    select.replace(place)
    lifted = {key: select.args.get(key) for key in (*_AFTER_QUALIFY, *_SCOPE)}
    for value in lifted.values():
        if value is not None:
            value.pop()
    condition = select.args["qualify"].pop().this
    star = select.is_star
    taken = set(select.named_selects)
    outputs: list[exp.Expression] = []
    for projection in list(select.expressions):
        if not projection.alias_or_name:
            name = find_new_name(taken, "_c")
            projection = projection.replace(exp.alias_(projection.copy(), name))
            taken.add(name)
        identifier = projection.args.get("alias") or projection.this
        quoted = identifier.args.get("quoted") if isinstance(identifier, exp.Identifier) else None
        outputs.append(exp.column(projection.alias_or_name, quoted=quoted))
    if star:  # the wrapper passes every column on (the ones projected for the filter too)
        outputs = [exp.Star()]
    by_alias = {p.alias: p.this for p in select.expressions if isinstance(p, exp.Alias)}
    known = [(p.this if isinstance(p, exp.Alias) else p, p.alias_or_name) for p in select.expressions]

    def reference(node: exp.Expression, prefix: str) -> exp.Expression:
        """A column of the wrapper holding ``node``'s value, projected beneath if need be."""
        if isinstance(node, exp.Column) and not node.table and (star or node.name in taken):
            return exp.column(node.name, quoted=node.this.args.get("quoted"))
        for expression, name in known:
            if expression == node:
                return exp.column(name, quoted=True)
        if isinstance(node, exp.Window):
            for column in list(node.find_all(exp.Column)):
                if not column.table and column.name in by_alias:
                    column.replace(by_alias[column.name].copy())
        name = find_new_name(taken, prefix)
        taken.add(name)
        select.select(exp.alias_(node.copy(), name, quoted=True), copy=False)
        known.append((node.copy(), name))
        return exp.column(name, quoted=True)

    condition = _replace_reads(condition, lambda node: reference(node, "_w"))
    order = lifted["order"]
    if order is not None:
        for ordered in order.expressions:
            key = ordered.this
            if not (isinstance(key, exp.Literal) and key.is_int):  # a position means the same outside
                ordered.set("this", _replace_reads(key, lambda node: reference(node, "_o")))
    wrapper = exp.select(*outputs).from_(select.subquery("_t", copy=False), copy=False)
    wrapper = wrapper.where(condition, copy=False)
    for key, value in lifted.items():
        if value is not None:
            wrapper.set(key, value)
    place.replace(wrapper)
    return wrapper


def _replace_reads(
    node: exp.Expression, reference: Callable[[exp.Expression], exp.Expression]
) -> exp.Expression:
    """``node`` with each window, aggregate and column it reads (outside subqueries) replaced by
    ``reference`` of it."""
    if isinstance(node, exp.Window | exp.AggFunc | exp.Column):
        return reference(node)
    if isinstance(node, exp.Query | exp.Subquery):
        return node
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _replace_reads(value, reference))
        elif isinstance(value, list):
            node.set(
                key, [_replace_reads(v, reference) if isinstance(v, exp.Expression) else v for v in value]
            )
    return node


_DECIMAL_TEXT = re.compile(r"^\s*[+-]?(\d*)(?:\.(\d*))?\s*$")


def decimal_literals(sql: str, dialect: str) -> str:
    """Trino's ``DECIMAL '0.06'`` as ``CAST('0.06' AS DECIMAL(3, 2))``: the literal's own precision
    and scale (its digits before the point, at least one, and after it), as Trino types it.

    Raises:
        QueryError: the literal is not a decimal number, or has more than 38 digits.
    """
    if dialect not in ("trino", "athena"):
        return sql
    try:
        tokens = Dialect.get_or_raise("trino").tokenize(sql)
    except (TokenError, ValueError):
        return sql  # the parser will report it
    found = [
        (kind.start, value.end, value.text)
        for kind, value in itertools.pairwise(tokens)
        if kind.token_type == TokenType.DECIMAL and value.token_type == TokenType.STRING
    ]
    for start, end, text in reversed(found):
        precision, scale = decimal_type(text)
        literal = exp.Literal.string(text).sql("trino")
        sql = f"{sql[:start]}CAST({literal} AS DECIMAL({precision}, {scale})){sql[end + 1 :]}"
    return sql


def decimal_type(text: str) -> tuple[int, int]:
    """The (precision, scale) of a decimal literal's digits.

    Raises:
        QueryError: ``text`` is not a decimal number, or has more than 38 digits.
    """
    match = _DECIMAL_TEXT.match(text)
    if match is None or not (match.group(1) or match.group(2)):
        raise QueryError(f"DECIMAL '{text}' is not a decimal number")
    whole, fraction = match.group(1).lstrip("0"), match.group(2) or ""
    precision, scale = max(len(whole), 1) + len(fraction), len(fraction)
    if precision > MAX_DECIMAL_PRECISION:
        raise QueryError(f"DECIMAL '{text}' has {precision} digits; at most {MAX_DECIMAL_PRECISION} fit")
    return precision, scale


def decimal_defaults(expression: exp.Expression, read: str) -> exp.Expression:
    """``DECIMAL`` without precision as the precision ``read`` gives it (:data:`DECIMAL_DEFAULTS`)."""
    precision, scale = DECIMAL_DEFAULTS.get(read, DECIMAL_DEFAULTS["trino"])
    for data_type in expression.find_all(exp.DataType):
        if (
            data_type.this in (exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL)
            and not data_type.expressions
        ):
            data_type.set("this", exp.DataType.Type.DECIMAL)
            data_type.set(
                "expressions",
                [
                    exp.DataTypeParam(this=exp.Literal.number(precision)),
                    exp.DataTypeParam(this=exp.Literal.number(scale)),
                ],
            )
    return expression


#: Interval units that move a date by whole days.
_DATE_UNITS = frozenset({"DAY", "DAYS", "WEEK", "WEEKS", "MONTH", "MONTHS", "QUARTER", "YEAR", "YEARS"})


def typed_values(expression: exp.Expression, write: str) -> exp.Expression:
    """Types written so that each engine computes the same values with the same types.

    Raises:
        QueryError: a TIME value on Spark, which has no time-of-day type it can return.
    """
    for data_type in list(expression.find_all(exp.DataType)):
        if data_type.this == exp.DataType.Type.TIMESTAMP:  # sqlglot's TIMESTAMP has no time zone
            data_type.set("expressions", [])
            if write == "spark":
                data_type.set("this", exp.DataType.Type.TIMESTAMPNTZ)
        elif data_type.this == exp.DataType.Type.TIME and write == "spark":
            raise QueryError(
                "TIME values are not supported on spark; use a timestamp or a string", dialect=write
            )
    if write == "spark":
        for number in list(expression.find_all(exp.Literal)):
            if not number.is_string and re.fullmatch(r"0*\.\d+|0+\.\d*", number.this):
                precision, scale = decimal_type(number.this)
                decimal = exp.DataType.build(f"DECIMAL({precision}, {scale})")
                number.replace(exp.Cast(this=number.copy(), to=decimal))
    if write == "duckdb":
        for operation in list(expression.find_all(exp.Add, exp.Sub)):
            if _moves_a_date(operation):
                operation.replace(exp.cast(operation.copy(), exp.DataType.Type.DATE))
    return expression


def _moves_a_date(operation: exp.Expr) -> bool:
    """``DATE '...' ± INTERVAL 'n' unit`` with a unit of whole days."""
    date, interval = operation.this, operation.expression
    if isinstance(date, exp.Interval):
        date, interval = interval, date
    is_date = isinstance(date, exp.Cast) and date.to.this == exp.DataType.Type.DATE
    unit = interval.args.get("unit") if isinstance(interval, exp.Interval) else None
    return is_date and unit is not None and unit.name.upper() in _DATE_UNITS

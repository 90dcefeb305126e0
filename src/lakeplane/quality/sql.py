"""DuckDB SQL for DQDL: row predicates, literals, and Spark SQL (``where``, ``CustomSql``) transpiled.

A row predicate is TRUE for a row that passes and never NULL, so ``count(*) FILTER (WHERE NOT p)``
counts failures. NULL handling follows AWS Glue: a NULL value fails every ``ColumnValues`` condition
except ``!=`` and ``not in`` (whose positive form it does not meet) unless the condition names
``NULL``; ``ColumnLength`` reads NULL as length 0; ``DataFreshness`` fails NULL; ``ColumnDataType``
passes NULL (completeness is another rule's business).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping

import pyarrow as pa
from sqlglot import exp

from lakeplane.errors import did_you_mean
from lakeplane.quality.expressions import Bounds, Value, operand_value
from lakeplane.quality.rules import DATA_TYPES, Condition, Keyword, Str, format_number
from lakeplane.quality.validate import SQL_DIALECT, Fail, check_custom_sql, check_where


def quote_ident(name: str) -> str:
    """``name`` as a quoted identifier of the SQL quality rules are written in."""
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def is_text(column_type: pa.DataType | None) -> bool:
    """Whether a column of this Arrow type holds strings."""
    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    return column_type is not None and any(kind(column_type) for kind in kinds)


def _zoned(column_type: pa.DataType | None) -> bool:
    return column_type is not None and pa.types.is_timestamp(column_type) and column_type.tz is not None


def literal(value: Value, column_type: pa.DataType | None = None) -> str:
    """``value`` as a DuckDB literal; datetimes in UTC, as TIMESTAMPTZ for time-zoned columns."""
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        if _zoned(column_type):
            return f"TIMESTAMPTZ '{utc.isoformat(sep=' ')}+00:00'"
        return f"TIMESTAMP '{utc.isoformat(sep=' ')}'"
    if isinstance(value, str):
        return exp.convert(value).sql(dialect="duckdb")
    raise ValueError(f"{value!r} is not a value a column can hold")


def epoch_seconds(moment: dt.datetime) -> float:
    """Seconds since 1970 of ``moment``; a naive datetime is read as UTC."""
    if moment.tzinfo is None:
        return calendar.timegm(moment.timetuple()) + moment.microsecond / 1e6
    return moment.timestamp()


def _keyword(keyword: Keyword, column: str) -> str:
    text = f"CAST({column} AS VARCHAR)"
    return {
        "NULL": f"{column} IS NULL",
        "EMPTY": f"{text} = ''",
        "WHITESPACES_ONLY": f"regexp_full_match({text}, '\\s+')",
    }[keyword.name]


def _typed(column: str, column_type: pa.DataType | None, value: Value) -> str:
    """The column as compared with ``value``: strings cast leniently when compared with numbers/dates."""
    if not is_text(column_type):
        return column
    if isinstance(value, float):
        return f"TRY_CAST({column} AS DOUBLE)"
    if isinstance(value, dt.datetime):
        return f"TRY_CAST({column} AS TIMESTAMP)"
    return column


def _passes(positive: str, null_passes: bool) -> str:
    """TRUE where a row passes: NULL counts as not meeting ``positive``."""
    return f"NOT coalesce({positive}, false)" if null_passes else f"coalesce({positive}, false)"


def values_predicate(
    condition: Condition, column: str, column_type: pa.DataType | None, bounds: Bounds
) -> str:
    """``ColumnValues``: TRUE for the rows whose value meets ``condition``."""
    values = [operand_value(o, bounds) for o in condition.operands]
    op = condition.op
    if op == "matches":
        pattern = exp.convert(str(values[0])).sql(dialect="duckdb")
        return _passes(
            f"regexp_full_match(CAST({column} AS VARCHAR), {pattern})"
            if not condition.negated
            else f"NOT regexp_full_match(CAST({column} AS VARCHAR), {pattern})",
            False,
        )
    if op == "between":
        low, high = values
        inside = (
            f"{_typed(column, column_type, low)} > {literal(low, column_type)} AND "
            f"{_typed(column, column_type, high)} < {literal(high, column_type)}"
        )
        return _passes(f"NOT ({inside})" if condition.negated else inside, False)
    if op == "in":
        plain = [v for v in values if not isinstance(v, Keyword)]
        parts = [_keyword(v, column) for v in values if isinstance(v, Keyword)]
        if plain:
            target = _typed(column, column_type, plain[0])
            parts.insert(0, f"{target} IN ({', '.join(literal(v, column_type) for v in plain)})")
        return _passes(" OR ".join(f"({p})" for p in parts) or "false", condition.negated)
    (value,) = values
    if isinstance(value, Keyword):
        positive = _keyword(value, column)
    else:
        sql_op = "=" if op == "!=" else op
        positive = f"{_typed(column, column_type, value)} {sql_op} {literal(value, column_type)}"
    return _passes(positive, op == "!=")


def ignoring_case(condition: Condition) -> Condition:
    """``condition`` for a lower-cased column (``with ignoreCase = "true"``): its strings lower-cased,
    its pattern matching either case."""
    if condition.op == "matches":
        (pattern,) = condition.operands
        text = pattern.value if isinstance(pattern, Str) else ""
        return Condition("matches", (Str(f"(?i){text}"),), condition.negated)
    operands = tuple(Str(o.value.lower()) if isinstance(o, Str) else o for o in condition.operands)
    return Condition(condition.op, operands, condition.negated)


def number_predicate(condition: Condition, expression: str, bounds: Bounds) -> str:
    """TRUE where the number ``expression`` (never NULL) meets ``condition`` (``ColumnLength``)."""
    values = [operand_value(o, bounds) for o in condition.operands]
    return _number_test(condition, expression, [_seconds_or_number(v) for v in values])


def freshness_predicate(
    condition: Condition, column: str, column_type: pa.DataType | None, now: dt.datetime
) -> str:
    """``DataFreshness``: TRUE where the row's age (``now`` minus the value) meets ``condition``."""
    value = f"TRY_CAST({column} AS TIMESTAMP)" if is_text(column_type) else column
    age = f"({format_number(epoch_seconds(now))} - epoch({value}))"
    values = [_seconds_or_number(operand_value(o, Bounds(now))) for o in condition.operands]
    return f"coalesce({_number_test(condition, age, values)}, false)"


def datatype_predicate(condition: Condition, column: str) -> str:
    """``ColumnDataType``: TRUE where the value is NULL or casts to one of the named types (to none of
    them for ``!=`` and ``not in``)."""
    casts = [
        f"TRY_CAST(CAST({column} AS VARCHAR) AS {DATA_TYPES[o.value.upper()]}) IS NOT NULL"
        for o in condition.operands
        if isinstance(o, Str)
    ]
    fits = " OR ".join(casts)
    negated = condition.op == "!=" or condition.negated
    return f"({column} IS NULL OR {f'NOT ({fits})' if negated else fits})"


def _seconds_or_number(value: Value) -> float:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, float):
        return value
    raise ValueError(f"{value!r} is not a number")


def _number_test(condition: Condition, expression: str, values: list[float]) -> str:
    if condition.op == "between":
        low, high = (format_number(v) for v in values)
        inside = f"({expression} > {low} AND {expression} < {high})"
        return f"NOT {inside}" if condition.negated else inside
    if condition.op == "in":
        test = f"{expression} IN ({', '.join(format_number(v) for v in values)})"
        return f"NOT ({test})" if condition.negated else test
    op = "<>" if condition.op == "!=" else condition.op
    return f"{expression} {op} {format_number(values[0])}"


# -- Spark SQL from the ruleset ----------------------------------------------------------------


def where_sql(text: str, fail: Fail) -> str:
    """A ``where`` clause (Spark SQL, as Glue runs it) in DuckDB's dialect."""
    return check_where(text, fail).sql(dialect="duckdb")


def custom_sql(sql: str, table: str, references: Mapping[str, str], fail: Fail) -> str:
    """``CustomSql`` in DuckDB's dialect: ``primary`` is the table under test, aliases the references.

    Only those tables may be read, so a ruleset cannot reach other tables or files.
    """
    statement = check_custom_sql(sql, fail).copy()
    known = {"primary": table, **references}
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    for node in list(statement.find_all(exp.Table)):
        name = node.name
        if node.args.get("db") or not name or not isinstance(node.this, exp.Identifier):
            fail(
                f"CustomSql reads {node.sql(dialect=SQL_DIALECT)!r}: only primary and the reference "
                f"datasets ({', '.join(sorted(known))}) may be read"
            )
        if name.lower() in ctes:
            continue
        target = known.get(name) or known.get(name.lower())
        if target is None:
            fail(
                f"CustomSql reads unknown table '{name}'{did_you_mean(name, known)}; "
                f"known: {', '.join(sorted(known))}"
            )
        alias = node.alias or name
        node.set("this", exp.to_identifier(target, quoted=True))
        node.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    return statement.sql(dialect="duckdb")

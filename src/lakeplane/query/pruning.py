"""Turn simple WHERE conjuncts into pyiceberg row filters so planning prunes files.

Only conjuncts of the form ``column <op> literal`` (``=``, ``<``, ``<=``, ``>``, ``>=``, ``IN``) on
the referenced table are used. The engine still applies the whole WHERE clause, so a filter here can
only skip files whose rows the query would drop anyway; when in doubt, nothing is pushed.

Values stay as the SQL wrote them (a string, an integer, a fraction) and become pyiceberg literals;
pyiceberg converts each to its column's type when it binds the filter to the table's schema
(``'2026-11-01'`` to a date, ``3`` to an int or a double, ``1.5`` to a decimal) and refuses a value
the column cannot hold.
"""

from __future__ import annotations

from typing import Any

from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
    Or,
)
from pyiceberg.expressions.literals import Literal, literal
from sqlglot import exp

_COMPARISONS: dict[type[exp.Expression], tuple[Any, Any]] = {
    exp.EQ: (EqualTo, EqualTo),
    exp.GT: (GreaterThan, LessThan),
    exp.GTE: (GreaterThanOrEqual, LessThanOrEqual),
    exp.LT: (LessThan, GreaterThan),
    exp.LTE: (LessThanOrEqual, GreaterThanOrEqual),
}


def scan_filter(table: exp.Table) -> BooleanExpression:
    """The row filter implied for ``table`` by the WHERE of the SELECT that reads it directly."""
    select = table.parent_select
    if select is None or table.find_ancestor(exp.Subquery, exp.Select) is not select:
        return AlwaysTrue()
    where = select.args.get("where")
    if where is None:
        return AlwaysTrue()
    sources = [t for t in select.find_all(exp.Table) if t.parent_select is select]
    names = {table.alias_or_name}
    conjuncts = where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
    terms = [term for c in conjuncts if (term := _term(c, names, len(sources) == 1))]  # type: ignore[arg-type]
    if not terms:
        return AlwaysTrue()
    return terms[0] if len(terms) == 1 else And(*terms)


def combine(filters: list[BooleanExpression]) -> BooleanExpression:
    """One filter for a table read in several places: a file is needed if any place needs it."""
    if not filters or any(isinstance(f, AlwaysTrue) for f in filters):
        return AlwaysTrue()
    return filters[0] if len(filters) == 1 else Or(*filters)


def _term(node: exp.Expression, names: set[str], only_source: bool) -> BooleanExpression | None:
    if isinstance(node, exp.In) and not node.args.get("query"):
        column, values = node.this, [_value(v) for v in node.expressions]
        literals = [v for v in values if v is not None]
        if _ours(column, names, only_source) and literals and len(literals) == len(values):
            return In(column.name, literals)  # type: ignore[call-arg, arg-type]  # pydantic hides its __init__
        return None
    kinds = _COMPARISONS.get(type(node))
    if kinds is None:
        return None
    left, right = node.this, node.expression
    if _ours(left, names, only_source) and (value := _value(right)) is not None:
        return kinds[0](left.name, value)
    if _ours(right, names, only_source) and (value := _value(left)) is not None:
        return kinds[1](right.name, value)
    return None


def _ours(node: exp.Expression, names: set[str], only_source: bool) -> bool:
    if not isinstance(node, exp.Column):
        return False
    return node.table in names if node.table else only_source


def _value(node: exp.Expression) -> Literal[Any] | None:
    """The literal ``node`` holds, as pyiceberg's literal (None for anything else)."""
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
        node = node.this
    if not isinstance(node, exp.Literal):
        return None
    if node.is_string:
        return literal(node.this)
    number = node.to_py()
    # A fraction stays a double: pyiceberg turns a double into a decimal column's scale, while a
    # decimal literal bound to an integer column is rounded (``n > 1.5`` would become ``n > 2``).
    return literal(number if isinstance(number, int) else float(number))

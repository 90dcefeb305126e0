"""The last step of a compile: make the rewritten tree mean the same thing in the engine's dialect.

sqlglot writes a tree out in any dialect, but a few constructs change meaning on the way unless they
are spelled out first:

* ``QUALIFY``: engines without it (Spark) get a wrapping query that filters on the window's value.
  sqlglot's own elimination keeps the filter's columns as written, so a qualified one (``t.ds``, as
  every column is after the governed rewrite qualifies the query) names a table the wrapper does not
  have; and it leaves ``DISTINCT``, ``ORDER BY`` and ``LIMIT`` beneath the filter, where they act on
  rows the filter would have removed. :func:`eliminate_qualify` projects what the filter reads under
  fresh names and lifts those clauses above it.
* Typed literals and precision-less decimals (:func:`typed_literals`): each dialect gives
  ``DECIMAL`` without precision a different default, and Trino's ``DECIMAL '0.06'`` is a decimal of
  the literal's own digits, not a cast to the default.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.helper import find_new_name

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

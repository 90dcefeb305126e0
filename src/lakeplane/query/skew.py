"""Two-phase aggregation with a salt, for models whose GROUP BY has a hot key.

AQE splits skewed *joins*, not aggregations: every row of a hot key meets in one reducer task. The
rewrite aggregates in two rounds. The first groups by the model's keys *and* a salt (a hash of the
aggregated values, modulo ``buckets``), so a hot key's rows spread over up to ``buckets`` tasks;
the second merges those partial results per key (counts are summed, sums summed, minimums and
maximums taken again). The salt is a hash of the row, not a
random number, so a task re-run after a lost worker computes exactly the same partials.

Only a top-level ``SELECT ... GROUP BY`` is rewritten, and only when its aggregates are COUNT,
SUM, MIN or MAX without DISTINCT (AVG's type and rounding depend on its input, so it is left alone)
and its other columns are its grouping keys; anything else runs as written, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from lakeplane.query.compiler import CompileContext

#: Table property set when a model's Spark run showed a hot key; later Spark runs salt it.
SKEW_PROPERTY = "lakeplane.skew.detected"

MERGEABLE = (exp.Count, exp.Sum, exp.Min, exp.Max)
TOP_LEVEL_BLOCKERS = ("having", "qualify", "distinct", "limit", "order")


@dataclass(frozen=True)
class Salting:
    """The outcome of trying to salt one query: the SQL to run and why."""

    sql: str
    salted: bool
    reason: str


def salt_hot_keys(expression: exp.Expression, ctx: CompileContext) -> exp.Expression:
    """The compile rule: with ``ctx.salt_buckets`` set, the query as a two-phase salted aggregation
    when it can be; what was done, or why not, goes to ``ctx.notes``."""
    if not ctx.salt_buckets:
        return expression
    salted, reason = salted_expression(expression, ctx.salt_buckets)
    ctx.notes.append(reason if salted is not None else f"not salted: {reason}")
    return salted if salted is not None else expression


def salt_aggregation(sql: str, dialect: str, buckets: int) -> Salting:
    """``sql`` (in ``dialect``) rewritten as a two-phase salted aggregation, when it can be."""
    salted, reason = salted_expression(sqlglot.parse_one(sql, dialect=dialect), buckets)
    return Salting(sql if salted is None else salted.sql(dialect), salted is not None, reason)


def salted_expression(tree: exp.Expr, buckets: int) -> tuple[exp.Expression | None, str]:
    """``tree`` as a two-phase salted aggregation and how, or None and why it cannot be."""
    why_not = _unsupported(tree)
    if why_not:
        return None, why_not
    assert isinstance(tree, exp.Select)
    items = [item.copy() for item in tree.expressions]
    group = tree.args["group"]
    keys = (
        [_bare(item) for item in items if not item.find(*MERGEABLE)]
        if group.args.get("all")
        else [key.copy() for key in group.expressions]
    )
    key_names = {key.sql(): f"__k{i}" for i, key in enumerate(keys)}
    partials: list[exp.Expr] = []
    outer_items = []
    for item in items:
        if not item.find(*MERGEABLE):
            name = key_names.get(_bare(item).sql())
            if name is None:
                return None, f"column {item.sql()} is neither an aggregate nor a key"
            outer_items.append(exp.alias_(exp.column(name), item.alias_or_name, quoted=True))
            continue
        if not isinstance(item, exp.Alias):
            return None, f"aggregate {item.sql()} has no name (AS ...)"
        aggregates = list(item.find_all(*MERGEABLE))
        if any(a.find_ancestor(*MERGEABLE) for a in aggregates):
            return None, "nested aggregates"
        for aggregate in aggregates:
            merged = _merged(aggregate, partials)
            item = merged if aggregate is item else (aggregate.replace(merged) and item)
        outer_items.append(item)
    arguments = [column.copy() for node in partials for column in node.find_all(exp.Column)]
    if not arguments:
        return None, "only COUNT(*): Spark's partial aggregation already spreads it"
    salt = exp.func("pmod", exp.func("hash", *arguments), exp.Literal.number(buckets))
    inner = tree.copy()
    ctes = inner.args.pop("with_", None) if "with_" in inner.args else inner.args.pop("with", None)
    inner.set("expressions", [exp.alias_(k, key_names[k.sql()]) for k in keys] + partials)
    inner.set("group", exp.Group(expressions=[*(k.copy() for k in keys), salt]))
    outer = (
        exp.select(*outer_items)
        .from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("__salted"))))
        .group_by(*(exp.column(n) for n in key_names.values()))
    )
    if ctes is not None:
        outer.set("with_" if "with_" in exp.Select.arg_types else "with", ctes)
    return outer, f"two-phase aggregation over {len(keys)} keys, salted into {buckets} buckets"


def _unsupported(tree: exp.Expr) -> str | None:
    if not isinstance(tree, exp.Select) or not tree.args.get("group"):
        return "no GROUP BY at the top of the query"
    for blocker in TOP_LEVEL_BLOCKERS:
        if tree.args.get(blocker):
            return f"a top-level {blocker.upper()}"
    if any(item.find(exp.Window) for item in tree.expressions):
        return "a window function at the top"
    aggregates = [a for item in tree.expressions for a in item.find_all(exp.AggFunc)]
    if not aggregates:
        return "no aggregate"
    for aggregate in aggregates:
        if isinstance(aggregate, exp.Avg):  # its result type and rounding depend on the input type
            return f"{aggregate.sql()}: write AVG as SUM(x) / COUNT(x) to have it salted"
        if not isinstance(aggregate, MERGEABLE) or aggregate.find(exp.Distinct):
            return f"{aggregate.sql()} cannot be merged from partial results"
    return None


def _bare(item: exp.Expression) -> exp.Expression:
    return item.this.copy() if isinstance(item, exp.Alias) else item.copy()


def _merged(aggregate: exp.Expr, partials: list[exp.Expr]) -> exp.Expr:
    """Record ``aggregate``'s partial column(s) in ``partials``; return its merge over them."""

    def partial(node: exp.Expr) -> exp.Column:
        name = f"__p{len(partials)}"
        partials.append(exp.alias_(node, name))
        return exp.column(name)

    if isinstance(aggregate, exp.Count):
        return exp.cast(exp.Sum(this=partial(aggregate.copy())), "BIGINT")
    kind = type(aggregate)
    return kind(this=partial(aggregate.copy()))

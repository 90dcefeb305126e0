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

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

if TYPE_CHECKING:
    from lakeplane.catalog import LakeCatalog
    from lakeplane.config import SkewConfig
    from lakeplane.pipelines.models import Model, ModelResult

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


def salt_aggregation(sql: str, dialect: str, buckets: int) -> Salting:
    """``sql`` (in ``dialect``) rewritten as a two-phase salted aggregation, when it can be."""
    tree = sqlglot.parse_one(sql, dialect=dialect)
    why_not = _unsupported(tree)
    if why_not:
        return Salting(sql, False, why_not)
    assert isinstance(tree, exp.Select)
    items = [item.copy() for item in tree.expressions]
    group = tree.args["group"]
    keys = ([_bare(item) for item in items if not item.find(*MERGEABLE)] if group.args.get("all")
            else [key.copy() for key in group.expressions])
    key_names = {key.sql(dialect): f"__k{i}" for i, key in enumerate(keys)}
    partials: list[exp.Expression] = []
    outer_items = []
    for item in items:
        if not item.find(*MERGEABLE):
            name = key_names.get(_bare(item).sql(dialect))
            if name is None:
                return Salting(sql, False, f"column {item.sql(dialect)} is neither an aggregate nor a key")
            outer_items.append(exp.alias_(exp.column(name), item.alias_or_name, quoted=True))
            continue
        if not isinstance(item, exp.Alias):
            return Salting(sql, False, f"aggregate {item.sql(dialect)} has no name (AS ...)")
        aggregates = list(item.find_all(*MERGEABLE))
        if any(a.find_ancestor(*MERGEABLE) for a in aggregates):
            return Salting(sql, False, "nested aggregates")
        for aggregate in aggregates:
            merged = _merged(aggregate, partials)
            item = merged if aggregate is item else (aggregate.replace(merged) and item)
        outer_items.append(item)
    arguments = [column.copy() for node in partials for column in node.find_all(exp.Column)]
    if not arguments:
        return Salting(sql, False, "only COUNT(*): Spark's partial aggregation already spreads it")
    salt = exp.func("pmod", exp.func("hash", *arguments), exp.Literal.number(buckets))
    inner = tree.copy()
    ctes = inner.args.pop("with_", None) if "with_" in inner.args else inner.args.pop("with", None)
    inner.set("expressions", [exp.alias_(k, key_names[k.sql(dialect)]) for k in keys] + partials)
    inner.set("group", exp.Group(expressions=[*(k.copy() for k in keys), salt]))
    outer = exp.select(*outer_items).from_(exp.Subquery(this=inner, alias=exp.TableAlias(
        this=exp.to_identifier("__salted")))).group_by(*(exp.column(n) for n in key_names.values()))
    if ctes is not None:
        outer.set("with_" if "with_" in exp.Select.arg_types else "with", ctes)
    return Salting(outer.sql(dialect), True, f"two-phase aggregation over {len(keys)} keys, "
                   f"salted into {buckets} buckets")


def _unsupported(tree: exp.Expression) -> str | None:
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


def _merged(aggregate: exp.Expression, partials: list[exp.Expression]) -> exp.Expression:
    """Record ``aggregate``'s partial column(s) in ``partials``; return its merge over them."""
    def partial(node: exp.Expression) -> exp.Column:
        name = f"__p{len(partials)}"
        partials.append(exp.alias_(node, name))
        return exp.column(name)

    if isinstance(aggregate, exp.Count):
        return exp.cast(exp.Sum(this=partial(aggregate.copy())), "BIGINT")
    kind = type(aggregate)
    return kind(this=partial(aggregate.copy()))


def salting_compiler(catalog: LakeCatalog, model: Model, compile_sql: Any, skew: SkewConfig,
                     notes: list[str]) -> Any:
    """``compile_sql`` followed by two-phase salted aggregation when ``model`` has a hot key:
    declared (``-- hot_key:``) or detected in its previous Spark run. What happened goes to ``notes``."""
    detected = (catalog.load(model.name).properties.get(SKEW_PROPERTY)
                if skew.detect and catalog.table_exists(model.ref) else None)
    if not model.header.hot_key and not detected:
        return compile_sql
    why = (f"hot_key {', '.join(model.header.hot_key)} declared" if model.header.hot_key
           else f"stage skew {detected} in the previous run")

    def salted(sql: str, resolve: Any, params: dict[str, Any]) -> Any:
        compiled = compile_sql(sql, resolve, params=params)
        outcome = salt_aggregation(compiled.sql, "spark", skew.salt_buckets)
        notes.append(f"{why}: {outcome.reason}" if outcome.salted else f"{why}, not salted: {outcome.reason}")
        return dataclasses.replace(compiled, sql=outcome.sql)

    return salted


def remember_skew(catalog: LakeCatalog, model: Model, result: ModelResult, skew: SkewConfig) -> None:
    """Mark ``model``'s table when this run had a badly skewed stage, so the next run salts."""
    slow = [s for s in result.stage_skew if s["max_task_ms"] >= skew.detect_min_task_s * 1000]
    worst = max((s["skew"] for s in slow), default=1.0)
    if skew.detect and worst >= skew.detect_ratio and not result.skew:
        with catalog.load(model.name).transaction() as tx:
            tx.set_properties({SKEW_PROPERTY: f"{worst:.1f}x"})

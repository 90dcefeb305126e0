"""The ``Analyzers`` section: metrics measured without a verdict, kept in the metric history.

``Analyzers = [ RowCount, Completeness "id", AllStatistics "amount" ]`` measures each metric along
with the rules (in the same scans) and records it, so that dynamic rules (``RowCount >
avg(last(7))``) and ``DetectAnomalies`` have a history even for metrics no rule checks yet. An
analyzer never fails a ruleset; one that cannot be measured (a missing column) says why.

Each metric is keyed in the history as the rule measuring it would be (``Completeness "id"``), so a
rule reads what an analyzer recorded. ``AllStatistics "c"`` measures, as AWS Glue documents it, the
row count and the column's completeness and uniqueness, and also its distinct values, unique-value
ratio and entropy; for a numeric column its ``Minimum``, ``Maximum``, ``Mean``, ``Sum`` and
``StandardDeviation``; for a string column its ``MinimumLength``, ``MaximumLength`` and
``AverageLength``. ``ColumnValues "c"`` as an analyzer measures the column's ``Minimum`` and
``Maximum``, ``ColumnLength "c"`` its ``MinimumLength`` and ``MaximumLength``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakeplane.quality.plan import PLANNERS, Measurement, Resolver, RuleProblem, ScanResults, Target
from lakeplane.quality.rules import RULE_SPECS, Condition, Num, Rule
from lakeplane.quality.sql import quote_ident, where_sql
from lakeplane.quality.validate import Fail

#: Metrics of any column, measured by the rule type of the same name.
COLUMN_METRICS = ("Completeness", "Uniqueness", "DistinctValuesCount", "UniqueValueRatio", "Entropy")
#: Metrics of a numeric column measured by a rule type of the same name.
NUMBER_METRICS = ("Mean", "Sum", "StandardDeviation")
#: Aggregates with no rule type of their own: metric name -> SQL over the quoted column.
VALUE_RANGE = {"Minimum": "min({})", "Maximum": "max({})"}
_LENGTH = "length(CAST({} AS VARCHAR))"
LENGTHS = {
    "MinimumLength": f"min({_LENGTH})",
    "MaximumLength": f"max({_LENGTH})",
    "AverageLength": f"avg({_LENGTH})",
}
LENGTH_RANGE = {name: LENGTHS[name] for name in ("MinimumLength", "MaximumLength")}

#: One metric's key in the history and how it is read once the scans ran.
MetricPlan = tuple[str, Resolver]


@dataclass
class AnalyzerOutcome:
    """What one analyzer measured: its metrics by history key (``error`` if it could not)."""

    analyzer: str
    rule_type: str
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""
    error: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data shaped like a rule's outcome (``analyzer`` true; an analyzer never fails)."""
        return {
            "rule": self.analyzer,
            "rule_type": self.rule_type,
            "analyzer": True,
            "passed": True,
            "observed": None,
            "failing_rows": None,
            "failing_sample": [],
            "message": self.message,
            "metric_key": None,
            "metrics": dict(self.metrics),
            "history_missing": False,
            "error": self.error,
            "children": [],
            "labels": dict(self.labels),
        }


def plan_metrics(
    rule_type: str, params: tuple[str, ...], where: str | None, owner: int, target: Target, fail: Fail
) -> list[MetricPlan]:
    """The metrics ``rule_type`` on ``params`` stands for, planned on the shared scans.

    Raises:
        RuleProblem: a column does not exist, or ``rule_type`` measures no number.
    """
    if rule_type == "AllStatistics":
        return _all_statistics(params[0], where, owner, target, fail)
    if rule_type in ("ColumnValues", "ColumnLength"):
        column = target.column_name(params[0])
        aggregates = VALUE_RANGE if rule_type == "ColumnValues" else LENGTH_RANGE
        return [_aggregate(name, column, sql, where, owner, target, fail) for name, sql in aggregates.items()]
    spec = RULE_SPECS.get(rule_type)
    if spec is None or spec.condition not in ("number", "optional_number") or spec.file_rule:
        raise RuleProblem(f"{rule_type} measures no number that can be analyzed")
    if rule_type not in PLANNERS:
        raise RuleProblem(f"{rule_type} cannot be measured by this version")
    # CustomSql measures its single value only when it has a condition (else it is row-level)
    condition = Condition(">", (Num(0),)) if rule_type == "CustomSql" else None
    rule = Rule(rule_type, params, condition, where=where)
    return [(rule.metric_key, PLANNERS[rule_type](rule, owner, target, fail))]


def _all_statistics(
    column: str, where: str | None, owner: int, target: Target, fail: Fail
) -> list[MetricPlan]:
    name = target.column_name(column)
    kind = target.columns[name]
    rules = [Rule("RowCount", where=where)] + [Rule(m, (name,), where=where) for m in COLUMN_METRICS]
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    if numeric:
        rules += [Rule(m, (name,), where=where) for m in NUMBER_METRICS]
    plans = [(rule.metric_key, PLANNERS[rule.rule_type](rule, owner, target, fail)) for rule in rules]
    extra = (
        VALUE_RANGE
        if numeric
        else LENGTHS
        if pa.types.is_string(kind) or pa.types.is_large_string(kind)
        else {}
    )
    plans += [_aggregate(metric, name, sql, where, owner, target, fail) for metric, sql in extra.items()]
    return plans


def _aggregate(
    metric: str, column: str, sql: str, where: str | None, owner: int, target: Target, fail: Fail
) -> MetricPlan:
    aggregate = sql.format(quote_ident(column))
    if where is not None:
        aggregate += f" FILTER (WHERE {where_sql(where, fail)})"
    key = target.aggregates.add(owner, aggregate)
    return Rule(metric, (column,), where=where).metric_key, lambda r: Measurement(_number(r.aggregates[key]))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def measure(plans: list[MetricPlan], results: ScanResults) -> dict[str, float]:
    """Each planned metric's value; metrics without a value (no rows) are left out."""
    values = {}
    for key, resolve in plans:
        observed = resolve(results).observed
        if isinstance(observed, float):
            values[key] = observed
    return values


AnalyzerPlan = list[MetricPlan] | RuleProblem


def plan_analyzers(
    analyzers: tuple[Rule, ...], first_owner: int, target: Target, failer: Callable[[Rule], Fail]
) -> list[AnalyzerPlan]:
    """Plan every analyzer on the shared scans (owners from ``first_owner`` on, after the rules')."""
    plans: list[AnalyzerPlan] = []
    for owner, analyzer in enumerate(analyzers, first_owner):
        try:
            plans.append(
                plan_metrics(
                    analyzer.rule_type, analyzer.params, analyzer.where, owner, target, failer(analyzer)
                )
            )
        except RuleProblem as problem:
            plans.append(problem)
    return plans


def resolve_analyzers(
    analyzers: tuple[Rule, ...],
    plans: list[AnalyzerPlan],
    results: ScanResults,
    scan_errors: Callable[[int], str | None],
    first_owner: int,
) -> list[AnalyzerOutcome]:
    """Each analyzer's metrics once the scans ran."""
    outcomes = []
    for owner, (analyzer, plan) in enumerate(zip(analyzers, plans, strict=True), first_owner):
        outcome = AnalyzerOutcome(analyzer.text or analyzer.to_dqdl(), analyzer.rule_type)
        outcome.labels = dict(analyzer.labels)
        problem = str(plan) if isinstance(plan, RuleProblem) else scan_errors(owner)
        if problem is None and not isinstance(plan, RuleProblem):
            try:
                outcome.metrics = measure(plan, results)
            except RuleProblem as exc:
                problem = str(exc)
        if problem is not None:
            outcome.error, outcome.message = True, problem
        else:
            outcome.message = f"{len(outcome.metrics)} metrics measured"
        outcomes.append(outcome)
    return outcomes

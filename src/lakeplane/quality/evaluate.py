"""Run a DQDL ruleset as SQL on the table under test and report one :class:`RuleOutcome` per rule.

:func:`evaluate` plans every rule first (:mod:`lakeplane.quality.checks`), so that all simple
aggregates share one ``SELECT`` and every rule on a grouped column set reads one ``GROUP BY``, runs
those, then decides each rule: metric rules compare their value with their condition (dynamic bounds
read the metric history), row-level rules count failing rows against ``with threshold`` (default:
none may fail). Composite rules combine their parts' outcomes, as Glue does by default. The
``Analyzers`` section is measured in the same scans (:func:`evaluate_with_analyzers`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import lakeplane.quality.anomaly_rules  # registers the DetectAnomalies planner
import lakeplane.quality.matches  # noqa: F401 (registers the planners of the match rules)
from lakeplane.engines.base import EngineSession
from lakeplane.errors import EngineError
from lakeplane.quality.analyzers import AnalyzerOutcome, plan_analyzers, resolve_analyzers
from lakeplane.quality.anomaly import TimedHistory
from lakeplane.quality.checks import grouped_column_sets
from lakeplane.quality.dqdl import parse, rule_failer
from lakeplane.quality.expressions import Bounds, History, check_metric, format_value
from lakeplane.quality.files import FileSource  # registers the file rules' planners
from lakeplane.quality.plan import (
    APPLIED_TAGS,
    PLANNERS,
    Measurement,
    Resolver,
    RuleProblem,
    ScanResults,
    Target,
)
from lakeplane.quality.rules import RULE_SPECS, Rule, RuleNode, Ruleset
from lakeplane.quality.scan import AggregateScan, FrequencyScan
from lakeplane.quality.sql import quote_ident


@dataclass
class RuleOutcome:
    """How one rule (as written, in ruleset order) fared.

    ``observed`` is the metric (``RowCount``, ``Mean``...) or, for row-level rules, the share of
    checked rows that passed; ``failing_rows`` and ``failing_sample`` (up to ``sample_size`` rows)
    are set for row-level rules. ``metric_key`` names the metric in the history, for
    :class:`~lakeplane.quality.history.MetricHistory` to record. ``history_missing`` says that a
    dynamic bound had no history and was treated as met; ``error`` that the rule could not be
    measured (``message`` says why).
    """

    rule: str
    rule_type: str
    passed: bool
    observed: float | str | None = None
    failing_rows: int | None = None
    failing_sample: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    metric_key: str | None = None
    history_missing: bool = False
    error: bool = False
    children: list[RuleOutcome] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # DetectAnomalies: its metrics' values

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--output json``; composite parts under ``children``."""
        return asdict(self)


@dataclass
class Evaluation:
    """A ruleset's rule outcomes (one per top-level rule) and analyzer outcomes (one per analyzer)."""

    rules: list[RuleOutcome]
    analyzers: list[AnalyzerOutcome]


def evaluate(
    ruleset: Ruleset | str,
    session: EngineSession,
    table_sql_name: str,
    references: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
    history: History | None = None,
    *,
    sample_size: int = 5,
    timed_history: TimedHistory | None = None,
    files: FileSource | None = None,
) -> list[RuleOutcome]:
    """The rule outcomes of :func:`evaluate_with_analyzers` (same arguments)."""
    return evaluate_with_analyzers(
        ruleset,
        session,
        table_sql_name,
        references,
        now,
        history,
        sample_size=sample_size,
        timed_history=timed_history,
        files=files,
    ).rules


def evaluate_with_analyzers(
    ruleset: Ruleset | str,
    session: EngineSession,
    table_sql_name: str,
    references: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
    history: History | None = None,
    *,
    sample_size: int = 5,
    timed_history: TimedHistory | None = None,
    files: FileSource | None = None,
) -> Evaluation:
    """Evaluate ``ruleset`` on the relation registered in ``session`` as ``table_sql_name``.

    Args:
        ruleset: a parsed ruleset, or DQDL text.
        session: the step's session (DuckDB SQL), in which the table (and references) are registered.
        table_sql_name: the table under test; ``primary`` in ``CustomSql`` means this table.
        references: DQDL alias (``"reference"`` in ``RowCountMatch "reference"``) to the name of a
            relation registered in ``session``.
        now: the evaluation time for ``DataFreshness`` and ``now()``; default the current UTC time.
        history: ``history(metric_key, n)`` returns up to ``n`` earlier values of a metric, most
            recent first, for dynamic rules such as ``RowCount > avg(last(10))``.
        sample_size: failing rows to fetch per failing row-level rule (0 fetches none).
        timed_history: earlier metric values with their times, for ``DetectAnomalies``.
        files: where file rules (``FileSize``, ``FileFreshness``...) find their files; without it
            they are errors.

    Returns:
        One outcome per top-level rule, in the order the rules are written, and one per analyzer.

    Raises:
        DQDLError: the ruleset does not parse, or names a reference not in ``references``.
        EngineError: the table under test cannot be read.
    """
    rules = parse(ruleset) if isinstance(ruleset, str) else ruleset
    moment = now or dt.datetime.now(dt.UTC)
    relation = quote_ident(table_sql_name)
    schema = session.result_schema(f"SELECT * FROM {relation}")
    columns = dict(zip(schema.names, schema.types, strict=True))
    target = Target(
        session,
        table_sql_name,
        columns,
        dict(references or {}),
        moment,
        AggregateScan(relation),
        FrequencyScan(relation),
        history=timed_history,
    )
    target.files = files
    leaves = list(rules.leaves())
    target.grouped = grouped_column_sets(leaves, target, lambda rule: rule_failer(rule, rules.source))
    plans: list[Resolver | RuleProblem] = []
    for owner, rule in enumerate(leaves):
        try:
            plans.append(PLANNERS[rule.rule_type](rule, owner, target, rule_failer(rule, rules.source)))
        except RuleProblem as problem:
            plans.append(problem)
    analyzer_plans = plan_analyzers(
        rules.analyzers, len(leaves), target, lambda rule: rule_failer(rule, rules.source)
    )
    aggregates, aggregate_errors = target.aggregates.run(session)
    frequencies, failing, frequency_errors = target.frequencies.run(session)
    results = ScanResults(aggregates, frequencies, failing)
    bounds = Bounds(moment, history)
    decided: list[RuleOutcome] = []
    for owner, (rule, plan) in enumerate(zip(leaves, plans, strict=True)):
        scan_error = aggregate_errors.get(owner) or frequency_errors.get(owner)
        if isinstance(plan, RuleProblem) or scan_error:
            decided.append(_error(rule, str(plan) if isinstance(plan, RuleProblem) else str(scan_error)))
            continue
        try:
            measurement = plan(results)
        except RuleProblem as exc:
            decided.append(_error(rule, str(exc)))
            continue
        outcome = _decide(rule, measurement, bounds.for_metric(rule.metric_key))
        outcome.message += _unapplied_tags(rule)
        if sample_size and outcome.failing_rows and measurement.sample_sql:
            outcome.failing_sample = _sample(session, measurement.sample_sql, sample_size)
        decided.append(outcome)
    ordered = iter(decided)
    analyzed = resolve_analyzers(
        rules.analyzers,
        analyzer_plans,
        results,
        lambda owner: aggregate_errors.get(owner) or frequency_errors.get(owner),
        len(leaves),
    )
    return Evaluation([_combine(node, ordered) for node in rules.rules], analyzed)


def _decide(rule: Rule, measured: Measurement, bounds: Bounds) -> RuleOutcome:
    spec = RULE_SPECS[rule.rule_type]
    text = rule.text or rule.to_dqdl()
    outcome = RuleOutcome(text, rule.rule_type, False, measured.observed, measured.failing_rows)
    outcome.labels = dict(rule.labels)
    if measured.verdict is not None:
        outcome.passed, outcome.message = measured.verdict, measured.detail
        outcome.metrics, outcome.history_missing = measured.metrics, measured.history_missing
        return outcome
    if measured.checked_rows is not None:  # row-level: the share of rows that pass
        checked, failing = measured.checked_rows, measured.failing_rows or 0
        share = (checked - failing) / checked if checked else 1.0
        outcome.observed = share
        counts = f"{failing} of {checked} rows failed" if failing else f"all {checked} rows passed"
        if rule.threshold is None:
            outcome.passed, outcome.message = failing == 0, counts
        else:
            check = check_metric(rule.threshold, share, bounds)
            verdict = "meets" if check.passed else "does not meet"
            outcome.passed = check.passed
            outcome.message = (
                f"{counts}; passing share {format_value(share)} {verdict} threshold {check.expected}"
            )
        return outcome
    outcome.metric_key = rule.metric_key if spec.condition in ("number", "optional_number") else None
    observed = measured.observed
    if rule.condition is None or not isinstance(observed, float | None):  # pragma: no cover - validated
        outcome.passed = observed is not None
        return outcome
    try:
        check = check_metric(rule.condition, observed, bounds)
    except ValueError as exc:
        return _error(rule, str(exc))
    outcome.passed, outcome.history_missing = check.passed, check.history_missing
    shown = "no value (no rows)" if observed is None else format_value(observed)
    verdict = "meets" if check.passed else "does not meet"
    outcome.message = f"{rule.metric_key} is {shown}; {verdict} {check.expected}"
    if measured.detail:
        outcome.message += f" ({measured.detail})"
    if check.history_missing:
        outcome.message += "; without history a dynamic bound counts as met"
    return outcome


def _unapplied_tags(rule: Rule) -> str:
    """``; not applied by lakeplane: with x`` for the tags lakeplane does not apply to the rule."""
    known = {name.lower() for name in APPLIED_TAGS.get(rule.rule_type, ())}
    unapplied = [name for name, _ in rule.tags if name.lower() not in known]
    return f"; not applied by lakeplane: {', '.join(f'with {n}' for n in unapplied)}" if unapplied else ""


def _error(rule: Rule, problem: str) -> RuleOutcome:
    return RuleOutcome(
        rule.text or rule.to_dqdl(),
        rule.rule_type,
        False,
        message=problem,
        error=True,
        labels=dict(rule.labels),
    )


def _combine(node: RuleNode, decided: Iterator[RuleOutcome]) -> RuleOutcome:
    if isinstance(node, Rule):
        return next(decided)
    children = [_combine(child, decided) for child in node.rules]
    passed = sum(c.passed for c in children)
    verdict = all(c.passed for c in children) if node.op == "and" else any(c.passed for c in children)
    return RuleOutcome(
        node.text or node.to_dqdl(),
        "Composite",
        verdict,
        message=f"{passed} of {len(children)} rules passed ({node.op})",
        history_missing=any(c.history_missing for c in children),
        error=any(c.error for c in children),
        children=children,
        labels=dict(node.labels),
    )


def _sample(session: EngineSession, sql: str, size: int) -> list[dict[str, Any]]:
    try:
        return session.arrow_reader(f"{sql} LIMIT {int(size)}").read_all().to_pylist()
    except EngineError:  # a sample is a courtesy: the counts already say what failed
        return []

"""What each rule type on rows and columns measures, as SQL: one planner per rule type, registered in
:data:`~lakeplane.quality.plan.PLANNERS`.

A planner runs before any SQL: it asks the shared scans for the aggregates it needs and returns a
*resolver* that, once the scans ran, turns their values into a
:class:`~lakeplane.quality.plan.Measurement` (the observed value, and for row-level rules the failing
and checked row counts and the SQL selecting failing rows). Rules that read other relations
(``ReferentialIntegrity``, ``CustomSql``, ``RowCountMatch``, ``SchemaMatch``) run their own
statement in the resolver.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
from sqlglot import exp

from lakeplane.errors import DQDLError, EngineError
from lakeplane.quality.expressions import Bounds
from lakeplane.quality.plan import (
    Measurement,
    Resolver,
    RuleProblem,
    ScanResults,
    Target,
    flag_tag,
    planner,
)
from lakeplane.quality.rules import Rule
from lakeplane.quality.scan import Frequencies, FrequencyKey
from lakeplane.quality.sql import (
    custom_sql,
    datatype_predicate,
    freshness_predicate,
    ignoring_case,
    number_predicate,
    quote_ident,
    values_predicate,
    where_sql,
)
from lakeplane.quality.validate import Fail, reference_columns


def _scope(rule: Rule, fail: Fail) -> str:
    return f"({where_sql(rule.where, fail)})" if rule.where else "true"


def _filtered(aggregate: str, scope: str) -> str:
    return aggregate if scope == "true" else f"{aggregate} FILTER (WHERE {scope})"


def _row_level(
    owner: int, target: Target, scope: str, passes: str, sample: str | None = None, column: str | None = None
) -> Resolver:
    """Rows in scope, and those failing ``passes``; on a grouped ``column``, from its grouping."""
    sample = sample or f"SELECT * FROM {target.relation} AS p WHERE {scope} AND NOT ({passes})"
    grouping = _grouping(target, scope, column)
    if grouping is not None:
        check = target.frequencies.add_check(owner, grouping, passes)
        return lambda r: Measurement(
            failing_rows=r.failing[check], checked_rows=r.frequencies[grouping].scoped_rows, sample_sql=sample
        )
    checked = target.aggregates.add(owner, _filtered("count(*)", scope))
    failing = target.aggregates.add(owner, _filtered("count(*)", _and(scope, f"NOT ({passes})")))
    return lambda r: Measurement(
        failing_rows=int(r.aggregates[failing]), checked_rows=int(r.aggregates[checked]), sample_sql=sample
    )


def _grouping(target: Target, scope: str, column: str | None) -> FrequencyKey | None:
    """The grouping by ``column`` alone that a frequency rule of the same scope asked for, if any."""
    key = (None if scope == "true" else scope, (column,)) if column else None
    return key if key in target.grouped else None


def _and(scope: str, condition: str) -> str:
    return condition if scope == "true" else f"{scope} AND {condition}"


#: Row checks that read one column only: a grouping of that column can answer them.
SINGLE_COLUMN_CHECKS = ("ColumnValues", "ColumnLength", "DataFreshness", "ColumnDataType")
#: Rows a cardinality probe reads, and the most distinct values per probed row for "few values".
PROBE_ROWS, FEW_VALUES_PER_ROW = 65_536, 1 / 16


def grouped_column_sets(
    rules: Iterable[Rule], target: Target, failer: Callable[[Rule], Fail]
) -> frozenset[FrequencyKey]:
    """The groupings the ruleset will read, found before planning so that every rule on a grouped
    column, wherever it is written, is answered by that grouping.

    A frequency rule's column set is grouped anyway. A column that row checks test and that holds
    few distinct values (a country, a status; judged on the first rows) is grouped too: its checks
    then run once per distinct value instead of once per row, which for a ``matches`` or an ``in``
    list over millions of rows is most of their cost.
    """
    grouped: set[FrequencyKey] = set()
    candidates: set[FrequencyKey] = set()
    for rule in rules:
        if rule.rule_type not in FREQUENCY_RULES + SINGLE_COLUMN_CHECKS:
            continue
        try:
            key = _frequency_key(rule, target, failer(rule))
        except (RuleProblem, DQDLError):  # its own planning reports it
            continue
        (grouped if rule.rule_type in FREQUENCY_RULES else candidates).add(key)
    candidates -= grouped
    few = _few_values(target, sorted({c for _, columns in candidates for c in columns}))
    return frozenset(grouped | {key for key in candidates if key[1][0] in few})


def _few_values(target: Target, columns: list[str]) -> set[str]:
    """The ``columns`` with few distinct values among the table's first :data:`PROBE_ROWS` rows."""
    if not columns:
        return set()
    quoted = [exp.column(c, quoted=True) for c in columns]
    first_rows = exp.select(*quoted).from_(exp.table_(target.table, quoted=True)).limit(PROBE_ROWS)
    distinct = [exp.Count(this=exp.Distinct(expressions=[c])) for c in quoted]
    probe = exp.select(exp.Count(this=exp.Star()), *distinct).from_(first_rows.subquery())
    try:
        rows, *counts = target.session.execute(probe.sql(dialect=target.session.dialect))[0]
    except EngineError:  # the checks will say what is wrong
        return set()
    if rows < PROBE_ROWS:  # a small table: grouping would not pay for its statement
        return set()
    return {c for c, n in zip(columns, counts, strict=True) if n <= rows * FEW_VALUES_PER_ROW}


def _frequency_key(rule: Rule, target: Target, fail: Fail) -> FrequencyKey:
    scope = _scope(rule, fail)
    return None if scope == "true" else scope, tuple(target.column_name(p) for p in rule.params)


def _metric(owner: int, target: Target, aggregate: str) -> Resolver:
    key = target.aggregates.add(owner, aggregate)
    return lambda r: Measurement(_number(r.aggregates[key]))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


# -- table and column metrics ------------------------------------------------------------------


@planner("RowCount")
def _row_count(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    return _metric(owner, target, _filtered("count(*)", _scope(rule, fail)))


@planner("ColumnCount")
def _column_count(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    return lambda r: Measurement(float(len(target.columns)))


@planner("Completeness")
def _completeness(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    scope, name = _scope(rule, fail), target.column_name(rule.params[0])
    grouping = _grouping(target, scope, name)
    if grouping is not None:

        def share(r: ScanResults) -> Measurement:
            stats = r.frequencies[grouping]
            return Measurement(stats.rows / stats.scoped_rows if stats.scoped_rows else None)

        return share
    # count(column) reads validity masks only: no predicate is evaluated per row
    present = target.aggregates.add(owner, _filtered(f"count({quote_ident(name)})", scope))
    rows = target.aggregates.add(owner, _filtered("count(*)", scope))
    return lambda r: Measurement(r.aggregates[present] / r.aggregates[rows] if r.aggregates[rows] else None)


_AGGREGATES = {"Mean": "avg({})", "Sum": "sum({})", "StandardDeviation": "stddev_pop({})"}


@planner(*_AGGREGATES)
def _aggregate(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    aggregate = _AGGREGATES[rule.rule_type].format(target.column(rule.params[0]))
    return _metric(owner, target, _filtered(aggregate, _scope(rule, fail)))


@planner("ColumnCorrelation")
def _correlation(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    first, second = (target.column(p) for p in rule.params)
    return _metric(owner, target, _filtered(f"corr({first}, {second})", _scope(rule, fail)))


_FREQUENCY_METRICS: dict[str, Callable[[Frequencies], float]] = {
    "Uniqueness": lambda f: f.uniqueness,
    "UniqueValueRatio": lambda f: f.unique_value_ratio,
    "Entropy": lambda f: f.entropy,
    "DistinctValuesCount": lambda f: float(f.distinct),
}
FREQUENCY_RULES = ("IsUnique", "IsPrimaryKey", *_FREQUENCY_METRICS)


@planner(*FREQUENCY_RULES)
def _frequencies(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    """Every rule about how often values occur reads one grouping of its column set (and ``where``)."""
    where, names = _frequency_key(rule, target, fail)
    scope = where or "true"
    key = target.frequencies.add(owner, names, where, entropy=rule.rule_type == "Entropy")
    quoted = [quote_ident(n) for n in names]
    duplicated = (
        f"EXISTS (SELECT 1 FROM {target.relation} AS d WHERE {scope} AND "
        + " AND ".join(f"d.{c} = t.{c}" for c in quoted)
        + " HAVING count(*) > 1)"
    )
    kind = rule.rule_type
    if kind in _FREQUENCY_METRICS:
        metric = _FREQUENCY_METRICS[kind]
        return lambda r: Measurement(metric(r.frequencies[key]))
    if kind == "IsUnique":
        sample = f"SELECT * FROM {target.relation} AS t WHERE {scope} AND {duplicated}"
        return lambda r: Measurement(
            failing_rows=r.frequencies[key].duplicate_rows,
            checked_rows=r.frequencies[key].rows,
            sample_sql=sample,
        )
    null_key = " OR ".join(f"{c} IS NULL" for c in quoted)
    sample = f"SELECT * FROM {target.relation} AS t WHERE {scope} AND (({null_key}) OR {duplicated})"

    def primary_key(r: ScanResults) -> Measurement:
        stats = r.frequencies[key]
        return Measurement(
            failing_rows=stats.null_rows + stats.duplicate_rows,
            checked_rows=stats.scoped_rows,
            sample_sql=sample,
        )

    return primary_key


# -- row-level rules ---------------------------------------------------------------------------


@planner("IsComplete")
def _is_complete(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    scope, name = _scope(rule, fail), target.column_name(rule.params[0])
    column = quote_ident(name)
    sample = f"SELECT * FROM {target.relation} AS p WHERE {scope} AND {column} IS NULL"
    grouping = _grouping(target, scope, name)
    if grouping is not None:
        return lambda r: Measurement(
            failing_rows=r.frequencies[grouping].null_rows,
            checked_rows=r.frequencies[grouping].scoped_rows,
            sample_sql=sample,
        )
    # count(*) - count(column) reads validity masks only: no predicate is evaluated per row
    rows = target.aggregates.add(owner, _filtered("count(*)", scope))
    present = target.aggregates.add(owner, _filtered(f"count({column})", scope))
    return lambda r: Measurement(
        failing_rows=int(r.aggregates[rows]) - int(r.aggregates[present]),
        checked_rows=int(r.aggregates[rows]),
        sample_sql=sample,
    )


@planner("ColumnValues", tags=["ignoreCase"])
def _column_values(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    assert rule.condition is not None
    name = target.column_name(rule.params[0])
    column, condition, column_type = quote_ident(name), rule.condition, target.columns[name]
    if flag_tag(rule, "ignoreCase"):  # strings compare without case
        column, condition, column_type = (
            f"lower(CAST({column} AS VARCHAR))",
            ignoring_case(condition),
            pa.string(),
        )
    try:
        passes = values_predicate(condition, column, column_type, Bounds(target.now))
    except ValueError as exc:
        raise RuleProblem(str(exc)) from None
    return _row_level(owner, target, _scope(rule, fail), passes, column=name)


@planner("ColumnLength")
def _column_length(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    assert rule.condition is not None
    name = target.column_name(rule.params[0])
    length = f"coalesce(length(CAST({quote_ident(name)} AS VARCHAR)), 0)"
    passes = number_predicate(rule.condition, length, Bounds(target.now))
    return _row_level(owner, target, _scope(rule, fail), passes, column=name)


@planner("DataFreshness")
def _freshness(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    assert rule.condition is not None
    name = target.column_name(rule.params[0])
    passes = freshness_predicate(rule.condition, quote_ident(name), target.columns[name], target.now)
    return _row_level(owner, target, _scope(rule, fail), passes, column=name)


@planner("ColumnDataType")
def _data_type(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    assert rule.condition is not None
    name = target.column_name(rule.params[0])
    passes = datatype_predicate(rule.condition, quote_ident(name))
    return _row_level(owner, target, _scope(rule, fail), passes, column=name)


# -- schema rules ------------------------------------------------------------------------------


@planner("ColumnExists")
def _column_exists(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    try:
        target.column_name(rule.params[0])
        found, detail = True, f"column '{rule.params[0]}' exists"
    except RuleProblem as problem:
        found, detail = False, str(problem)
    return lambda r: Measurement(1.0 if found else 0.0, verdict=found, detail=detail)


@planner("ColumnNamesMatchPattern")
def _names_match(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    try:
        pattern = re.compile(rule.params[0])
    except re.error as exc:
        fail(f"ColumnNamesMatchPattern: bad regular expression: {exc}")
    misses = [c for c in target.columns if not pattern.fullmatch(c)]
    share = 1 - len(misses) / len(target.columns) if target.columns else 1.0
    detail = f"columns not matching: {', '.join(misses)}" if misses else "every column name matches"
    return lambda r: Measurement(share, verdict=not misses, detail=detail)


@planner("SchemaMatch")
def _schema_match(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    reference = target.reference(rule.params[0], fail)

    def measure(r: ScanResults) -> Measurement:
        theirs = target.schema(f"SELECT * FROM {reference}")
        ours = {c.lower(): t for c, t in target.columns.items()}
        theirs_folded = {f.name.lower(): f.type for f in theirs}
        names = ours.keys() | theirs_folded.keys()
        same = [n for n in names if ours.get(n) == theirs_folded.get(n)]
        differ = sorted(names - set(same))
        detail = f"columns that differ: {', '.join(differ)}" if differ else "schemas match"
        return Measurement(len(same) / len(names) if names else 1.0, detail=detail)

    return measure


# -- rules over other relations ----------------------------------------------------------------


@planner("RowCountMatch")
def _row_count_match(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    reference = target.reference(rule.params[0], fail)
    ours = target.aggregates.add(owner, "count(*)")

    def measure(r: ScanResults) -> Measurement:
        if reference not in target.reference_counts:
            target.reference_counts[reference] = int(target.query(f"SELECT count(*) FROM {reference}")[0][0])
        theirs, mine = target.reference_counts[reference], int(r.aggregates[ours])
        ratio = mine / theirs if theirs else (1.0 if mine == 0 else None)
        return Measurement(ratio, detail=f"{mine} rows against {theirs} in {rule.params[0]}")

    return measure


@planner("ReferentialIntegrity")
def _referential_integrity(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    columns, alias, ref_columns = reference_columns(rule.params[0], rule.params[1], fail)
    reference = target.reference(alias, fail)
    ours = [f"p.{target.column(c)}" for c in columns]
    keys = ", ".join(f"{quote_ident(c)} AS __dq_key{i}" for i, c in enumerate(ref_columns))
    present = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in ref_columns)
    joined = (
        f"{target.relation} AS p LEFT JOIN (SELECT DISTINCT {keys}, true AS __dq_found "
        f"FROM {reference} WHERE {present}) AS r ON "
        + " AND ".join(f"{c} = r.__dq_key{i}" for i, c in enumerate(ours))
    )
    complete = " AND ".join(f"{c} IS NOT NULL" for c in ours)
    scope = _scope(rule, fail)
    missing = f"{scope} AND {complete} AND r.__dq_found IS NULL"

    def measure(r: ScanResults) -> Measurement:
        considered, lost = target.query(
            f"SELECT count(*) FILTER (WHERE {scope} AND {complete}), "
            f"count(*) FILTER (WHERE {missing}) FROM {joined}"
        )[0]
        return Measurement(
            (considered - lost) / considered if considered else 1.0,
            failing_rows=int(lost),
            sample_sql=f"SELECT p.* FROM {joined} WHERE {missing}",
            detail=f"{lost} of {considered} rows have no match in {alias}",
        )

    return measure


@planner("CustomSql")
def _custom_sql(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    sql = custom_sql(rule.params[0], target.table, target.references, fail)
    if rule.condition is not None:

        def scalar(r: ScanResults) -> Measurement:
            rows = target.query(sql)
            if len(rows) != 1 or len(rows[0]) != 1:
                raise RuleProblem("CustomSql with a condition must return one value (one row, one column)")
            try:
                return Measurement(_number(rows[0][0]))
            except (TypeError, ValueError):
                raise RuleProblem(f"CustomSql returned {rows[0][0]!r}, not a number") from None

        return scalar
    try:
        returned = target.schema(sql).names
    except RuleProblem as problem:
        raise RuleProblem(f"CustomSql: {problem}") from None
    columns = [target.column(c) for c in returned]  # row-level results join back on these columns
    match = " AND ".join(f"q.{c} IS NOT DISTINCT FROM p.{c}" for c in columns)
    kept = f"EXISTS (SELECT 1 FROM ({sql}) AS q WHERE {match})"
    sample = f"SELECT * FROM {target.relation} AS p WHERE NOT {kept}"
    return _row_level(owner, target, "true", kept, sample)

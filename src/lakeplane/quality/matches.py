"""Rules that compare the table under test with other datasets, and the column variance.

- ``Variance "col"``: the population variance of the column's non-NULL values (the square of what
  ``StandardDeviation`` measures, as Glue computes both), read by the shared aggregate scan.
- ``AggregateMatch "sum(amount)" "sum(reference.amount)"``: the first aggregate divided by the
  second. Each is ``sum`` or ``avg`` (the functions Glue documents) of a column of the table under
  test or, written ``alias.column``, of a reference dataset (a ``DataSources`` alias or ``--ref``).
- ``DatasetMatch "reference" "id->ref_id" ["amount->ref_amount"]``: the share of the table's rows
  whose key is found in the reference and whose match columns (by default every non-key column,
  named alike in both) hold the same values there; NULL equals NULL. As in Glue, the keys must be
  a primary key of both datasets (no NULL, no duplicate): otherwise the rule reports an error.

Mistakes in a rule's parameters (an unknown alias or column, a function other than ``sum`` and
``avg``) are the rule's error outcome, naming the rule and what it could not find.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from lakeplane.errors import did_you_mean
from lakeplane.quality.expressions import format_value
from lakeplane.quality.plan import Measurement, Resolver, RuleProblem, ScanResults, Target, planner
from lakeplane.quality.rules import Rule
from lakeplane.quality.sql import quote_ident, where_sql
from lakeplane.quality.validate import Fail

# -- Variance ----------------------------------------------------------------------------------


@planner("Variance")
def _variance(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    name = target.column_name(rule.params[0])
    _require_number(rule.rule_type, name, target.columns[name])
    aggregate = f"var_pop({quote_ident(name)})"
    if rule.where is not None:
        aggregate += f" FILTER (WHERE {where_sql(rule.where, fail)})"
    key = target.aggregates.add(owner, aggregate)
    return lambda r: Measurement(None if r.aggregates[key] is None else float(r.aggregates[key]))


def _require_number(rule_type: str, column: str, column_type: pa.DataType, where: str = "") -> None:
    kinds = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    if not any(kind(column_type) for kind in kinds):
        raise RuleProblem(f"{rule_type} needs a numeric column; '{column}'{where} is {column_type}")


# -- AggregateMatch ----------------------------------------------------------------------------

AGGREGATE_FUNCTIONS = ("sum", "avg")
_AGGREGATE = re.compile(r"^\s*(?P<function>\w+)\s*\(\s*(?P<column>.*?)\s*\)\s*$")


@dataclass(frozen=True)
class _Aggregate:
    """One side of an ``AggregateMatch``: ``function(column)`` over the table or a reference."""

    text: str  # as written, for messages
    function: str
    column: str  # as it is named in its relation
    alias: str | None  # the reference dataset, or None for the table under test

    def sql(self) -> str:
        return f"{self.function}({quote_ident(self.column)})"


@planner("AggregateMatch")
def _aggregate_match(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    first, second = (_parse_aggregate(text, target) for text in rule.params)
    keys = {side: target.aggregates.add(owner, side.sql()) for side in (first, second) if side.alias is None}

    def value(side: _Aggregate, r: ScanResults) -> float | None:
        if side.alias is None:
            found = r.aggregates[keys[side]]
        else:
            relation = quote_ident(target.references[side.alias])
            found = target.query(f"SELECT {side.sql()} FROM {relation}")[0][0]
        return None if found is None else float(found)

    def measure(r: ScanResults) -> Measurement:
        mine, theirs = value(first, r), value(second, r)
        detail = f"{_shown(first, mine)} against {_shown(second, theirs)}"
        if mine is None or theirs is None:
            return Measurement(None, detail=detail + " (no non-NULL values)")
        ratio = mine / theirs if theirs else (1.0 if mine == 0 else None)
        return Measurement(ratio, detail=detail)

    return measure


def _shown(side: _Aggregate, value: float | None) -> str:
    return f"{side.text} is {'no value' if value is None else format_value(value)}"


def _parse_aggregate(text: str, target: Target) -> _Aggregate:
    """``sum(amount)`` or ``avg(reference.amount)``: the function, the column and its dataset."""
    match = _AGGREGATE.match(text)
    if match is None or not match["column"]:
        raise RuleProblem(
            f"AggregateMatch: '{text}' is not an aggregate; write "
            f"{' or '.join(f'{f}(column)' for f in AGGREGATE_FUNCTIONS)}, or alias.column for a reference"
        )
    function = match["function"].lower()
    if function not in AGGREGATE_FUNCTIONS:
        raise RuleProblem(
            f"AggregateMatch: unknown aggregate '{match['function']}' in '{text}'"
            f"{did_you_mean(function, AGGREGATE_FUNCTIONS)}; supported: {', '.join(AGGREGATE_FUNCTIONS)}"
        )
    column = match["column"].replace("`", "")  # Spark's quoting, as in sum(`order total`)
    alias, name = _split_alias(column, target)
    if alias is None:
        try:
            resolved = target.column_name(name)
        except RuleProblem as problem:
            if "." in name:  # alias.column with an alias the check was not given
                prefix = name.split(".", 1)[0]
                raise RuleProblem(f"AggregateMatch: {_unknown_alias(prefix, target)} in '{text}'") from None
            raise RuleProblem(f"AggregateMatch: {problem} in '{text}'") from None
        _require_number("AggregateMatch", resolved, target.columns[resolved], f" in '{text}'")
        return _Aggregate(text, function, resolved, None)
    columns = _reference_columns(alias, target)
    resolved = _column_in(name, columns, f"reference '{alias}'", f"AggregateMatch ('{text}')")
    _require_number("AggregateMatch", resolved, columns[resolved], f" in '{text}'")
    return _Aggregate(text, function, resolved, alias)


def _split_alias(column: str, target: Target) -> tuple[str | None, str]:
    """``reference.amount`` as (``reference``, ``amount``) when ``reference`` is a known alias
    (the longest such prefix, so that ``db.table.col`` works with an alias ``db.table``)."""
    dots = [i for i, char in enumerate(column) if char == "."]
    for at in reversed(dots):
        if column[:at] in target.references:
            return column[:at], column[at + 1 :]
    return None, column


# -- DatasetMatch ------------------------------------------------------------------------------


@planner("DatasetMatch")
def _dataset_match(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    alias = rule.params[0]
    if alias not in target.references:
        raise RuleProblem(f"DatasetMatch: {_unknown_alias(alias, target)}")
    theirs = _reference_columns(alias, target)
    where = f"reference '{alias}'"
    ours = target.columns
    keys = [
        (_column_in(p, ours, "the table", "DatasetMatch"), _column_in(r, theirs, where, "DatasetMatch"))
        for p, r in _mappings(rule.params[1], "key")
    ]
    if len(rule.params) > 2:
        compared = [
            (_column_in(p, ours, "the table", "DatasetMatch"), _column_in(r, theirs, where, "DatasetMatch"))
            for p, r in _mappings(rule.params[2], "match")
        ]
    else:
        key_columns = {p for p, _ in keys}
        others = [c for c in target.columns if c not in key_columns]
        folded = {c.lower(): c for c in theirs}
        missing = [c for c in others if c.lower() not in folded]
        if missing:
            raise RuleProblem(
                f"DatasetMatch: {where} has no column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(c) for c in missing)}; without match "
                "columns every non-key column is compared, so name them alike or list the columns to compare"
            )
        compared = [(c, folded[c.lower()]) for c in others]
    primary, reference = target.relation, quote_ident(target.references[alias])
    shown_keys = ", ".join(p if p == r else f"{p}->{r}" for p, r in keys)

    def measure(r: ScanResults) -> Measurement:
        for relation, columns, name in (
            (primary, [p for p, _ in keys], "the table"),
            (reference, [q for _, q in keys], alias),
        ):
            problems = _key_problems(target, relation, columns)
            if problems:
                raise RuleProblem(
                    f"DatasetMatch: key ({shown_keys}) is not a primary key of {name}: {problems}; "
                    "DatasetMatch joins on unique, non-NULL keys (AggregateMatch compares totals instead)"
                )
        on = " AND ".join(f"p.{quote_ident(p)} = r.{quote_ident(q)}" for p, q in keys)
        same = " AND ".join(
            [f"r.{quote_ident(keys[0][1])} IS NOT NULL"]
            + [f"p.{quote_ident(p)} IS NOT DISTINCT FROM r.{quote_ident(q)}" for p, q in compared]
        )
        joined = f"{primary} AS p LEFT JOIN {reference} AS r ON {on}"
        try:
            rows, matched = target.query(f"SELECT count(*), count(*) FILTER (WHERE {same}) FROM {joined}")[0]
        except RuleProblem as problem:  # columns whose types do not compare, say
            raise RuleProblem(f"DatasetMatch: comparing the table with {alias}: {problem}") from None
        if rows == 0:
            reference_rows = target.query(f"SELECT count(*) FROM {reference}")[0][0]
            share = 1.0 if reference_rows == 0 else 0.0
            return Measurement(share, detail=f"the table has no rows; {alias} has {reference_rows}")
        compared_names = ", ".join(p for p, _ in compared) or "keys only"
        return Measurement(
            matched / rows,
            failing_rows=rows - matched,
            sample_sql=f"SELECT p.* FROM {joined} WHERE NOT ({same})",
            detail=f"{matched} of {rows} rows match {alias} on ({shown_keys}) comparing {compared_names}",
        )

    return measure


def _mappings(text: str, what: str) -> list[tuple[str, str]]:
    """``"a->b,c"`` as ``[("a", "b"), ("c", "c")]``."""
    pairs = []
    for item in text.split(","):
        left, arrow, right = (part.strip() for part in item.partition("->"))
        if not left or (arrow and not right):
            raise RuleProblem(f'DatasetMatch: bad {what} column mapping {text!r}; write "a->b,c"')
        pairs.append((left, right or left))
    return pairs


def _key_problems(target: Target, relation: str, columns: list[str]) -> str:
    """What keeps ``columns`` from being a primary key of ``relation``, or ``""``."""
    quoted = [quote_ident(c) for c in columns]
    present = " AND ".join(f"{c} IS NOT NULL" for c in quoted)
    total, keyed, shared, repeated = target.query(
        f"SELECT (SELECT count(*) FROM {relation}), coalesce(sum(n), 0), "
        "coalesce(sum(n) FILTER (WHERE n > 1), 0), count(*) FILTER (WHERE n > 1) "
        f"FROM (SELECT count(*) AS n FROM {relation} WHERE {present} GROUP BY {', '.join(quoted)}) AS g"
    )[0]
    problems = []
    if total > keyed:
        problems.append(f"{_rows(total - keyed)} with a NULL key")
    if repeated:
        problems.append(f"{_rows(shared)} share {repeated} key{'s' if repeated > 1 else ''}")
    return ", ".join(problems)


def _rows(count: int) -> str:
    return f"{count} row{'' if count == 1 else 's'}"


# -- reference datasets ------------------------------------------------------------------------


def _unknown_alias(alias: str, target: Target) -> str:
    known = ", ".join(sorted(target.references)) or "none given"
    return (
        f"unknown reference dataset '{alias}'{did_you_mean(alias, target.references)} "
        f"(references: {known}; name them in DataSources or with --ref ALIAS=TABLE)"
    )


def _reference_columns(alias: str, target: Target) -> dict[str, pa.DataType]:
    schema = target.schema(f"SELECT * FROM {quote_ident(target.references[alias])}")
    return dict(zip(schema.names, schema.types, strict=True))


def _column_in(name: str, columns: dict[str, pa.DataType], where: str, rule: str) -> str:
    """``name`` as spelled in ``columns`` (case-insensitively, as Spark resolves names)."""
    if name in columns:
        return name
    folded = {c.lower(): c for c in columns}
    if name.lower() in folded:
        return folded[name.lower()]
    raise RuleProblem(f"{rule}: {where} has no column '{name}'{did_you_mean(name, columns)}")

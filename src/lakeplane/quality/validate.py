"""Check each parsed rule against its rule type (:data:`~lakeplane.quality.rules.RULE_SPECS`).

The grammar accepts any ``RuleType params condition``; here a rule learns whether its type exists, how
many parameters it takes, which condition fits it, whether it may have ``where`` and ``with
threshold``, and whether its SQL (``where`` clauses, ``CustomSql``) is one read-only Spark SQL
expression or query, as AWS Glue writes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NoReturn

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lakeplane.errors import QueryError, did_you_mean
from lakeplane.quality.kinds import EXAMPLES as _EXAMPLES
from lakeplane.quality.kinds import Kind, require_kind
from lakeplane.quality.rules import (
    DATA_TYPES,
    RULE_SPECS,
    Call,
    Condition,
    Num,
    Operand,
    Rule,
    RuleSpec,
    Str,
    walk_operand,
)

SQL_DIALECT = "spark"
"""The dialect of ``where`` clauses and ``CustomSql`` statements, as AWS Glue runs them."""

Fail = Callable[[str], NoReturn]

REFERENCE_COLUMNS = re.compile(r"^(?P<alias>[^.{}]+)\.(?:\{(?P<many>[^{}]+)\}|(?P<one>[^{}]+))$")


def validate_rule(rule: Rule, fail: Fail) -> None:
    """Call ``fail`` with the problem unless ``rule`` fits its rule type."""
    spec = rule_spec(rule.rule_type, fail)
    if spec.analyzer_only:
        fail(f"{spec.name} is an analyzer: list it under Analyzers = [ ... ], not Rules")
    _check_params(rule, spec, fail)
    _check_condition(rule, spec, fail)
    if rule.where is not None:
        if not spec.where:
            fail(f"{spec.name} does not take a where clause")
        check_where(rule.where, fail)
    if rule.threshold is not None:
        if not spec.threshold:
            fail(f"{spec.name} does not take 'with threshold'")
        if spec.name == "CustomSql" and rule.condition is not None:
            fail("CustomSql takes a condition or 'with threshold', not both")
        _check_static_numbers(rule.threshold, "with threshold", fail)
    if spec.name == "CustomSql":
        check_custom_sql(rule.params[0], fail)
    if spec.name == "ReferentialIntegrity":
        reference_columns(rule.params[0], rule.params[1], fail)


def validate_analyzer(rule: Rule, fail: Fail) -> None:
    """Analyzers name a rule type that measures a number, and its parameters, without a condition."""
    spec = rule_spec(rule.rule_type, fail)
    if not spec.analyzer and not spec.analyzer_only:
        fail(f"{spec.name} is not an analyzer: analyzers measure a number (RowCount, Completeness, Mean ...)")
    _check_params(rule, spec, fail)


def rule_spec(name: str, fail: Fail) -> RuleSpec:
    if name in RULE_SPECS:
        return RULE_SPECS[name]
    fail(f"unknown rule type '{name}'{did_you_mean(name, RULE_SPECS)}")


def _check_params(rule: Rule, spec: RuleSpec, fail: Fail) -> None:
    count = len(rule.params)
    if spec.min_params <= count and (spec.max_params is None or count <= spec.max_params):
        return
    if spec.max_params == 0:
        fail(f"{spec.name} takes no parameters, got {count}")
    if spec.min_params == spec.max_params:
        wanted = f"{spec.min_params}"
    elif spec.max_params is None:
        wanted = f"at least {spec.min_params}"
    else:
        wanted = f"{spec.min_params} to {spec.max_params}"
    noun = "parameter" if wanted in ("1", "at least 1") else "parameters"
    fail(f"{spec.name} takes {wanted} {noun} ({spec.name} {spec.params_hint}), got {count}")


_KINDS: dict[str, tuple[Kind, ...]] = {
    "number": ("number",),
    "optional_number": ("number",),
    "length": ("number",),
    "values": ("string", "number", "date"),
    "duration": ("duration",),
    "type": ("string",),
    "size": ("size", "number"),
    "date": ("date",),
    "file_match": ("string",),
}


def _check_condition(rule: Rule, spec: RuleSpec, fail: Fail) -> None:
    condition, shape = rule.condition, spec.condition
    if shape == "file_match" and len(rule.params) == 2:
        shape = "none"  # FileMatch "a" "b": the two match, no condition
    if shape == "none":
        if condition is not None:
            fail(f"{spec.name} takes no condition: it passes or fails by itself")
        return
    if condition is None:
        if shape != "optional_number":
            example = f"{spec.name} {spec.params_hint} {_EXAMPLES[_KINDS[shape][0]]}".replace("  ", " ")
            fail(f"{spec.name} needs a condition, e.g. {example}")
        return
    kind = require_kind(condition, _KINDS[shape], spec.name, fail)
    if kind == "number" and shape in ("length", "values", "size"):
        _check_static_numbers(condition, spec.name, fail)
    if shape == "size" and kind == "number" and not all(isinstance(o, Num) for o in condition.operands):
        fail("FileSize compares sizes: write them with a unit, e.g. < 5 MB")
    if shape == "type":
        _check_type_names(condition, fail)
    if condition.op == "matches":
        pattern = condition.operands[0]
        try:
            re.compile(pattern.value if isinstance(pattern, Str) else "")
        except re.error as exc:
            fail(f"matches: bad regular expression: {exc}")


def _check_type_names(condition: Condition, fail: Fail) -> None:
    if condition.op == "matches":
        fail('ColumnDataType takes type names: = "INTEGER" or in ["DATE", "TIMESTAMP"]')
    for operand in condition.operands:
        name = operand.value.upper() if isinstance(operand, Str) else ""
        if name not in DATA_TYPES:
            fail(
                f"unknown data type {_show(operand)}{did_you_mean(name, DATA_TYPES)}; "
                f"known: {', '.join(sorted(DATA_TYPES))}"
            )


def _check_static_numbers(condition: Condition, what: str, fail: Fail) -> None:
    kind = require_kind(condition, ("number",), what, fail)
    if kind != "number":
        return
    for operand in condition.operands:
        if any(isinstance(o, Call) for o in walk_operand(operand)):
            fail(
                f"{what} takes plain numbers; dynamic bounds (last(k)) are for rules that measure "
                "one number, such as RowCount or Mean"
            )


def check_where(text: str, fail: Fail) -> exp.Expr:
    """``text`` as one Spark SQL row condition, without subqueries."""
    try:
        parsed = [e for e in sqlglot.parse(text, read=SQL_DIALECT) if e is not None]
    except ParseError as exc:
        fail(f"where clause does not parse: {_parse_problem(exc)}")
    if len(parsed) != 1 or isinstance(parsed[0], exp.Query | exp.Command | exp.DDL | exp.DML):
        fail('a where clause is one row condition, such as "amount > 0"')
    if any(isinstance(node, exp.Query) for node in parsed[0].walk()):
        fail("a where clause cannot hold a query; use CustomSql for that")
    return parsed[0]


def check_custom_sql(sql: str, fail: Fail) -> exp.Expression:
    """``sql`` as one read-only Spark SQL query."""
    from lakeplane.query.compiler import parse_single_select

    try:
        return parse_single_select(sql, SQL_DIALECT)
    except QueryError as exc:
        fail(f"CustomSql: {exc}")


def reference_columns(primary: str, reference: str, fail: Fail) -> tuple[list[str], str, list[str]]:
    """``"a,b" "ref.{x,y}"`` as primary columns, reference alias and reference columns."""
    match = REFERENCE_COLUMNS.match(reference.strip())
    if not match:
        fail(f'ReferentialIntegrity: expected "alias.column" or "alias.{{col1,col2}}", got {reference!r}')
    columns = [c.strip() for c in primary.split(",") if c.strip()]
    ref_columns = [c.strip() for c in (match["many"] or match["one"]).split(",") if c.strip()]
    if len(columns) != len(ref_columns):
        fail(f"ReferentialIntegrity: {len(columns)} primary columns but {len(ref_columns)} reference columns")
    return columns, match["alias"].strip(), ref_columns


def _parse_problem(exc: ParseError) -> str:
    detail = exc.errors[0] if exc.errors else {}
    return str(detail.get("description", exc))


def _show(operand: Operand) -> str:
    from lakeplane.quality.rules import format_operand

    return format_operand(operand)

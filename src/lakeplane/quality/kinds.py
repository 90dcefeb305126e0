"""The kind of a DQDL condition (number, string, date, duration, size), as the public grammar types it.

DQDL's grammar has one condition form per kind: numbers take ``> >= < <= = != between in`` over
numbers and functions (``avg(last(10))``); strings take ``= != in matches`` over quoted strings,
``NULL``, ``EMPTY``, ``WHITESPACES_ONLY`` and variables; dates take the comparisons, ``between`` and
``in`` over ``"YYYY-MM-DD"``, ``"9:30 PM"``, ``now()`` and ``(now() - 3 days)``; durations and
sizes over ``3 days`` and ``5 MB``. A rule type accepts some kinds (``ColumnValues`` strings,
numbers or dates; ``FileSize`` sizes). :func:`condition_kind` finds a condition's kind or says why it
has none (a list mixing strings and numbers, ``matches`` with a number).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NoReturn

from lakeplane.quality.rules import (
    BinOp,
    Call,
    Condition,
    DateLit,
    Duration,
    Keyword,
    Neg,
    Num,
    Operand,
    Size,
    Str,
    TimeOfDay,
    format_operand,
)

Kind = Literal["number", "string", "date", "duration", "size", "null"]
Fail = Callable[[str], NoReturn]

_OPS: dict[str, frozenset[str]] = {
    "number": frozenset({">", ">=", "<", "<=", "=", "!=", "between", "in"}),
    "string": frozenset({"=", "!=", "in", "matches"}),
    "date": frozenset({">", ">=", "<", "<=", "=", "!=", "between", "in"}),
    "duration": frozenset({">", ">=", "<", "<=", "=", "!=", "between", "in"}),
    "size": frozenset({">", ">=", "<", "<=", "=", "!=", "between", "in"}),
}
EXAMPLES = {
    "number": "> 0.9",
    "string": 'in ["A", "B"]',
    "date": "> (now() - 3 days)",
    "duration": "<= 24 hours",
    "size": "< 5 MB",
}


def operand_kind(operand: Operand) -> Kind | None:
    """The kind of one operand, ``None`` if it fits none (``now() - 3`` or ``"a" + 1``)."""
    if isinstance(operand, Num):
        return "number"
    if isinstance(operand, Str):
        return "string"
    if isinstance(operand, Keyword):
        return "null" if operand.name == "NULL" else "string"
    if isinstance(operand, DateLit | TimeOfDay):
        return "date"
    if isinstance(operand, Duration):
        return "duration"
    if isinstance(operand, Size):
        return "size"
    if isinstance(operand, Call):
        if operand.name == "now":
            return "date" if not operand.args else None
        return "number" if all(operand_kind(a) == "number" for a in operand.args) else None
    if isinstance(operand, Neg):
        return "number" if operand_kind(operand.operand) == "number" else None
    left, right = operand_kind(operand.left), operand_kind(operand.right)
    if isinstance(operand.left, Call) and operand.left.name == "now":
        return "date" if right == "duration" and operand.op in "+-" else None
    return "number" if left == right == "number" else None


def condition_kind(condition: Condition, fail: Fail) -> Kind:
    """The kind of ``condition``; ``null`` when its only operands are ``NULL`` (it fits any)."""
    if condition.op == "matches":
        return "string"
    kinds: set[Kind] = set()
    for operand in condition.operands:
        found = operand_kind(operand)
        if found is None:
            fail(f"{format_operand(operand)} is not a value DQDL can compare: {_why(operand)}")
        kinds.add(found)
    kinds.discard("null")
    if len(kinds) > 1:
        shown = " and ".join(sorted(kinds))
        fail(f"the condition mixes {shown} values; one condition compares one kind of value")
    return kinds.pop() if kinds else "null"


def _check_op(condition: Condition, kind: Kind, fail: Fail) -> None:
    if kind != "null" and condition.op not in _OPS[kind]:
        fail(f"'{condition.op}' does not compare {kind}s; {kind}s take {', '.join(sorted(_OPS[kind]))}")


def require_kind(condition: Condition, allowed: tuple[Kind, ...], rule_type: str, fail: Fail) -> Kind:
    """The condition's kind, which must be one ``rule_type`` takes."""
    kind = condition_kind(condition, fail)
    if kind != "null" and kind not in allowed:
        wanted = " or ".join(f"{k}s ({rule_type} {EXAMPLES[k]})" for k in allowed)
        fail(f"{rule_type} compares {wanted}, not {kind}s")
    _check_op(condition, kind, fail)
    return kind


def _why(operand: Operand) -> str:
    if isinstance(operand, Call) and operand.name == "now":
        return "now() takes no arguments"
    if isinstance(operand, BinOp) and isinstance(operand.left, Call) and operand.left.name == "now":
        return "date arithmetic adds or subtracts a duration with a unit, e.g. (now() - 3 days)"
    if isinstance(operand, Call):
        return f"{operand.name}() takes numbers"
    return "arithmetic works on numbers"

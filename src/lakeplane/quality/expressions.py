"""Operands and conditions in Python: ``now() - 3 days``, ``avg(last(10)) * 0.8``, ``between 1 and 5``.

Bounds resolve against the evaluation time and the metric history (a callback, most recent value
first). A bound that needs history the callback does not have is *unknown*: the check against it
passes, and :func:`check_metric` reports that so the outcome can say so. Comparisons follow DQDL's
reference implementation: ``between`` excludes both ends and ``=`` compares numbers exactly.

Functions in bounds: ``last(k)`` is the metric's ``k`` most recent values; ``avg`` (also ``average``
and ``mean``), ``min``, ``max``, ``sum``, ``median``, ``std`` (also ``stddev``, population standard
deviation) reduce a list or their arguments to one number, so they nest (``avg(std(last(10)))``);
``abs(x)`` and ``index(last(k), i)`` (the ``i``-th most recent, from 0) complete the set.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakeplane.errors import did_you_mean
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
    format_number,
    format_operand,
    walk_operand,
)

History = Callable[[str, int], Sequence[float]]
"""``history(metric_key, n)``: up to ``n`` earlier values of a metric, most recent first."""

Value = float | str | dt.datetime | dt.timedelta | Keyword | list[float]


class MissingHistory(Exception):
    """A dynamic bound needs earlier values of the metric, and there are none."""


@dataclass
class Bounds:
    """What operands resolve against: the evaluation time and one metric's history."""

    now: dt.datetime
    history: History | None = None
    metric_key: str = ""
    _cache: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    zone: dt.tzinfo = dt.UTC  # where "2024-01-31" and "9:30 PM" are read

    def last(self, n: int) -> list[float]:
        key = (self.metric_key, n)
        if key not in self._cache:
            values = self.history(self.metric_key, n) if self.history else []
            self._cache[key] = [float(v) for v in list(values)[:n] if v is not None]
        return self._cache[key]

    def for_metric(self, metric_key: str) -> Bounds:
        return Bounds(self.now, self.history, metric_key, self._cache, self.zone)

    def in_zone(self, zone: dt.tzinfo) -> Bounds:
        """The same bounds, reading dates and times of day in ``zone``."""
        return Bounds(self.now, self.history, self.metric_key, self._cache, zone)


def operand_value(operand: Operand, bounds: Bounds) -> Value:
    """The value of ``operand``.

    Raises:
        MissingHistory: a ``last(k)`` bound has no history.
        ValueError: arithmetic on values that do not combine (a string plus a number), or an unknown
            function.
    """
    if isinstance(operand, Num):
        return operand.value
    if isinstance(operand, Str | Keyword):
        return operand.value if isinstance(operand, Str) else operand
    if isinstance(operand, Duration):
        return dt.timedelta(seconds=operand.seconds)
    if isinstance(operand, Size):
        return float(operand.bytes)
    if isinstance(operand, DateLit):
        return dt.datetime.combine(operand.value, dt.time(), bounds.zone)
    if isinstance(operand, TimeOfDay):
        today = bounds.now.astimezone(bounds.zone).date()
        return dt.datetime.combine(today, dt.time(operand.hour, operand.minute), bounds.zone)
    if isinstance(operand, Neg):
        inner = operand_value(operand.operand, bounds)
        if isinstance(inner, float | dt.timedelta):
            return -inner
        raise ValueError(f"cannot negate {format_operand(operand.operand)}")
    if isinstance(operand, Call):
        return _call(operand, bounds)
    left, right = operand_value(operand.left, bounds), operand_value(operand.right, bounds)
    return _arithmetic(operand, left, right)


def _population_std(values: list[float]) -> float:
    return statistics.pstdev(values) if len(values) > 1 else 0.0


REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "avg": statistics.fmean,
    "average": statistics.fmean,
    "mean": statistics.fmean,
    "min": min,
    "max": max,
    "sum": math.fsum,
    "median": statistics.median,
    "std": _population_std,
    "stddev": _population_std,
}
FUNCTIONS = frozenset({*REDUCERS, "last", "abs", "index", "now"})


def _call(call: Call, bounds: Bounds) -> Value:
    name = call.name.lower()
    if name == "now":
        return bounds.now
    if name == "last":
        count = _whole(call, bounds)
        values = bounds.last(count)
        if not values:
            raise MissingHistory(bounds.metric_key)
        return values
    args = [operand_value(arg, bounds) for arg in call.args]
    numbers: list[float] = []
    for arg in args:
        if isinstance(arg, list):
            numbers.extend(arg)
        elif isinstance(arg, float):
            numbers.append(arg)
        else:
            raise ValueError(f"{call.name}() takes numbers or last(k), not {format_operand(call)}")
    if name in REDUCERS:
        if not numbers:
            raise ValueError(f"{call.name}() needs at least one value")
        return float(REDUCERS[name](numbers))
    if name == "abs" and len(args) == 1 and isinstance(args[0], float):
        return abs(args[0])
    if name == "index" and len(args) == 2 and isinstance(args[0], list) and isinstance(args[1], float):
        position = int(args[1])
        if not 0 <= position < len(args[0]) or position != args[1]:
            raise MissingHistory(bounds.metric_key)
        return args[0][position]
    if name in ("abs", "index"):
        raise ValueError(f"{call.name}() takes {'one number' if name == 'abs' else 'last(k) and a position'}")
    raise ValueError(
        f"unknown function '{call.name}'{did_you_mean(name, sorted(FUNCTIONS))}; "
        f"dynamic bounds use {', '.join(sorted(FUNCTIONS - {'now'}))}"
    )


def _whole(call: Call, bounds: Bounds) -> int:
    values = [operand_value(arg, bounds) for arg in call.args]
    if len(values) != 1 or not isinstance(values[0], float) or values[0] < 1 or values[0] != int(values[0]):
        raise ValueError(f"last(k) takes one whole number k >= 1, not {format_operand(call)}")
    return int(values[0])


def _arithmetic(node: BinOp, left: Value, right: Value) -> Value:
    op = node.op
    if isinstance(left, float) and isinstance(right, float):
        if op == "/" and right == 0:
            raise ValueError(f"division by zero in {format_operand(node)}")
        return {
            "+": left + right,
            "-": left - right,
            "*": left * right,
            "/": left / right if right else math.nan,
        }[op]
    if isinstance(left, dt.datetime) and isinstance(right, dt.timedelta) and op in "+-":
        return left + right if op == "+" else left - right
    if isinstance(left, dt.timedelta) and isinstance(right, dt.timedelta) and op in "+-":
        return left + right if op == "+" else left - right
    raise ValueError(f"cannot compute {format_operand(node)}")


@dataclass(frozen=True)
class Check:
    """A condition checked against one observed number."""

    passed: bool
    expected: str  # the condition with dynamic bounds resolved, for messages
    history_missing: bool = False


def check_metric(condition: Condition, observed: float | None, bounds: Bounds) -> Check:
    """Whether ``observed`` meets ``condition``; bounds without history count as met."""
    values: list[float | None] = []
    missing = False
    for operand in condition.operands:
        try:
            value = operand_value(operand, bounds)
        except MissingHistory:
            value, missing = None, True
        if isinstance(value, list):
            raise ValueError(
                f"{format_operand(operand)} is a list: reduce it, e.g. avg({format_operand(operand)})"
            )
        if isinstance(value, Keyword) and value.name == "NULL":
            value = math.nan  # compares unequal to every number
        if value is not None and not isinstance(value, float):
            raise ValueError(f"{format_operand(operand)} is not a number")
        values.append(value)
    expected = describe(condition, values)
    if observed is None or math.isnan(observed):
        return Check(False, expected, missing)
    return Check(_holds(condition, observed, values), expected, missing)


def _holds(condition: Condition, observed: float, values: list[float | None]) -> bool:
    op = condition.op
    if op == "between":
        low, high = values
        inside = (low is None or observed > low) and (high is None or observed < high)
        if condition.negated:
            return True if low is None or high is None else not inside
        return inside
    known = [v for v in values if v is not None]
    if not known:
        return True
    if op == "in":
        found = any(_equal(observed, v) for v in known)
        return not found if condition.negated else found
    bound = known[0]
    return {
        ">": observed > bound,
        ">=": observed >= bound or _equal(observed, bound),
        "<": observed < bound,
        "<=": observed <= bound or _equal(observed, bound),
        "=": _equal(observed, bound),
        "!=": not _equal(observed, bound),
    }[op]


def _equal(a: float, b: float) -> bool:
    return a == b


def format_value(value: float) -> str:
    """A measured or computed number for messages: whole numbers as such, others to 6 digits."""
    return format_number(value) if math.isfinite(value) and value == int(value) else f"{value:.6g}"


def describe(condition: Condition, values: Sequence[Any]) -> str:
    """The condition as written, with each dynamic bound's value: ``> avg(last(3)) (= 12)``."""
    text = condition.to_dqdl()
    resolved = []
    for operand, value in zip(condition.operands, values, strict=True):
        if any(isinstance(o, Call) and o.name != "now" for o in walk_operand(operand)):
            shown = "no history" if value is None else format_value(float(value))
            resolved.append(f"{format_operand(operand)} = {shown}")
    return f"{text} ({'; '.join(resolved)})" if resolved else text

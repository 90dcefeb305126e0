"""What file rules test on each file, and which files they test.

Tags narrow the files first (:func:`select_files`): ``recentFiles``, ``uriRegex``, in the order
``filterOrder`` gives. A condition's operands then resolve to :data:`Span` values once, and each
file's time or size is compared with them (:func:`holds`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lakeplane.quality.expressions import Bounds, MissingHistory, operand_value
from lakeplane.quality.files_source import FileEntry
from lakeplane.quality.plan import RuleProblem, scalar_tag
from lakeplane.quality.rules import (
    Condition,
    DateLit,
    Num,
    Operand,
    Rule,
    Size,
    TimeOfDay,
    format_operand,
)

_FILTERS = ("recentFiles", "uriRegex")
#: The tags that choose the files every file rule tests.
FILTER_TAGS = (*_FILTERS, "filterOrder")
_DAY = 86_400.0

#: What a condition's operand resolves to: an interval of values, a single point for most operands
#: and a whole day for a date (so that ``= "2026-11-27"`` means "on that day").
Span = tuple[float, float]


def select_files(rule: Rule, found: list[FileEntry]) -> list[FileEntry]:
    """The files ``rule``'s filter tags keep, in URI order.

    Raises:
        RuleProblem: a tag's value cannot apply (``recentFiles = 0``, a bad regular expression).
    """
    for name in _filter_order(rule):
        found = _FILTER_STEPS[name](rule, found)
    return sorted(found, key=lambda e: e.uri)


def _filter_order(rule: Rule) -> list[str]:
    written = rule.tag("filterOrder")
    if written is None:
        return list(_FILTERS)
    known = {name.lower(): name for name in _FILTERS}
    order = []
    # Glue writes a list (["uriRegex", "recentFiles"]); one string naming both is read too
    words = written if isinstance(written, tuple) else re.findall(r"[A-Za-z]+", str(written))
    for word in words:
        if word.lower() not in known:
            raise RuleProblem(
                f"{rule.rule_type}: filterOrder names '{word}'; it orders {' and '.join(_FILTERS)}"
            )
        order.append(known[word.lower()])
    return order + [name for name in _FILTERS if name not in order]


def _recent(rule: Rule, found: list[FileEntry]) -> list[FileEntry]:
    value = scalar_tag(rule, "recentFiles")
    if value is None:
        return found
    try:
        count = float(value)
    except ValueError:
        count = 0.0
    if count < 1 or count != int(count):
        raise RuleProblem(
            f"{rule.rule_type}: recentFiles must be a whole number of files, 1 or more; got {value!r}"
        )
    return sorted(found, key=lambda e: (e.modified, e.uri), reverse=True)[: int(count)]


def _uri_regex(rule: Rule, found: list[FileEntry]) -> list[FileEntry]:
    value = scalar_tag(rule, "uriRegex")
    if value is None:
        return found
    try:
        pattern = re.compile(str(value))
    except re.error as exc:
        raise RuleProblem(
            f"{rule.rule_type}: uriRegex {str(value)!r} is not a regular expression: {exc}"
        ) from None
    # a raw batch is stored under its content hash: its original name is matched too
    return [e for e in found if pattern.search(e.uri) or (e.landed and pattern.search(e.name))]


_FILTER_STEPS: dict[str, Callable[[Rule, list[FileEntry]], list[FileEntry]]] = {
    "recentFiles": _recent,
    "uriRegex": _uri_regex,
}


def time_zone(rule: Rule) -> dt.tzinfo:
    """The zone of ``rule``'s dates and times of day: its ``timeZone`` tag, or UTC."""
    name = scalar_tag(rule, "timeZone")
    if name is None:
        return dt.UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleProblem(
            f"{rule.rule_type}: unknown time zone '{name}' (with timeZone); use an IANA name such as "
            '"America/New_York"'
        ) from None


def instants(rule: Rule, operand: Operand, now: dt.datetime, zone: dt.tzinfo) -> Span:
    """The instants ``operand`` stands for, as POSIX seconds: a day for a date, else one instant."""
    if isinstance(operand, DateLit):
        start = dt.datetime.combine(operand.value, dt.time(), zone).timestamp()
        return start, start + _DAY
    if isinstance(operand, TimeOfDay):
        today = now.astimezone(zone).date()
        moment = dt.datetime.combine(today, dt.time(operand.hour, operand.minute), zone).timestamp()
        return moment, moment
    try:
        value = operand_value(operand, Bounds(now))
    except (ValueError, MissingHistory):
        value = None
    if not isinstance(value, dt.datetime):
        raise RuleProblem(f"{rule.rule_type}: {format_operand(operand)} is not a date, a time or now()")
    return value.timestamp(), value.timestamp()


def size_span(rule: Rule, operand: Operand) -> Span:
    if isinstance(operand, Size):
        return operand.bytes, operand.bytes
    if isinstance(operand, Num):  # a bare number is bytes
        return operand.value, operand.value
    raise RuleProblem(f"{rule.rule_type}: {format_operand(operand)} is not a size (5 MB, 100 B)")


def holds(condition: Condition, value: float, spans: Sequence[Span]) -> bool:
    """Whether ``value`` meets ``condition`` whose operands are ``spans``; ``between`` excludes its
    ends and takes them in either order (``between now() and (now() - 45 minutes)``)."""
    op = condition.op
    if op == "between":
        low, high = sorted((spans[0][0], spans[1][0]))
        return (low < value < high) != condition.negated
    if op == "in":
        return any(_within(value, span) for span in spans) != condition.negated
    low, high = spans[0]
    return {
        ">": value > low,
        ">=": value >= low,
        "<": value < low,
        "<=": value <= low,
        "=": _within(value, (low, high)),
        "!=": not _within(value, (low, high)),
    }.get(op, False)


def _within(value: float, span: Span) -> bool:
    low, high = span
    return value == low if low == high else low <= value < high


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

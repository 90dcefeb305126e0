"""The planning framework every rule type plugs into: the table under test, measurements, planners.

A planner (registered by rule type with :func:`planner` in :data:`PLANNERS`) runs before any SQL:
it asks the shared scans of the :class:`Target` for the aggregates it needs and returns a
*resolver* that, once the scans ran, turns their values into a :class:`Measurement`. The planners
themselves live with what they measure: :mod:`~lakeplane.quality.checks` (rows and columns),
:mod:`~lakeplane.quality.matches`, :mod:`~lakeplane.quality.files`,
:mod:`~lakeplane.quality.anomaly_rules`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakeplane.engines.base import EngineSession
from lakeplane.errors import EngineError, did_you_mean
from lakeplane.quality.anomaly import TimedHistory
from lakeplane.quality.files_source import FileSource
from lakeplane.quality.rules import Rule
from lakeplane.quality.scan import AggregateScan, Frequencies, FrequencyKey, FrequencyScan, engine_problem
from lakeplane.quality.sql import quote_ident
from lakeplane.quality.validate import Fail


class RuleProblem(Exception):
    """The rule cannot be measured on this table (a missing column, SQL the engine refused)."""


@dataclass
class Measurement:
    """What one rule measured, before its condition is applied."""

    observed: float | str | None = None
    failing_rows: int | None = None
    checked_rows: int | None = None  # set for row-level rules: rows the rule looked at
    verdict: bool | None = None  # set by rules that decide by themselves (ColumnExists)
    detail: str = ""
    sample_sql: str | None = None  # selects failing rows
    metrics: dict[str, float] = field(default_factory=dict)  # values to record, by history key
    history_missing: bool = False  # set by rules that decide by themselves on history


@dataclass
class ScanResults:
    aggregates: dict[str, Any]
    frequencies: dict[FrequencyKey, Frequencies]
    failing: dict[str, int] = field(default_factory=dict)  # failing rows of checks on groupings


Resolver = Callable[[ScanResults], Measurement]


@dataclass
class Target:
    """The table under test and everything planners share."""

    session: EngineSession
    table: str  # name of the table under test in the session
    columns: dict[str, pa.DataType]  # column -> its Arrow type
    references: Mapping[str, str]  # DQDL alias -> relation name in the session
    now: dt.datetime
    aggregates: AggregateScan
    frequencies: FrequencyScan
    reference_counts: dict[str, int] = field(default_factory=dict)
    grouped: frozenset[FrequencyKey] = frozenset()  # column sets some rule groups by anyway
    history: TimedHistory | None = None  # earlier metric values with their times
    files: FileSource | None = None  # where file rules (FileSize...) find their files

    @property
    def relation(self) -> str:
        return quote_ident(self.table)

    def column(self, name: str) -> str:
        """The column named ``name`` (case-insensitively, as Spark resolves names), quoted."""
        return quote_ident(self.column_name(name))

    def column_name(self, name: str) -> str:
        if name in self.columns:
            return name
        folded = {c.lower(): c for c in self.columns}
        if name.lower() in folded:
            return folded[name.lower()]
        raise RuleProblem(f"column '{name}' does not exist{did_you_mean(name, self.columns)}")

    def reference(self, alias: str, fail: Fail) -> str:
        if alias not in self.references:
            known = ", ".join(sorted(self.references)) or "none given"
            fail(
                f"unknown reference dataset '{alias}'{did_you_mean(alias, self.references)} "
                f"(references: {known})"
            )
        return quote_ident(self.references[alias])

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self.session.execute(sql)
        except EngineError as exc:
            raise RuleProblem(engine_problem(exc)) from None

    def schema(self, sql: str) -> pa.Schema:
        """The columns ``sql`` returns, without running it."""
        try:
            return self.session.result_schema(sql)
        except EngineError as exc:
            raise RuleProblem(engine_problem(exc)) from None


Planner = Callable[[Rule, int, Target, Fail], Resolver]
PLANNERS: dict[str, Planner] = {}


#: The ``with`` tags (other than ``threshold``) each rule type's planner applies. DQDL accepts any
#: tag; an outcome names the ones its rule type does not apply, so a tag never silently does nothing.
APPLIED_TAGS: dict[str, frozenset[str]] = {}


def planner(*names: str, tags: Iterable[str] = ()) -> Callable[[Planner], Planner]:
    """Register a planner for the rule types ``names``, which applies the ``with`` tags ``tags``."""

    def register(function: Planner) -> Planner:
        PLANNERS.update(dict.fromkeys(names, function))
        APPLIED_TAGS.update(dict.fromkeys(names, frozenset(tags)))
        return function

    return register


def scalar_tag(rule: Rule, name: str) -> str | float | None:
    """The value of ``rule``'s tag ``name``, which takes one value, not a list.

    Raises:
        RuleProblem: the tag holds a list.
    """
    value = rule.tag(name)
    if isinstance(value, tuple):
        raise RuleProblem(f"{rule.rule_type}: {name} takes one value, not a list")
    return value


def flag_tag(rule: Rule, name: str) -> bool:
    """Whether ``rule``'s tag ``name`` (``"true"`` or ``"false"``) is set; false when absent.

    Raises:
        RuleProblem: the tag holds something else.
    """
    value = scalar_tag(rule, name)
    if value is None:
        return False
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0", "1.0", "0.0"):
        raise RuleProblem(f'{rule.rule_type}: {name} must be "true" or "false"; got {value!r}')
    return text in ("true", "1", "1.0")

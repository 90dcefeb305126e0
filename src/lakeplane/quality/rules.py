"""Typed DQDL rules: the parser's output, the evaluator's input, printable back to DQDL.

A ruleset is a tuple of rule nodes: a :class:`Rule` (one rule type with its parameters, condition,
``where`` clause and ``with threshold``) or a :class:`CompositeRule` (``and`` / ``or`` over nodes).
Conditions hold :data:`Operand` trees, evaluated later against the evaluation time and the metric
history (``avg(last(10)) * 0.8``). Positions and the text as written are kept for messages but do not
take part in equality, so ``parse(ruleset.to_dqdl()) == ruleset``.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

# -- operands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    """A number literal."""

    value: float


@dataclass(frozen=True)
class Str:
    """A quoted string (unescaped)."""

    value: str


@dataclass(frozen=True)
class Keyword:
    """``NULL``, ``EMPTY`` or ``WHITESPACES_ONLY`` (as values of a column)."""

    name: Literal["NULL", "EMPTY", "WHITESPACES_ONLY"]


@dataclass(frozen=True)
class Duration:
    """``3 days``: in ``DataFreshness`` conditions and date arithmetic."""

    amount: float
    unit: Literal["days", "hours", "minutes"]

    @property
    def seconds(self) -> float:
        return self.amount * {"days": 86_400, "hours": 3_600, "minutes": 60}[self.unit]


SizeUnit = Literal["B", "KB", "MB", "GB", "TB"]
SIZE_UNITS: tuple[SizeUnit, ...] = ("B", "KB", "MB", "GB", "TB")


@dataclass(frozen=True)
class Size:
    """``5 MB``: in ``FileSize`` conditions. Units are binary (1 KB = 1024 B), as S3 sizes are."""

    amount: float
    unit: SizeUnit

    @property
    def bytes(self) -> float:
        return self.amount * 1024 ** SIZE_UNITS.index(self.unit)


@dataclass(frozen=True)
class DateLit:
    """A quoted date, ``"2024-01-31"``: midnight of that day (UTC unless a ``timeZone`` tag says)."""

    value: dt.date


@dataclass(frozen=True)
class TimeOfDay:
    """A quoted time of day, ``"9:30 PM"`` or ``"21:30"``: that time today (UTC unless a ``timeZone``
    tag says). ``text`` keeps the form written."""

    hour: int
    minute: int
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class Call:
    """A function call: ``now()``, ``last(10)``, ``avg(last(10))``."""

    name: str
    args: tuple[Operand, ...] = ()


@dataclass(frozen=True)
class BinOp:
    """Arithmetic on two operands."""

    op: Literal["+", "-", "*", "/"]
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Neg:
    """A negated operand."""

    operand: Operand


Operand = Num | Str | Keyword | Duration | Size | DateLit | TimeOfDay | Call | BinOp | Neg


Comparator = Literal[">", ">=", "<", "<=", "=", "!="]
COMPARATORS: tuple[Comparator, ...] = (">", ">=", "<", "<=", "=", "!=")


@dataclass(frozen=True)
class Condition:
    """``> 5``, ``between a and b``, ``in [..]``, ``matches "re"``; ``negated`` for the ``not`` forms."""

    op: Literal[">", ">=", "<", "<=", "=", "!=", "between", "in", "matches"]
    operands: tuple[Operand, ...]
    negated: bool = False

    def to_dqdl(self) -> str:
        not_ = "not " if self.negated else ""
        if self.op == "between":
            low, high = self.operands
            return f"{not_}between {format_operand(low)} and {format_operand(high)}"
        if self.op == "in":
            return f"{not_}in [{', '.join(format_operand(o) for o in self.operands)}]"
        if self.op == "matches":
            return f"{not_}matches {format_operand(self.operands[0])}"
        return f"{self.op} {format_operand(self.operands[0])}"


def walk_operand(operand: Operand) -> Iterator[Operand]:
    """The operand and every operand inside it."""
    yield operand
    if isinstance(operand, Call):
        for arg in operand.args:
            yield from walk_operand(arg)
    elif isinstance(operand, BinOp):
        yield from walk_operand(operand.left)
        yield from walk_operand(operand.right)
    elif isinstance(operand, Neg):
        yield from walk_operand(operand.operand)


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def format_operand(operand: Operand, parent: int = 0) -> str:
    """DQDL text for ``operand``; parentheses only where precedence needs them."""
    if isinstance(operand, Num):
        return format_number(operand.value)
    if isinstance(operand, Str):
        return quote(operand.value)
    if isinstance(operand, Keyword):
        return operand.name
    if isinstance(operand, Duration | Size):
        return f"{format_number(operand.amount)} {operand.unit}"
    if isinstance(operand, DateLit):
        return quote(operand.value.isoformat())
    if isinstance(operand, TimeOfDay):
        return quote(operand.text or f"{operand.hour:02d}:{operand.minute:02d}")
    if isinstance(operand, Call):
        return f"{operand.name}({', '.join(format_operand(a) for a in operand.args)})"
    if isinstance(operand, Neg):
        return f"-{format_operand(operand.operand, 3)}"
    level = _PRECEDENCE[operand.op]
    # the right operand needs parentheses at equal precedence: a - (b - c)
    text = f"{format_operand(operand.left, level)} {operand.op} {format_operand(operand.right, level + 1)}"
    # DQDL writes date arithmetic in parentheses: (now() - 3 days)
    is_date = isinstance(operand.left, Call) and operand.left.name == "now"
    return f"({text})" if level < parent or is_date else text


def format_number(value: float) -> str:
    """``5`` for whole numbers, else Python's shortest round-tripping form, never in exponent form
    (DQDL has none: ``0.00000001``)."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    return format(decimal.Decimal(text), "f") if "e" in text else text


def quote(text: str) -> str:
    """A DQDL quoted string: only ``"`` and ``\\`` are escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- rules -------------------------------------------------------------------------------------


TagValue = str | float | tuple[str, ...]
"""A tag's value: ``with hashAlgorithm = "MD5"``, ``with recentFiles = 5``, ``with filterOrder = ["a"]``."""


def format_tag_value(value: TagValue) -> str:
    if isinstance(value, tuple):
        return f"[{', '.join(quote(v) for v in value)}]"
    return format_number(value) if isinstance(value, float) else quote(value)


@dataclass(frozen=True)
class Rule:
    """One DQDL rule: ``ColumnValues "x" between 1 and 9 where "y > 0" with threshold > 0.9``.

    ``tags`` are the ``with name = value`` tags other than ``threshold`` (``with hashAlgorithm =
    "MD5"``, ``with recentFiles = 1``), in the order written; :meth:`tag` looks one up. ``labels``
    are the rule's labels merged over the ruleset's ``DefaultLabels`` (the rule's win).
    """

    rule_type: str
    params: tuple[str, ...] = ()
    condition: Condition | None = None
    where: str | None = None
    threshold: Condition | None = None
    tags: tuple[tuple[str, TagValue], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    text: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)

    def to_dqdl(self, defaults: tuple[tuple[str, str], ...] = ()) -> str:
        """The rule as DQDL; labels the ruleset's ``defaults`` already give are left out."""
        parts = [self.rule_type, *(quote(p) for p in self.params)]
        if self.condition is not None:
            parts.append(self.condition.to_dqdl())
        if self.where is not None:
            parts.append(f"where {quote(self.where)}")
        own = own_labels(self.labels, defaults)
        if own:
            parts.append(format_labels("labels", own))
        if self.threshold is not None:
            parts.append(f"with threshold {self.threshold.to_dqdl()}")
        for name, value in self.tags:
            parts.append(f"with {name} = {format_tag_value(value)}")
        return " ".join(parts)

    def tag(self, name: str) -> TagValue | None:
        """The value of tag ``name`` (case-insensitively), or ``None`` if the rule has none."""
        wanted = name.lower()
        return next((value for key, value in self.tags if key.lower() == wanted), None)

    @property
    def metric_key(self) -> str:
        """What the rule measures, as text: the key of its values in the metric history."""
        parts = [self.rule_type, *(quote(p) for p in self.params)]
        if self.where is not None:
            parts.append(f"where {quote(self.where)}")
        return " ".join(parts)

    def leaves(self) -> Iterator[Rule]:
        yield self


@dataclass(frozen=True)
class CompositeRule:
    """Rules joined by ``and`` or ``or``; each part is evaluated on its own, then combined."""

    op: Literal["and", "or"]
    rules: tuple[RuleNode, ...]
    labels: tuple[tuple[str, str], ...] = ()
    text: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)

    def to_dqdl(self, defaults: tuple[tuple[str, str], ...] = ()) -> str:
        body = f" {self.op} ".join(f"({r.to_dqdl(defaults)})" for r in self.rules)
        own = own_labels(self.labels, defaults)
        return f"({body}) {format_labels('labels', own)}" if own else body

    def leaves(self) -> Iterator[Rule]:
        for rule in self.rules:
            yield from rule.leaves()


RuleNode = Rule | CompositeRule


def own_labels(
    labels: tuple[tuple[str, str], ...], defaults: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """The ``labels`` a rule sets itself: those the ruleset's ``defaults`` do not already give."""
    given = dict(defaults)
    return tuple((k, v) for k, v in labels if given.get(k) != v)


def format_labels(keyword: str, labels: tuple[tuple[str, str], ...]) -> str:
    """``labels=["team"="ads", "tier"="1"]`` (or ``DefaultLabels=[...]``)."""
    return f"{keyword}=[{', '.join(f'{quote(k)}={quote(v)}' for k, v in labels)}]"


@dataclass(frozen=True)
class Ruleset:
    """A parsed DQDL document: its rules in order, analyzers (parsed, not run), ``Metadata`` and
    ``DataSources`` (which a caller may read as reference aliases: ``{"reference": "zone.table"}``)."""

    rules: tuple[RuleNode, ...]
    analyzers: tuple[Rule, ...] = ()
    metadata: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict, compare=False)
    data_sources: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict, compare=False)
    source: str = field(default="<dqdl>", compare=False)
    default_labels: tuple[tuple[str, str], ...] = ()

    def to_dqdl(self) -> str:
        """The ruleset as DQDL text (variables already substituted, comments dropped)."""
        lines = [format_labels("DefaultLabels", self.default_labels)] if self.default_labels else []
        lines.append("Rules = [")
        lines.append(",\n".join(f"    {rule.to_dqdl(self.default_labels)}" for rule in self.rules))
        lines.append("]")
        if self.analyzers:
            lines.append("Analyzers = [")
            lines.append(",\n".join(f"    {a.to_dqdl()}" for a in self.analyzers))
            lines.append("]")
        return "\n".join(line for line in lines if line) + "\n"

    def leaves(self) -> Iterator[Rule]:
        for rule in self.rules:
            yield from rule.leaves()


# -- rule types --------------------------------------------------------------------------------

Shape = Literal[
    "none", "number", "values", "length", "duration", "type", "optional_number", "size", "date", "file_match"
]


@dataclass(frozen=True)
class RuleSpec:
    """What a rule type takes: parameters, the kind of condition, ``where`` and ``with threshold``.

    ``condition`` is ``none`` (no condition), ``number`` (a metric compared with numbers, dynamic
    bounds allowed), ``values`` (each value of a column: strings, numbers or dates), ``length``
    (each value's length), ``duration`` (each value's age), ``type`` (a type name),
    ``optional_number`` (``CustomSql``: a condition on its single value, or none for the row-level
    form), ``size`` (``FileSize``: sizes with units), ``date`` (``FileFreshness``: dates, times of
    day, ``now()`` arithmetic) or ``file_match`` (``FileMatch``: checksums, or none when it compares
    two paths). What each allows follows the public DQDL grammar's rule configuration.
    """

    name: str
    min_params: int
    max_params: int | None
    condition: Shape
    where: bool = True
    threshold: bool = False
    row_level: bool = False
    params_hint: str = ""
    analyzer: bool = True  # may appear in the Analyzers section
    analyzer_only: bool = False  # may appear only there (AllStatistics)
    file_rule: bool = False  # checks files (the raw zone's batches, or objects at a path), not rows


_FILE = {"where": False, "analyzer": False, "file_rule": True}
_SPECS = (
    RuleSpec("RowCount", 0, 0, "number"),
    RuleSpec("ColumnCount", 0, 0, "number", where=False),
    RuleSpec("Completeness", 1, 1, "number", params_hint='"column"'),
    RuleSpec("IsComplete", 1, 1, "none", row_level=True, params_hint='"column"', analyzer=False),
    RuleSpec("IsUnique", 1, None, "none", row_level=True, params_hint='"column" ...', analyzer=False),
    RuleSpec("Uniqueness", 1, None, "number", params_hint='"column" ...'),
    RuleSpec("IsPrimaryKey", 1, None, "none", row_level=True, params_hint='"column" ...', analyzer=False),
    RuleSpec("ColumnValues", 1, 1, "values", threshold=True, row_level=True, params_hint='"column"'),
    RuleSpec("ColumnLength", 1, 1, "length", row_level=True, params_hint='"column"'),
    RuleSpec("ColumnExists", 1, 1, "none", where=False, params_hint='"column"', analyzer=False),
    RuleSpec("ColumnDataType", 1, 1, "type", threshold=True, row_level=True, params_hint='"column"'),
    RuleSpec("ColumnNamesMatchPattern", 1, 1, "none", where=False, params_hint='"regex"', analyzer=False),
    RuleSpec("ColumnCorrelation", 2, 2, "number", params_hint='"column" "column"'),
    RuleSpec("Mean", 1, 1, "number", params_hint='"column"'),
    RuleSpec("Sum", 1, 1, "number", params_hint='"column"'),
    RuleSpec("StandardDeviation", 1, 1, "number", params_hint='"column"'),
    RuleSpec("Variance", 1, 1, "number", params_hint='"column"'),
    RuleSpec("DistinctValuesCount", 1, 1, "number", params_hint='"column"'),
    RuleSpec("UniqueValueRatio", 1, 1, "number", params_hint='"column"'),
    RuleSpec("Entropy", 1, 1, "number", params_hint='"column"'),
    RuleSpec(
        "ReferentialIntegrity", 2, 2, "number", where=False, params_hint='"columns" "reference.{columns}"'
    ),
    RuleSpec("DataFreshness", 1, 1, "duration", row_level=True, params_hint='"column"'),
    RuleSpec(
        "CustomSql",
        1,
        1,
        "optional_number",
        where=False,
        threshold=True,
        params_hint='"select ... from primary"',
    ),
    RuleSpec("RowCountMatch", 1, 1, "number", where=False, params_hint='"reference"'),
    RuleSpec("SchemaMatch", 1, 1, "number", where=False, params_hint='"reference"'),
    RuleSpec(
        "AggregateMatch", 2, 2, "number", where=False, params_hint='"sum(column)" "sum(reference.column)"'
    ),
    RuleSpec(
        "DatasetMatch", 2, 3, "number", where=False, params_hint='"reference" "key->key" ["column->column"]'
    ),
    RuleSpec("DetectAnomalies", 1, None, "none", where=False, params_hint='"RowCount" | "Mean" "column" ...'),
    RuleSpec("AllStatistics", 1, 1, "none", analyzer_only=True, params_hint='"column"'),
    RuleSpec("FileFreshness", 0, 1, "date", threshold=True, params_hint='["path"]', **_FILE),
    RuleSpec("FileSize", 0, 1, "size", threshold=True, params_hint='["path"]', **_FILE),
    RuleSpec("FileMatch", 0, 2, "file_match", params_hint='"s3://bucket/file"', **_FILE),
    RuleSpec("FileUniqueness", 0, 1, "number", params_hint='["path"]', **_FILE),
)
RULE_SPECS: dict[str, RuleSpec] = {spec.name: spec for spec in _SPECS}


DATA_TYPES: dict[str, str] = {
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "INTEGER": "INTEGER",
    "INT": "INTEGER",
    "DOUBLE": "DOUBLE",
    "FLOAT": "FLOAT",
    "LONG": "BIGINT",
    "SHORT": "SMALLINT",
    "BYTE": "TINYINT",
    "STRING": "VARCHAR",
    "DECIMAL": "DECIMAL(38, 10)",
}
"""DQDL (Spark) type names accepted by ``ColumnDataType``, and the DuckDB type each is cast to."""

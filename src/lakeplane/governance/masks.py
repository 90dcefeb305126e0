"""Column masks: how a masked column is computed beneath a query.

A mask is written in ``policy.yaml`` as a name or a one-key mapping and parsed into a :class:`MaskSpec`;
:func:`mask_expression` turns it into a sqlglot expression over the column, which the governance plane
puts in place of the column. Every expression transpiles to DuckDB and Spark SQL.

==============================  ===========================================  ==========================
Mask (policy form)              Result                                       Result type
==============================  ===========================================  ==========================
``null``                        NULL on every row                            the column's type
``redact`` / ``{redact: X}``    ``X`` (default ``****``) on every row,       strings: string;
                                NULL rows included; NULL for other types     others: the column's type
``hash``                        lowercase hex HMAC-SHA256 of the value       string (64 hex characters)
                                (binary: of its bytes; other types: of the
                                engine's cast to string); NULL stays NULL
``{first: n}`` / ``{last: n}``  first/last ``n`` characters kept, every      string (strings only)
                                other character replaced by ``*``
``{truncate: year|month}``      truncated to the start of the year/month     the column's type (date,
                                (timestamptz: in the session time zone)      timestamp, timestamptz)
``{bucket: w}``                 ``floor(value / w) * w`` (``w`` whole for    the column's type
                                int and long columns)                        (numbers only)
``{sql: "..."}``                the expression, ``value`` standing for the   cast to the column's type
                                column; it may read no other column, table,
                                subquery, aggregate or window
==============================  ===========================================  ==========================

Masks other than ``null`` and ``redact`` keep NULL as NULL. A mask on a type it does not apply to raises
:class:`MaskTypeError`; a malformed mask raises :class:`MaskSpecError` (a ``ValueError``).

Restrictiveness (:attr:`MaskSpec.rank`, higher hides more), used when several masks apply to a column:
``null`` 70 > ``redact`` 60 > ``hash`` 50 > ``first`` = ``last`` 40 > ``truncate`` = ``bucket`` 30 >
``sql`` 10 (an arbitrary expression is assumed to hide least).

``hash`` is deterministic for one key, so hashed columns still join. Its SQL carries the key's HMAC pads
as hex literals, which are as good as the key itself: show generated SQL only through :func:`redact_key`.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import sqlglot
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from sqlglot import exp
from sqlglot.errors import ParseError

from lakeplane.errors import MaskSpecError, MaskTypeError, did_you_mean

MaskKind = Literal["null", "redact", "hash", "first", "last", "truncate", "bucket", "sql"]

DEFAULT_REDACTION = "****"
KEY_PLACEHOLDER = "<mask key>"
RANKS: dict[str, int] = {
    "null": 70,
    "redact": 60,
    "hash": 50,
    "first": 40,
    "last": 40,
    "truncate": 30,
    "bucket": 30,
    "sql": 10,
}
# The argument each kind takes in its one-key policy form, and the field it fills.
_ARGUMENT_FIELDS: dict[str, str] = {
    "redact": "value",
    "first": "n",
    "last": "n",
    "truncate": "unit",
    "bucket": "width",
    "sql": "expression",
}
_BARE_KINDS = ("null", "redact", "hash")
_SQL_MASK_FORBIDDEN: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Query, "subqueries"),
    (exp.Subquery, "subqueries"),
    (exp.Table, "table references"),
    (exp.AggFunc, "aggregate functions"),
    (exp.Window, "window functions"),
    (exp.Star, "*"),
    (exp.Placeholder, "parameters"),
    (exp.Parameter, "parameters"),
    (exp.Alias, "aliases"),
)

DType = exp.DType
_STRINGS = {DType.VARCHAR, DType.TEXT}
_BINARIES = {DType.VARBINARY, DType.BINARY}
_INTEGRALS = {DType.INT, DType.BIGINT}
_NUMBERS = {*_INTEGRALS, DType.FLOAT, DType.DOUBLE, DType.DECIMAL}
_TEMPORALS = {DType.DATE, DType.TIMESTAMP, DType.TIMESTAMPTZ}
_ICEBERG_TYPES: dict[str, exp.DType] = {
    "string": DType.VARCHAR,
    "int": DType.INT,
    "long": DType.BIGINT,
    "double": DType.DOUBLE,
    "float": DType.FLOAT,
    "boolean": DType.BOOLEAN,
    "date": DType.DATE,
    "timestamp": DType.TIMESTAMP,
    "timestamptz": DType.TIMESTAMPTZ,
    "binary": DType.VARBINARY,
    "uuid": DType.UUID,
}
ColumnCopy = Callable[[], exp.Expression]  # a fresh copy of the masked column for each place it is used
_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_FIXED = re.compile(r"fixed\[\s*\d+\s*\]")


class MaskSpec(BaseModel):
    """One mask as written in policy.yaml; exactly one kind is set."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    kind: MaskKind
    value: str | None = None
    n: int | None = None
    unit: Literal["year", "month"] | None = None
    width: float | None = None
    expression: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_redaction(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "redact" and data.get("value") is None:
            return {**data, "value": DEFAULT_REDACTION}
        return data

    @model_validator(mode="after")
    def _check_argument(self) -> MaskSpec:
        wanted = _ARGUMENT_FIELDS.get(self.kind)
        for name in _ARGUMENT_FIELDS.values():
            given = getattr(self, name)
            if name != wanted and given is not None:
                raise ValueError(f"mask '{self.kind}' takes no {name}, got {given!r}")
        if wanted is not None and getattr(self, wanted) is None:
            raise ValueError(f"mask '{self.kind}' needs {wanted}")
        if self.n is not None and self.n < 0:
            raise ValueError(f"mask '{self.kind}' shows n >= 0 characters, got {self.n}")
        if self.width is not None and not (math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"mask 'bucket' needs a finite width > 0, got {self.width}")
        if self.expression is not None:
            _parse_sql_mask(self.expression)
        return self

    @classmethod
    def parse(cls, raw: object) -> MaskSpec:
        """Read a mask in its policy form.

        Args:
            raw: ``"null"``, ``"redact"``, ``"hash"`` or a one-key mapping: ``{"redact": "XXX"}``,
                ``{"first": 3}``, ``{"last": 4}``, ``{"truncate": "month"}``, ``{"bucket": 10}``,
                ``{"sql": "CASE WHEN value > 100 THEN 100 ELSE value END"}``.

        Raises:
            MaskSpecError: an unknown kind, or a missing or invalid argument.
        """
        if isinstance(raw, MaskSpec):
            return raw
        if isinstance(raw, str):
            if raw in _BARE_KINDS:
                return cls(kind=raw)  # type: ignore[arg-type]  # narrowed by the check above
            if raw in _ARGUMENT_FIELDS:
                raise MaskSpecError(f"mask '{raw}' needs an argument: write {{{raw}: ...}}", mask=raw)
            raise MaskSpecError(f"unknown mask '{raw}'{did_you_mean(raw, RANKS)}", mask=raw)
        if isinstance(raw, dict) and len(raw) == 1:
            ((kind, argument),) = raw.items()
            if kind not in _ARGUMENT_FIELDS:
                hint = f"; write it as '{kind}'" if kind in _BARE_KINDS else did_you_mean(str(kind), RANKS)
                raise MaskSpecError(f"unknown mask {{{kind}: ...}}{hint}", mask=raw)
            try:
                return cls(kind=kind, **{_ARGUMENT_FIELDS[kind]: argument})
            except ValidationError as exc:
                reasons = "; ".join(_reason(error) for error in exc.errors())
                raise MaskSpecError(f"invalid mask {raw!r}: {reasons}", mask=raw) from None
        raise MaskSpecError(
            f"a mask is one of {', '.join(_BARE_KINDS)} or a one-key mapping such as "
            f"{{first: 3}}, not {raw!r}",
            mask=raw,
        )

    def to_policy(self) -> str | dict[str, Any]:
        """The mask in its policy form, the inverse of :meth:`parse`."""
        if self.kind in ("null", "hash") or (self.kind == "redact" and self.value == DEFAULT_REDACTION):
            return self.kind
        return {self.kind: getattr(self, _ARGUMENT_FIELDS[self.kind])}

    @property
    def rank(self) -> int:
        """How much the mask hides, higher is more restrictive (see the module docstring)."""
        return RANKS[self.kind]


def _reason(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    field = ".".join(str(part) for part in error["loc"])
    return message if not field else f"{field}: {message}"


def sql_type(column_type: str) -> exp.DataType:
    """The SQL type of an Iceberg column type.

    Args:
        column_type: the Iceberg type as a string, e.g. ``"long"``, ``"decimal(10, 2)"``, ``"fixed[16]"``.

    Raises:
        MaskTypeError: a type masks do not support (nested types, time, nanosecond timestamps).
    """
    name = column_type.strip().lower()
    if name in _ICEBERG_TYPES:
        return exp.DataType(this=_ICEBERG_TYPES[name])
    if decimal := _DECIMAL.fullmatch(name):
        return exp.DataType.build(f"DECIMAL({decimal[1]}, {decimal[2]})")
    if _FIXED.fullmatch(name):
        return exp.DataType(this=DType.VARBINARY)
    raise MaskTypeError(f"masks do not support columns of type {column_type}", column_type=column_type)


def keyed_pads(key: bytes) -> tuple[str, str]:
    """The HMAC-SHA256 inner and outer keyed pads of ``key`` (RFC 2104), as lowercase hex.

    They are the only key material in generated SQL; :func:`redact_key` hides them.

    Raises:
        ValueError: the key is empty.
    """
    if not key:
        raise ValueError("the mask key is empty")
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block).hex(), bytes(b ^ 0x5C for b in block).hex()


def redact_key(sql: str, key: bytes) -> str:
    """``sql`` with the hex pads of ``key`` replaced by :data:`KEY_PLACEHOLDER`, for showing to users."""
    for pad in keyed_pads(key):
        sql = re.sub(pad, KEY_PLACEHOLDER, sql, flags=re.IGNORECASE)
    return sql


def mask_expression(spec: MaskSpec, column: exp.Expression, column_type: str, key: bytes) -> exp.Expression:
    """A sqlglot expression computing the masked value of ``column``.

    Args:
        spec: the mask.
        column: what to mask, usually an ``exp.Column``; it is copied, never modified.
        column_type: the column's Iceberg type as a string (see :func:`sql_type`).
        key: the secret key of ``hash`` masks.

    Returns:
        An expression of the result type listed in the module docstring.

    Raises:
        MaskTypeError: the mask does not apply to the column's type.
    """
    dtype = sql_type(column_type)
    accepted = _ACCEPTED_TYPES.get(spec.kind)
    if accepted is not None and dtype.this not in accepted[0]:
        raise MaskTypeError(
            f"mask '{spec.kind}' works on {accepted[1]}, not on column of type {column_type}",
            kind=spec.kind,
            column_type=column_type,
        )
    if spec.kind == "bucket" and dtype.this in _INTEGRALS and not float(spec.width or 0).is_integer():
        raise MaskTypeError(
            f"mask 'bucket' on column of type {column_type} needs a whole width, got {spec.width}",
            kind=spec.kind,
            column_type=column_type,
        )
    return _BUILDERS[spec.kind](spec, lambda: column.copy(), dtype, key)


def _null(spec: MaskSpec, column: ColumnCopy, dtype: exp.DataType, key: bytes) -> exp.Expression:
    return exp.cast(exp.null(), dtype)


def _redact(spec: MaskSpec, column: ColumnCopy, dtype: exp.DataType, key: bytes) -> exp.Expression:
    if dtype.this in _STRINGS:
        return exp.cast(exp.Literal.string(spec.value or ""), dtype)
    return _null(spec, column, dtype, key)


def _sha256(data: exp.Expression) -> exp.Expression:
    return exp.SHA2(this=data, length=exp.Literal.number(256))


def _hash(spec: MaskSpec, column: ColumnCopy, dtype: exp.DataType, key: bytes) -> exp.Expression:
    inner_pad, outer_pad = keyed_pads(key)
    data = column() if dtype.this in _STRINGS else exp.cast(column(), exp.DataType(this=DType.VARCHAR))
    # UTF-8 bytes: a CAST to BLOB would read backslash escapes in DuckDB.
    message = (
        column() if dtype.this in _BINARIES else exp.Encode(this=data, charset=exp.Literal.string("utf-8"))
    )
    # `||` (not CONCAT, which skips NULLs in DuckDB) so a NULL value gives a NULL hash.
    inner = _sha256(exp.DPipe(this=exp.Unhex(this=exp.Literal.string(inner_pad)), expression=message))
    return _sha256(
        exp.DPipe(this=exp.Unhex(this=exp.Literal.string(outer_pad)), expression=exp.Unhex(this=inner))
    )


def _stars(column: ColumnCopy, shown: int) -> exp.Expression:
    hidden = exp.Sub(this=exp.Length(this=column()), expression=exp.Literal.number(shown))
    # ignore_nulls spares a NULL guard around GREATEST: the `||` joining the parts already gives NULL.
    return exp.Repeat(
        this=exp.Literal.string("*"),
        times=exp.Greatest(this=hidden, expressions=[exp.Literal.number(0)], ignore_nulls=True),
    )


def _first(spec: MaskSpec, column: ColumnCopy, dtype: exp.DataType, key: bytes) -> exp.Expression:
    n = spec.n or 0
    return exp.DPipe(
        this=exp.Left(this=column(), expression=exp.Literal.number(n)), expression=_stars(column, n)
    )


def _last(spec: MaskSpec, column: ColumnCopy, dtype: exp.DataType, key: bytes) -> exp.Expression:
    n = spec.n or 0
    return exp.DPipe(
        this=_stars(column, n), expression=exp.Right(this=column(), expression=exp.Literal.number(n))
    )


def _truncate(spec: MaskSpec, column: ColumnCopy, dtype: exp.DataType, key: bytes) -> exp.Expression:
    unit = exp.var(str(spec.unit).upper())
    truncated = (
        exp.DateTrunc(this=column(), unit=unit)
        if dtype.this == DType.DATE
        else exp.TimestampTrunc(this=column(), unit=unit)
    )
    return exp.cast(truncated, dtype)  # DuckDB truncates a DATE to a TIMESTAMP


def _bucket(spec: MaskSpec, column: ColumnCopy, dtype: exp.DataType, key: bytes) -> exp.Expression:
    width = float(spec.width or 0)
    if dtype.this in (DType.FLOAT, DType.DOUBLE):
        floored = exp.Floor(this=exp.Div(this=column(), expression=exp.Literal.number(repr(width))))
        return exp.cast(exp.Mul(this=floored, expression=exp.Literal.number(repr(width))), dtype)
    # Integers and decimals: value - ((value % w + w) % w) is floor(value / w) * w without going through
    # DOUBLE, which DuckDB's division returns and which loses digits of long and decimal values.
    w = exp.Literal.number(int(width) if dtype.this in _INTEGRALS else f"{Decimal(repr(width)):f}")
    remainder = exp.Mod(
        this=exp.Paren(this=exp.Add(this=exp.Mod(this=column(), expression=w.copy()), expression=w.copy())),
        expression=w.copy(),
    )
    return exp.cast(exp.Sub(this=column(), expression=exp.Paren(this=remainder)), dtype)


def _sql(spec: MaskSpec, column: ColumnCopy, dtype: exp.DataType, key: bytes) -> exp.Expression:
    def substitute(node: exp.Expression) -> exp.Expression:
        return column() if isinstance(node, exp.Column) else node  # _parse_sql_mask left only `value`

    return exp.cast(_parse_sql_mask(spec.expression or "").transform(substitute), dtype)


def _parse_sql_mask(expression: str) -> exp.Expression:
    """Parse a ``sql`` mask, accepting one scalar expression that reads only ``value``."""
    if not expression.strip():
        raise MaskSpecError("sql mask is empty", mask=expression)
    try:
        select = sqlglot.parse_one(f"SELECT {expression}", dialect="duckdb")
    except ParseError as exc:
        reason = exc.errors[0].get("description", exc) if exc.errors else exc
        raise MaskSpecError(f"sql mask does not parse: {reason}", mask=expression) from None
    # Wrapping in SELECT makes anything but one projection (FROM, a second statement, ...) show up here.
    others = [name for name, arg in select.args.items() if arg and name != "expressions"]
    if not isinstance(select, exp.Select) or others or len(select.expressions) != 1:
        raise MaskSpecError("sql mask must be a single expression", mask=expression)
    parsed: exp.Expression = select.expressions[0]
    for node in parsed.walk():
        node.comments = None  # never carried into generated SQL
        for forbidden, what in _SQL_MASK_FORBIDDEN:
            if isinstance(node, forbidden):
                raise MaskSpecError(f"sql mask may not use {what}", mask=expression)
        if isinstance(node, exp.Column) and (node.table or node.name.lower() != "value"):
            raise MaskSpecError(
                f"sql mask reads column {node.sql()!r}; it may read only 'value', the masked column",
                mask=expression,
            )
    return parsed.copy()


_BUILDERS: dict[str, Callable[[MaskSpec, ColumnCopy, exp.DataType, bytes], exp.Expression]] = {
    "null": _null,
    "redact": _redact,
    "hash": _hash,
    "first": _first,
    "last": _last,
    "truncate": _truncate,
    "bucket": _bucket,
    "sql": _sql,
}
_ACCEPTED_TYPES: dict[str, tuple[set[exp.DType], str]] = {
    "first": (_STRINGS, "strings"),
    "last": (_STRINGS, "strings"),
    "truncate": (_TEMPORALS, "dates and timestamps"),
    "bucket": (_NUMBERS, "numbers"),
}

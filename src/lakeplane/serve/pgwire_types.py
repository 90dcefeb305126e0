"""Values between Arrow and the PostgreSQL wire: type OIDs, text and binary encodings, parameters.

Text encodings follow PostgreSQL's output functions with ``DateStyle ISO`` and ``TimeZone UTC``
(``t``/``f`` booleans, shortest round-trip floats, ``\\x`` hex bytea, timestamps without trailing
fractional zeros, ``+00`` on timestamptz). Binary encodings follow PostgreSQL's send functions.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

BOOL, BYTEA, INT8, INT2, INT4, TEXT, JSON, FLOAT4, FLOAT8, UNKNOWN = (
    16,
    17,
    20,
    21,
    23,
    25,
    114,
    700,
    701,
    705,
)
VARCHAR, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, NUMERIC, UUID, JSONB = (
    1043,
    1082,
    1083,
    1114,
    1184,
    1186,
    1700,
    2950,
    3802,
)
#: Type lengths of RowDescription (-1: variable).
_LENGTHS = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, FLOAT4: 4, FLOAT8: 8, DATE: 4, TIME: 8, TIMESTAMP: 8}
_LENGTHS |= {TIMESTAMPTZ: 8, UUID: 16}
_PG_EPOCH = dt.date(2000, 1, 1)
_PG_EPOCH_TS = dt.datetime(2000, 1, 1)
_PG_EPOCH_TZ = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class PgColumn:
    """One result column as RowDescription states it."""

    name: str
    oid: int
    length: int
    modifier: int = -1


def pg_type(arrow: pa.DataType) -> tuple[int, int]:
    """The PostgreSQL type OID and type modifier of an Arrow type."""
    if pa.types.is_boolean(arrow):
        return BOOL, -1
    if pa.types.is_int8(arrow) or pa.types.is_int16(arrow) or pa.types.is_uint8(arrow):
        return INT2, -1
    if pa.types.is_int32(arrow) or pa.types.is_uint16(arrow):
        return INT4, -1
    if pa.types.is_integer(arrow):
        return INT8, -1
    if pa.types.is_float16(arrow) or pa.types.is_float32(arrow):
        return FLOAT4, -1
    if pa.types.is_floating(arrow):
        return FLOAT8, -1
    if pa.types.is_decimal(arrow):
        return NUMERIC, ((arrow.precision << 16) | arrow.scale) + 4
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow):
        return TEXT, -1
    if pa.types.is_fixed_size_binary(arrow) and arrow.byte_width == 16 and _is_uuid(arrow):
        return UUID, -1
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow) or pa.types.is_fixed_size_binary(arrow):
        return BYTEA, -1
    if pa.types.is_date(arrow):
        return DATE, -1
    if pa.types.is_time(arrow):
        return TIME, -1
    if pa.types.is_timestamp(arrow):
        return (TIMESTAMPTZ if arrow.tz else TIMESTAMP), -1
    if pa.types.is_interval(arrow) or pa.types.is_duration(arrow):
        return INTERVAL, -1
    if pa.types.is_dictionary(arrow):
        return pg_type(arrow.value_type)
    return JSON, -1  # lists, structs, maps: their JSON text


def _is_uuid(arrow: pa.DataType) -> bool:
    return "uuid" in str(arrow)


def describe_columns(schema: pa.Schema) -> list[PgColumn]:
    columns = []
    for f in schema:
        oid, modifier = pg_type(f.type)
        columns.append(PgColumn(f.name, oid, _LENGTHS.get(oid, -1), modifier))
    return columns


# -- text ------------------------------------------------------------------------------------------
def _float_text(value: float, single: bool = False) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if single:
        text = f"{value:.9g}"
        # the shortest text that reads back as the same float4
        for digits in range(1, 10):
            candidate = f"{value:.{digits}g}"
            if (
                struct.unpack("!f", struct.pack("!f", float(candidate)))[0]
                == struct.unpack("!f", struct.pack("!f", value))[0]
            ):
                text = candidate
                break
        value_text = text
    else:
        value_text = repr(value)
    if "e" in value_text:
        mantissa, exponent = value_text.split("e")
        mantissa = mantissa.removesuffix(".0")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}e{sign}{exponent.lstrip('+-').zfill(2)}"
    return value_text.removesuffix(".0")


def _time_text(value: dt.time | dt.datetime) -> str:
    text = value.strftime("%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def text_value(value: Any, oid: int) -> str:
    """``value`` (a Python value from Arrow) as PostgreSQL's output function writes it."""
    if oid == BOOL:
        return "t" if value else "f"
    if oid in (FLOAT4, FLOAT8):
        return _float_text(float(value), single=oid == FLOAT4)
    if oid == NUMERIC:
        return format(value, "f") if isinstance(value, decimal.Decimal) else str(value)
    if oid == BYTEA:
        return "\\x" + bytes(value).hex()
    if oid == TIMESTAMPTZ and isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value
        return f"{utc.date().isoformat()} {_time_text(utc)}+00"
    if oid == TIMESTAMP and isinstance(value, dt.datetime):
        return f"{value.date().isoformat()} {_time_text(value)}"
    if oid == TIME and isinstance(value, dt.time):
        return _time_text(value)
    if oid == DATE and isinstance(value, dt.date):
        return value.isoformat()
    if oid == UUID:
        return str(uuid.UUID(bytes=bytes(value))) if isinstance(value, bytes) else str(value)
    if oid == INTERVAL:
        return _interval_text(*_interval_parts(value))
    if oid == JSON and not isinstance(value, str):
        return json.dumps(value, default=str)
    return str(value)


def _interval_parts(value: Any) -> tuple[int, int, int]:
    """Months, days and microseconds of an interval (Arrow's month-day-nano, or a duration)."""
    if isinstance(value, dt.timedelta):
        return 0, value.days, value.seconds * 1_000_000 + value.microseconds
    return int(value.months), int(value.days), int(value.nanoseconds) // 1000


def _interval_text(months: int, days: int, micros: int) -> str:
    parts = []
    if months:
        years, rest = divmod(months, 12) if months > 0 else (-(-months // 12), -(-months % 12))
        parts += [f"{years} year{'s' if abs(years) != 1 else ''}"] if years else []
        parts += [f"{rest} mon{'s' if abs(rest) != 1 else ''}"] if rest else []
    if days:
        parts.append(f"{days} day{'s' if abs(days) != 1 else ''}")
    if micros or not parts:
        sign = "-" if micros < 0 else ""
        seconds, fraction = divmod(abs(micros), 1_000_000)
        clock = f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        parts.append(clock + (f".{fraction:06d}".rstrip("0") if fraction else ""))
    return " ".join(parts)


# -- binary ----------------------------------------------------------------------------------------
def _numeric_binary(value: decimal.Decimal) -> bytes:
    if not value.is_finite():
        return struct.pack("!hhHH", 0, 0, 0xC000, 0)
    integer_part, _, fraction = format(abs(value), "f").partition(".")
    scale = len(fraction)
    integer_part = integer_part.lstrip("0")
    head = integer_part.rjust((len(integer_part) + 3) // 4 * 4, "0")
    tail = fraction.ljust((len(fraction) + 3) // 4 * 4, "0")
    groups = [int(head[i : i + 4]) for i in range(0, len(head), 4)]
    weight = len(groups) - 1
    groups += [int(tail[i : i + 4]) for i in range(0, len(tail), 4)]
    while groups and groups[-1] == 0:
        groups.pop()
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    if not groups:
        weight = 0
    sign = 0x4000 if value < 0 else 0
    return struct.pack(f"!hhHH{len(groups)}H", len(groups), weight, sign, scale, *groups)


def _ts_binary(value: dt.datetime, oid: int) -> bytes:
    if oid == TIMESTAMPTZ:
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        delta = moment - _PG_EPOCH_TZ
    else:
        delta = value.replace(tzinfo=None) - _PG_EPOCH_TS
    return struct.pack("!q", (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _interval_binary(months: int, days: int, micros: int) -> bytes:
    return struct.pack("!qii", micros, days, months)


_BINARY: dict[int, Callable[[Any], bytes]] = {
    BOOL: lambda v: b"\x01" if v else b"\x00",
    INT2: lambda v: struct.pack("!h", v),
    INT4: lambda v: struct.pack("!i", v),
    INT8: lambda v: struct.pack("!q", v),
    FLOAT4: lambda v: struct.pack("!f", v),
    FLOAT8: lambda v: struct.pack("!d", v),
    NUMERIC: lambda v: _numeric_binary(v if isinstance(v, decimal.Decimal) else decimal.Decimal(str(v))),
    BYTEA: bytes,
    DATE: lambda v: struct.pack("!i", (v - _PG_EPOCH).days),
    TIMESTAMP: lambda v: _ts_binary(v, TIMESTAMP),
    TIMESTAMPTZ: lambda v: _ts_binary(v, TIMESTAMPTZ),
    TIME: lambda v: struct.pack("!q", ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond),
    UUID: lambda v: bytes(v) if isinstance(v, bytes) else uuid.UUID(str(v)).bytes,
    INTERVAL: lambda v: _interval_binary(*_interval_parts(v)),
}


def encode_value(value: Any, oid: int, binary: bool) -> bytes:
    """One DataRow field (the caller writes NULL as length -1)."""
    if binary and oid in _BINARY:
        return _BINARY[oid](value)
    return text_value(value, oid).encode()


# -- parameters ------------------------------------------------------------------------------------
def decode_parameter(raw: bytes | None, oid: int, binary: bool) -> Any:
    """A Bind parameter as a Python value for the query (None for SQL NULL)."""
    if raw is None:
        return None
    if binary:
        return _decode_binary(raw, oid)
    text = raw.decode()
    if oid in (INT2, INT4, INT8):
        return int(text)
    if oid in (FLOAT4, FLOAT8):
        return float(text)
    if oid == NUMERIC:
        return decimal.Decimal(text)
    if oid == BOOL:
        return text.lower() in ("t", "true", "1", "yes", "on", "y")
    if oid == DATE:
        return dt.date.fromisoformat(text)
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        return dt.datetime.fromisoformat(text.replace("+00", "+00:00") if text.endswith("+00") else text)
    if oid == BYTEA and text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    return text


def _decode_binary(raw: bytes, oid: int) -> Any:
    if oid == BOOL:
        return raw != b"\x00"
    if oid in (INT2, INT4, INT8) or (oid == 0 and len(raw) in (2, 4, 8)):
        return int.from_bytes(raw, "big", signed=True)
    if oid == FLOAT4:
        return struct.unpack("!f", raw)[0]
    if oid == FLOAT8:
        return struct.unpack("!d", raw)[0]
    if oid == DATE:
        return _PG_EPOCH + dt.timedelta(days=struct.unpack("!i", raw)[0])
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        moment = _PG_EPOCH_TS + dt.timedelta(microseconds=struct.unpack("!q", raw)[0])
        return moment.replace(tzinfo=dt.UTC) if oid == TIMESTAMPTZ else moment
    if oid == NUMERIC:
        return _numeric_from_binary(raw)
    if oid == BYTEA:
        return raw
    return raw.decode()


def _numeric_from_binary(raw: bytes) -> decimal.Decimal:
    count, weight, sign, scale = struct.unpack("!hhHH", raw[:8])
    if sign == 0xC000:
        return decimal.Decimal("NaN")
    groups = struct.unpack(f"!{count}H", raw[8 : 8 + 2 * count])
    value = sum(
        (decimal.Decimal(g).scaleb(4 * (weight - i)) for i, g in enumerate(groups)), decimal.Decimal(0)
    )
    value = value.quantize(decimal.Decimal(1).scaleb(-scale)) if scale else value
    return -value if sign == 0x4000 else value

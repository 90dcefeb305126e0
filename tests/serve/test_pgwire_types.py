"""Values on the PostgreSQL wire: text as PostgreSQL's output functions write it, binary round trips."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakeplane.serve import pgwire_types as t


@pytest.mark.parametrize(
    ("value", "oid", "text"),
    [
        (True, t.BOOL, "t"),
        (1.0, t.FLOAT8, "1"),
        (0.1, t.FLOAT8, "0.1"),
        (1e20, t.FLOAT8, "1e+20"),
        (1.5e-7, t.FLOAT8, "1.5e-07"),
        (float("nan"), t.FLOAT8, "NaN"),
        (float("-inf"), t.FLOAT4, "-Infinity"),
        (0.10000000149011612, t.FLOAT4, "0.1"),
        (decimal.Decimal("1E+2"), t.NUMERIC, "100"),
        (decimal.Decimal("12.50"), t.NUMERIC, "12.50"),
        (b"\x01\xff", t.BYTEA, "\\x01ff"),
        (dt.datetime(2026, 11, 1, 10, 0, 0, 500000), t.TIMESTAMP, "2026-11-01 10:00:00.5"),
        (
            dt.datetime(2026, 11, 1, 11, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            t.TIMESTAMPTZ,
            "2026-11-01 10:00:00+00",
        ),
        (dt.date(2026, 11, 1), t.DATE, "2026-11-01"),
        (dt.timedelta(days=3, seconds=3661), t.INTERVAL, "3 days 01:01:01"),
        (
            pa.scalar((14, 3, 5_000_000_000), pa.month_day_nano_interval()).as_py(),
            t.INTERVAL,
            "1 year 2 mons 3 days 00:00:05",
        ),
    ],
)
def test_text_is_what_postgresql_writes(value, oid, text):
    assert t.text_value(value, oid) == text


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**12), max_value=10**12))
def test_numeric_binary_round_trips(value):
    assert t.decode_parameter(t.encode_value(value, t.NUMERIC, binary=True), t.NUMERIC, binary=True) == value


@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)))
def test_timestamp_binary_round_trips(value):
    raw = t.encode_value(value, t.TIMESTAMP, binary=True)
    assert t.decode_parameter(raw, t.TIMESTAMP, binary=True) == value


def test_arrow_types_get_postgresql_oids():
    assert t.pg_type(pa.int32()) == (t.INT4, -1)
    assert t.pg_type(pa.decimal128(10, 2)) == (t.NUMERIC, (10 << 16 | 2) + 4)
    assert t.pg_type(pa.timestamp("us", tz="UTC"))[0] == t.TIMESTAMPTZ
    assert t.pg_type(pa.timestamp("us"))[0] == t.TIMESTAMP
    assert t.pg_type(pa.large_string())[0] == t.TEXT
    assert t.pg_type(pa.binary())[0] == t.BYTEA
    assert t.pg_type(pa.list_(pa.int32()))[0] == t.JSON

"""Column masks: parsing the policy forms, and every mask kind executed for real in DuckDB."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlglot import exp

from lakeplane.errors import LakeplaneError, MaskSpecError, MaskTypeError
from lakeplane.governance.masks import (
    KEY_PLACEHOLDER,
    MaskSpec,
    keyed_pads,
    mask_expression,
    redact_key,
    sql_type,
)

KEY = b"lakeplane test mask key"

# Column name -> (Iceberg type, DuckDB type as typeof() names it, values of rows 1..5 as SQL literals).
COLUMNS: dict[str, tuple[str, str, list[str]]] = {
    "s": ("string", "VARCHAR", ["'alice@example.com'", "'Zoë ☃ 日本'", "NULL", "''", "'alice@example.com'"]),
    "i": ("int", "INTEGER", ["42", "-7", "NULL", "0", "10"]),
    "l": ("long", "BIGINT", ["9007199254740993", "-15", "NULL", "0", "-10"]),
    "d": ("double", "DOUBLE", ["12.75", "-0.5", "NULL", "0", "2.5"]),
    "f": ("float", "FLOAT", ["2.5", "-3.25", "NULL", "0", "0.75"]),
    "dec": ("decimal(10, 2)", "DECIMAL(10,2)", ["1234.56", "-7.30", "NULL", "0", "0.25"]),
    "b": ("boolean", "BOOLEAN", ["true", "false", "NULL", "true", "false"]),
    "dt": ("date", "DATE", ["'2024-05-17'", "'1999-12-31'", "NULL", "'2024-01-01'", "'2024-05-17'"]),
    "ts": (
        "timestamp",
        "TIMESTAMP",
        [
            "'2024-05-17 13:45:10'",
            "'1999-12-31 23:59:59.999999'",
            "NULL",
            "'2024-01-01 00:00:00'",
            "'2024-05-17 13:45:10'",
        ],
    ),
    "tstz": (
        "timestamptz",
        "TIMESTAMP WITH TIME ZONE",
        [
            "'2024-05-17 13:45:10+00'",
            "'1999-12-31 23:30:00+00'",
            "NULL",
            "'2024-01-01 00:00:00+00'",
            "'2024-05-17 13:45:10+00'",
        ],
    ),
    "bin": ("binary", "BLOB", ["'\\xDE\\xAD'", "'abc'", "NULL", "''", "'\\xDE\\xAD'"]),
}
ROWS = 5


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB table ``t`` with one column of each Iceberg type; row 3 is all NULL."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    columns = ", ".join(f"{name} {duck}" for name, (_, duck, _) in COLUMNS.items())
    connection.execute(f"CREATE TABLE t (id INTEGER, {columns})")
    for row in range(ROWS):
        values = ", ".join(f"CAST({v[row]} AS {duck})" for _, duck, v in COLUMNS.values())
        connection.execute(f"INSERT INTO t VALUES ({row + 1}, {values})")
    yield connection
    connection.close()


def masked(con: duckdb.DuckDBPyConnection, mask: Any, name: str, key: bytes = KEY) -> list[Any]:
    """The masked values of column ``name``, rows in order (timestamptz read as text: no pytz needed)."""
    expression = mask_expression(MaskSpec.parse(mask), exp.column(name), COLUMNS[name][0], key)
    select = exp.cast(expression, "VARCHAR") if COLUMNS[name][0] == "timestamptz" else expression
    rows = con.execute(f"SELECT {select.sql(dialect='duckdb')} FROM t ORDER BY id").fetchall()
    return [row[0] for row in rows]


def result_type(con: duckdb.DuckDBPyConnection, mask: Any, name: str) -> str:
    expression = mask_expression(MaskSpec.parse(mask), exp.column(name), COLUMNS[name][0], KEY)
    return str(
        con.execute(f"SELECT typeof({expression.sql(dialect='duckdb')}) FROM t LIMIT 1").fetchall()[0][0]
    )


def py_hmac(message: str | bytes, key: bytes = KEY) -> str:
    data = message.encode() if isinstance(message, str) else message
    return hmac.new(key, data, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("null", MaskSpec(kind="null")),
        ("redact", MaskSpec(kind="redact", value="****")),
        ("hash", MaskSpec(kind="hash")),
        ({"redact": "XXX"}, MaskSpec(kind="redact", value="XXX")),
        ({"first": 3}, MaskSpec(kind="first", n=3)),
        ({"last": 4}, MaskSpec(kind="last", n=4)),
        ({"first": 0}, MaskSpec(kind="first", n=0)),
        ({"truncate": "month"}, MaskSpec(kind="truncate", unit="month")),
        ({"truncate": "year"}, MaskSpec(kind="truncate", unit="year")),
        ({"bucket": 10}, MaskSpec(kind="bucket", width=10.0)),
        ({"bucket": 0.5}, MaskSpec(kind="bucket", width=0.5)),
        (
            {"sql": "CASE WHEN value > 100 THEN 100 ELSE value END"},
            MaskSpec(kind="sql", expression="CASE WHEN value > 100 THEN 100 ELSE value END"),
        ),
    ],
)
def test_parse_reads_every_policy_form(raw: object, expected: MaskSpec) -> None:
    spec = MaskSpec.parse(raw)
    assert spec == expected
    assert MaskSpec.parse(spec) is spec


@pytest.mark.parametrize(
    "raw, message",
    [
        ("nul", "unknown mask 'nul'; did you mean 'null'?"),
        ("first", "mask 'first' needs an argument: write {first: ...}"),
        ({"hash": 1}, "unknown mask {hash: ...}; write it as 'hash'"),
        ({"frist": 2}, "did you mean 'first'?"),
        ({"first": -1}, "shows n >= 0 characters, got -1"),
        ({"first": "3"}, "n: Input should be a valid integer"),
        ({"last": True}, "n: Input should be a valid integer"),
        ({"last": 2.0}, "n: Input should be a valid integer"),
        ({"truncate": "day"}, "unit: Input should be 'year' or 'month'"),
        ({"bucket": 0}, "needs a finite width > 0, got 0.0"),
        ({"bucket": -5}, "needs a finite width > 0"),
        ({"bucket": float("inf")}, "needs a finite width > 0, got inf"),
        ({"bucket": float("nan")}, "needs a finite width > 0, got nan"),
        ({"redact": None}, None),
        ({"redact": 5}, "value: Input should be a valid string"),
        ({"first": 1, "last": 2}, "a mask is one of null, redact, hash or a one-key mapping"),
        ({}, "a mask is one of"),
        (42, "not 42"),
        (["hash"], "not ['hash']"),
        ({"sql": "value + other"}, "reads column 'other'; it may read only 'value'"),
        ({"sql": "t.value"}, "reads column 't.value'"),
        ({"sql": "value + (SELECT max(x) FROM t)"}, "may not use subqueries"),
        ({"sql": "value IN (SELECT a FROM t)"}, "may not use subqueries"),
        ({"sql": "EXISTS (SELECT 1)"}, "may not use subqueries"),
        ({"sql": "value FROM t"}, "must be a single expression"),
        ({"sql": "value; DROP TABLE t"}, "must be a single expression"),
        ({"sql": "value, value"}, "must be a single expression"),
        ({"sql": "sum(value)"}, "may not use aggregate functions"),
        ({"sql": "row_number() OVER ()"}, "may not use window functions"),
        ({"sql": "value AS x"}, "may not use aliases"),
        ({"sql": "value +"}, "does not parse"),
        ({"sql": " "}, "invalid mask {'sql': ' '}: sql mask is empty"),
    ],
)
def test_parse_rejects_malformed_masks_with_a_clear_message(raw: object, message: str | None) -> None:
    if message is None:  # {"redact": null} in YAML means the default text, like a bare "redact"
        assert MaskSpec.parse(raw) == MaskSpec.parse("redact")
        return
    with pytest.raises(MaskSpecError) as caught:
        MaskSpec.parse(raw)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, LakeplaneError)
    assert "validation error" not in str(caught.value), "pydantic's report is reworded"
    assert caught.value.fields == {"mask": raw}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"kind": "hash", "n": 3}, "mask 'hash' takes no n, got 3"),
        ({"kind": "first"}, "mask 'first' needs n"),
        ({"kind": "bucket", "width": 1.0, "unit": "year"}, "mask 'bucket' takes no unit"),
        ({"kind": "sql", "expression": "value + other"}, "reads column 'other'"),
        ({"kind": "mask"}, "Input should be 'null', 'redact'"),
        ({"kind": "null", "colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_constructing_a_spec_directly_is_validated_too(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MaskSpec(**fields)


def test_specs_are_frozen() -> None:
    spec = MaskSpec.parse({"first": 3})
    with pytest.raises(ValidationError):
        spec.n = 5


def test_rank_orders_masks_by_how_much_they_hide() -> None:
    ranks = {
        raw if isinstance(raw, str) else next(iter(raw)): MaskSpec.parse(raw).rank
        for raw in (
            "null",
            "redact",
            "hash",
            {"first": 1},
            {"last": 1},
            {"truncate": "year"},
            {"bucket": 1},
            {"sql": "value"},
        )
    }
    assert ranks == {
        "null": 70,
        "redact": 60,
        "hash": 50,
        "first": 40,
        "last": 40,
        "truncate": 30,
        "bucket": 30,
        "sql": 10,
    }
    assert MaskSpec.parse({"redact": "X"}).rank == MaskSpec.parse("redact").rank


specs = st.one_of(
    st.sampled_from(["null", "redact", "hash"]).map(lambda kind: MaskSpec(kind=kind)),  # type: ignore[arg-type]
    st.text().map(lambda value: MaskSpec(kind="redact", value=value)),
    st.builds(MaskSpec, kind=st.sampled_from(["first", "last"]), n=st.integers(0, 10_000)),
    st.builds(MaskSpec, kind=st.just("truncate"), unit=st.sampled_from(["year", "month"])),
    st.builds(
        MaskSpec, kind=st.just("bucket"), width=st.floats(min_value=0, exclude_min=True, allow_infinity=False)
    ),
    st.sampled_from(["value", "upper(value)", "CASE WHEN value > 1 THEN 1 ELSE value END"]).map(
        lambda sql: MaskSpec(kind="sql", expression=sql)
    ),
)


@given(specs)
def test_policy_form_round_trips(spec: MaskSpec) -> None:
    assert MaskSpec.parse(spec.to_policy()) == spec


@pytest.mark.parametrize(
    "iceberg, duckdb_type, spark_type",
    [
        ("string", "TEXT", "STRING"),
        ("int", "INT", "INT"),
        ("long", "BIGINT", "BIGINT"),
        ("double", "DOUBLE", "DOUBLE"),
        ("float", "REAL", "FLOAT"),
        ("boolean", "BOOLEAN", "BOOLEAN"),
        ("date", "DATE", "DATE"),
        ("timestamp", "TIMESTAMP", "TIMESTAMP"),
        ("timestamptz", "TIMESTAMPTZ", "TIMESTAMP"),
        ("decimal(10, 2)", "DECIMAL(10, 2)", "DECIMAL(10, 2)"),
        ("decimal(38,0)", "DECIMAL(38, 0)", "DECIMAL(38, 0)"),
        ("binary", "BLOB", "BINARY"),
        ("fixed[16]", "BLOB", "BINARY"),
        ("uuid", "UUID", "STRING"),
    ],
)
def test_sql_type_maps_iceberg_types(iceberg: str, duckdb_type: str, spark_type: str) -> None:
    assert sql_type(iceberg).sql(dialect="duckdb") == duckdb_type
    assert sql_type(iceberg).sql(dialect="spark") == spark_type


@pytest.mark.parametrize("iceberg", ["list<int>", "struct<a: int>", "time", "decimal(10)", "text"])
def test_sql_type_rejects_types_masks_do_not_support(iceberg: str) -> None:
    with pytest.raises(MaskTypeError, match=re.escape(f"masks do not support columns of type {iceberg}")):
        sql_type(iceberg)


# ------------------------------------------------------------------------------ masks executed in DuckDB


@pytest.mark.parametrize("name", list(COLUMNS))
def test_null_mask_gives_typed_nulls(con: duckdb.DuckDBPyConnection, name: str) -> None:
    assert masked(con, "null", name) == [None] * ROWS
    assert result_type(con, "null", name) == COLUMNS[name][1]


def test_redact_replaces_every_string_including_nulls(con: duckdb.DuckDBPyConnection) -> None:
    assert masked(con, "redact", "s") == ["****"] * ROWS
    assert masked(con, {"redact": "[hidden]"}, "s") == ["[hidden]"] * ROWS
    assert result_type(con, "redact", "s") == "VARCHAR"


@pytest.mark.parametrize("name", ["i", "dec", "dt", "tstz", "b", "bin"])
def test_redact_of_other_types_gives_typed_nulls(con: duckdb.DuckDBPyConnection, name: str) -> None:
    assert masked(con, {"redact": "X"}, name) == [None] * ROWS
    assert result_type(con, "redact", name) == COLUMNS[name][1]


def test_hash_is_hmac_sha256_and_keeps_nulls(con: duckdb.DuckDBPyConnection) -> None:
    hashed = masked(con, "hash", "s")
    assert hashed == [
        py_hmac("alice@example.com"),
        py_hmac("Zoë ☃ 日本"),
        None,
        py_hmac(""),
        py_hmac("alice@example.com"),
    ]
    assert hashed[0] == hashed[4], "equal values hash equally, so masked columns still join"
    assert all(len(h) == 64 and h == h.lower() for h in hashed if h is not None)
    assert result_type(con, "hash", "s") == "VARCHAR"


def test_hashed_columns_join(con: duckdb.DuckDBPyConnection) -> None:
    left = mask_expression(MaskSpec.parse("hash"), exp.column("s", table="a"), "string", KEY)
    right = mask_expression(MaskSpec.parse("hash"), exp.column("s", table="b"), "string", KEY)
    pairs = con.execute(
        f"SELECT a.id, b.id FROM t AS a JOIN t AS b ON {left.sql('duckdb')} = "
        f"{right.sql('duckdb')} ORDER BY 1, 2"
    ).fetchall()
    assert pairs == [(1, 1), (1, 5), (2, 2), (4, 4), (5, 1), (5, 5)]


def test_hash_depends_on_the_key(con: duckdb.DuckDBPyConnection) -> None:
    other_key = b"another key"
    long_key = bytes(range(100))  # longer than a SHA-256 block: RFC 2104 hashes it first
    assert masked(con, "hash", "s", other_key)[0] == py_hmac("alice@example.com", other_key)
    assert masked(con, "hash", "s", long_key)[1] == py_hmac("Zoë ☃ 日本", long_key)
    assert masked(con, "hash", "s", other_key)[0] != masked(con, "hash", "s")[0]
    with pytest.raises(ValueError, match="the mask key is empty"):
        mask_expression(MaskSpec.parse("hash"), exp.column("s"), "string", b"")


@pytest.mark.parametrize(
    "name, as_text",
    [
        ("i", ["42", "-7", None, "0", "10"]),
        ("b", ["true", "false", None, "true", "false"]),
        ("dt", ["2024-05-17", "1999-12-31", None, "2024-01-01", "2024-05-17"]),
        ("dec", ["1234.56", "-7.30", None, "0.00", "0.25"]),
    ],
)
def test_hash_of_other_types_hashes_their_text(
    con: duckdb.DuckDBPyConnection, name: str, as_text: list[str | None]
) -> None:
    assert masked(con, "hash", name) == [None if v is None else py_hmac(v) for v in as_text]


def test_hash_of_binary_hashes_its_bytes(con: duckdb.DuckDBPyConnection) -> None:
    assert masked(con, "hash", "bin") == [
        py_hmac(b"\xde\xad"),
        py_hmac(b"abc"),
        None,
        py_hmac(b""),
        py_hmac(b"\xde\xad"),
    ]


def test_first_and_last_keep_length_and_show_n_characters(con: duckdb.DuckDBPyConnection) -> None:
    assert masked(con, {"first": 3}, "s") == ["ali**************", "Zoë*****", None, "", "ali**************"]
    assert masked(con, {"last": 4}, "s") == ["*************.com", "****☃ 日本", None, "", "*************.com"]
    assert masked(con, {"first": 0}, "s")[1] == "********"
    assert masked(con, {"last": 50}, "s")[1] == "Zoë ☃ 日本", "n beyond the length shows everything"
    assert result_type(con, {"first": 3}, "s") == "VARCHAR"


@pytest.mark.parametrize("kind", ["first", "last"])
@pytest.mark.parametrize("name", ["i", "dt", "bin", "b"])
def test_first_and_last_work_only_on_strings(kind: str, name: str) -> None:
    iceberg = COLUMNS[name][0]
    with pytest.raises(MaskTypeError) as caught:
        mask_expression(MaskSpec.parse({kind: 2}), exp.column(name), iceberg, KEY)
    assert str(caught.value) == f"mask '{kind}' works on strings, not on column of type {iceberg}"
    assert isinstance(caught.value, TypeError) and caught.value.fields["column_type"] == iceberg


def test_truncate_dates_and_timestamps(con: duckdb.DuckDBPyConnection) -> None:
    assert masked(con, {"truncate": "month"}, "dt") == [
        dt.date(2024, 5, 1),
        dt.date(1999, 12, 1),
        None,
        dt.date(2024, 1, 1),
        dt.date(2024, 5, 1),
    ]
    assert masked(con, {"truncate": "year"}, "dt")[:2] == [dt.date(2024, 1, 1), dt.date(1999, 1, 1)]
    assert masked(con, {"truncate": "month"}, "ts")[:3] == [
        dt.datetime(2024, 5, 1),
        dt.datetime(1999, 12, 1),
        None,
    ]
    assert masked(con, {"truncate": "year"}, "tstz")[:3] == [
        "2024-01-01 00:00:00+00",
        "1999-01-01 00:00:00+00",
        None,
    ]
    for name in ("dt", "ts", "tstz"):
        assert result_type(con, {"truncate": "year"}, name) == COLUMNS[name][1]


@pytest.mark.parametrize("name", ["s", "i", "b"])
def test_truncate_works_only_on_dates_and_timestamps(name: str) -> None:
    with pytest.raises(MaskTypeError, match="mask 'truncate' works on dates and timestamps, not on column"):
        mask_expression(MaskSpec.parse({"truncate": "year"}), exp.column(name), COLUMNS[name][0], KEY)


@pytest.mark.parametrize(
    "name, width, expected",
    [
        ("i", 10, [40, -10, None, 0, 10]),
        ("l", 10, [9007199254740990, -20, None, 0, -10]),  # exact beyond 2**53: no detour through DOUBLE
        ("d", 2.5, [12.5, -2.5, None, 0.0, 2.5]),
        ("f", 0.5, [2.5, -3.5, None, 0.0, 0.5]),
        ("dec", 0.25, [Decimal("1234.50"), Decimal("-7.50"), None, Decimal("0.00"), Decimal("0.25")]),
        ("dec", 100, [Decimal("1200.00"), Decimal("-100.00"), None, Decimal("0.00"), Decimal("0.00")]),
    ],
)
def test_bucket_floors_to_multiples_of_the_width(
    con: duckdb.DuckDBPyConnection, name: str, width: float, expected: list[Any]
) -> None:
    assert masked(con, {"bucket": width}, name) == expected
    assert result_type(con, {"bucket": width}, name) == COLUMNS[name][1]


def test_bucket_rejects_non_numbers_and_fractional_widths_on_integers() -> None:
    with pytest.raises(MaskTypeError, match="mask 'bucket' works on numbers, not on column of type string"):
        mask_expression(MaskSpec.parse({"bucket": 10}), exp.column("s"), "string", KEY)
    with pytest.raises(MaskTypeError, match="on column of type long needs a whole width, got 2.5"):
        mask_expression(MaskSpec.parse({"bucket": 2.5}), exp.column("l"), "long", KEY)


def test_sql_mask_replaces_value_with_the_column(con: duckdb.DuckDBPyConnection) -> None:
    capped = {"sql": "CASE WHEN value > 100 THEN 100 ELSE value END"}
    assert masked(con, capped, "i") == [42, -7, None, 0, 10]
    assert masked(con, capped, "l") == [100, -15, None, 0, -10]
    assert masked(con, {"sql": "upper(VALUE) || '!'"}, "s")[:3] == ["ALICE@EXAMPLE.COM!", "ZOË ☃ 日本!", None]
    assert masked(con, {"sql": "value + 1  -- one more"}, "i")[:2] == [43, -6]
    assert result_type(con, {"sql": "value / 2"}, "i") == "INTEGER", "cast back to the column's type"


def test_sql_mask_substitutes_qualified_columns_without_touching_the_input() -> None:
    column = exp.column("salary", table="e")
    expression = mask_expression(MaskSpec.parse({"sql": "least(value, 10) -- cap"}), column, "int", KEY)
    assert expression.sql(dialect="duckdb") == "CAST(LEAST(e.salary, 10) AS INT)"
    assert column.parent is None and column.sql() == "e.salary"


# ------------------------------------------------------------------------------------------ Spark SQL


SPARK_CASES = [
    ("null", "date", "CAST(NULL AS DATE)"),
    ("redact", "string", "CAST('****' AS STRING)"),
    ({"first": 2}, "string", "LEFT(c, 2) || REPEAT('*', GREATEST(LENGTH(c) - 2, 0))"),
    ({"last": 2}, "string", "REPEAT('*', GREATEST(LENGTH(c) - 2, 0)) || RIGHT(c, 2)"),
    ({"truncate": "month"}, "date", "CAST(TRUNC(c, 'MONTH') AS DATE)"),
    ({"truncate": "year"}, "timestamptz", "CAST(DATE_TRUNC('YEAR', c) AS TIMESTAMP)"),
    ({"bucket": 10}, "long", "CAST(c - ((c % 10 + 10) % 10) AS BIGINT)"),
    ({"bucket": 2.5}, "double", "CAST(FLOOR(c / 2.5) * 2.5 AS DOUBLE)"),
    (
        {"sql": "CASE WHEN value > 100 THEN 100 ELSE value END"},
        "int",
        "CAST(CASE WHEN c > 100 THEN 100 ELSE c END AS INT)",
    ),
]


@pytest.mark.parametrize("mask, iceberg, spark", SPARK_CASES)
def test_masks_generate_spark_sql(mask: Any, iceberg: str, spark: str) -> None:
    expression = mask_expression(MaskSpec.parse(mask), exp.column("c"), iceberg, KEY)
    assert expression.sql(dialect="spark") == spark
    sqlglot.parse_one(spark, read="spark")


def test_hash_generates_spark_sql_with_sha2_and_unhex() -> None:
    inner, outer = keyed_pads(KEY)
    expression = mask_expression(MaskSpec.parse("hash"), exp.column("c"), "string", KEY)
    assert expression.sql(dialect="spark") == (
        f"SHA2(UNHEX('{outer}') || UNHEX(SHA2(UNHEX('{inner}') || ENCODE(c, 'utf-8'), 256)), 256)"
    )
    numeric = mask_expression(MaskSpec.parse("hash"), exp.column("c"), "int", KEY).sql(dialect="spark")
    assert "ENCODE(CAST(c AS STRING), 'utf-8')" in numeric


# ------------------------------------------------------------------------------------- key redaction


def test_keyed_pads_are_the_rfc_2104_blocks() -> None:
    inner, outer = keyed_pads(KEY)
    block = KEY.ljust(64, b"\0")
    assert bytes.fromhex(inner) == bytes(b ^ 0x36 for b in block)
    assert bytes.fromhex(outer) == bytes(b ^ 0x5C for b in block)


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_redact_key_hides_the_key_material(dialect: str) -> None:
    sql = mask_expression(MaskSpec.parse("hash"), exp.column("c"), "string", KEY).sql(dialect=dialect)
    shown = redact_key(sql, KEY)
    assert shown.count(f"UNHEX('{KEY_PLACEHOLDER}')") == 2
    for pad in keyed_pads(KEY):
        assert pad in sql and pad not in shown
    assert redact_key(sql.upper(), KEY).count(KEY_PLACEHOLDER) == 2, "hex of either case is found"
    assert redact_key(sql, b"other key") == sql


# ------------------------------------------------------------------------------------------- hypothesis


texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)  # surrogates are not UTF-8


@settings(max_examples=200, deadline=None)
@given(text=texts, n=st.integers(0, 45), kind=st.sampled_from(["first", "last"]))
def test_first_and_last_preserve_length_and_show_exactly_n(
    con: duckdb.DuckDBPyConnection, text: str, n: int, kind: str
) -> None:
    expression = mask_expression(MaskSpec.parse({kind: n}), exp.column("v"), "string", KEY)
    [(result,)] = con.execute(
        f"SELECT {expression.sql(dialect='duckdb')} FROM (SELECT $v AS v)", {"v": text}
    ).fetchall()
    shown = min(n, len(text))
    assert len(result) == len(text)
    if kind == "first":
        assert result[:shown] == text[:shown] and set(result[shown:]) <= {"*"}
    else:
        assert result[len(text) - shown :] == text[len(text) - shown :] and set(
            result[: len(text) - shown]
        ) <= {"*"}


@settings(max_examples=200, deadline=None)
@given(text=texts, key=st.binary(min_size=1, max_size=100))
def test_hash_equals_python_hmac(con: duckdb.DuckDBPyConnection, text: str, key: bytes) -> None:
    expression = mask_expression(MaskSpec.parse("hash"), exp.column("v"), "string", key)
    [(result,)] = con.execute(
        f"SELECT {expression.sql(dialect='duckdb')} FROM (SELECT $v AS v)", {"v": text}
    ).fetchall()
    assert result == hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

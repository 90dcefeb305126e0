"""The Flight SQL wire messages, parameters, filter patterns and kept statements, without a server."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakeplane.errors import QueryError
from lakeplane.serve import flight_statements
from lakeplane.serve.flight_catalog import like, sql_info
from lakeplane.serve.flight_parameters import parameter_sets, positional_to_named
from lakeplane.serve.flight_protocol import (
    Fields,
    GetDbSchemas,
    GetSqlInfo,
    GetTables,
    StatementQuery,
    Unsupported,
    _varint,
    encode,
    pack_any,
    parse_command,
    unpack_any,
)
from lakeplane.serve.flight_statements import Statements


@given(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.text(),
    st.binary(),
    st.booleans(),
    st.integers(min_value=5, max_value=2**29 - 1),
)
def test_fields_round_trip(number, text, raw, flag, field):
    data = encode([(1, number), (2, text), (3, raw), (4, flag), (field, text)])
    fields = Fields(data)
    assert fields.unsigned(1) == [number]
    assert fields.string(2) == text
    assert fields.bytes(3) == raw
    assert fields.flag(4) is flag
    assert fields.string(field) == text


@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1)))
def test_repeated_integers_read_packed_and_unpacked(values):
    packed = b"".join(_varint(v) for v in values)
    assert Fields(encode([(1, packed)])).unsigned(1) == values
    assert Fields(encode([(1, v) for v in values])).unsigned(1) == values


def test_commands_parse_from_their_any():
    query = pack_any("CommandStatementQuery", encode([(1, "SELECT 1"), (2, b"txn")]))
    assert parse_command(query) == StatementQuery("SELECT 1")
    tables = pack_any(
        "CommandGetTables", encode([(1, "telco"), (3, "c%"), (4, "TABLE"), (4, "VIEW"), (5, True)])
    )
    assert parse_command(tables) == GetTables("telco", None, "c%", ["TABLE", "VIEW"], True)
    assert parse_command(pack_any("CommandGetDbSchemas", b"")) == GetDbSchemas(None, None)
    info = pack_any("CommandGetSqlInfo", encode([(1, b"".join(_varint(i) for i in (0, 504, 10_000)))]))
    assert parse_command(info) == GetSqlInfo([0, 504, 10_000])
    assert parse_command(pack_any("CommandGetPrimaryKeys", b"")) == Unsupported("CommandGetPrimaryKeys")
    assert unpack_any(query)[0] == "CommandStatementQuery"


@pytest.mark.parametrize(
    "data",
    [
        encode([(1, "type.googleapis.com/google.protobuf.Empty"), (2, b"")]),
        b"\x0a\x05ab",  # a field longer than the message
        b"\x80",  # a varint cut short
        b"\x0b",  # wire type 3 (groups): not used by Flight SQL
    ],
)
def test_what_is_not_a_flight_sql_message_is_refused(data):
    with pytest.raises(QueryError, match="not a Flight SQL message"):
        parse_command(data)


def test_question_marks_become_named_parameters_outside_strings_and_comments():
    sql = "SELECT '?' AS q, x FROM t WHERE a = ? AND b > ? -- why?"
    assert positional_to_named(sql) == (
        "SELECT '?' AS q, x FROM t WHERE a = :flight_param_1 AND b > :flight_param_2 -- why?"
    )
    assert parameter_sets(sql, [{"0": "EU", "1": 3}]) == [
        {"0": "EU", "1": 3, "flight_param_1": "EU", "flight_param_2": 3}
    ]
    assert parameter_sets("SELECT 1", []) == [{}]
    with pytest.raises(QueryError, match="2 '\\?' parameter"):
        parameter_sets(sql, [])


@pytest.mark.parametrize(
    ("value", "pattern", "matches"),
    [
        ("processed", None, True),
        ("processed", "%", True),
        ("processed", "proc%", True),
        ("processed", "p_ocessed", True),
        ("processed", "curated", False),
        ("cdr_quarantine", "cdr", False),
        ("a.b", "a_b", True),
        ("axb", "a.b", False),  # a dot is a dot, not any character
    ],
)
def test_filter_patterns_are_sql_like(value, pattern, matches):
    assert like(value, pattern) is matches


def test_sql_info_answers_the_asked_ids_in_a_dense_union():
    table = sql_info([0, 3, 504, 99_999])
    assert table.column("info_name").to_pylist() == [0, 3, 504]
    assert table.column("value").to_pylist() == ["lakeplane", True, '"']
    assert len(sql_info([])) > 5


def test_results_are_given_once_to_their_principal_and_expire(monkeypatch):
    kept = Statements()
    table = pa.table({"n": [1]})
    handle = kept.keep("ana", table)
    with pytest.raises(QueryError, match="no result"):
        kept.take("eve", handle)
    assert kept.take("ana", handle) is table
    with pytest.raises(QueryError, match="no result"):
        kept.take("ana", handle)
    stale = kept.keep("ana", table)
    monkeypatch.setattr(flight_statements, "RESULT_TTL", -1.0)
    kept.keep("ana", table)  # keeping a new result forgets the expired ones
    with pytest.raises(QueryError, match="no result"):
        kept.take("ana", stale)
    assert not kept.drop("ana", [stale])


def test_prepared_statements_are_their_principals_and_unused_ones_are_forgotten(monkeypatch):
    kept = Statements()
    handle = kept.prepare("ana", "SELECT ?")
    kept.bind("ana", handle, [{"0": 1}, {"0": 2}])
    assert kept.prepared("ana", handle) == ("SELECT ?", [{"0": 1}, {"0": 2}])
    for attempt in (kept.prepared, kept.close):
        with pytest.raises(QueryError, match="no such prepared statement"):
            attempt("eve", handle)
    monkeypatch.setattr(flight_statements, "STATEMENT_TTL", -1.0)
    kept.prepare("ana", "SELECT 1")
    with pytest.raises(QueryError, match="no such prepared statement"):
        kept.prepared("ana", handle)

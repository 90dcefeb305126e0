"""Edge inputs: zoned timestamps, byte-order marks, non-finite numbers, repeated keys, quotes that
never close, in both formats and on both NDJSON paths; each stored value or quarantine reason is
checked exactly."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyiceberg.types import TimestampType

from lakeplane.config import DatasetConfig, FieldSpec, StorageConfig
from lakeplane.engines import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.ingest import parse as parse_module
from lakeplane.ingest.parse import (
    ACCEPTED,
    QUARANTINE,
    UNTERMINATED,
    accepted_view,
    create_staging,
    parse_batch,
)
from lakeplane.lake import open_lake
from lakeplane.storage import open_storage
from lakeplane.storage.raw import RawBatch
from tests.conftest import DAY1

FIELDS = {
    "id": FieldSpec(type="long", required=True),
    "at": FieldSpec(type="timestamp"),
    "local": FieldSpec(type="timestamp_ntz"),
    "score": FieldSpec(type="double"),
}
BOM = b"\xef\xbb\xbf"


def dataset(fmt: str, **settings: Any) -> DatasetConfig:
    return DatasetConfig(format=fmt, table="t.processed.x", fields=FIELDS, **settings)  # type: ignore[arg-type]


@dataclass
class Parsed:
    path: str
    rows: dict[int, dict[str, Any]]  # accepted rows by line
    bad: dict[int, tuple[str, str | None, str, bytes]]  # line: (reason, detail, raw_text, raw_bytes)


@contextmanager
def session_in(tmp: str, zone: str | None = None) -> Iterator[DuckDBSession]:
    storage = open_storage(StorageConfig(root=tmp), Path(tmp))
    with DuckDBSession(storage, JobSpec("edges", "256MB", 1, Path(tmp) / "spill")) as session:
        if zone:  # as a machine in that zone would start it
            session.execute(f"SET TimeZone = '{zone}'")
        yield session


def parse(content: bytes, config: DatasetConfig, gzipped: bool = False, zone: str | None = None) -> Parsed:
    """``content`` parsed as one batch of ``config``'s format."""
    suffix = ".ndjson" if config.format == "ndjson" else ".csv"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("batch" + suffix + (".gz" if gzipped else ""))
        path.write_bytes(gzip.compress(content) if gzipped else content)
        lines = content.count(b"\n") + (0 if content.endswith(b"\n") or not content else 1)
        batch = RawBatch(
            "s/d",
            "2026-11-01",
            "x",
            "0" * 64,
            path.stat().st_size,
            lines,
            config.format,
            "gzip" if gzipped else None,
            path.name,
            "now",
        )
        with session_in(tmp, zone) as session:
            create_staging(session)
            result = parse_batch(session, config, batch, 0, str(path), in_order=True)  # lines checked
            accepted_view(session, config, [result])
            table = session.arrow_reader(f"SELECT * FROM {ACCEPTED}").read_all().to_pylist()
            bad = session.execute(f"SELECT line, reason, detail, raw_text, raw_bytes FROM {QUARANTINE}")
            assert result.read == len(table) + len(bad)
    return Parsed(
        result.path,
        {r.pop("_line"): {k: v for k, v in r.items() if k != "_batch"} for r in table},
        {line: (reason, detail, text, raw) for line, reason, detail, text, raw in bad},
    )


def ndjson(*records: dict[str, Any] | bytes) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> dt.datetime:
    """A value of an Iceberg ``timestamp`` column: a UTC wall-clock, without zone."""
    return dt.datetime(year, month, day, hour, minute, second, us)


# -- timestamps ---------------------------------------------------------------------------------
ZONED = [
    ("2026-11-01 10:00:00+02:00", utc(2026, 11, 1, 8)),
    ("2026-11-01T10:00:00-05:00", utc(2026, 11, 1, 15)),
    ("2026-11-01T10:00:00Z", utc(2026, 11, 1, 10)),
    ("2026-11-01 10:00:00.250+0530", utc(2026, 11, 1, 4, 30, 0, 250000)),
    ("2026-11-01 10:00:00 Europe/Berlin", utc(2026, 11, 1, 9)),  # winter: +01:00
    ("2026-07-01 10:00:00 Europe/Berlin", utc(2026, 7, 1, 8)),  # summer: +02:00
    ("2026-11-01 10:00:00 America/New_York", utc(2026, 11, 1, 15)),  # EST since 02:00 that day
    ("2026-11-01 10:00:00", utc(2026, 11, 1, 10)),  # no offset: UTC
    ("2026-11-01", utc(2026, 11, 1)),
]


@pytest.mark.parametrize("zone", [None, "America/Los_Angeles", "Asia/Kolkata"])
def test_a_timestamp_with_an_offset_or_zone_is_stored_in_utc_whatever_the_session_zone(
    zone: str | None,
) -> None:
    records = [{"id": n, "at": text} for n, (text, _) in enumerate(ZONED, start=1)]
    fast = parse(ndjson(*records), dataset("ndjson"), zone=zone)
    lines = parse(ndjson(*records, b"{oops"), dataset("ndjson"), zone=zone)
    csv = parse(
        b"id,at\n" + b"".join(f"{r['id']},{r['at']}\n".encode() for r in records), dataset("csv"), zone=zone
    )
    assert (fast.path, lines.path, csv.path) == ("fast", "lines", "fast")
    want = {n: stored for n, (_, stored) in enumerate(ZONED, start=1)}
    assert {n: r["at"] for n, r in fast.rows.items()} == want
    assert {n: r["at"] for n, r in lines.rows.items()} == want
    assert {n - 1: r["at"] for n, r in csv.rows.items()} == want
    assert fast.bad == {} and csv.bad == {}


def test_a_timestamp_ntz_is_kept_as_written_and_refuses_an_offset_or_zone() -> None:
    records = [
        {"id": 1, "local": "2026-11-01 10:00:00"},
        {"id": 2, "local": "2026-07-01T23:30:00.5"},
        {"id": 3, "local": "2026-11-01 10:00:00+02:00"},
        {"id": 4, "local": "2026-11-01 10:00:00 Europe/Berlin"},
        {"id": 5, "local": "2026-11-01T10:00:00Z"},
        {"id": 6, "local": "2026-11-01 10:00:00-05:00"},
    ]
    for content, config in (
        (ndjson(*records), dataset("ndjson")),
        (b"id,local\n" + b"".join(f"{r['id']},{r['local']}\n".encode() for r in records), dataset("csv")),
    ):
        parsed = parse(content, config, zone="Asia/Tokyo")
        first = 1 if config.format == "ndjson" else 2
        assert {n - first + 1: r["local"] for n, r in parsed.rows.items()} == {
            1: utc(2026, 11, 1, 10),
            2: utc(2026, 7, 1, 23, 30, 0, 500000),
        }
        assert {n - first + 1: (reason, detail) for n, (reason, detail, _, _) in parsed.bad.items()} == {
            n: ("wrong_type", f"local is not a timestamp_ntz: {records[n - 1]['local']}")
            for n in (3, 4, 5, 6)
        }


def test_an_unknown_time_zone_has_its_own_reason() -> None:
    values = [
        "2026-11-01 10:00:00 Europe/Berlin",
        "2026-11-01 10:00 Mars/Olympus",
        "2026-11-01 10:00 Nowhere",
    ]
    content = ndjson(*[{"id": n, "at": v} for n, v in enumerate(values, 1)], {"id": 4, "at": "not a time"})
    parsed = parse(content, dataset("ndjson"))
    assert parsed.path == "fast", "a refused value keeps the fast path"
    assert {n: r["at"] for n, r in parsed.rows.items()} == {1: utc(2026, 11, 1, 9)}
    sent = content.splitlines()
    assert parsed.bad == {
        2: ("unknown_time_zone", "at has an unknown time zone: Mars/Olympus", sent[1].decode(), sent[1]),
        3: ("unknown_time_zone", "at has an unknown time zone: Nowhere", sent[2].decode(), sent[2]),
        4: ("wrong_type", "at is not a timestamp: not a time", sent[3].decode(), sent[3]),
    }
    csv = parse(b"id,at\n" + "".join(f"{n},{v}\n" for n, v in enumerate(values, 1)).encode(), dataset("csv"))
    assert {n: r["at"] for n, r in csv.rows.items()} == {2: utc(2026, 11, 1, 9)}
    assert {n: (reason, raw) for n, (reason, _, _, raw) in csv.bad.items()} == {
        3: ("unknown_time_zone", f"2,{values[1]}".encode()),
        4: ("unknown_time_zone", f"3,{values[2]}".encode()),
    }


# -- byte-order marks ---------------------------------------------------------------------------
def test_a_byte_order_mark_is_not_part_of_the_first_record() -> None:
    body = ndjson({"id": 1, "score": 1.5}, {"id": 2})
    for gzipped in (False, True):
        fast = parse(BOM + body, dataset("ndjson"), gzipped)
        lines = parse(BOM + body + b"{oops\n", dataset("ndjson"), gzipped)
        csv = parse(BOM + b"id,score\n1,1.5\n2,\n", dataset("csv"), gzipped)
        assert (fast.path, lines.path) == ("fast", "lines")
        assert [(n, r["id"], r["score"]) for n, r in fast.rows.items()] == [(1, 1, 1.5), (2, 2, None)]
        assert [(n, r["id"], r["score"]) for n, r in lines.rows.items()] == [(1, 1, 1.5), (2, 2, None)]
        assert [(n, r["id"], r["score"]) for n, r in csv.rows.items()] == [(2, 1, 1.5), (3, 2, None)]
        assert fast.bad == {} and csv.bad == {} and list(lines.bad) == [3]


def test_a_bad_first_line_after_a_byte_order_mark_keeps_its_bytes() -> None:
    parsed = parse(BOM + b'{"id": "x"}\n', dataset("ndjson"))
    assert parsed.bad == {1: ("wrong_type", "id is not a long: x", '{"id": "x"}', BOM + b'{"id": "x"}')}


# -- non-finite numbers -------------------------------------------------------------------------
NON_FINITE = [b"NaN", b"Infinity", b"-Infinity"]


def test_non_finite_numbers_are_quarantined_in_ndjson() -> None:
    lines = [b'{"id": 1, "score": 2.5}'] + [
        b'{"id": %d, "score": %s}' % (n, v) for n, v in enumerate(NON_FINITE, 2)
    ]
    lines += [b'{"id": 5, "score": "inf"}', b'{"id": 6, "score": 1e999}']
    parsed = parse(b"\n".join(lines) + b"\n", dataset("ndjson"))
    assert parsed.path == "fast", "bare NaN is read by DuckDB's reader: the fast path holds"
    assert [(n, r["score"]) for n, r in parsed.rows.items()] == [(1, 2.5)]
    shown = ["NaN", "Infinity", "-Infinity", "inf", "1e999"]
    assert parsed.bad == {
        n: ("non_finite_number", f"score is not finite: {shown[n - 2]}", lines[n - 1].decode(), lines[n - 1])
        for n in range(2, 7)
    }


def test_non_finite_numbers_are_quarantined_in_csv() -> None:
    cells = ["NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "1e999"]
    content = b"id,score\n0,0.5\n" + b"".join(f"{n},{c}\n".encode() for n, c in enumerate(cells, 1))
    parsed = parse(content, dataset("csv"))
    assert [(n, r["score"]) for n, r in parsed.rows.items()] == [(2, 0.5)]
    assert parsed.bad == {
        n + 2: ("non_finite_number", f"score is not finite: {c}", f"{n},{c}", f"{n},{c}".encode())
        for n, c in enumerate(cells, 1)
    }


def test_a_dataset_may_accept_non_finite_numbers() -> None:
    config = dataset("ndjson", accept_non_finite=True)
    parsed = parse(
        b'{"id": 1, "score": NaN}\n{"id": 2, "score": -Infinity}\n{"id": 3, "score": "inf"}\n', config
    )
    scores = [r["score"] for r in parsed.rows.values()]
    assert parsed.bad == {} and scores[0] != scores[0] and scores[1:] == [float("-inf"), float("inf")]
    csv = parse(b"id,score\n1,NaN\n2,-inf\n", dataset("csv", accept_non_finite=True))
    assert csv.bad == {} and [r["score"] for r in csv.rows.values()][1] == float("-inf")


# -- repeated keys ------------------------------------------------------------------------------
DUPLICATES = [
    b'{"id": 1, "score": 1.0}',
    b'{"id": 2, "score": 1.0, "score": 2.0}',
    b'{"id": 3, "extra": 1, "extra": 2}',  # not a declared field: not loaded, not looked at
    b'{"id": 4, "id": 4}',
]


def test_a_declared_field_given_twice_is_quarantined() -> None:
    parsed = parse(b"\n".join(DUPLICATES) + b"\n", dataset("ndjson"))
    assert parsed.path == "lines", "DuckDB's reader refuses the batch; each line is judged"
    assert sorted(parsed.rows) == [1, 3]
    assert parsed.bad == {
        2: ("duplicate_key", "score is given more than once", DUPLICATES[1].decode(), DUPLICATES[1]),
        4: ("duplicate_key", "id is given more than once", DUPLICATES[3].decode(), DUPLICATES[3]),
    }


def test_a_dataset_may_accept_repeated_keys_and_the_first_value_wins() -> None:
    parsed = parse(b"\n".join(DUPLICATES) + b"\n", dataset("ndjson", accept_duplicate_keys=True))
    assert parsed.bad == {}
    assert {n: (r["id"], r["score"]) for n, r in parsed.rows.items()} == {
        1: (1, 1.0),
        2: (2, 1.0),
        3: (3, None),
        4: (4, None),
    }


# -- quotes that never close --------------------------------------------------------------------
CSV_FIELDS = {"id": FieldSpec(type="long", required=True), "name": FieldSpec(), "n": FieldSpec(type="int")}


def csv_rows(content: bytes, gzipped: bool = False) -> tuple[dict[int, tuple[Any, ...]], dict[int, Any]]:
    config = DatasetConfig(format="csv", table="t.processed.x", fields=CSV_FIELDS)
    parsed = parse(content, config, gzipped)
    return {n: tuple(r.values()) for n, r in parsed.rows.items()}, parsed.bad


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize(
    ("body", "cut", "rows"),
    [
        # a quote open to the end of the file
        (b'1,"open,2\n3,c,4\n5,e,6\n', {2: b'1,"open,2'}, {3: (3, "c", 4), 4: (5, "e", 6)}),
        # closed lines later by a stray quote that no comma follows
        (
            b'"open,1,2\n3,c,4\n5,"e",6\n7,g,8\n',
            {2: b'"open,1,2'},
            {3: (3, "c", 4), 4: (5, "e", 6), 5: (7, "g", 8)},
        ),
        # one after the other, CRLF line ends
        (
            b'1,"a\r\n2,"b\r\n3,c,4\r\n',
            {2: b'1,"a', 3: b'2,"b'},
            {4: (3, "c", 4)},
        ),
    ],
)
def test_an_unterminated_quote_is_cut_at_its_line_and_the_next_lines_are_read(
    body: bytes, cut: dict[int, bytes], rows: dict[int, tuple[Any, ...]], gzipped: bool
) -> None:
    header = b"id,name,n\r\n" if b"\r\n" in body else b"id,name,n\n"
    accepted, bad = csv_rows(header + body, gzipped)
    assert accepted == rows
    assert bad == {line: ("unterminated_quote", UNTERMINATED, raw.decode(), raw) for line, raw in cut.items()}


def test_a_quoted_field_over_the_size_limit_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_module, "MAX_RECORD_BYTES", 4096)
    filler = b"".join(b"%d,f,%d\n" % (i, i) for i in range(10, 1010))  # ~9 KB after the quote
    accepted, bad = csv_rows(b'id,name,n\n1,ok,1\n2,"open,3\n' + filler + b'4,"d",5\n')
    assert bad == {3: ("unterminated_quote", UNTERMINATED, '2,"open,3', b'2,"open,3')}
    assert len(accepted) == 1002 and accepted[2] == (1, "ok", 1)
    assert (accepted[4], accepted[1003], accepted[1004]) == ((10, "f", 10), (1009, "f", 1009), (4, "d", 5))


def test_a_multi_line_quoted_field_that_closes_is_still_one_record() -> None:
    accepted, bad = csv_rows(b'id,name,n\n1,"two\nlines",2\n3,"x""y",4\n')
    assert accepted == {2: (1, "two\nlines", 2), 4: (3, 'x"y', 4)} and bad == {}


# -- through the lake: landed, ingested, stored -------------------------------------------------
LAKE_CONFIG = """
name: shop
ingest:
  max_quarantine_rate: 0.9
datasets:
  pos/events:
    format: ndjson
    table: shop.processed.events
    fields:
      id: {type: long, required: true}
      at: {type: timestamp}
      local: {type: timestamp_ntz}
      score: {type: double}
  pos/rows:
    format: csv
    table: shop.processed.rows
    fields:
      id: {type: long, required: true}
      name: {type: string}
      at: {type: timestamp}
"""


def test_edge_inputs_through_the_lake(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "lakeplane.yaml").write_text(LAKE_CONFIG)
    lake = open_lake(project)
    events = [
        b'{"id": 1, "at": "2026-11-01 10:00:00+02:00", "local": "2026-11-01 10:00:00", "score": 1.5}',
        b'{"id": 2, "at": "2026-07-01 10:00:00 Europe/Berlin", "score": NaN}',
        b'{"id": 3, "id": 4}',
        b'{"id": 5, "at": "2026-11-01 10:00:00 Atlantis/Capital"}',
    ]
    (tmp_path / "events.ndjson").write_bytes(BOM + b"\n".join(events) + b"\n")
    (tmp_path / "rows.csv.gz").write_bytes(
        gzip.compress(BOM + b'id,name,at\n1,"open,2026-11-01 10:00:00-05:00\n2,b,2026-11-01T23:30:00Z\n')
    )
    lake.land("pos/events", [tmp_path / "events.ndjson"], DAY1)
    lake.land("pos/rows", [tmp_path / "rows.csv.gz"], DAY1)
    lake.ingest("pos/events", DAY1)
    lake.ingest("pos/rows", DAY1)

    assert lake.query("SELECT id, at, local, score FROM processed.events").to_pylist() == [
        {"id": 1, "at": utc(2026, 11, 1, 8), "local": utc(2026, 11, 1, 10), "score": 1.5}
    ]
    assert lake.query("SELECT id, name, at FROM processed.rows").to_pylist() == [
        {"id": 2, "name": "b", "at": utc(2026, 11, 1, 23, 30)}
    ]
    for table in ("events", "rows"):
        schema = lake.catalog.load(f"shop.processed.{table}").schema()
        assert isinstance(schema.find_field("at").field_type, TimestampType), "UTC, in a timestamp column"
    quarantine = "SELECT line, reason, raw_text, source_file FROM processed.{}_quarantine ORDER BY line"
    bad_events = lake.query(quarantine.format("events")).to_pylist()
    assert [(r["line"], r["reason"], r["raw_text"]) for r in bad_events] == [
        (2, "non_finite_number", events[1].decode()),
        (3, "duplicate_key", events[2].decode()),
        (4, "unknown_time_zone", events[3].decode()),
    ]
    bad_rows = lake.query(quarantine.format("rows")).to_pylist()
    assert [(r["line"], r["reason"], r["raw_text"]) for r in bad_rows] == [
        (2, "unterminated_quote", '1,"open,2026-11-01 10:00:00-05:00')
    ]
    assert all(r["source_file"].endswith(".ndjson") for r in bad_events)
    assert bad_rows[0]["source_file"].endswith(".csv.gz") and "/raw/pos/rows/" in bad_rows[0]["source_file"]


cells = st.one_of(
    st.from_regex(r"[a-z0-9 ]{0,4}", fullmatch=True),
    st.from_regex(r'"[a-z,\n]{0,5}"', fullmatch=True),
    st.from_regex(r'"[a-z, ]{0,5}', fullmatch=True),  # a quote that this line does not close
)
csv_records = st.lists(cells, min_size=1, max_size=4).map(lambda cs: ",".join(cs).encode())


@settings(max_examples=30, deadline=None)
@given(st.lists(csv_records, min_size=1, max_size=12))
@example([b'"', b'"a\n","a","\n"'])  # cutting line 2 makes lines 3-5 one good record
def test_every_line_is_accounted_for_once_whatever_the_quotes(body: list[bytes]) -> None:
    content = b"id,name,n\n" + b"\n".join(body) + b"\n"
    parsed = parse(content, DatasetConfig(format="csv", table="t.processed.x", fields=CSV_FIELDS))
    delivered = content.split(b"\n")
    assert set(parsed.rows).isdisjoint(parsed.bad)  # and parse() checked read = accepted + quarantined
    for line, (reason, _, _, raw) in parsed.bad.items():
        assert raw == b"\n".join(delivered[line - 1 : line - 1 + raw.count(b"\n") + 1])
        if reason == "unterminated_quote":
            assert b"\n" not in raw and b'"' in raw, "cut at the line the quote opens on"

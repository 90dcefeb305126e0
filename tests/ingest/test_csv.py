"""CSV batches through DuckDB's reader: every record accepted or quarantined once, each quarantined
record with the line it starts on and its bytes exactly as delivered."""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lakeplane.config import DatasetConfig, FieldSpec, StorageConfig
from lakeplane.engines import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.ingest.parse import (
    ACCEPTED,
    QUARANTINE,
    UNTERMINATED,
    ParsedBatch,
    accepted_view,
    create_staging,
    parse_batch,
)
from lakeplane.storage import open_storage
from lakeplane.storage.raw import RawBatch

DATASET = DatasetConfig(
    format="csv",
    table="t.processed.x",
    fields={
        "a": FieldSpec(type="long", required=True),
        "b": FieldSpec(type="string"),
        "c": FieldSpec(type="int"),
    },
)


@contextmanager
def parsed(content: bytes, gzipped: bool = False) -> Iterator[tuple[ParsedBatch, list[Any], list[Any]]]:
    """The batch parsed: how, its accepted rows (line, a, b, c) and quarantine (line, reason,
    detail, raw_text, raw_bytes), both by line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("batch.csv.gz" if gzipped else "batch.csv")
        path.write_bytes(gzip.compress(content) if gzipped else content)
        lines = content.count(b"\n") + (0 if content.endswith(b"\n") or not content else 1)
        storage = open_storage(StorageConfig(root=tmp), Path(tmp))
        batch = RawBatch(
            "s/d",
            "2026-11-01",
            "x",
            "0" * 64,
            path.stat().st_size,
            lines,
            "csv",
            "gzip" if gzipped else None,
            path.name,
            "now",
        )
        with DuckDBSession(storage, JobSpec("csv", "256MB", 1, Path(tmp) / "spill")) as session:
            create_staging(session)
            result = parse_batch(session, DATASET, batch, 0, str(path))
            accepted_view(session, DATASET, [result])
            rows = session.execute(f"SELECT _line, a, b, c FROM {ACCEPTED} ORDER BY _line")
            bad = session.execute(
                f"SELECT line, reason, detail, raw_text, raw_bytes FROM {QUARANTINE} ORDER BY line"
            )
            yield result, rows, bad


def test_a_clean_batch_of_one_line_records_stays_in_duckdb() -> None:
    with parsed(b"a,b,c\n1,x,2\n2,,3\n") as (result, rows, bad):
        assert (result.path, result.read) == ("fast", 2)
        assert rows == [(2, 1, "x", 2), (3, 2, None, 3)] and bad == []


def test_rejected_skipped_and_refused_records_keep_line_and_bytes() -> None:
    content = (
        b'a,b,c\n1,x,2\n\n"m\nn",y,3\n4,z\n   \n5,"q""r",6\n7,w,8,9\n'
        b'9,"multi\nline",1\n10,caf\xe9,1\n"unterminated,1,2\n8,v,9\n'
    )
    with parsed(content) as (result, rows, bad):
        assert result.path == "records" and result.read == len(rows) + len(bad) == 11
        assert rows == [(2, 1, "x", 2), (8, 5, 'q"r', 6), (10, 9, "multi\nline", 1), (14, 8, "v", 9)]
        assert [(line, reason, detail) for line, reason, detail, _, _ in bad] == [
            (3, "blank_line", None),
            (4, "wrong_type", "a is not a long: m\nn"),
            (6, "wrong_column_count", "2 columns, header has 3"),
            (7, "blank_line", None),
            (9, "wrong_column_count", "4 columns, header has 3"),
            (12, "invalid_utf8", None),
            (13, "unterminated_quote", UNTERMINATED),
        ]
        delivered = content.split(b"\n")
        assert {line: raw for line, *_, raw in bad} == {
            3: b"",
            4: b'"m\nn",y,3',
            6: b"4,z",
            7: b"   ",
            9: b"7,w,8,9",
            12: b"10,caf\xe9,1",
            13: b'"unterminated,1,2',  # the lines after it are records of their own
        }
        assert bad[5][3] == delivered[11].decode("utf-8", "replace").replace("\ufffd", "\\xE9")


def test_columns_by_header_name_crlf_and_gzip() -> None:
    content = b'c, a ,extra,b\r\n1,2,zz,"q""\r\n""r"\r\n,,,\r\n3,4,5,6\r\n5" x,6,7,8\r\n'
    for gzipped in (False, True):
        with parsed(content, gzipped) as (result, rows, bad):
            assert result.read == 4
            assert rows == [(2, 2, 'q"\r\n"r', 1), (5, 4, "6", 3)]
            assert [(line, reason, raw) for line, reason, _, _, raw in bad] == [
                (4, "blank_line", b",,,"),
                (6, "wrong_type", b'5" x,6,7,8'),
            ]


def test_an_empty_file_and_a_header_alone_hold_no_records() -> None:
    for content in (b"", b"a,b,c\n"):
        with parsed(content) as (result, rows, bad):
            assert (result.read, rows, bad) == (0, [], [])


cells = st.one_of(
    st.from_regex(r"[a-z ]{0,4}", fullmatch=True),
    st.from_regex(r'"[a-z,"\n]{0,5}"', fullmatch=True).map(lambda s: '"' + s[1:-1].replace('"', '""') + '"'),
    st.integers(-99, 99).map(str),
)
records = st.lists(cells, min_size=0, max_size=4).map(lambda cs: ",".join(cs).encode())


@settings(max_examples=40, deadline=None)
@given(st.lists(records, min_size=1, max_size=25))
def test_every_record_is_accepted_or_quarantined_once(body: list[bytes]) -> None:
    content = b"a,b,c\n" + b"\n".join(body) + b"\n"
    with parsed(content) as (result, rows, bad):
        assert result.read == len(rows) + len(bad)
        lines = [r[0] for r in rows] + [q[0] for q in bad]
        assert len(set(lines)) == len(lines)
        delivered = content.split(b"\n")
        for line, _, _, _, raw in bad:
            assert raw == b"\n".join(delivered[line - 1 : line - 1 + raw.count(b"\n") + 1])

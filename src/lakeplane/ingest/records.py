"""Where each record of a CSV batch starts and ends, read as DuckDB's CSV reader splits them.

DuckDB's reader numbers the records it rejects (the header is record 1, an empty line is a record
it skips without a word) but not the lines they start on, and the text it keeps of a rejected
record alters bytes that are not UTF-8. :func:`scan_records` reads the file once more to give each
record its first line, its position among the rows DuckDB returned, and, for the records asked
for, the bytes exactly as delivered.

A record ends at a newline outside quotes. A quote opens a quoted field only at the start of a
field; inside one, ``""`` is a quote and a lone ``"`` closes it (RFC 4180, DuckDB's defaults). Only
lines holding a quote can change that state, so the others are handled as whole arrays. The file
is read in blocks; a record still open at the end of a block waits for the next one, so a quote
never closed holds the rest of the file (DuckDB rejects that record the same way). The parse then
cuts such a record at its first line (:func:`lines_to_cut`) and reads a copy of the file with
that line emptied (:func:`copy_without_lines`), so the lines after it are records of their own.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc

BLOCK = 32 << 20
RECORDS_SCHEMA = pa.schema(
    [
        ("record", pa.int64()),
        ("line", pa.int64()),
        ("ordinal", pa.int64()),
        ("skipped", pa.bool_()),
        ("raw", pa.binary()),
    ]
)
# The rest of a quoted field through its closing quote; possessive, so that ``""`` at the end of a
# line stays an escaped quote instead of being read back as the closing one.
_QUOTED_REST = re.compile(rb'[^"]*+(?:""[^"]*+)*+"')


def open_content(path: str, compression: str | None) -> IO[bytes]:
    """The batch's bytes, decompressed."""
    if compression == "gzip":
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_header(path: str, compression: str | None) -> list[str] | None:
    """The names in the first record, stripped of surrounding spaces; ``None`` for an empty file.

    A UTF-8 byte-order mark before the first name is not part of it (DuckDB's reader skips it too).
    """
    with open_content(path, compression) as content:
        text = io.TextIOWrapper(content, encoding="utf-8-sig", errors="replace", newline="")
        first = next(csv.reader(text), None)
    return None if first is None else [name.strip() for name in first]


@dataclass
class RecordCounts:
    """Filled in as the scan's batches are read: records seen, and those DuckDB returned as rows."""

    records: int = 0
    rows: int = 0


def scan_records(
    path: str, compression: str | None, rejected: pa.Array, wanted: pa.Array
) -> tuple[pa.RecordBatchReader, RecordCounts]:
    """Every record of the file: its number, first line, and ``ordinal`` among DuckDB's rows.

    Args:
        rejected: numbers of the records DuckDB rejected (they are not among its rows).
        wanted: ordinals of rows whose bytes are needed; the bytes of rejected and skipped
            records are always kept, the others' ``raw`` is NULL.

    Returns:
        The records, streamed, and counts that are complete once the reader is exhausted.
    """
    counts = RecordCounts()
    rejected, wanted = pc.cast(rejected, pa.int64()), pc.cast(wanted, pa.int64())

    def blocks() -> Iterator[pa.RecordBatch]:
        next_line = 1
        rest = b""
        with open_content(path, compression) as content:
            while True:
                chunk = content.read(BLOCK)
                buffer = rest + chunk
                if not chunk:
                    if buffer.endswith(b"\n"):  # left over by a record that spanned a cut
                        buffer = buffer[:-1]
                    if buffer:  # the last line, without a newline (or a quote never closed)
                        yield _records(_lines(buffer), next_line, counts, rejected, wanted, final=True)[0]
                    break
                cut = buffer.rfind(b"\n")
                if cut < 0:
                    rest = buffer
                    continue
                lines = _lines(buffer[:cut])
                batch, used_lines, used_bytes = _records(
                    lines, next_line, counts, rejected, wanted, final=False
                )
                yield batch
                next_line += used_lines
                rest = buffer[used_bytes:]

    return pa.RecordBatchReader.from_batches(RECORDS_SCHEMA, blocks()), counts


def lines_to_cut(path: str, compression: str | None, records: pa.Array) -> dict[int, bytes]:
    """The first lines of the records numbered ``records`` that span several lines, with their
    bytes, as far as cutting them all at once is safe.

    Once a record is cut at its first line, the lines after it are read again; while they hold no
    quote they read the same way and the records after them keep their bounds, so the next record
    can be cut in the same pass. A quote among them may change every record after it: the cuts stop
    there, and the file is read again before more are made.
    """
    scan, _ = scan_records(path, compression, records, pa.array([], pa.int64()))
    cuts = {}
    for batch in scan:
        found = batch.filter(pc.is_in(batch.column("record"), value_set=pc.cast(records, pa.int64())))
        for line, raw in zip(found.column("line").to_pylist(), found.column("raw").to_pylist(), strict=True):
            first, newline, rest = raw.partition(b"\n")
            if not newline:
                continue
            cuts[line] = first.removesuffix(b"\r")
            if b'"' in rest:
                return cuts
    return cuts


def copy_without_lines(path: str, compression: str | None, lines: set[int], target: Path) -> None:
    """Write the content of ``path``, decompressed, to ``target`` with ``lines`` left empty (each
    keeps its line end, so every other line keeps its number)."""
    with open_content(path, compression) as content, open(target, "wb") as out:
        for number, text in enumerate(content, start=1):
            out.write(text[len(text.rstrip(b"\r\n")) :] if number in lines else text)


def _lines(block: bytes) -> pa.Array:
    return pc.split_pattern(pa.array([block], pa.large_binary()), b"\n")[0].values


def _records(
    lines: pa.Array, first_line: int, counts: RecordCounts, rejected: pa.Array, wanted: pa.Array, final: bool
) -> tuple[pa.RecordBatch, int, int]:
    """The complete records among ``lines``; a record still in quotes at the end waits for more
    lines unless ``final``. Returns them, and the lines and bytes they used."""
    n = len(lines)
    # Whether each line starts inside a quoted field: set after each line holding a quote, carried
    # forward over the lines without one.
    marks: list[bool | None] = [None] * n
    marks[0] = quoted = False
    for i in pc.indices_nonzero(pc.match_substring(lines, '"')).to_pylist():
        quoted = _ends_quoted(lines[i].as_py(), quoted)
        if i + 1 < n:
            marks[i + 1] = quoted
    in_quotes = pc.fill_null_forward(pa.array(marks, pa.bool_()))
    starts = pc.cast(pc.indices_nonzero(pc.invert(in_quotes)), pa.int64())
    used = n
    if quoted and not final:  # the last record goes on in the next block
        used = starts[-1].as_py()
        starts = starts.slice(0, len(starts) - 1)
    k = len(starts)
    spans = pc.pairwise_diff(pa.concat_arrays([starts, pa.array([used], pa.int64())])).slice(1)
    lengths = pc.cast(pc.binary_length(lines), pa.int64())
    used_bytes = (pc.sum(lengths.slice(0, used)).as_py() or 0) + used
    numbers = pa.array(range(counts.records + 1, counts.records + 1 + k), pa.int64())
    empty = pc.or_(
        pc.equal(pc.take(lengths, starts), 0), pc.equal(pc.take(lines, starts), pa.scalar(b"\r", lines.type))
    )
    skipped = pc.and_(pc.and_(pc.equal(spans, 1), empty), pc.greater(numbers, 1))
    refused = pc.is_in(numbers, value_set=rejected)
    # DuckDB's rows: every record but the header and those it skipped or rejected
    returned = pc.and_(pc.greater(numbers, 1), pc.invert(pc.or_(skipped, refused)))
    ordinals = pc.subtract(pc.add(pc.cumulative_sum(pc.cast(returned, pa.int64())), counts.rows), 1)
    keep = pc.or_(pc.or_(skipped, refused), pc.and_(returned, pc.is_in(ordinals, value_set=wanted)))
    raw = []
    for j in pc.indices_nonzero(keep).to_pylist():
        start = starts[j].as_py()
        text = b"\n".join(lines[i].as_py() for i in range(start, start + spans[j].as_py()))
        raw.append(text[:-1] if text.endswith(b"\r") else text)
    counts.records += k
    counts.rows += pc.sum(pc.cast(returned, pa.int64())).as_py() or 0
    batch = pa.record_batch(
        [
            numbers,
            pc.add(starts, first_line),
            pc.if_else(returned, ordinals, pa.scalar(None, pa.int64())),
            skipped,
            pc.replace_with_mask(pa.nulls(k, pa.binary()), keep, pa.array(raw, pa.binary())),
        ],
        schema=RECORDS_SCHEMA,
    )
    return batch, used, used_bytes


def _ends_quoted(line: bytes, quoted: bool) -> bool:
    """Whether a record is inside a quoted field at the end of ``line``, given how it started."""
    pos = 0
    if quoted:
        match = _QUOTED_REST.match(line)
        if match is None:
            return True
        pos = match.end()
        comma = line.find(b",", pos)
        if comma < 0:
            return False
        pos = comma + 1
    while True:
        if line[pos : pos + 1] == b'"':
            match = _QUOTED_REST.match(line, pos + 1)
            if match is None:
                return True
            pos = match.end()
        comma = line.find(b",", pos)
        if comma < 0:
            return False
        pos = comma + 1


LINES_SCHEMA = pa.schema([("line", pa.int64()), ("raw", pa.binary())])


def ndjson_lines(path: str, compression: str | None, keep: pa.Array | None = None) -> pa.RecordBatchReader:
    """The batch's lines, numbered from 1, as binary (invalid UTF-8 survives to be quarantined).

    With ``keep``, only the lines with those numbers.
    """

    def blocks() -> Iterator[pa.RecordBatch]:
        next_line = 1
        rest = b""
        with open_content(path, compression) as content:
            while True:
                chunk = content.read(BLOCK)
                if not chunk:
                    break
                buffer = rest + chunk
                cut = buffer.rfind(b"\n")
                if cut < 0:
                    rest = buffer
                    continue
                rest = buffer[cut + 1 :]
                yield _numbered_lines(buffer[:cut], next_line, keep)
                next_line += buffer.count(b"\n", 0, cut) + 1
        if rest:
            yield _numbered_lines(rest, next_line, keep)

    return pa.RecordBatchReader.from_batches(LINES_SCHEMA, blocks())


def _numbered_lines(block: bytes, first_line: int, keep: pa.Array | None) -> pa.RecordBatch:
    lines = pc.cast(_lines(block), pa.binary())
    numbers = pa.array(range(first_line, first_line + len(lines)), pa.int64())
    batch = pa.record_batch([numbers, lines], schema=LINES_SCHEMA)
    return batch if keep is None else batch.filter(pc.is_in(numbers, value_set=keep))

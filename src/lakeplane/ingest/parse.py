"""Parse one raw batch inside a DuckDB session, splitting it into accepted rows and quarantine.

Every batch lands in its own staging table ``__b<seq>``; :func:`accepted_view` unions them for the
step's dedupe and write. Two paths give the same answer. The fast path lets DuckDB's JSON reader
parse a whole NDJSON batch in parallel, numbering lines by insertion order; it is kept when the row
count equals the manifest's line count, which proves no line was skipped. Rows whose values do not
convert are then re-read from the file by line number and judged like any other bad line. Any batch
DuckDB's reader cannot parse goes line by line: lines are cut and numbered by pyarrow, then checked
in SQL (UTF-8, JSON, object, required fields, types), so every rejected line keeps its number,
reason and raw bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lakeplane.catalog.types import FIELD_DUCKDB_TYPES
from lakeplane.config import DatasetConfig
from lakeplane.engines.duckdb import DuckDBSession, quote_ident, quote_literal
from lakeplane.errors import EngineError
from lakeplane.storage.raw import RawBatch

BLOCK = 32 << 20
LINES_SCHEMA = pa.schema([("line", pa.int64()), ("raw", pa.binary())])
ACCEPTED = "__accepted"
QUARANTINE = "__quarantine"
REASONS = ("invalid_utf8", "blank_line", "invalid_json", "not_an_object", "wrong_column_count",
           "missing_required", "wrong_type")


@dataclass(frozen=True)
class ParsedBatch:
    """How a batch was parsed, how many records it held, and the SQL of its accepted rows."""

    path: str
    read: int
    accepted_sql: str


def create_staging(session: DuckDBSession) -> None:
    """The session's table of quarantined records (accepted rows stay in per-batch tables)."""
    session.con.execute(
        f"CREATE TEMP TABLE {QUARANTINE} (_batch INTEGER, line BIGINT, reason VARCHAR, "
        "detail VARCHAR, raw_text VARCHAR, raw_bytes BLOB)"
    )


def accepted_view(session: DuckDBSession, dataset: DatasetConfig, parsed: list[ParsedBatch]) -> None:
    """``__accepted``: every batch's accepted rows, typed, with ``_batch`` and ``_line``."""
    if parsed:
        body = " UNION ALL ".join(p.accepted_sql for p in parsed)
    else:
        columns = ", ".join(f"CAST(NULL AS {FIELD_DUCKDB_TYPES[s.type]}) AS {quote_ident(n)}"
                            for n, s in dataset.fields.items())
        body = f"SELECT {columns}, 0 AS _batch, 0::BIGINT AS _line WHERE false"
    session.con.execute(f"CREATE OR REPLACE TEMP VIEW {ACCEPTED} AS {body}")


def parse_batch(session: DuckDBSession, dataset: DatasetConfig, batch: RawBatch, seq: int,
                local_path: str) -> ParsedBatch:
    """Parse ``batch`` into its staging table and the quarantine.

    The records read are every line of an NDJSON batch, every record after the header of a CSV one.
    """
    if batch.format == "ndjson":
        fast = _fast_ndjson(session, dataset, batch, seq, local_path)
        if fast is not None:
            return fast
        lines = _ndjson_lines(local_path, batch.compression)
        return ParsedBatch("lines", batch.lines, _validate_ndjson(session, dataset, lines, seq))
    records = _csv_records(local_path, batch.compression, dataset)
    session.con.register("__records", records)
    accepted = _judge(session, dataset, seq, "SELECT * FROM __records")
    session.con.unregister("__records")
    return ParsedBatch("lines", records.num_rows, accepted)


def typed(name: str, field_type: str) -> str:
    """SQL turning the text of a field into its declared type, NULL when it is not one.

    Both parse paths use it, so a value is accepted or refused the same way whichever path a batch
    takes. Integers must be written as integers: ``1.5`` or ``true`` is not a ``long``.
    """
    col = quote_ident(name)
    target = FIELD_DUCKDB_TYPES[field_type]
    if field_type == "string":
        return col
    if field_type in ("int", "long"):
        integer = f"regexp_full_match({col}, '\\s*[+-]?[0-9]+\\s*')"
        return f"CASE WHEN {integer} THEN TRY_CAST({col} AS {target}) END"
    return f"TRY_CAST({col} AS {target})"


def _fast_ndjson(session: DuckDBSession, dataset: DatasetConfig, batch: RawBatch, seq: int,
                 path: str) -> ParsedBatch | None:
    """DuckDB's parallel reader over the whole batch; ``None`` (nothing kept) if it cannot be used."""
    table = f"__b{seq}"
    columns = ", ".join(f"{quote_ident(n)}: 'VARCHAR'" for n in dataset.fields)
    values = ", ".join(f"{typed(n, s.type)} AS {quote_ident(n)}" for n, s in dataset.fields.items())
    problems = [f"({quote_ident(n)} IS NOT NULL AND {typed(n, s.type)} IS NULL)"
                for n, s in dataset.fields.items() if s.type != "string"]
    problems += [f"{quote_ident(n)} IS NULL" for n, s in dataset.fields.items() if s.required]
    bad = " OR ".join(problems) or "false"
    try:
        # Insertion order is line order, so rowid + 1 is the line number; numbering lines WITH
        # ORDINALITY would make the reader single-threaded.
        session.con.execute("SET preserve_insertion_order = true")
        session.con.execute(
            f"CREATE TEMP TABLE {table} AS SELECT {values}, {bad} AS _bad "
            f"FROM read_json({quote_literal(path)}, format = 'newline_delimited', "
            f"columns = {{{columns}}}, compression = 'auto_detect', maximum_object_size = 16777216)"
        )
    except duckdb.OutOfMemoryException as exc:
        raise EngineError(f"job '{session.job.name}': {exc}", retryable=False) from None
    except duckdb.Error:  # a malformed line: the line-by-line path will say which and why
        return None
    finally:
        session.con.execute("SET preserve_insertion_order = false")
    rows, bad_rows = session.con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE _bad) FROM {table}").fetchone() or (0, 0)
    if rows != batch.lines:  # blank lines are skipped by the reader: judge every line instead
        session.con.execute(f"DROP TABLE {table}")
        return None
    names = ", ".join(quote_ident(n) for n in dataset.fields)
    accepted = f"SELECT {names}, {seq} AS _batch, rowid + 1 AS _line FROM {table} WHERE NOT _bad"
    if bad_rows == 0:
        return ParsedBatch("fast", batch.lines, accepted)
    bad_lines = pa.array([r[0] for r in session.con.execute(
        f"SELECT rowid + 1 FROM {table} WHERE _bad").fetchall()], pa.int64())
    only_bad = _ndjson_lines(path, batch.compression, keep=bad_lines)
    rescued = _validate_ndjson(session, dataset, only_bad, seq, suffix="_bad")
    return ParsedBatch("fast", batch.lines, f"{accepted} UNION ALL {rescued}")


def _open_content(path: str, compression: str | None) -> IO[bytes]:
    if compression == "gzip":
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _ndjson_lines(path: str, compression: str | None,
                  keep: pa.Array | None = None) -> pa.RecordBatchReader:
    """The batch's lines, numbered from 1, as binary (invalid UTF-8 survives to be quarantined).

    With ``keep``, only the lines with those numbers.
    """

    def blocks() -> Iterator[pa.RecordBatch]:
        next_line = 1
        rest = b""
        with _open_content(path, compression) as content:
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
                yield _numbered(buffer[:cut], next_line, keep)
                next_line += buffer.count(b"\n", 0, cut) + 1
        if rest:
            yield _numbered(rest, next_line, keep)

    return pa.RecordBatchReader.from_batches(LINES_SCHEMA, blocks())


def _numbered(block: bytes, first_line: int, keep: pa.Array | None) -> pa.RecordBatch:
    lines = pc.split_pattern(pa.array([block], pa.large_binary()), b"\n")[0].values
    lines = pc.cast(lines, pa.binary())
    numbers = pa.array(range(first_line, first_line + len(lines)), pa.int64())
    batch = pa.record_batch([numbers, lines], schema=LINES_SCHEMA)
    return batch if keep is None else batch.filter(pc.is_in(numbers, value_set=keep))


def _validate_ndjson(session: DuckDBSession, dataset: DatasetConfig, lines: pa.RecordBatchReader,
                     seq: int, suffix: str = "") -> str:
    """Judge NDJSON lines one by one; returns the SQL of the accepted rows."""
    session.con.register("__lines", lines)
    paths = ", ".join(quote_literal(f'$."{n}"') for n in dataset.fields)
    fields = ", ".join(f"v[{i}] AS {quote_ident(n)}" for i, n in enumerate(dataset.fields, 1))
    source = f"""
        WITH decoded AS (
            SELECT line, raw, try(decode(raw)) AS txt FROM __lines
        ), shaped AS (
            SELECT line, raw, txt, CASE
                WHEN txt IS NULL THEN 'invalid_utf8'
                WHEN trim(txt) = '' THEN 'blank_line'
                WHEN NOT json_valid(txt) THEN 'invalid_json'
                WHEN json_type(txt) <> 'OBJECT' THEN 'not_an_object'
            END AS pre_reason, NULL::VARCHAR AS pre_detail
            FROM decoded
        )
        SELECT line, raw, txt, pre_reason, pre_detail, {fields}
        FROM (SELECT *, CASE WHEN pre_reason IS NULL THEN json_extract_string(txt, [{paths}]) END AS v
              FROM shaped)
    """
    accepted = _judge(session, dataset, seq, source, suffix)
    session.con.unregister("__lines")
    return accepted


def _csv_records(path: str, compression: str | None, dataset: DatasetConfig) -> pa.Table:
    """CSV records with the line each starts on; bad rows keep their raw text and a reason."""
    names = list(dataset.fields)
    rows: dict[str, list[object]] = {k: [] for k in ("line", "raw", "txt", "pre_reason",
                                                     "pre_detail", *names)}
    with _open_content(path, compression) as content:
        text = io.TextIOWrapper(content, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        header: list[str] | None = None
        start = 1
        for record in reader:
            end = reader.line_num
            raw_text = ",".join(record)
            if header is None:
                header = [h.strip() for h in record]
                start = end + 1
                continue
            values: dict[str, str | None] = dict.fromkeys(names)
            reason = detail = None
            if any("\udc80" <= ch <= "\udcff" for ch in raw_text):
                reason = "invalid_utf8"
            elif not any(cell.strip() for cell in record):
                reason = "blank_line"
            elif len(record) != len(header):
                reason, detail = "wrong_column_count", f"{len(record)} columns, header has {len(header)}"
            else:
                for column, cell in zip(header, record, strict=True):
                    if column in values:
                        values[column] = cell if cell != "" else None
            rows["line"].append(start)
            rows["raw"].append(raw_text.encode("utf-8", errors="surrogateescape"))
            rows["txt"].append(None if reason == "invalid_utf8" else raw_text)
            rows["pre_reason"].append(reason)
            rows["pre_detail"].append(detail)
            for name in names:
                rows[name].append(values[name])
            start = end + 1
    schema = pa.schema([("line", pa.int64()), ("raw", pa.binary()), ("txt", pa.string()),
                        ("pre_reason", pa.string()), ("pre_detail", pa.string()),
                        *[(n, pa.string()) for n in names]])
    return pa.table(rows, schema=schema)


def _judge(session: DuckDBSession, dataset: DatasetConfig, seq: int, source: str,
           suffix: str = "") -> str:
    """Judge records of ``source`` (line, raw, txt, pre_reason, pre_detail and each field as text).

    Rejected records go to the quarantine with their raw text and bytes; accepted ones stay in
    ``__b<seq><suffix>`` (without their raw text) and the SQL returned reads them typed.
    """
    table = f"__b{seq}{suffix}"
    reasons = ["WHEN pre_reason IS NOT NULL THEN pre_reason"]
    details = ["WHEN pre_reason IS NOT NULL THEN pre_detail"]
    for name, spec in dataset.fields.items():
        col = quote_ident(name)
        if spec.required:
            reasons.append(f"WHEN {col} IS NULL THEN 'missing_required'")
            details.append(f"WHEN {col} IS NULL THEN {quote_literal(name)}")
    for name, spec in dataset.fields.items():
        col = quote_ident(name)
        cast = typed(name, spec.type)
        reasons.append(f"WHEN {col} IS NOT NULL AND {cast} IS NULL THEN 'wrong_type'")
        details.append(f"WHEN {col} IS NOT NULL AND {cast} IS NULL THEN "
                       f"{quote_literal(name + ' is not a ' + spec.type + ': ')} || left({col}, 80)")
    names = ", ".join(quote_ident(n) for n in dataset.fields)
    session.con.execute(f"""
        CREATE TEMP TABLE {table} AS
        SELECT line, {names}, reason, detail,
               CASE WHEN reason IS NOT NULL THEN coalesce(txt, CAST(raw AS VARCHAR)) END AS raw_text,
               CASE WHEN reason IS NOT NULL THEN raw END AS raw_bytes
        FROM (SELECT *, CASE {' '.join(reasons)} END AS reason,
                        CASE {' '.join(details)} END AS detail
              FROM ({source}))
    """)
    session.con.execute(
        f"INSERT INTO {QUARANTINE} SELECT {seq}, line, reason, detail, raw_text, raw_bytes "
        f"FROM {table} WHERE reason IS NOT NULL"
    )
    values = ", ".join(f"{typed(n, s.type)} AS {quote_ident(n)}" for n, s in dataset.fields.items())
    return f"SELECT {values}, {seq} AS _batch, line AS _line FROM {table} WHERE reason IS NULL"

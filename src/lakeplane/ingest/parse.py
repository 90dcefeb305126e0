"""Parse one raw batch inside a DuckDB session, splitting it into accepted rows and quarantine.

Every batch lands in its own staging table ``__b<seq>``; :func:`accepted_view` unions them for the
step's dedupe and write. Two paths give the same answer. The fast path lets DuckDB's JSON reader
parse a whole NDJSON batch in parallel, numbering lines by insertion order; it is kept when the row
count equals the manifest's line count, which proves no line was skipped. Rows whose values do not
convert are then re-read from the file by line number and judged like any other bad line. Any batch
DuckDB's reader cannot parse goes line by line: lines are cut and numbered by pyarrow, then checked
in SQL (UTF-8, JSON, object, a declared field given twice, required fields, types), so every
rejected line keeps its number, reason and raw bytes (DuckDB's reader refuses a batch in which a
record names a declared field twice, so such a batch always goes line by line).

A CSV batch goes through DuckDB's CSV reader, every column as text, with its rejects table: records
it cannot split into the header's columns land there; declared types and required fields are then
judged in SQL with the same :func:`typed` casts. A quoted field that does not close properly would
swallow the lines after it into one rejected record: that record is cut at the line the quote
opens on, which alone is quarantined, and a copy of the batch without that line is read again.

The session is used through the :class:`~lakeplane.engines.base.EngineSession` interface only; the
SQL is DuckDB's, the engine whose capabilities include ingest. Its time zone is set to UTC, so that a
``timestamp`` written without offset or zone is UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from lakeplane.catalog.types import FIELD_DUCKDB_TYPES
from lakeplane.config import DatasetConfig
from lakeplane.engines.base import EngineSession
from lakeplane.engines.duckdb import quote_ident, quote_literal
from lakeplane.errors import EngineError, IngestError
from lakeplane.ingest.records import (
    copy_without_lines,
    lines_to_cut,
    ndjson_lines,
    read_header,
    scan_records,
)
from lakeplane.ingest.values import refusals, typed
from lakeplane.storage.raw import RawBatch

ACCEPTED = "__accepted"
QUARANTINE = "__quarantine"
UNTERMINATED = (
    "a quoted field opens on this line and is not closed properly; "
    "the lines after it are read as records of their own"
)
#: How many times a CSV batch is read again after cutting runaway quotes (see :func:`_parse_csv`).
MAX_CUT_PASSES = 64
#: DuckDB's CSV reader limit on a record's size, as for NDJSON objects.
MAX_RECORD_BYTES = 16 << 20


@dataclass(frozen=True)
class ParsedBatch:
    """How a batch was parsed, how many records it held, and the SQL of its accepted rows.

    ``path`` is ``fast`` (DuckDB's reader alone), ``lines`` (NDJSON judged line by line) or
    ``records`` (a CSV batch whose lines came from :func:`~lakeplane.ingest.records.scan_records`).
    ``in_order`` is false for a batch read without its line order (``_line`` is NULL):
    :mod:`~lakeplane.ingest.order` reads it again in order when that order decides anything.
    """

    path: str
    read: int
    accepted_sql: str
    in_order: bool = True


def create_staging(session: EngineSession) -> None:
    """The session's table of quarantined records (accepted rows stay in per-batch tables).

    The session's time zone is set to UTC: a ``timestamp`` written without offset or zone is UTC,
    whatever the machine's local zone.
    """
    session.execute("SET TimeZone = 'UTC'")
    session.execute(
        f"CREATE TEMP TABLE {QUARANTINE} (_batch INTEGER, line BIGINT, reason VARCHAR, "
        "detail VARCHAR, raw_text VARCHAR, raw_bytes BLOB)"
    )


def accepted_view(session: EngineSession, dataset: DatasetConfig, parsed: list[ParsedBatch]) -> None:
    """``__accepted``: every batch's accepted rows, typed, with ``_batch`` and ``_line``."""
    body = " UNION ALL ".join(p.accepted_sql for p in parsed) if parsed else _no_rows(dataset, 0)
    session.execute(f"CREATE OR REPLACE TEMP VIEW {ACCEPTED} AS {body}")


def _no_rows(dataset: DatasetConfig, seq: int) -> str:
    columns = ", ".join(
        f"CAST(NULL AS {FIELD_DUCKDB_TYPES[s.type]}) AS {quote_ident(n)}" for n, s in dataset.fields.items()
    )
    return f"SELECT {columns}, {seq} AS _batch, 0::BIGINT AS _line WHERE false"


def _values(dataset: DatasetConfig) -> str:
    """The select list turning each declared field's text into its type."""
    return ", ".join(
        f"{typed(n, s.type, dataset.accept_non_finite)} AS {quote_ident(n)}"
        for n, s in dataset.fields.items()
    )


def _problems(dataset: DatasetConfig) -> str:
    """TRUE for a record (each field as text) that a required field or a declared type refuses."""
    problems = [
        f"({quote_ident(n)} IS NOT NULL AND {typed(n, s.type, dataset.accept_non_finite)} IS NULL)"
        for n, s in dataset.fields.items()
        if s.type != "string"
    ]
    problems += [f"{quote_ident(n)} IS NULL" for n, s in dataset.fields.items() if s.required]
    return " OR ".join(problems) or "false"


def parse_batch(
    session: EngineSession,
    dataset: DatasetConfig,
    batch: RawBatch,
    seq: int,
    local_path: str,
    in_order: bool = False,
) -> ParsedBatch:
    """Parse ``batch`` into its staging table and the quarantine.

    The records read are every line of an NDJSON batch, every record after the header of a CSV one.
    An NDJSON batch DuckDB reads whole and finds no refused value in is read without keeping its
    line order unless ``in_order`` (the reader is faster so); every other batch keeps it.
    """
    if batch.format == "ndjson":
        fast = _fast_ndjson(session, dataset, batch, seq, local_path, in_order)
        if fast is not None:
            return fast
        lines = ndjson_lines(local_path, batch.compression)
        return ParsedBatch("lines", batch.lines, _validate_ndjson(session, dataset, lines, seq))
    return _parse_csv(session, dataset, batch, seq, local_path)


def _fast_ndjson(
    session: EngineSession, dataset: DatasetConfig, batch: RawBatch, seq: int, path: str, in_order: bool
) -> ParsedBatch | None:
    """DuckDB's parallel reader over the whole batch; ``None`` (nothing kept) if it cannot be used."""
    table = f"__b{seq}"
    columns = ", ".join(f"{quote_ident(n)}: 'VARCHAR'" for n in dataset.fields)
    values = _values(dataset)
    try:
        # In order, insertion order is line order, so rowid + 1 is the line number (numbering lines
        # WITH ORDINALITY would make the reader single-threaded).
        _in_file_order(session, in_order)
        session.execute(
            f"CREATE TEMP TABLE {table} AS SELECT {values}, {_problems(dataset)} AS _bad "
            f"FROM read_json({quote_literal(path)}, format = 'newline_delimited', "
            f"columns = {{{columns}}}, compression = 'auto_detect', maximum_object_size = 16777216)"
        )
    except EngineError as exc:
        if exc.out_of_memory:
            raise
        return None  # a malformed line: the line-by-line path will say which and why
    finally:
        _in_file_order(session, False)
    rows, bad_rows = _counts(session, table)
    if rows != batch.lines:  # blank lines are skipped by the reader: judge every line instead
        session.execute(f"DROP TABLE {table}")
        return None
    names = ", ".join(quote_ident(n) for n in dataset.fields)
    if not in_order:
        if bad_rows == 0:
            accepted = f"SELECT {names}, {seq} AS _batch, NULL::BIGINT AS _line FROM {table} WHERE NOT _bad"
            return ParsedBatch("fast", batch.lines, accepted, in_order=False)
        session.execute(f"DROP TABLE {table}")  # a refused value's line number is needed: in order
        return _fast_ndjson(session, dataset, batch, seq, path, True)
    accepted = f"SELECT {names}, {seq} AS _batch, rowid + 1 AS _line FROM {table} WHERE NOT _bad"
    if bad_rows == 0:
        return ParsedBatch("fast", batch.lines, accepted)
    bad_lines = _column(session, f"SELECT rowid + 1 FROM {table} WHERE _bad")
    only_bad = ndjson_lines(path, batch.compression, keep=bad_lines)
    rescued = _validate_ndjson(session, dataset, only_bad, seq, suffix="_bad")
    return ParsedBatch("fast", batch.lines, f"{accepted} UNION ALL {rescued}")


def _in_file_order(session: EngineSession, on: bool) -> None:
    session.execute(f"SET preserve_insertion_order = {'true' if on else 'false'}")


def _counts(session: EngineSession, table: str) -> tuple[int, int]:
    """Rows of a staging table, and how many of them are ``_bad``."""
    rows, bad = session.execute(f"SELECT count(*), count(*) FILTER (WHERE _bad) FROM {table}")[0]
    return int(rows), int(bad)


def _column(session: EngineSession, sql: str) -> pa.Array:
    """The first column of a query's result as one Arrow array."""
    return session.arrow_reader(sql).read_all().column(0).combine_chunks()


def _parse_csv(
    session: EngineSession, dataset: DatasetConfig, batch: RawBatch, seq: int, path: str
) -> ParsedBatch:
    """DuckDB's CSV reader over the whole batch, every column as text, its rejects kept.

    Columns are matched to declared fields by the header's names (others are ignored, a declared
    field the header lacks is NULL). A batch whose records are each one line and all good is done
    there. Otherwise :func:`~lakeplane.ingest.records.scan_records` gives every record its line and
    bytes: records DuckDB rejected, empty lines it skipped and rows the declared fields refuse are
    quarantined with them, and every accepted row gets its line.
    """
    header = read_header(path, batch.compression)
    if header is None:
        return ParsedBatch("fast", 0, _no_rows(dataset, seq))
    # DuckDB needs distinct names; for a repeated name the last column wins, as in a dict.
    names = [n if n and n not in header[i + 1 :] else f"__column{i}" for i, n in enumerate(header)]
    table, rejects, records = f"__b{seq}_csv", f"__b{seq}_rejects", f"__b{seq}_records"
    _read_csv(session, dataset, batch.compression, path, names, table, rejects)
    path, compression, cuts = _cut_runaway_quotes(session, dataset, batch, seq, names, path)
    rows, bad_rows = _counts(session, table)
    rejected = _column(session, f"SELECT DISTINCT CAST(line AS BIGINT) FROM {rejects} ORDER BY 1")
    values = _values(dataset)
    if bad_rows == 0 and len(rejected) == 0 and rows + 1 == batch.lines:
        # Every line is one record and every record a row: the rowid gives the line.
        return ParsedBatch(
            "fast", rows, f"SELECT {values}, {seq} AS _batch, rowid + 2 AS _line FROM {table} WHERE NOT _bad"
        )
    wanted = _column(session, f"SELECT rowid FROM {table} WHERE _bad")
    scan, counts = scan_records(path, compression, rejected, wanted)
    session.register_arrow("__records", scan)
    session.execute(f"CREATE TEMP TABLE {records} AS SELECT * FROM __records")
    session.unregister("__records")
    [(matched,)] = session.execute(
        f"SELECT count(*) FROM {records} WHERE record IN (SELECT line FROM {rejects})"
    )
    if counts.rows != rows or matched != len(rejected):
        raise IngestError(
            f"batch {batch.batch_id}: DuckDB's CSV reader returned {rows} rows and rejected "
            f"{len(rejected)} records, but the file splits into {counts.rows} such rows and "
            f"{matched} such records; refusing to number its lines by guess",
            batch=batch.batch_id,
        )
    _quarantine_rejects(session, seq, records, rejects, len(names), cuts)
    fields = ", ".join(f"b.{quote_ident(n)}" for n in dataset.fields)
    _judge(
        session,
        dataset,
        seq,
        suffix="_bad",
        source=(
            f"SELECT r.line, r.raw, try(decode(r.raw)) AS txt, "
            f"CASE WHEN b._blank THEN 'blank_line' END AS pre_reason, NULL::VARCHAR AS pre_detail, "
            f"{fields} FROM {table} b JOIN {records} r ON r.ordinal = b.rowid WHERE b._bad"
        ),
    )
    # Kept as a table: the step reads accepted rows several times, and each read would join again.
    session.execute(
        f"CREATE TEMP TABLE __b{seq}_ok AS SELECT {values}, {seq} AS _batch, _line "
        f"FROM (SELECT b.*, r.line AS _line FROM {table} b JOIN {records} r "
        "ON r.ordinal = b.rowid WHERE NOT b._bad)"
    )
    return ParsedBatch("records", counts.records - 1, f"SELECT * FROM __b{seq}_ok")


def _cut_runaway_quotes(
    session: EngineSession, dataset: DatasetConfig, batch: RawBatch, seq: int, names: list[str], path: str
) -> tuple[str, str | None, dict[int, bytes]]:
    """Cut the records DuckDB read as one runaway quoted field, until none is left.

    Each pass reads a copy of the batch with the cut lines emptied (every other line keeps its
    number): each cut line is quarantined alone and the lines after it are records of their own.

    Returns:
        The file DuckDB's last reading was of and its compression, and the cut lines' bytes.
    """
    table, rejects = f"__b{seq}_csv", f"__b{seq}_rejects"
    compression = batch.compression
    cuts: dict[int, bytes] = {}
    for passes in range(MAX_CUT_PASSES + 1):
        opened = _runaway_quotes(session, path, compression, rejects)
        if not opened:
            break
        if passes == MAX_CUT_PASSES:
            raise IngestError(
                f"batch {batch.batch_id}: after cutting {len(cuts)} lines whose quoted field does not "
                f"close, in {passes} readings, more remain; refusing to read it as CSV",
                batch=batch.batch_id,
            )
        cuts |= opened
        copy = session.spill_dir / f"__b{seq}_cut{passes}.csv"
        copy_without_lines(path, compression, set(opened), copy)
        if passes:  # the previous copy
            Path(path).unlink()
        path, compression = str(copy), None
        session.execute(f"DROP TABLE {table}; DROP TABLE {rejects}; DROP TABLE {rejects}_scan")
        _read_csv(session, dataset, compression, path, names, table, rejects)
    return path, compression, cuts


def _runaway_quotes(
    session: EngineSession, path: str, compression: str | None, rejects: str
) -> dict[int, bytes]:
    """The lines opening a quoted field that swallowed the lines after it, with their bytes.

    DuckDB's reader rejects such a record (a quote never closed, or closed by a stray quote lines
    later) as one ``UNQUOTED VALUE`` spanning every line up to the end of the file or that quote.
    A record so rejected that holds more than one line is cut at the line it starts on; the header
    is never cut.
    """
    quoted = _column(
        session, f"SELECT DISTINCT CAST(line AS BIGINT) FROM {rejects} WHERE error_type = 'UNQUOTED VALUE'"
    )
    if len(quoted) == 0:
        return {}
    cuts = lines_to_cut(path, compression, quoted)
    cuts.pop(1, None)  # the header
    return cuts


def _read_csv(
    session: EngineSession,
    dataset: DatasetConfig,
    compression: str | None,
    path: str,
    names: list[str],
    table: str,
    rejects: str,
) -> None:
    """``table``: the rows DuckDB read, in file order (``rowid``), each field as text, with
    ``_blank`` (every cell empty) and ``_bad`` (blank, or refused by the declared fields); the
    records it could not read go to ``rejects``."""
    columns = ", ".join(f"{quote_literal(n)}: 'VARCHAR'" for n in names)
    fields = ", ".join(
        quote_ident(n) if n in names else f"NULL::VARCHAR AS {quote_ident(n)}" for n in dataset.fields
    )
    blank = " AND ".join(f"coalesce(trim({quote_ident(n)}), '') = ''" for n in names)
    codec = "gzip" if compression == "gzip" else "none"
    _in_file_order(session, True)
    try:
        session.execute(
            f"CREATE TEMP TABLE {table} AS SELECT *, _blank OR {_problems(dataset)} AS _bad "
            f"FROM (SELECT {fields}, {blank} AS _blank "
            f"FROM read_csv({quote_literal(path)}, header = true, auto_detect = false, "
            f"columns = {{{columns}}}, delim = ',', quote = '\"', escape = '\"', "
            f"compression = '{codec}', max_line_size = {MAX_RECORD_BYTES}, "
            # the default buffer (16 records of the largest size) would not fit a small job
            f"buffer_size = {2 * MAX_RECORD_BYTES}, store_rejects = true, "
            f"rejects_table = '{rejects}', rejects_scan = '{rejects}_scan'))"
        )
    finally:
        _in_file_order(session, False)


def _quarantine_rejects(
    session: EngineSession, seq: int, records: str, rejects: str, header_columns: int, cuts: dict[int, bytes]
) -> None:
    """Records DuckDB's reader rejected or skipped, with their reasons, into the quarantine.

    A record of spaces and commas only is a blank line whatever DuckDB said of its columns. The
    lines in ``cuts`` (emptied in the copy DuckDB read) are quarantined with their delivered bytes.
    """
    cut = pa.table(
        {"line": pa.array(list(cuts), pa.int64()), "raw": pa.array(list(cuts.values()), pa.binary())}
    )
    session.register_arrow("__cuts", cut)
    text = "coalesce(try(decode(r.raw)), CAST(r.raw AS VARCHAR))"
    blank = f"regexp_full_match({text}, '[\\s,]*')"
    columns = "list_has_any(e.kinds, ['MISSING COLUMNS', 'TOO MANY COLUMNS'])"
    session.execute(f"""
        INSERT INTO {QUARANTINE}
        SELECT {seq}, r.line,
               CASE WHEN list_contains(e.kinds, 'INVALID ENCODING') THEN 'invalid_utf8'
                    WHEN {blank} THEN 'blank_line'
                    WHEN {columns} THEN 'wrong_column_count'
                    ELSE 'invalid_csv' END,
               CASE WHEN list_contains(e.kinds, 'INVALID ENCODING') OR {blank} THEN NULL
                    WHEN {columns} THEN regexp_extract(e.message, 'Found: ([0-9]+)', 1)
                                        || ' columns, header has {header_columns}'
                    ELSE split_part(e.message, chr(10), 1) END,
               {text}, r.raw
        FROM {records} r
        JOIN (SELECT line, list(DISTINCT CAST(error_type AS VARCHAR)) AS kinds,
                     arg_min(error_message, column_idx) AS message
              FROM {rejects} GROUP BY line) e ON e.line = r.record
        UNION ALL
        SELECT {seq}, r.line, 'blank_line', NULL, {text}, r.raw
        FROM {records} r WHERE r.skipped AND r.line NOT IN (SELECT line FROM __cuts)
        UNION ALL
        SELECT {seq}, line, 'unterminated_quote', {quote_literal(UNTERMINATED)},
               coalesce(try(decode(raw)), CAST(raw AS VARCHAR)), raw
        FROM __cuts
    """)
    session.unregister("__cuts")


def _validate_ndjson(
    session: EngineSession, dataset: DatasetConfig, lines: pa.RecordBatchReader, seq: int, suffix: str = ""
) -> str:
    """Judge NDJSON lines one by one; returns the SQL of the accepted rows."""
    session.register_arrow("__lines", lines)
    paths = ", ".join(quote_literal(f'$."{n}"') for n in dataset.fields)
    fields = ", ".join(f"v[{i}] AS {quote_ident(n)}" for i, n in enumerate(dataset.fields, 1))
    # DuckDB's reader refuses a record naming a declared field twice (the batch comes here); its
    # other keys are not loaded, so their repeats change nothing and are not looked for.
    declared = ", ".join(quote_literal(n) for n in dataset.fields)
    keys = f"list_filter(json_keys(txt), lambda k: list_contains([{declared}], k))"
    if dataset.accept_duplicate_keys:  # the first value wins, as in json_extract_string
        keys = "NULL::VARCHAR[]"
    source = f"""
        WITH decoded AS (
            -- a byte-order mark opens the file, not the first record
            SELECT line, raw, CASE WHEN line = 1 THEN ltrim(txt, chr(65279)) ELSE txt END AS txt
            FROM (SELECT line, raw, try(decode(raw)) AS txt FROM __lines)
        ), shaped AS (
            SELECT line, raw, txt, CASE
                WHEN txt IS NULL THEN 'invalid_utf8'
                WHEN trim(txt) = '' THEN 'blank_line'
                WHEN NOT json_valid(txt) THEN 'invalid_json'
                WHEN json_type(txt) <> 'OBJECT' THEN 'not_an_object'
            END AS shape
            FROM decoded
        ), keyed AS (
            SELECT line, raw, txt,
                   coalesce(shape, CASE WHEN repeated IS NOT NULL THEN 'duplicate_key' END) AS pre_reason,
                   CASE WHEN shape IS NULL THEN repeated || ' is given more than once' END AS pre_detail
            FROM (SELECT *, list_filter(keys, lambda k, i: list_position(keys, k) < i)[1] AS repeated
                  FROM (SELECT *, CASE WHEN shape IS NULL THEN {keys} END AS keys FROM shaped))
        )
        SELECT line, raw, txt, pre_reason, pre_detail, {fields}
        FROM (SELECT *, CASE WHEN pre_reason IS NULL THEN json_extract_string(txt, [{paths}]) END AS v
              FROM keyed)
    """
    accepted = _judge(session, dataset, seq, source, suffix)
    session.unregister("__lines")
    return accepted


def _judge(session: EngineSession, dataset: DatasetConfig, seq: int, source: str, suffix: str = "") -> str:
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
        cast = typed(name, spec.type, dataset.accept_non_finite)
        # The value is cast once per branch for every row: what is more specific than wrong_type
        # is asked only of the values refused.
        reason = "'wrong_type'"
        detail = f"{quote_literal(name + ' is not a ' + spec.type + ': ')} || left({col}, 80)"
        for specific, when, says in reversed(refusals(name, spec.type, dataset.accept_non_finite)):
            reason = f"CASE WHEN {when} THEN '{specific}' ELSE {reason} END"
            detail = f"CASE WHEN {when} THEN {says} ELSE {detail} END"
        reasons.append(f"WHEN {col} IS NOT NULL AND {cast} IS NULL THEN {reason}")
        details.append(f"WHEN {col} IS NOT NULL AND {cast} IS NULL THEN {detail}")
    names = ", ".join(quote_ident(n) for n in dataset.fields)
    session.execute(f"""
        CREATE TEMP TABLE {table} AS
        SELECT line, {names}, reason, detail,
               CASE WHEN reason IS NOT NULL THEN coalesce(txt, CAST(raw AS VARCHAR)) END AS raw_text,
               CASE WHEN reason IS NOT NULL THEN raw END AS raw_bytes
        FROM (SELECT *, CASE {" ".join(reasons)} END AS reason,
                        CASE {" ".join(details)} END AS detail
              FROM ({source}))
    """)
    session.execute(
        f"INSERT INTO {QUARANTINE} SELECT {seq}, line, reason, detail, raw_text, raw_bytes "
        f"FROM {table} WHERE reason IS NOT NULL"
    )
    return f"SELECT {_values(dataset)}, {seq} AS _batch, line AS _line FROM {table} WHERE reason IS NULL"

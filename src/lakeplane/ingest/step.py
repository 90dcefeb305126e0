"""The ingest step: one dataset, one business date, from raw batches to a processed table.

Counts reconcile exactly for every batch: lines read = rows accepted + rows quarantined. Duplicates
on the dataset's key are then dropped (first delivery wins) and counted. The processed table and the
quarantine table are each replaced for the date in one commit, so re-running a day gives the same
tables. A batch whose quarantine rate is above the limit fails the step after its quarantined
records are committed (so they can be inspected), and before any processed row is.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pyiceberg.expressions import EqualTo

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.catalog.types import FIELD_DUCKDB_TYPES
from lakeplane.catalog.writer import TableWriter, WriteResult, new_write_dir
from lakeplane.config import DatasetConfig
from lakeplane.engines.base import EngineSession
from lakeplane.engines.duckdb import DuckDBSession, quote_ident, quote_literal
from lakeplane.errors import IngestError, QuarantineRateExceeded
from lakeplane.ingest.parse import (
    ACCEPTED,
    QUARANTINE,
    ParsedBatch,
    accepted_view,
    create_staging,
    parse_batch,
)
from lakeplane.storage.raw import RawBatch, RawZone

#: The quarantine table's columns: the record's place, why it was refused, and its text and bytes.
QUARANTINE_TYPES = {"ds": "DATE", "dataset": "VARCHAR", "batch_id": "VARCHAR", "source_file": "VARCHAR",
                    "line": "BIGINT", "reason": "VARCHAR", "detail": "VARCHAR", "raw_text": "VARCHAR",
                    "raw_bytes": "BLOB", "quarantined_at": "TIMESTAMP"}


@dataclass
class BatchCounts:
    """Reconciliation of one raw batch."""

    batch_id: str
    path: str
    read: int
    accepted: int
    quarantined: int
    parse_path: str


@dataclass
class IngestResult:
    """What an ingest step read, accepted, quarantined and wrote."""

    dataset: str
    table: str
    ds: str
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    rows_written: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    snapshot_id: int | None = None
    batches: list[BatchCounts] = field(default_factory=list)
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest_dataset(session: DuckDBSession, catalog: LakeCatalog, raw: RawZone, name: str,
                   dataset: DatasetConfig, ds: dt.date, batches: list[RawBatch],
                   default_limit: float) -> IngestResult:
    """Ingest ``batches`` (the batches of ``name`` landed for ``ds``) into its processed table."""
    started = time.perf_counter()
    ref = TableRef.parse(dataset.table)
    if "ds" in dataset.fields:
        raise IngestError(f"dataset '{name}': 'ds' is reserved for the business date", dataset=name)
    result = IngestResult(dataset=name, table=str(ref), ds=ds.isoformat())
    create_staging(session)
    parsed = []
    for seq, batch in enumerate(batches):
        parsed.append(parse_batch(session, dataset, batch, seq, _local_copy(session, raw, batch)))
        result.bytes_read += batch.bytes
    accepted_view(session, dataset, parsed)
    _reconcile(session, batches, parsed, result)

    writer = TableWriter(catalog)
    _write_quarantine(session, writer, ref, name, batches, ds)
    limit = dataset.max_quarantine_rate if dataset.max_quarantine_rate is not None else default_limit
    for counts in result.batches:
        rate = counts.quarantined / counts.read if counts.read else 0.0
        if rate > limit:
            raise QuarantineRateExceeded(
                f"{name}: batch {counts.batch_id} ({counts.path}) has {counts.quarantined} of "
                f"{counts.read} lines malformed ({rate:.1%}), above the limit of {limit:.1%}; "
                "its records are in the quarantine table, nothing was published",
                dataset=name, batch=counts.batch_id, rate=rate, limit=limit,
            )
    written = _write_processed(session, writer, ref, dataset, ds, batches)
    result.rows_written = written.rows
    result.duplicates = result.accepted - written.rows
    result.bytes_written = written.bytes
    result.snapshot_id = written.snapshot_id
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _local_copy(session: DuckDBSession, raw: RawZone, batch: RawBatch) -> str:
    """A local path DuckDB can read: the file itself, or a streamed copy from S3."""
    if raw.storage.is_local:
        return raw.storage.path(batch.path)
    target = session.spill_dir / "raw" / batch.path.rsplit("/", 1)[-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    with raw.storage.open_input(batch.path) as src, open(target, "wb") as out:
        while chunk := src.read(8 << 20):
            out.write(chunk)
    return str(target)


def _reconcile(session: EngineSession, batches: list[RawBatch], parsed: list[ParsedBatch],
               result: IngestResult) -> None:
    accepted = dict(session.execute(f"SELECT _batch, count(*) FROM {ACCEPTED} GROUP BY 1"))
    quarantined = dict(session.execute(f"SELECT _batch, count(*) FROM {QUARANTINE} GROUP BY 1"))
    for seq, batch in enumerate(batches):
        counts = BatchCounts(batch.batch_id, batch.path, parsed[seq].read, accepted.get(seq, 0),
                             quarantined.get(seq, 0), parsed[seq].path)
        if counts.accepted + counts.quarantined != counts.read:
            raise IngestError(
                f"batch {batch.batch_id}: {counts.read} lines read but {counts.accepted} accepted "
                f"and {counts.quarantined} quarantined; refusing to publish a count that does not "
                "reconcile", batch=batch.batch_id,
            )
        result.batches.append(counts)
    result.read = sum(c.read for c in result.batches)
    result.accepted = sum(c.accepted for c in result.batches)
    result.quarantined = sum(c.quarantined for c in result.batches)
    result.by_reason = dict(session.execute(
        f"SELECT reason, count(*) FROM {QUARANTINE} GROUP BY 1 ORDER BY 2 DESC, 1"))


def _write_quarantine(session: EngineSession, writer: TableWriter, ref: TableRef, name: str,
                      batches: list[RawBatch], ds: dt.date) -> WriteResult:
    target = TableRef(ref.domain, ref.zone, f"{ref.name}_quarantine")
    files = " UNION ALL ".join(
        f"SELECT {seq} AS seq, {quote_literal(b.batch_id)} AS batch_id, "
        f"{quote_literal(writer.catalog.storage.uri(b.path))} AS source_file"
        for seq, b in enumerate(batches)
    ) or "SELECT NULL::INTEGER AS seq, NULL::VARCHAR AS batch_id, NULL::VARCHAR AS source_file"
    sql = (
        f"SELECT DATE {quote_literal(ds.isoformat())} AS ds, {quote_literal(name)} AS dataset, "
        "f.batch_id, f.source_file, q.line, q.reason, q.detail, q.raw_text, q.raw_bytes, "
        "now()::TIMESTAMP AS quarantined_at "
        f"FROM {QUARANTINE} q JOIN ({files}) f ON f.seq = q._batch"
    )
    return _write(session, writer, target, sql, QUARANTINE_TYPES, ds, {"ds", "dataset", "line", "reason"})


def _write_processed(session: EngineSession, writer: TableWriter, ref: TableRef,
                     dataset: DatasetConfig, ds: dt.date, batches: list[RawBatch]) -> WriteResult:
    columns = ", ".join(quote_ident(n) for n in dataset.fields)
    select = f"SELECT {columns}, DATE {quote_literal(ds.isoformat())} AS ds FROM {ACCEPTED} a"
    sql = select
    if dataset.key:
        # Only keys delivered more than once need ordering: rank those rows alone.
        keys = ", ".join(quote_ident(k) for k in dataset.key)
        session.execute(f"CREATE TEMP TABLE __repeated AS SELECT {keys} FROM {ACCEPTED} "
                        "GROUP BY ALL HAVING count(*) > 1")
        same = " AND ".join(f"a.{quote_ident(k)} IS NOT DISTINCT FROM r.{quote_ident(k)}"
                            for k in dataset.key)
        partition = ", ".join(f"a.{quote_ident(k)}" for k in dataset.key)
        sql = (f"{select} ANTI JOIN __repeated r ON {same} UNION ALL ({select} SEMI JOIN __repeated r "
               f"ON {same} QUALIFY row_number() OVER (PARTITION BY {partition} "
               "ORDER BY a._batch, a._line) = 1)")
    # Declared required fields are enforced by the parse (a missing one is quarantined); in the
    # Iceberg schema only ``ds`` is required, as the engine cannot prove the others non-null.
    required = {"ds"}
    properties = {"lakeplane.ds": ds.isoformat(),
                  "lakeplane.batches": ",".join(b.batch_id for b in batches)}
    types = {n: FIELD_DUCKDB_TYPES[s.type] for n, s in dataset.fields.items()} | {"ds": "DATE"}
    return _write(session, writer, ref, sql, types, ds, required, properties)


def _write(session: EngineSession, writer: TableWriter, ref: TableRef, sql: str,
           types: dict[str, str], ds: dt.date, required: set[str],
           properties: dict[str, str] | None = None) -> WriteResult:
    """Write ``sql``, whose columns have the declared ``types``, as the day ``ds`` of ``ref``."""
    table = writer.ensure_table(ref, types, ["ds"], frozenset(required))
    # One day, one partition: a plain (not partitioned) COPY into its folder needs far less memory.
    target = f"{new_write_dir(ref)}/ds={ds.isoformat()}"
    files = session.write_parquet(writer.conforming_select(table, sql, types), target, [])
    day = EqualTo("ds", ds.isoformat())  # type: ignore[call-arg, arg-type]
    return writer.commit(table, files.paths, "overwrite_partitions", files.rows, files.bytes,
                         replace_filter=day, properties=properties)

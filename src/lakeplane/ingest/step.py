"""The ingest step: one dataset, one business date, from raw batches to a processed table.

Counts reconcile exactly for every batch: lines read = rows accepted + rows quarantined. Duplicates
on the dataset's key are then dropped (first delivery wins) and counted, and so are rows whose key
another day of the dataset's window published already (:mod:`lakeplane.ingest.dedupe`). The
processed table and the quarantine table are each replaced for the date in one commit, so re-running
a day gives the same tables. A batch whose quarantine rate is above the limit fails the step after
its quarantined records are committed (so they can be inspected), and before any processed row is.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table
from sqlglot import exp

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.catalog.writer import ANY_SNAPSHOT, TableWriter, WriteResult, new_write_dir
from lakeplane.config import DatasetConfig
from lakeplane.engines.base import EngineSession, WrittenFiles
from lakeplane.errors import CommitConflictError, IngestError, QuarantineRateExceeded
from lakeplane.ingest.dedupe import (
    RECOMPUTED_KEY,
    commit_unless_window_changed,
    day_key_range,
    drop_published,
    read_window,
)
from lakeplane.ingest.order import COPIES, REPEATED, batches_needing_order, repeated_keys, same_key
from lakeplane.ingest.parse import (
    ACCEPTED,
    QUARANTINE,
    ParsedBatch,
    accepted_view,
    create_staging,
    parse_batch,
)
from lakeplane.storage.raw import RawBatch, RawZone

log = logging.getLogger("lakeplane.ingest")


@dataclass
class BatchCounts:
    """Reconciliation of one raw batch."""

    batch_id: str
    path: str
    read: int
    accepted: int
    quarantined: int
    parse_path: str
    #: False when the batch was read without its line order (clean, and no differing copies of a key).
    in_order: bool = True


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
    #: Rows dropped as their key was published on another day of the dataset's window.
    duplicates_across_days: int = 0
    #: What the step did that its owner should look at (it still succeeded).
    warnings: list[str] = field(default_factory=list)
    rows_written: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    #: Of ``seconds``, the time inside the engine's statements (the rest: planning, commits, Python).
    engine_seconds: float = 0.0
    #: Bytes the step's statements spilled to disk (None: the engine does not say).
    spill_bytes: int | None = None
    #: The threads its session ran (None: skipped, no session).
    cores: int | None = None
    snapshot_id: int | None = None
    batches: list[BatchCounts] = field(default_factory=list)
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest_dataset(
    session: EngineSession,
    catalog: LakeCatalog,
    raw: RawZone,
    name: str,
    dataset: DatasetConfig,
    ds: dt.date,
    batches: list[RawBatch],
    default_limit: float,
) -> IngestResult:
    """Ingest ``batches`` (the batches of ``name`` landed for ``ds``) into its processed table."""
    started = time.perf_counter()
    ref = TableRef.parse(dataset.table)
    if "ds" in dataset.fields:
        raise IngestError(f"dataset '{name}': 'ds' is reserved for the business date", dataset=name)
    result = IngestResult(dataset=name, table=str(ref), ds=ds.isoformat())
    create_staging(session)
    parsed, local = [], [_local_copy(session, raw, batch) for batch in batches]
    for seq, batch in enumerate(batches):
        parsed.append(parse_batch(session, dataset, batch, seq, local[seq]))
        result.bytes_read += batch.bytes
    accepted_view(session, dataset, parsed)
    if dataset.key and not all(p.in_order for p in parsed):
        repeated_keys(session, dataset)
        if again := batches_needing_order(session, dataset):  # which differing copy came first decides
            for seq in again:
                session.execute(f"DROP TABLE __b{seq}")
                parsed[seq] = parse_batch(session, dataset, batches[seq], seq, local[seq], in_order=True)
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
                dataset=name,
                batch=counts.batch_id,
                rate=rate,
                limit=limit,
            )
    written, repeated_copies = _write_processed(session, writer, ref, dataset, ds, batches)
    result.rows_written = written.rows
    result.duplicates = repeated_copies
    result.duplicates_across_days = result.accepted - result.duplicates - written.rows
    result.warnings.extend(_full_extract_warning(name, result))
    result.bytes_written = written.bytes
    result.snapshot_id = written.snapshot_id
    result.seconds = round(time.perf_counter() - started, 3)
    result.engine_seconds = round(session.engine_seconds, 3)
    result.spill_bytes = session.spill_bytes
    result.cores = int(session.usage()["cores"])
    return result


#: A day whose rows were mostly published on other days already looks like a full extract.
FULL_EXTRACT_SHARE = 0.5


def _full_extract_warning(name: str, result: IngestResult) -> list[str]:
    """A warning when most of a day's rows were dropped as published on other days: a dataset
    delivered whole every day (a full extract) keeps only its first day under a dedupe window."""
    dropped, accepted = result.duplicates_across_days, result.accepted
    if not accepted or dropped < FULL_EXTRACT_SHARE * accepted:
        return []
    message = (
        f"{name}: {dropped} of {accepted} rows for {result.ds} were already published on other days "
        "and were dropped; if this dataset is delivered whole every day (a full extract), set "
        f"dedupe_window_days: 0 under datasets: {name} in lakeplane.yaml"
    )
    log.warning(message)
    return [message]


def _local_copy(session: EngineSession, raw: RawZone, batch: RawBatch) -> str:
    """A local path DuckDB can read: the file itself, or a streamed copy from S3."""
    if raw.storage.is_local:
        return raw.storage.path(batch.path)
    target = session.spill_dir / "raw" / batch.path.rsplit("/", 1)[-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    with raw.storage.open_input(batch.path) as src, open(target, "wb") as out:
        while chunk := src.read(8 << 20):
            out.write(chunk)
    return str(target)


def _reconcile(
    session: EngineSession, batches: list[RawBatch], parsed: list[ParsedBatch], result: IngestResult
) -> None:
    dialect = session.dialect
    accepted = dict(session.execute(_count_by("_batch", ACCEPTED).sql(dialect=dialect)))
    quarantined = dict(session.execute(_count_by("_batch", QUARANTINE).sql(dialect=dialect)))
    for seq, batch in enumerate(batches):
        counts = BatchCounts(
            batch.batch_id,
            batch.path,
            parsed[seq].read,
            accepted.get(seq, 0),
            quarantined.get(seq, 0),
            parsed[seq].path,
            parsed[seq].in_order,
        )
        if counts.accepted + counts.quarantined != counts.read:
            raise IngestError(
                f"batch {batch.batch_id}: {counts.read} lines read but {counts.accepted} accepted "
                f"and {counts.quarantined} quarantined; refusing to publish a count that does not "
                "reconcile",
                batch=batch.batch_id,
            )
        result.batches.append(counts)
    result.read = sum(c.read for c in result.batches)
    result.accepted = sum(c.accepted for c in result.batches)
    result.quarantined = sum(c.quarantined for c in result.batches)
    by_reason = _count_by("reason", QUARANTINE).order_by("2 DESC", "1")
    result.by_reason = dict(session.execute(by_reason.sql(dialect=dialect)))


def _count_by(column: str, table: str) -> exp.Select:
    return exp.select(column, exp.Count(this=exp.Star())).from_(table).group_by(column)


def _day(ds: dt.date) -> exp.Expression:
    return exp.cast(exp.Literal.string(ds.isoformat()), "date")


def _write_quarantine(
    session: EngineSession,
    writer: TableWriter,
    ref: TableRef,
    name: str,
    batches: list[RawBatch],
    ds: dt.date,
) -> WriteResult:
    target = TableRef(ref.domain, ref.zone, f"{ref.name}_quarantine")
    files = exp.values(
        [(seq, b.batch_id, writer.catalog.storage.uri(b.path)) for seq, b in enumerate(batches)]
        or [(exp.null(), exp.null(), exp.null())],  # no batch: a row that joins nothing
        alias="f",
        columns=["seq", "batch_id", "source_file"],
    )
    sql = (
        exp.select(
            _day(ds).as_("ds"),
            exp.convert(name).as_("dataset"),
            "f.batch_id",
            "f.source_file",
            "q.line",
            "q.reason",
            "q.detail",
            "q.raw_text",
            "q.raw_bytes",
            exp.cast(exp.CurrentTimestamp(), "timestamp").as_("quarantined_at"),
        )
        .from_(exp.to_table(QUARANTINE).as_("q"))
        .join(files, on=exp.column("seq", "f").eq(exp.column("_batch", "q")))
    )
    return _write(
        session, writer, target, sql.sql(dialect=session.dialect), ds, {"ds", "dataset", "line", "reason"}
    )


def _write_processed(
    session: EngineSession,
    writer: TableWriter,
    ref: TableRef,
    dataset: DatasetConfig,
    ds: dt.date,
    batches: list[RawBatch],
) -> tuple[WriteResult, int]:
    """Write the day's accepted rows, each key once; returns the write and the rows of keys the day
    itself held more than once (the copies after the first)."""
    columns = [*dataset.fields, "ds"]
    select = exp.select(*[exp.column(n, "a", quoted=True) for n in dataset.fields], _day(ds).as_("ds")).from_(
        exp.to_table(ACCEPTED).as_("a")
    )
    sql: exp.Query = select
    repeated_copies = 0
    if dataset.key:
        # Only keys delivered more than once need ordering: rank those rows alone.
        repeated_keys(session, dataset)
        copies = exp.select(exp.func("coalesce", exp.Sum(this=exp.column(COPIES) - 1), 0)).from_(REPEATED)
        repeated_copies = int(session.execute(copies.sql(dialect=session.dialect))[0][0])
        same = same_key(dataset, "a", "r")
        first = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.column(k, "a", quoted=True) for k in dataset.key],
            order=exp.Order(
                expressions=[
                    exp.Ordered(this=exp.column("_batch", "a")),
                    exp.Ordered(this=exp.column("_line", "a")),
                ]
            ),
        )
        repeated_rows = exp.to_table(REPEATED).as_("r")
        once = select.join(repeated_rows, on=same, join_type="anti")
        ranked = select.join(repeated_rows, on=same, join_type="semi").qualify(first.eq(1))
        sql = exp.union(once, ranked, distinct=False)
    # Declared required fields are enforced by the parse (a missing one is quarantined); in the
    # Iceberg schema only ``ds`` is required, as the engine cannot prove the others non-null.
    required = {"ds"}
    properties = {"lakeplane.ds": ds.isoformat(), "lakeplane.batches": ",".join(b.batch_id for b in batches)}
    if not dataset.window_days:
        return _write(session, writer, ref, sql.sql(dialect=session.dialect), ds, required, properties), (
            repeated_copies
        )
    window = read_window(writer.catalog, ref, ds, dataset.window_days, day_key_range(session, dataset.key))
    retries = writer.catalog.commit_retry.retries
    for recomputed in range(retries + 1):
        if recomputed:
            properties[RECOMPUTED_KEY] = str(recomputed)
        once_across = drop_published(session, sql, dataset.key, columns, window)
        table, files = _write_files(
            session, writer, ref, once_across.sql(dialect=session.dialect), ds, required
        )

        def commit(read_at: int | None, table: Table = table, files: WrittenFiles = files) -> WriteResult:
            return _commit_day(writer, table, files, ds, properties, read_at=read_at)

        written, window = commit_unless_window_changed(commit, writer.catalog, ref, window, retries)
        if written is not None:
            return written, repeated_copies
        for path in files.paths:  # computed against a window that has changed since: never published
            writer.catalog.storage.delete(path)
    raise CommitConflictError(
        f"{ref}: other writers kept publishing days within {dataset.window_days} days of "
        f"{ds.isoformat()} while it was written; run the step again",
        table=str(ref),
        operation="overwrite_partitions",
        attempts=retries + 1,
    )


def _write(
    session: EngineSession,
    writer: TableWriter,
    ref: TableRef,
    sql: str,
    ds: dt.date,
    required: set[str],
    properties: dict[str, str] | None = None,
) -> WriteResult:
    """Write ``sql`` as the day ``ds`` of ``ref`` (created from the result's schema if new)."""
    table, files = _write_files(session, writer, ref, sql, ds, required)
    return _commit_day(writer, table, files, ds, properties)


def _write_files(
    session: EngineSession, writer: TableWriter, ref: TableRef, sql: str, ds: dt.date, required: set[str]
) -> tuple[Table, WrittenFiles]:
    """Write ``sql`` as the Parquet files of the day ``ds`` of ``ref``, not yet committed."""
    result = session.result_schema(sql)
    table = writer.ensure_table(ref, result, ["ds"], frozenset(required))
    # One day, one partition: a plain (not partitioned) COPY into its folder needs far less memory.
    target = f"{new_write_dir(ref)}/ds={ds.isoformat()}"
    files = session.write_parquet(
        writer.conforming_select(table, sql, result.names), target, [], writer.field_ids(table)
    )
    return table, files


def _commit_day(
    writer: TableWriter,
    table: Table,
    files: WrittenFiles,
    ds: dt.date,
    properties: dict[str, str] | None,
    read_at: int | object | None = ANY_SNAPSHOT,
) -> WriteResult:
    """Make ``files`` the day ``ds`` of ``table`` in one commit; with ``read_at``, only while the
    table is still at that snapshot (:meth:`~lakeplane.catalog.writer.TableWriter.commit`)."""
    day = EqualTo("ds", ds.isoformat())  # type: ignore[call-arg, arg-type]
    return writer.commit(
        table,
        files.paths,
        "overwrite_partitions",
        files.rows,
        files.bytes,
        replace_filter=day,
        properties=properties,
        read_at=read_at,
    )

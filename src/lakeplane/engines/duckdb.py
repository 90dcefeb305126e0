"""The embedded engine: a DuckDB connection per job, sized and sandboxed for it.

Local lakes are read with DuckDB's own Parquet reader; S3 lakes through a ``pyarrow.dataset`` over
pyarrow's S3 filesystem (DuckDB's httpfs is not available), which DuckDB scans with filter and
projection pushdown. Either way columns are bound by Iceberg field id, not by name. Writes go
through ``COPY ... TO`` into a local folder (the lake itself when it is local), and are uploaded
for S3 lakes. A job that ends hands its emptied connection to the next job of the same size
(:mod:`lakeplane.engines.duckdb_connections`), unless it was sandboxed.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from lakeplane.config import EngineConfig
from lakeplane.engines.base import Capability, Engine, EngineSession, JobSpec, ScanSource, WrittenFiles
from lakeplane.engines.binding import FOOTERS, FileGroup, bind_files, schema_field_ids
from lakeplane.engines.duckdb_connections import Size, give_back, open_connection, quote_ident, quote_literal
from lakeplane.errors import EngineError
from lakeplane.storage import LakeStorage


class DuckDBEngine(Engine[EngineConfig]):
    """DuckDB, embedded: the default engine."""

    name = "duckdb"
    dialect = "duckdb"
    capabilities = frozenset(
        {Capability.PARSE_RAW_FILES, Capability.SPILL, Capability.STAGE, Capability.SANDBOX}
    )

    def session(self, job: JobSpec) -> DuckDBSession:
        return DuckDBSession(self.storage, job)


def _projection(group: FileGroup, types: list[str], scan: str) -> str:
    """``SELECT`` the table's columns from ``scan`` of one group's files: renamed from their names
    in the files, cast where the type was promoted, NULL where the files lack them."""
    selected = []
    for column, kind in zip(group.columns, types, strict=True):
        if column.source is None:
            value = f"CAST(NULL AS {kind})"
        elif column.promoted:
            value = f"CAST({quote_ident(column.source)} AS {kind})"
        else:
            value = quote_ident(column.source)
        selected.append(f"{value} AS {quote_ident(column.name)}")
    return f"SELECT {', '.join(selected)} FROM {scan}"


class DuckDBSession(EngineSession):
    """One job's DuckDB connection with its own memory limit, threads and spill folder."""

    def __init__(self, storage: LakeStorage, job: JobSpec) -> None:
        self.storage = storage
        self.job = job
        self.spill_dir = job.temp_dir / f"{job.name}-{uuid.uuid4().hex[:8]}"
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        self._scan_folders: set[str] = set()
        self._size = Size(job.memory_limit, job.threads, job.temp_dir)
        self.engine_seconds = 0.0
        self._sandboxed = False
        try:
            self._connection = open_connection(self._size)
        except duckdb.Error as exc:
            shutil.rmtree(self.spill_dir, ignore_errors=True)
            raise EngineError(f"job '{job.name}': cannot configure DuckDB: {exc}") from None
        self.con = self._connection.con
        if job.record_spill:  # each statement's profile (kept in memory) says what it spilled
            self.spill_bytes = 0
            self.con.execute("SET enable_profiling = 'no_output'")
            self.con.execute("SET profiling_mode = 'detailed'")

    def register_scan(self, alias: str, source: ScanSource) -> None:
        """A view binding each file's columns by field id (:mod:`lakeplane.engines.binding`).

        Local files that carry field ids are read in one ``read_parquet`` whose ``schema`` names
        each field id's column and type; files without ids are read per group and their columns
        renamed and cast. On S3 every group is a ``pyarrow.dataset`` of the files' own columns.
        """
        if not source.files:
            self.con.register(alias, source.schema.empty_table())
            return
        FOOTERS.prefetch(self.storage, source.files)
        groups = bind_files(source, lambda uri: FOOTERS.schema(self.storage, uri))
        types = [str(t) for t in self.con.from_arrow(source.schema.empty_table()).types]
        columns = ", ".join(quote_ident(f.name) for f in source.schema)
        selects = []
        if self.storage.is_local:
            paths = [self.storage.fs_path(f) for f in source.files]
            self._scan_folders.update(p.rsplit("/", 1)[0] + "/" for p in paths)
            by_id = [f for group in groups if group.by_id for f in group.files]
            if by_id:
                ids = schema_field_ids(source.schema, source.table)
                entries = ", ".join(
                    f"{i}: {{name: {quote_literal(f.name)}, type: {quote_literal(t)}, default_value: NULL}}"
                    for f, i, t in zip(source.schema, ids, types, strict=True)
                )
                # Files keep their partition columns: a folder name (``ds=...``) is never a column.
                scan = (
                    f"read_parquet({self._file_list(by_id)}, schema = MAP {{{entries}}}, "
                    "hive_partitioning = false)"
                )
                selects.append(f"SELECT {columns} FROM {scan}")
            for group in groups:
                if not group.by_id:
                    files = self._file_list(group.files)
                    scan = f"read_parquet({files}, union_by_name = true, hive_partitioning = false)"
                    selects.append(_projection(group, types, scan))
        else:
            for number, group in enumerate(groups):
                dataset = pads.dataset(
                    [self.storage.fs_path(f) for f in group.files],
                    schema=group.physical_schema(),
                    format="parquet",
                    filesystem=self.storage.fs,
                )
                name = f"__lakeplane_scan_{alias}_{number}"
                self.con.register(name, dataset)
                selects.append(_projection(group, types, quote_ident(name)))
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(alias)} AS {' UNION ALL '.join(selects)}")

    def _file_list(self, files: Iterable[str]) -> str:
        return "[" + ", ".join(quote_literal(self.storage.fs_path(f)) for f in files) + "]"

    def sandbox(self) -> None:
        """From now on this connection reads only the files of the tables it registered: no other
        file (not even elsewhere in the lake), no ATTACH, no INSTALL, no settings changes."""
        statements = ["SET enable_external_access = false", "SET lock_configuration = true"]
        if self.storage.is_local:
            folders = ", ".join(quote_literal(f) for f in sorted(self._scan_folders)) or quote_literal(
                str(self.spill_dir) + "/"
            )
            statements.insert(0, f"SET allowed_directories = [{folders}]")
        self._sandboxed = True  # its settings are locked: never handed to another job
        for statement in statements:
            self.con.execute(statement)

    def arrow_reader(self, sql: str) -> pa.RecordBatchReader:
        try:
            with self._timed(finished=False):
                return self.con.sql(sql).fetch_arrow_reader(batch_size=64_000)
        except duckdb.Error as exc:
            raise EngineError(f"job '{self.job.name}': {exc}", sql=sql) from None

    def result_schema(self, sql: str) -> pa.Schema:
        try:
            with self._timed(finished=False):
                return self.con.sql(f"SELECT * FROM ({sql}) LIMIT 0").to_arrow_table().schema
        except duckdb.Error as exc:
            raise EngineError(f"job '{self.job.name}': {exc}", sql=sql) from None

    @contextmanager
    def _timed(self, finished: bool = True) -> Iterator[None]:
        """Count the time of the block in :attr:`engine_seconds`, and when the block ``finished``
        its statement (not a reader still streaming), what it spilled in :attr:`spill_bytes`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.engine_seconds += time.perf_counter() - started
        if finished and self.spill_bytes is not None:
            self.spill_bytes += self._last_spill()

    def _last_spill(self) -> int:
        """Bytes the last statement spilled to disk, from its profile (0 when it has none)."""
        try:
            profile = json.loads(self.con.get_profiling_information())
        except (duckdb.Error, ValueError):
            return 0
        system = profile.get("system") if isinstance(profile, dict) else None
        return int(system.get("total_bytes_spilled") or 0) if isinstance(system, dict) else 0

    def stage(self, name: str, sql: str) -> None:
        self.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(name)} AS {sql}")

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            with self._timed():
                return self.con.execute(sql).fetchall()
        except duckdb.Error as exc:
            # Out of memory is not the statement's fault: callers that fall back on a slower path
            # for a statement DuckDB refuses must not do so for this one.
            raise EngineError(
                f"job '{self.job.name}': {exc}",
                sql=sql,
                out_of_memory=isinstance(exc, duckdb.OutOfMemoryException),
            ) from None

    def register_arrow(self, alias: str, data: pa.Table | pa.RecordBatchReader) -> None:
        """Make ``alias`` name ``data``; a reader is scanned once, as it streams."""
        self.con.register(alias, data)

    def unregister(self, alias: str) -> None:
        self.con.unregister(alias)

    def write_parquet(
        self, sql: str, target_dir: str, partition_by: list[str], field_ids: Mapping[str, int]
    ) -> WrittenFiles:
        local_dir = (
            Path(self.storage.path(target_dir))
            if self.storage.is_local
            else self.spill_dir / "out" / uuid.uuid4().hex
        )
        local_dir.parent.mkdir(parents=True, exist_ok=True)
        options = ["FORMAT parquet", "COMPRESSION zstd", "ROW_GROUP_SIZE 122880", "FILE_SIZE_BYTES '256MB'"]
        if field_ids:
            ids = ", ".join(f"{quote_literal(name)}: {int(i)}" for name, i in field_ids.items())
            options.append(f"FIELD_IDS {{{ids}}}")
        if partition_by:
            cols = ", ".join(quote_ident(c) for c in partition_by)
            options += [f"PARTITION_BY ({cols})", "WRITE_PARTITION_COLUMNS true"]
        try:
            with self._timed():
                result = self.con.execute(
                    f"COPY ({sql}) TO {quote_literal(str(local_dir))} ({', '.join(options)})"
                ).fetchone()
        except duckdb.Error as exc:
            raise EngineError(f"job '{self.job.name}': {exc}", sql=sql) from None
        rows = int(result[0]) if result else 0
        written = WrittenFiles(rows=rows)
        if rows == 0:  # an unpartitioned COPY still writes one empty file: commit nothing instead
            shutil.rmtree(local_dir, ignore_errors=True)
            return written
        for path in sorted(p for p in local_dir.rglob("*.parquet") if p.is_file()):
            relative = f"{target_dir}/{path.relative_to(local_dir).as_posix()}"
            written.bytes += path.stat().st_size
            if not self.storage.is_local:
                self.storage.put_file(path, relative, move=True)
            written.paths.append(relative)
        return written

    def usage(self) -> dict[str, Any]:
        """The threads the connection runs: its job's, at most one per 64 MB of its memory limit."""
        return {"cores": self._size.threads_run}

    def interrupt(self) -> None:
        self.con.interrupt()

    def close(self) -> None:
        try:
            give_back(self._size, self._connection, reusable=not self._sandboxed)
        finally:
            shutil.rmtree(self.spill_dir, ignore_errors=True)

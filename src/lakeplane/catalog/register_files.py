"""Existing Parquet files into a table, in one commit, each file checked first.

Parquet files inside the lake's storage are added where they are; files elsewhere are first copied
into the table's ``data/registered/`` folder under a name made from their SHA-256, so registering
the same file twice finds it already there. Files whose partition column exists only in their folder
names (Spark's ``partitionBy``) are copied with that column written into them, since ``add_files``
would record NULL partition values for them. Every file is checked before anything is committed
(schema, field ids, partition values, already registered) and the first that does not fit is
refused with its name and the reason. The commit requires the table's head to be the one the
duplicate check read, so two registers of the same files racing each other add them once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from pyiceberg.io import FileIO, load_file_io
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

from lakeplane.catalog.catalog import LakeCatalog, TableRef
from lakeplane.catalog.commits import retry_commit, stop_pyiceberg_retries
from lakeplane.catalog.register_checks import (
    check_folders,
    check_schema,
    data_file_for,
    inferred_spec,
    schema_of,
    spec_from_text,
)
from lakeplane.catalog.registration import (
    REGISTERED_KEY,
    Mode,
    RegisteredFile,
    RegisterProgress,
    RegisterResult,
)
from lakeplane.catalog.sources import (
    ParquetSource,
    copy_into_lake,
    find_parquet_files,
    rewrite_into_lake,
    with_folder_columns,
)
from lakeplane.catalog.upgrade import NAME_MAPPING_KEY, name_mapping_json
from lakeplane.errors import RegisterError


@dataclass(frozen=True)
class _Planned:
    file: ParquetSource
    uri: str
    relative: str | None  # where a copy goes, relative to the lake root; None: added in place


def register_files(
    catalog: LakeCatalog,
    ref: TableRef,
    sources: list[str],
    partition_by: Sequence[str],
    mode: Mode,
    dry_run: bool,
    progress: RegisterProgress | None,
) -> RegisterResult:
    """Add the Parquet files of ``sources`` to ``ref`` (created from the first file if missing)."""
    name = str(ref)
    advance = progress or (lambda _text, _total: None)
    files = find_parquet_files(sources, catalog.storage, name)
    existing = catalog.load(ref) if catalog.table_exists(ref) else None
    files = with_folder_columns(files, existing.schema().as_arrow() if existing else None, name)
    metadata, io = _target_metadata(catalog, ref, existing, files, partition_by)
    schema, spec = metadata.schema(), metadata.spec()
    referenced = _paths_in(existing) if existing is not None else set()
    planned: list[_Planned] = []
    for file in files:
        check_schema(file, schema, name)
        check_folders(file, schema, spec, name)
        if not file.added:  # one value per partition field (a rewritten copy is checked once written)
            data_file_for(io, metadata, file.read_uri, file, name)
        entry = _plan(catalog, metadata.location, file, mode, name)
        if entry.uri in referenced:
            _already(file, entry, name)
        planned.append(entry)
        if entry.relative is None or dry_run:
            advance(f"checked {file.name}", len(files))
    result = [
        RegisteredFile(p.file.shown, p.uri, p.file.rows, p.file.size, p.relative is not None) for p in planned
    ]
    if dry_run:
        return RegisterResult(name, existing is None, True, result)
    for entry in planned:  # copies nothing references yet: a refusal below leaves no table change
        if entry.relative is None:
            continue
        if entry.file.added:
            rewrite_into_lake(entry.file, catalog.storage, entry.relative, name)
            data_file_for(io, metadata, entry.uri, entry.file, name)
        else:
            copy_into_lake(entry.file, catalog.storage, entry.relative, name)
        advance(f"copied {entry.file.name}", len(files))
    table = existing or catalog.create(ref, schema, spec, {NAME_MAPPING_KEY: name_mapping_json(schema)})
    stop_pyiceberg_retries(table, catalog.commit_retry)
    snapshot_id = _commit(catalog, table, planned, name)
    return RegisterResult(name, existing is None, False, result, snapshot_id)


def _target_metadata(
    catalog: LakeCatalog,
    ref: TableRef,
    existing: Table | None,
    files: list[ParquetSource],
    partition_by: Sequence[str],
) -> tuple[TableMetadata, FileIO]:
    """The metadata the files are checked against: the table's, or the one a new table would get."""
    name = str(ref)
    if existing is not None:
        if partition_by:
            given = spec_from_text(partition_by, existing.schema(), name)
            have = [(f.source_id, str(f.transform)) for f in existing.spec().fields]
            if [(f.source_id, str(f.transform)) for f in given.fields] != have:
                raise RegisterError(
                    f"{name} exists and is partitioned by {_spec_text(existing)}, not by "
                    f"{', '.join(partition_by)}; leave --partition-by out to append to it",
                    table=name,
                    reason="partition spec",
                )
        return existing.metadata, existing.io
    schema = schema_of(files[0], name)
    spec = spec_from_text(partition_by, schema, name) if partition_by else inferred_spec(files, schema, name)
    location = catalog.storage.uri(f"{ref.zone}/{ref.domain}/{ref.name}")
    metadata = new_table_metadata(schema, spec, UNSORTED_SORT_ORDER, location, {})
    return metadata, load_file_io(catalog.iceberg.properties, location)


def _spec_text(table: Table) -> str:
    fields = [f"{f.transform}({table.schema().find_column_name(f.source_id)})" for f in table.spec().fields]
    return ", ".join(fields) or "nothing (unpartitioned)"


def _plan(catalog: LakeCatalog, location: str, file: ParquetSource, mode: Mode, table: str) -> _Planned:
    if file.lake_uri is not None and mode != "copy" and not file.added:
        owner = _owner(catalog, file.lake_uri)
        if owner is not None and owner != table:
            raise RegisterError(
                f"{file.shown}: a file of table {owner}; adding it in place would share it (and its "
                "deletion by that table's maintenance): register it with --copy",
                table=table,
                file=file.shown,
                reason="another table's file",
            )
        return _Planned(file, file.lake_uri, None)
    if mode == "in-place" and file.added:
        raise RegisterError(
            f"{file.shown}: column '{file.added[0][0]}' exists only in its folder names; it cannot be "
            "added in place (its value would be recorded as NULL): leave out --in-place to register "
            "copies written with the column",
            table=table,
            file=file.shown,
            column=file.added[0][0],
            reason="partition",
        )
    if mode == "in-place":
        raise RegisterError(
            f"{file.shown}: --in-place needs files inside the lake's storage ({catalog.storage.root_uri})",
            table=table,
            file=file.shown,
            reason="outside the lake",
        )
    storage = catalog.storage
    base = storage.fs_path(location)
    if not base.startswith(storage.base + "/"):
        raise RegisterError(
            f"{file.shown}: {table} lives outside the lake's storage ({location}); files can only be "
            "added in place to it",
            table=table,
            file=file.shown,
            reason="outside the lake",
        )
    folders = "".join(f"{key}={value}/" for key, value in file.folders)
    relative = (
        f"{base[len(storage.base) + 1 :]}/data/registered/{folders}{file.content_digest()[:24]}-{file.name}"
    )
    return _Planned(file, storage.uri(relative), relative)


def _owner(catalog: LakeCatalog, uri: str) -> str | None:
    """The table whose folder (``<zone>/<domain>/<name>/``) holds ``uri``, if any."""
    for ref in catalog.table_names():
        if uri.startswith(catalog.storage.uri(f"{ref.zone}/{ref.domain}/{ref.name}/")):
            return str(ref)
    return None


def _already(file: ParquetSource, entry: _Planned, table: str) -> NoReturn:
    raise RegisterError(
        f"{file.shown}: already in {table}"
        + (f" (copied to {entry.uri})" if entry.relative is not None else "")
        + "; nothing was registered",
        table=table,
        file=file.shown,
        reason="already registered",
    )


def _paths_in(table: Table) -> set[str]:
    return {task.file.file_path for task in table.scan().plan_files()} if table.current_snapshot() else set()


def _commit(catalog: LakeCatalog, table: Table, planned: list[_Planned], name: str) -> int | None:
    built: dict[int, list[DataFile]] = {}

    def attempt(_retry: int) -> int | None:
        table.refresh()
        present = _paths_in(table)  # the commit requires the head this was read from
        for entry in planned:
            if entry.uri in present:
                _already(entry.file, entry, name)
        schema_id = table.metadata.current_schema_id
        if schema_id not in built:
            built[schema_id] = [data_file_for(table.io, table.metadata, p.uri, p.file, name) for p in planned]
        summary = {
            REGISTERED_KEY: str(len(planned)),
            "lakeplane.rows": str(sum(p.file.rows for p in planned)),
        }
        with table.transaction() as tx:
            if tx.table_metadata.name_mapping() is None:
                tx.set_properties({NAME_MAPPING_KEY: name_mapping_json(table.schema())})
            with tx.update_snapshot(snapshot_properties=summary).fast_append() as snapshot:
                for data_file in built[schema_id]:
                    snapshot.append_data_file(data_file)
        head = table.current_snapshot()
        return head.snapshot_id if head else None

    return retry_commit(attempt, name, "register", catalog.commit_retry)[0]

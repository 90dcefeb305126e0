"""Bring existing data into the lake: Parquet files, or a whole Iceberg table by its metadata file.

Parquet files inside the lake's storage are added where they are; files elsewhere are first copied
into the table's ``data/registered/`` folder under a name made from their SHA-256, so registering
the same file twice finds it already there. Files whose partition column exists only in their folder
names (Spark's ``partitionBy``) are copied with that column written into them, since ``add_files``
would record NULL partition values for them. All files of one call land in one commit, or none of
them: every file is checked first (schema, field ids, partition values, already registered) and
the first that does not fit is refused with its name and the reason. The commit requires the
table's head to be the one the duplicate check read, so two registers of the same files racing
each other add them once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from pyiceberg.exceptions import TableAlreadyExistsError
from pyiceberg.io import FileIO, load_file_io
from pyiceberg.manifest import DataFile
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

from lakeplane.catalog.catalog import LakeCatalog, TableRef
from lakeplane.catalog.commits import NO_PYICEBERG_RETRY, retry_commit
from lakeplane.catalog.register_checks import (
    check_folders,
    check_schema,
    data_file_for,
    inferred_spec,
    schema_of,
    spec_from_text,
)
from lakeplane.catalog.sources import (
    ParquetSource,
    copy_into_lake,
    find_parquet_files,
    rewrite_into_lake,
    with_folder_columns,
)
from lakeplane.catalog.upgrade import NAME_MAPPING_KEY, ensure_name_mapping, name_mapping_json
from lakeplane.errors import AccessDenied, AmbiguousTableError, RegisterError, TableNotFoundError
from lakeplane.governance.access import may
from lakeplane.governance.audit import AuditEvent
from lakeplane.governance.plane import Governance

#: ``auto``: in place when inside the lake's storage, else copied; ``copy`` and ``in-place`` force one.
Mode = Literal["auto", "copy", "in-place"]
#: Told the number of files once they are known, then each file as it is done: ``(text, total)``.
RegisterProgress = Callable[[str, int], None]
#: The snapshot summary key counting the files a register added.
REGISTERED_KEY = "lakeplane.registered-files"


@dataclass(frozen=True)
class RegisteredFile:
    """One data file a register added (or, in a dry run, would add)."""

    source: str
    path: str
    rows: int
    bytes: int
    copied: bool


@dataclass(frozen=True)
class RegisterResult:
    """What one register did (``dry_run``: what it would do)."""

    table: str
    created: bool
    dry_run: bool
    files: list[RegisteredFile] = field(default_factory=list)
    snapshot_id: int | None = None
    metadata_file: str | None = None
    #: For a table registered by its metadata file: its rows and files as its snapshot summary says.
    table_rows: int | None = None
    table_files: int | None = None

    @property
    def rows(self) -> int:
        return self.table_rows if self.table_rows is not None else sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def copied(self) -> int:
        return sum(f.copied for f in self.files)

    @property
    def in_place(self) -> int:
        return len(self.files) - self.copied

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rows": self.rows,
            "bytes": self.bytes,
            "copied": self.copied,
            "in_place": self.in_place,
        }


@dataclass(frozen=True)
class _Planned:
    file: ParquetSource
    uri: str
    relative: str | None  # where a copy goes, relative to the lake root; None: added in place


class Registrations:
    """``register``: existing data into a table, as a principal when the lake is governed.

    Args:
        catalog: the lake's catalog.
        governance: checks the principal's INSERT (CREATE for a new table) and audits the outcome.
        default_domain: the project's domain, for ``zone.name`` table names.
    """

    def __init__(self, catalog: LakeCatalog, governance: Governance, default_domain: str) -> None:
        self.catalog = catalog
        self.governance = governance
        self.default_domain = default_domain

    def register(
        self,
        table: str,
        sources: Sequence[str],
        *,
        partition_by: Sequence[str] = (),
        mode: Mode = "auto",
        principal: str | None = None,
        dry_run: bool = False,
        progress: RegisterProgress | None = None,
    ) -> RegisterResult:
        """Register ``sources`` (Parquet files and folders, or one ``*.metadata.json``) as ``table``.

        Raises:
            RegisterError: a source that does not fit (nothing is committed).
            AccessDenied: the principal lacks INSERT on the table (CREATE when it is new).
        """
        try:
            ref = self.catalog.resolve(table, self.default_domain)
        except AmbiguousTableError:
            raise
        except TableNotFoundError as exc:
            raise RegisterError(
                f"{exc}; a new table is named <zone>.<name> or <domain>.<zone>.<name>",
                table=table,
                reason="usage",
            ) from None
        if not sources:
            raise RegisterError("name at least one source", table=str(ref), reason="usage")
        metadata = [s for s in sources if s.endswith(".metadata.json")]
        if metadata and len(sources) > 1:
            raise RegisterError(
                f"{metadata[0]}: a table's metadata file is registered alone, not with other sources",
                table=str(ref),
                file=metadata[0],
                reason="usage",
            )
        exists = self.catalog.table_exists(ref)
        what = f"REGISTER {ref} FROM {', '.join(sources)}"
        who = self._authorize(principal, "INSERT" if exists else "CREATE", str(ref), what)
        if metadata:
            result = register_metadata_file(self.catalog, ref, metadata[0], dry_run)
        else:
            result = register_files(self.catalog, ref, list(sources), partition_by, mode, dry_run, progress)
        if who and not dry_run:
            self.governance.audit(
                AuditEvent(
                    principal=who,
                    policy_version=self.governance.version().label,
                    sql=what,
                    decision="allowed",
                    reason=f"{'INSERT' if exists else 'CREATE'} on {ref}",
                    tables=[str(ref)],
                    rows=result.rows,
                )
            )
        return result

    def _authorize(self, principal: str | None, privilege: str, table: str, what: str) -> str | None:
        if not self.governance.enabled:
            return None
        if not principal:
            raise RegisterError(
                f"{self.governance.path.name} governs this lake: "
                "name a principal (lakeplane register --as NAME)",
                table=table,
                reason="principal",
            )
        who = self.governance.principal(principal)
        if not may(self.governance.policy(), who, privilege, table):
            reason = f"principal '{who.name}' may not register into {table} (no {privilege} grant)"
            self.governance.audit(
                AuditEvent(
                    principal=who.name,
                    policy_version=self.governance.version().label,
                    sql=what,
                    decision="denied",
                    reason=reason,
                    tables=[table],
                )
            )
            raise AccessDenied(reason, principal=who.name, table=table)
        return who.name


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
    _stop_pyiceberg_retries(catalog, table)
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


def _stop_pyiceberg_retries(catalog: LakeCatalog, table: Table) -> None:
    """pyiceberg's own retry would rebase the append onto a head that may hold the same files."""
    if all(table.properties.get(k) == v for k, v in NO_PYICEBERG_RETRY.items()):
        return

    def attempt(retry: int) -> None:
        if retry:
            table.refresh()
        with table.transaction() as tx:
            tx.set_properties(NO_PYICEBERG_RETRY)

    retry_commit(attempt, ".".join(table.name()), "set properties", catalog.commit_retry)


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


def register_metadata_file(catalog: LakeCatalog, ref: TableRef, source: str, dry_run: bool) -> RegisterResult:
    """Add the Iceberg table whose metadata file is ``source`` to the catalog as ``ref``, keeping its
    snapshots, and give it the name mapping other readers need for files without field ids."""
    name = str(ref)
    uri = (
        source
        if source.startswith("s3://")
        else str(Path(source.removeprefix("file://")).expanduser().resolve())
    )
    io = load_file_io(catalog.iceberg.properties, uri)
    input_file = io.new_input(uri)
    if not input_file.exists():
        raise RegisterError(f"{source}: no such metadata file", table=name, file=source, reason="missing")
    try:
        metadata = FromInputFile.table_metadata(input_file)
    except Exception as exc:  # JSON or model validation: either way not a metadata file we can use
        raise RegisterError(
            f"{source}: not an Iceberg table metadata file "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]})",
            table=name,
            file=source,
            reason="metadata",
        ) from None
    if catalog.table_exists(ref):
        current = catalog.load(ref)
        seen = [current.metadata_location] + [entry.metadata_file for entry in current.metadata.metadata_log]
        same = uri in {m.removeprefix("file://") for m in seen}
        raise RegisterError(
            f"{name} already exists"
            + (" at this metadata file" if same else "; register the metadata file as a new table"),
            table=name,
            file=source,
            reason="already registered" if same else "exists",
        )
    head = metadata.current_snapshot()
    totals = head.summary.additional_properties if head and head.summary else {}
    rows, files = int(totals.get("total-records", 0)), int(totals.get("total-data-files", 0))
    if dry_run:
        return RegisterResult(name, True, True, metadata_file=uri, table_rows=rows, table_files=files)
    try:
        table = catalog.register_metadata(ref, uri)
    except TableAlreadyExistsError:
        raise RegisterError(f"{name} already exists", table=name, file=source, reason="exists") from None
    ensure_name_mapping(table, catalog.commit_retry)
    _stop_pyiceberg_retries(catalog, table)
    return RegisterResult(
        name,
        True,
        False,
        snapshot_id=head.snapshot_id if head else None,
        metadata_file=uri,
        table_rows=rows,
        table_files=files,
    )

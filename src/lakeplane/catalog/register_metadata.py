"""An existing Iceberg table into the catalog, by its metadata file, with its snapshots."""

from __future__ import annotations

from pathlib import Path

from pyiceberg.exceptions import TableAlreadyExistsError
from pyiceberg.io import load_file_io
from pyiceberg.serializers import FromInputFile

from lakeplane.catalog.catalog import LakeCatalog, TableRef
from lakeplane.catalog.commits import stop_pyiceberg_retries
from lakeplane.catalog.registration import RegisterResult
from lakeplane.catalog.upgrade import ensure_name_mapping
from lakeplane.errors import RegisterError


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
    stop_pyiceberg_retries(table, catalog.commit_retry)
    return RegisterResult(
        name,
        True,
        False,
        snapshot_id=head.snapshot_id if head else None,
        metadata_file=uri,
        table_rows=rows,
        table_files=files,
    )

"""What registering existing Parquet files must check before anything is committed.

A file maps to a table when each of its columns is a column of the table with the same type (or
one Iceberg promotes: int to long, float to double, a decimal to a wider one), every required
column of the table is in it, and its field ids, if it carries any, are the table's. A partitioned
table needs each file to hold one value of each partition field. (Partition columns that exist
only in folder names, ``ds=2026-11-01/part-0.parquet`` without a ``ds`` column, have been made
columns of the file by then, :func:`lakeplane.catalog.sources.with_folder_columns`: ``add_files``
would record NULL for them.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.exceptions import ResolveError
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema, promote
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.transforms import IdentityTransform, Transform, parse_transform
from pyiceberg.typedef import Record

from lakeplane.catalog.sources import ParquetSource
from lakeplane.catalog.types import iceberg_schema_for
from lakeplane.errors import ModelError, RegisterError

#: The first id of a new table's partition fields (Iceberg's convention).
PARTITION_FIELD_BASE = 1000
_SPEC = re.compile(r"^\s*(?:(\w+)(?:\[(\d+)\])?\(\s*(?:(\d+)\s*,\s*)?(\w+)\s*\)|(\w+))\s*$")
SPEC_FORMS = (
    "column, year(column), month(column), day(column), hour(column), bucket[N](column), truncate[N](column)"
)


def schema_of(file: ParquetSource, table: str) -> Schema:
    """The Iceberg schema a new table made from ``file`` gets: its columns in order, all optional."""
    try:
        return iceberg_schema_for(file.schema)
    except ModelError as exc:
        raise RegisterError(
            f"{file.shown}: {exc}", table=table, file=file.shown, column=exc.column, reason="schema"
        ) from None


def check_schema(file: ParquetSource, schema: Schema, table: str) -> None:
    """Raises RegisterError naming the file and the column when ``file`` cannot map to ``schema``."""
    names = set(schema.column_names)
    for field in file.schema:
        if field.name not in names:
            _refuse(
                file,
                table,
                field.name,
                f"column '{field.name}' is not in the table ({', '.join(schema.column_names)})",
            )
    present = set(file.schema.names)
    for required in schema.fields:
        if required.required and required.name not in present:
            _refuse(file, table, required.name, f"required column '{required.name}' is missing")
    for field in file.schema:
        if field.nullable and schema.find_field(field.name).required:
            _refuse(
                file,
                table,
                field.name,
                f"column '{field.name}' may hold nulls here but is required in the table",
            )
    file_types = schema_of(file, table)
    table_ids = {f.name: f.field_id for f in schema.fields}
    for field in file_types.fields:
        wanted = schema.find_field(field.name).field_type
        if field.field_type != wanted:
            try:
                promote(field.field_type, wanted)
            except ResolveError:
                _refuse(
                    file,
                    table,
                    field.name,
                    f"column '{field.name}' is {field.field_type}, the table's is {wanted}",
                )
    for name, field_id in file.field_ids().items():
        if table_ids.get(name) != field_id:
            _refuse(
                file,
                table,
                name,
                f"column '{name}' carries field id {field_id}, the table's is {table_ids.get(name)} "
                "(other Iceberg readers would read another column)",
            )
    for field in file.schema:
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            _refuse(
                file,
                table,
                field.name,
                f"column '{field.name}' holds nanosecond timestamps; Iceberg v2 tables hold microseconds "
                "(write it with coerce_timestamps='us')",
            )


def check_folders(file: ParquetSource, schema: Schema, spec: PartitionSpec, table: str) -> None:
    """Each identity partition column named in a folder (``ds=...``) holds that one value in the file."""
    identity = {
        schema.find_column_name(f.source_id)
        for f in spec.fields
        if isinstance(f.transform, IdentityTransform)
    }
    for key, value in file.folders:
        if key not in identity:
            continue
        found = file.column_range(key)
        if found is None:
            continue  # no statistics: pyiceberg then refuses to infer its partition value
        low, high = found
        if low != high:
            _refuse(
                file,
                table,
                key,
                f"spans several values of partition column '{key}' ({low} to {high})",
                "partition",
            )
        if str(low) != value:
            _refuse(
                file,
                table,
                key,
                f"its folder says {key}={value} but its '{key}' column holds {low}",
                "partition",
            )


def data_file_for(io: FileIO, metadata: TableMetadata, uri: str, file: ParquetSource, table: str) -> DataFile:
    """The Iceberg entry of the Parquet file at ``uri`` (``file`` as found) for a table of ``metadata``.

    pyiceberg takes each partition value from the file's min/max statistics, which a bucket's hash
    does not follow: those values are computed from the column itself, and must be one per file.
    """
    spec = metadata.spec()
    hashed = {f.field_id for f in spec.fields if not f.transform.preserves_order}
    ordered = PartitionSpec(*[f for f in spec.fields if f.field_id not in hashed], spec_id=spec.spec_id)
    planned = metadata.model_copy(update={"partition_specs": [ordered]}) if hashed else metadata
    try:
        data_file = parquet_file_to_data_file(io, planned, uri)
    except (ValueError, TypeError) as exc:
        partition = "partition" in str(exc).lower()
        why = "holds more than one value of a partition field" if partition else "does not fit the table"
        raise RegisterError(
            f"{file.shown}: {why} ({exc})",
            table=table,
            file=file.shown,
            reason="partition" if partition else "schema",
        ) from None
    if hashed:
        from_stats = iter(data_file.partition)
        values = [
            _hashed_value(file, metadata.schema(), f, table) if f.field_id in hashed else next(from_stats)
            for f in spec.fields
        ]
        data_file[3] = Record(*values)
    return data_file


def _hashed_value(file: ParquetSource, schema: Schema, field: PartitionField, table: str) -> object:
    column = schema.find_column_name(field.source_id) or ""
    with file.fs.open_input_file(file.path) as handle:
        values = pq.read_table(handle, columns=[column]).column(0)
    source = schema.find_field(field.source_id).field_type
    found = pc.unique(field.transform.pyarrow_transform(source)(values.combine_chunks()))
    if len(found) > 1:
        _refuse(file, table, column, f"spans several values of partition field {field.name}", "partition")
    return found[0].as_py() if len(found) else None


def spec_from_text(texts: Sequence[str], schema: Schema, table: str) -> PartitionSpec:
    """A partition spec from ``--partition-by`` values (``ds``, ``day(ts)``, ``bucket[16](id)``)."""
    fields = []
    for position, text in enumerate(t for item in texts for t in _split(item)):
        match = _SPEC.match(text)
        if not match:
            raise RegisterError(
                f"--partition-by '{text}': expected {SPEC_FORMS}", table=table, reason="partition spec"
            )
        kind, width, width_first, column, bare = match.groups()
        column = column or bare
        name = "identity" if bare else kind.lower()
        width = width or width_first
        transform = _transform(name, width, text, table)
        if column not in schema.column_names:
            raise RegisterError(
                f"--partition-by '{text}': no column '{column}' (columns: {', '.join(schema.column_names)})",
                table=table,
                column=column,
                reason="partition spec",
            )
        source = schema.find_field(column)
        if not transform.can_transform(source.field_type):
            raise RegisterError(
                f"--partition-by '{text}': {name} does not apply to column '{column}' "
                f"of type {source.field_type}",
                table=table,
                column=column,
                reason="partition spec",
            )
        field_name = column if bare else f"{column}_{name}" + (f"_{width}" if width else "")
        fields.append(PartitionField(source.field_id, PARTITION_FIELD_BASE + position, transform, field_name))
    return PartitionSpec(*fields)


def inferred_spec(files: Sequence[ParquetSource], schema: Schema, table: str) -> PartitionSpec:
    """Identity partitions on the ``key=value`` folder keys every file sits under (each a column of
    the files, or added to them from the folder names); none when the files sit under no such folders."""
    keys = [tuple(k for k, _ in f.folders) for f in files]
    if len(set(keys)) > 1:
        first, other = files[0], next(f for f, k in zip(files, keys, strict=True) if k != keys[0])
        raise RegisterError(
            f"{other.shown}: its partition folders ({'/'.join(keys[files.index(other)]) or 'none'}) differ "
            f"from those of {first.shown} ({'/'.join(keys[0]) or 'none'}); register them separately "
            "or give --partition-by",
            table=table,
            file=other.shown,
            reason="partition",
        )
    return spec_from_text(list(keys[0]) if keys else [], schema, table)


def _split(item: str) -> list[str]:
    """``ds,bucket(16, id)`` → ``["ds", "bucket(16, id)"]``: commas inside parentheses stay."""
    parts, depth, current = [], 0, ""
    for char in item:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip() and p.strip().lower() != "none"]


def _transform(name: str, width: str | None, text: str, table: str) -> Transform[Any, Any]:
    needs_width = name in ("bucket", "truncate")
    if needs_width != bool(width) or name not in (
        "identity",
        "year",
        "month",
        "day",
        "hour",
        "bucket",
        "truncate",
    ):
        raise RegisterError(
            f"--partition-by '{text}': expected {SPEC_FORMS}", table=table, reason="partition spec"
        )
    return parse_transform(f"{name}[{width}]" if width else name)


def _refuse(file: ParquetSource, table: str, column: str, why: str, reason: str = "schema") -> NoReturn:
    raise RegisterError(f"{file.shown}: {why}", table=table, file=file.shown, column=column, reason=reason)

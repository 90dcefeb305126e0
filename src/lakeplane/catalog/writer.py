"""Write a query's result into an Iceberg table in one atomic commit.

The engine writes Parquet files into the table's ``data/`` folder (nothing references them yet);
then one pyiceberg transaction removes what the write replaces and adds the new files. Readers see
the old table or the new one, never a mix. Partition columns stay inside the files, one partition
value per file, which ``add_files`` needs to record partition values correctly.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, IsNull, Or
from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from sqlglot import exp

from lakeplane.catalog.catalog import LakeCatalog, TableRef
from lakeplane.catalog.types import duckdb_type_for, iceberg_schema_for
from lakeplane.errors import ModelError

Mode = Literal["append", "overwrite_partitions", "replace"]
PARTITION_FIELD_BASE = 1000


@dataclass(frozen=True)
class WriteResult:
    """What one committed write did."""

    table: str
    rows: int
    files: int
    bytes: int
    snapshot_id: int | None
    partitions: list[dict[str, str]]


class TableWriter:
    """Writes results of SQL run in an engine session into the lake's Iceberg tables."""

    def __init__(self, catalog: LakeCatalog) -> None:
        self.catalog = catalog

    def ensure_table(
        self,
        ref: TableRef,
        result: pa.Schema,
        partition_by: list[str],
        required: frozenset[str] = frozenset(),
    ) -> Table:
        """Load ``ref``, creating it from the result's (Arrow) schema, or adding new columns."""
        unknown = [c for c in partition_by if c not in result.names]
        if unknown:
            raise ModelError(
                f"{ref}: partition column '{unknown[0]}' is not in the result "
                f"(columns: {', '.join(result.names)})",
                table=str(ref),
                column=unknown[0],
            )
        schema = iceberg_schema_for(result, required)
        if self.catalog.table_exists(ref):
            table = self.catalog.load(ref)
            new = [f for f in schema.fields if f.name not in table.schema().column_names]
            if new:
                with table.update_schema() as update:
                    for field in new:
                        update.add_column(field.name, field.field_type)
                table = self.catalog.load(ref)
            return table
        spec = PartitionSpec(
            *[
                PartitionField(
                    schema.find_field(col).field_id, PARTITION_FIELD_BASE + i, IdentityTransform(), col
                )
                for i, col in enumerate(partition_by)
            ]
        )
        return self.catalog.create(ref, schema, spec)

    def conforming_select(
        self, table: Table, sql: str, result_columns: Sequence[str], dialect: str = "duckdb"
    ) -> str:
        """``sql`` projected and cast to the table's columns, in the table's order, in ``dialect``."""
        columns = []
        for field in table.schema().fields:
            target = exp.DataType.build(duckdb_type_for(field.field_type), dialect="duckdb")
            if field.name in result_columns:
                value: exp.Expression = exp.column(field.name, quoted=True)
            elif field.required:
                raise ModelError(
                    f"{table.name()}: required column '{field.name}' is missing from the result",
                    column=field.name,
                )
            else:
                value = exp.null()
            columns.append(exp.alias_(exp.cast(value, target), field.name, quoted=True))
        # The result's SQL is the engine's already: wrapped as text, not parsed again.
        return f"{exp.select(*columns).sql(dialect)} FROM ({sql}) AS __result"

    def commit(
        self,
        table: Table,
        paths: list[str],
        mode: Mode,
        rows: int,
        bytes_written: int,
        replace_filter: BooleanExpression | None = None,
        properties: dict[str, str] | None = None,
        branch: str | None = None,
    ) -> WriteResult:
        """Make ``paths`` (relative to the lake root) visible in one commit.

        ``overwrite_partitions`` replaces the partitions the new files hold (or ``replace_filter``
        when given, so an empty result still clears its day); ``replace`` replaces the whole table.
        With ``branch`` (created from main's head) the commit lands there and main is untouched; the
        result's ``snapshot_id`` is then the branch's new head.
        """
        uris = [self.catalog.storage.uri(p) for p in paths]
        partitions = _partitions_of(paths, table)
        delete: BooleanExpression | None = None
        if mode == "replace":
            delete = AlwaysTrue()
        elif mode == "overwrite_partitions":
            delete = replace_filter or partition_filter(partitions, table)
            if delete is None and not table.spec().fields:
                delete = AlwaysTrue()
        properties = {"lakeplane.rows": str(rows), **(properties or {})}
        if delete is None and not uris:
            return WriteResult(_name(table), 0, 0, 0, _current(table), partitions)
        if delete is not None and not _partition_aligned(delete, table):
            raise ModelError(f"{_name(table)}: a replace filter must name partition columns only")
        # One snapshot: the replaced files leave and the new ones arrive together. ``delete`` names
        # identity partition columns only, so planning it yields exactly the files to drop.
        replaced = (
            [task.file for task in table.scan(row_filter=delete).plan_files()]
            if delete is not None and table.current_snapshot() is not None
            else []
        )
        with table.transaction() as tx:
            producer = tx.update_snapshot(snapshot_properties=properties, branch=branch or "main")
            with producer.overwrite() if replaced else producer.fast_append() as snapshot:
                for data_file in replaced:
                    snapshot.delete_data_file(data_file)
                for uri in uris:
                    snapshot.append_data_file(parquet_file_to_data_file(table.io, table.metadata, uri))
        head = table.snapshot_by_name(branch) if branch else table.current_snapshot()
        return WriteResult(
            _name(table), rows, len(uris), bytes_written, head.snapshot_id if head else None, partitions
        )


def new_write_dir(ref: TableRef) -> str:
    """A fresh folder, relative to the lake root, for one write's data files."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{ref.zone}/{ref.domain}/{ref.name}/data/{stamp}-{uuid.uuid4().hex[:8]}"


def _name(table: Table) -> str:
    return ".".join(table.name())


def _current(table: Table) -> int | None:
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def _partition_aligned(expression: BooleanExpression, table: Table) -> bool:
    """Whether ``expression`` reads identity-partition columns only (so it selects whole files)."""
    identity = {
        table.schema().find_column_name(f.source_id)
        for f in table.spec().fields
        if isinstance(f.transform, IdentityTransform)
    }
    names: set[str] = set()
    stack: list[Any] = [expression]
    while stack:
        node = stack.pop()
        if isinstance(node, And | Or):
            stack += [node.left, node.right]
        elif hasattr(node, "term"):
            names.add(node.term.name)
        elif not isinstance(node, AlwaysTrue):
            return False
    return names <= identity if names else isinstance(expression, AlwaysTrue)


def _partitions_of(paths: list[str], table: Table) -> list[dict[str, str]]:
    names = {table.schema().find_column_name(f.source_id) for f in table.spec().fields}
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for path in paths:
        values = {}
        for segment in path.split("/"):
            key, sep, value = segment.partition("=")
            if sep and key in names:
                values[key] = unquote(value)
        if values:
            seen.setdefault(tuple(sorted(values.items())), values)
    return list(seen.values())


def partition_filter(partitions: list[dict[str, str]], table: Table) -> BooleanExpression | None:
    """A filter matching exactly the given partition values (``"NULL"`` for a null value)."""
    if not partitions:
        return None
    schema = table.schema()
    clauses: list[BooleanExpression] = []
    for values in partitions:
        terms: list[BooleanExpression] = []
        for column, text in values.items():
            if text in ("NULL", "__HIVE_DEFAULT_PARTITION__"):
                terms.append(IsNull(column))  # type: ignore[call-arg, arg-type]
            else:
                terms.append(EqualTo(column, _typed(text, schema, column)))  # type: ignore[call-arg, arg-type]
        clauses.append(terms[0] if len(terms) == 1 else And(*terms))
    return clauses[0] if len(clauses) == 1 else Or(*clauses)


def _typed(text: str, schema: Schema, column: str) -> object:
    kind = str(schema.find_field(column).field_type)
    if kind in ("int", "long"):
        return int(text)
    if kind == "boolean":
        return text.lower() == "true"
    return text

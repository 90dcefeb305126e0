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
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.transforms import IdentityTransform
from sqlglot import exp

from lakeplane.catalog.catalog import LakeCatalog, TableRef
from lakeplane.catalog.commits import RETRIES_KEY, retry_commit, stop_pyiceberg_retries
from lakeplane.catalog.types import duckdb_type_for, iceberg_schema_for
from lakeplane.catalog.upgrade import NAME_MAPPING_KEY, ensure_name_mapping, name_mapping_json
from lakeplane.errors import CommitConflictError, ModelError

Mode = Literal["append", "overwrite_partitions", "replace"]
#: ``read_at`` not given: the new data does not depend on the table's current rows.
ANY_SNAPSHOT = object()
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
    #: Commits that lost the race to another writer and were planned again before this one landed.
    commit_retries: int = 0


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
        """Load ``ref``, creating it from the result's (Arrow) schema, or adding new columns.

        The table's name mapping (``schema.name-mapping.default``) is set when it is created and
        follows every column added (pyiceberg updates it with the schema), so files written
        without field ids stay readable by other Iceberg readers; an older table lacking it gets it.
        """
        unknown = [c for c in partition_by if c not in result.names]
        if unknown:
            raise ModelError(
                f"{ref}: partition column '{unknown[0]}' is not in the result "
                f"(columns: {', '.join(result.names)})",
                table=str(ref),
                column=unknown[0],
            )
        schema = iceberg_schema_for(result, required)
        if not self.catalog.table_exists(ref):
            spec = PartitionSpec(
                *[
                    PartitionField(
                        schema.find_field(col).field_id, PARTITION_FIELD_BASE + i, IdentityTransform(), col
                    )
                    for i, col in enumerate(partition_by)
                ]
            )
            created = self.catalog.create(ref, schema, spec, {NAME_MAPPING_KEY: name_mapping_json(schema)})
            if created.schema().column_names == schema.column_names:
                return created
        # The table is older than this result, or another writer created it first: add what is new.
        table = self.catalog.load(ref)
        ensure_name_mapping(table, self.catalog.commit_retry)

        def attempt(retry: int) -> None:
            if retry:
                table.refresh()
            new = [f for f in schema.fields if f.name not in table.schema().column_names]
            if new:  # the commit requires the schema it read to be current still
                with table.update_schema() as update:
                    for field in new:
                        update.add_column(field.name, field.field_type)

        retry_commit(attempt, str(ref), "add columns", self.catalog.commit_retry)
        return table

    @staticmethod
    def field_ids(table: Table) -> dict[str, int]:
        """Each column of ``table`` to its Iceberg field id: what the engine writes into the files."""
        return {f.name: f.field_id for f in table.schema().fields}

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
        read_at: int | object | None = ANY_SNAPSHOT,
    ) -> WriteResult:
        """Make ``paths`` (relative to the lake root) visible in one commit.

        ``overwrite_partitions`` replaces the partitions the new files hold (or ``replace_filter``
        when given, so an empty result still clears its day); ``replace`` replaces the whole table.
        When there is nothing to clear and no file to add, no snapshot is made: the result names
        the ref's head.
        With ``branch`` (created from main's head) the commit lands there and main is untouched; the
        result's ``snapshot_id`` is then the branch's new head.

        The files to replace are planned against the head of the target ref, and the commit requires
        that ref to be still there. When another writer moved it first, the table is reloaded, the
        replaced files are planned again against the new head and the same data files are
        committed again (:mod:`lakeplane.catalog.commits`): two writers replacing one day leave
        exactly one copy of it, whichever wins. The result's ``commit_retries`` counts the lost races.

        Args:
            read_at: the snapshot of the target ref the new data was computed from, when the data
                depends on the table itself (a merge reads the rows it keeps). A conflict is then
                retried only while the ref is still there; once it moved, the data is stale and
                :class:`~lakeplane.errors.CommitConflictError` asks for the step to run again.

        Raises:
            CommitConflictError: the commit lost the race more often than the catalog's
                ``commit_retry`` allows, or (with ``read_at``) the table moved under the data.
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
        ref = branch or MAIN_BRANCH
        files = _DataFiles(uris)
        stop_pyiceberg_retries(table, self.catalog.commit_retry)

        def attempt(retry: int) -> int | None:
            # The engine's work took a while: plan against the table as it is now, not as it was.
            table.refresh()
            head = table.metadata.snapshot_by_name(ref)
            head_id = head.snapshot_id if head else None
            if read_at is not ANY_SNAPSHOT and head_id != read_at:
                raise CommitConflictError(
                    f"{_name(table)} changed after its new data was computed from it "
                    f"(snapshot {read_at}, now {head_id}); run the step again",
                    table=_name(table),
                    operation=mode,
                    attempts=retry + 1,
                )
            # ``delete`` names identity partition columns only, so planning it against the ref's
            # head yields exactly the files to drop; they and the new files change in one snapshot.
            replaced = (
                [task.file for task in table.scan(row_filter=delete, snapshot_id=head_id).plan_files()]
                if delete is not None and head_id is not None
                else []
            )
            if not replaced and not uris:  # nothing to remove and nothing to add: no new snapshot
                return head_id
            summary = {**properties, RETRIES_KEY: str(retry)} if retry else properties
            with table.transaction() as tx:
                producer = tx.update_snapshot(snapshot_properties=summary, branch=ref)
                with producer.overwrite() if replaced else producer.fast_append() as snapshot:
                    for data_file in replaced:
                        snapshot.delete_data_file(data_file)
                    for data_file in files.for_table(table):
                        snapshot.append_data_file(data_file)
            landed = table.snapshot_by_name(ref)
            return landed.snapshot_id if landed else None

        snapshot_id, retries = retry_commit(attempt, _name(table), mode, self.catalog.commit_retry)
        return WriteResult(
            _name(table), rows, len(uris), bytes_written, snapshot_id, partitions, commit_retries=retries
        )


class _DataFiles:
    """The new data files as Iceberg ``DataFile`` entries, read from their footers once per schema.

    The files themselves never change between attempts; only a schema change by another writer
    (a column added) makes their statistics worth reading again.
    """

    def __init__(self, uris: list[str]) -> None:
        self.uris = uris
        self._built: dict[int, list[DataFile]] = {}

    def for_table(self, table: Table) -> list[DataFile]:
        schema_id = table.metadata.current_schema_id
        if schema_id not in self._built:
            self._built[schema_id] = [
                parquet_file_to_data_file(table.io, table.metadata, uri) for uri in self.uris
            ]
        return self._built[schema_id]


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

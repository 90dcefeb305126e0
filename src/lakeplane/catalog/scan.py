"""Scan planning: the data files an engine must read for a table, after pyiceberg's pruning, and
what the engine needs to bind their columns by field id (the schema read, the name mapping)."""

from __future__ import annotations

from typing import Any

from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.name_mapping import NameMapping
from pyiceberg.types import NestedField, PrimitiveType

from lakeplane.catalog.catalog import LakeCatalog
from lakeplane.engines.base import ScanSource
from lakeplane.errors import EngineError


def plan_scan(
    catalog: LakeCatalog,
    table_name: str,
    row_filter: BooleanExpression | None = None,
    snapshot_id: int | None = None,
    bounds_of: str | None = None,
) -> ScanSource:
    """The files an engine must read for ``table_name`` after pyiceberg's partition pruning.

    With ``snapshot_id`` the table is read as it was then: that snapshot's files, with the schema
    the snapshot was written with (the names and types of that time). With ``bounds_of`` (a
    top-level column), the source's ``bounds`` are that column's lowest and highest value in the
    files, from the statistics their manifests keep (no file is opened).

    Raises:
        EngineError: the table has delete files, which engines here cannot apply.
    """
    table = catalog.load(table_name)
    scan = table.scan(row_filter=row_filter or AlwaysTrue(), snapshot_id=snapshot_id)
    schema = scan.projection()
    arrow_schema = schema.as_arrow()
    mapping = file_name_mapping(table, schema)
    if table.current_snapshot() is None and snapshot_id is None:
        return ScanSource(table_name, [], arrow_schema, name_mapping=mapping)
    files, size, records = [], 0, 0
    bounds = _Bounds(schema.find_field(bounds_of)) if bounds_of else None
    try:
        tasks = scan.plan_files()
    except (ValueError, TypeError):  # a column the table lacks, a value its type cannot hold:
        # planning reads every file and the engine applies (or refuses) the filter
        tasks = table.scan(snapshot_id=snapshot_id).plan_files()
    for task in tasks:
        if task.delete_files:
            raise EngineError(
                f"table '{table_name}' has row-level delete files; lakeplane reads only copy-on-write tables",
                table=table_name,
            )
        files.append(task.file.file_path)
        size += task.file.file_size_in_bytes
        records += task.file.record_count
        if bounds:
            bounds.add(task.file)
    return ScanSource(
        table_name, files, arrow_schema, size, records, mapping, bounds.value() if bounds else None
    )


class _Bounds:
    """The lowest lower bound and highest upper bound of one column over data files."""

    def __init__(self, column: NestedField) -> None:
        self.column = column
        self.low: Any = None
        self.high: Any = None
        self.complete = True

    def add(self, data_file: DataFile) -> None:
        lower = (data_file.lower_bounds or {}).get(self.column.field_id)
        upper = (data_file.upper_bounds or {}).get(self.column.field_id)
        kind = self.column.field_type
        if lower is None or upper is None or not isinstance(kind, PrimitiveType):
            self.complete = False  # not kept (metrics mode none, a foreign writer)
            return
        low, high = from_bytes(kind, lower), from_bytes(kind, upper)
        self.low = low if self.low is None or low < self.low else self.low
        self.high = high if self.high is None or high > self.high else self.high

    def value(self) -> tuple[Any, Any] | None:
        return (self.low, self.high) if self.complete and self.low is not None else None


def file_name_mapping(table: Table, schema: Schema) -> dict[str, int]:
    """How a column name written in a data file without field ids maps to a field id.

    The table's ``schema.name-mapping.default`` (which keeps the old names of renamed columns);
    a table without one maps the names of ``schema``. A name the mapping gives several ids keeps
    the first.
    """
    mapping: NameMapping | None = table.name_mapping()
    if mapping is None:
        return {f.name: f.field_id for f in schema.fields}
    names: dict[str, int] = {}
    for entry in mapping.root:
        if entry.field_id is None:
            continue
        for name in entry.names:
            names.setdefault(name, entry.field_id)
    return names

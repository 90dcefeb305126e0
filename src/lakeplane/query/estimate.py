"""What a query would scan, known before it runs: bytes from the Iceberg manifests, never the data files.

After the governance rewrite a compiled query names the tables it reads, the row filter planning may
prune each by, and the columns it reads. Each table is planned (pyiceberg's partition and statistics
pruning, as execution plans it) and, for every file left, the ``column_sizes`` its manifest entry
records for the projected columns are summed. A file whose manifest entry has no column sizes is
counted whole (its ``file_size_in_bytes``), and the estimate says so.

The planned files are kept (:attr:`ScanEstimate.sources`), so the query reads exactly the files it
was estimated on. The cost is Athena's price from the shipped price table
(:mod:`lakeplane.compute.prices`, us-east-1: $5 per TB scanned, rounded up to the megabyte, with a
10 MB minimum per query; binary units: a TB is 1024^4 bytes).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from pyiceberg.expressions import AlwaysTrue
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table
from pyiceberg.types import IcebergType, ListType, MapType, NestedField, StructType
from sqlglot import exp

from lakeplane.catalog.catalog import LakeCatalog
from lakeplane.catalog.scan import file_name_mapping
from lakeplane.compute.prices import AthenaPrices, load_prices
from lakeplane.engines.base import ScanSource
from lakeplane.errors import EngineError
from lakeplane.query.compiler import CompiledQuery, TableBinding
from lakeplane.units import human_bytes

#: Athena bills at least this much per query (the shipped price table's minimum).
MINIMUM_BILLED = 10 * 1024**2


@functools.cache
def athena_prices() -> AthenaPrices:
    """Athena's prices from the shipped price table (us-east-1), read once."""
    return load_prices().athena


def athena_cost(scanned: int) -> float:
    """What Athena would bill for scanning ``scanned`` bytes, in US dollars."""
    return athena_prices().query_usd(scanned)


@dataclass
class TableEstimate:
    """One table's share of a query's scan."""

    table: str
    columns: list[str]
    files: int = 0
    bytes: int = 0
    #: Bytes by partition (``ds=2026-11-01``); ``""`` for an unpartitioned table.
    partitions: dict[str, int] = field(default_factory=dict)
    #: Files counted whole because their manifest entry has no column sizes.
    whole_files: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partitions": sorted(p for p in self.partitions if p),
            "columns": self.columns,
            "files": self.files,
            "bytes": self.bytes,
            "whole_files": self.whole_files,
        }


@dataclass
class ScanEstimate:
    """A query's scan, table by table, and the files each table's read was planned on."""

    tables: list[TableEstimate]
    #: The planned files of each binding, by its alias in the engine.
    sources: dict[str, ScanSource] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    @property
    def cost(self) -> float:
        return athena_cost(self.bytes)

    @property
    def breakdown(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.tables]

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "cost_usd": round(self.cost, 6), "tables": self.breakdown}

    def lines(self) -> list[str]:
        """The estimate for a person: one block per table, then the total and its cost."""
        out = []
        for t in self.tables:
            out.append(f"  {t.table}: {human_bytes(t.bytes)} ({t.bytes} bytes) in {t.files} files")
            out.append(f"    columns: {', '.join(t.columns) or '(none: row counts only)'}")
            named = sorted(p for p in t.partitions if p)
            if named:
                shown = ", ".join(f"{p} {human_bytes(t.partitions[p])}" for p in named[:8])
                more = f", and {len(named) - 8} more" if len(named) > 8 else ""
                out.append(f"    partitions ({len(named)}): {shown}{more}")
            if t.whole_files:
                out.append(f"    {t.whole_files} files have no column sizes: counted at their whole size")
        total = f"{human_bytes(self.bytes)} ({self.bytes} bytes)"
        out.append(
            f"  total: {total}, ${self.cost:.6f} at Athena's price "
            f"(${athena_prices().per_tb:g} per TB, {athena_prices().minimum_mb:g} MB minimum)"
        )
        return out


def estimate_scan(catalog: LakeCatalog, compiled: CompiledQuery) -> ScanEstimate:
    """Plan every table ``compiled`` reads and sum the manifest column sizes of what it projects.

    Raises:
        EngineError: a table has row-level delete files (no engine here can read it).
    """
    columns = read_columns(compiled)
    estimate = ScanEstimate([])
    for binding in compiled.tables:
        table = catalog.load(binding.table)
        schema = table.schema()
        wanted = columns.get(binding.table)
        fields = [f for f in schema.fields if wanted is None or f.name.lower() in wanted]
        found = TableEstimate(binding.table, [f.name for f in fields])
        ids = {i for f in fields for i in _field_ids(f)}
        tasks = _plan(table, binding)
        for task in tasks:
            _count(found, table, task.file, ids)
        estimate.tables.append(found)
        estimate.sources[binding.alias] = _source(table, binding, tasks)
    return estimate


def read_columns(compiled: CompiledQuery) -> dict[str, set[str] | None]:
    """The lower-case column names each table is read for; None for every column.

    A governed compile lists the columns it read (``columns_read``); the row filters applied to a
    table read their columns too. An ungoverned compile does not qualify columns: a table counts each
    column whose name the query writes (any part of a dotted reference), and every column when the
    query selects ``*``.
    """
    if compiled.access:
        found: dict[str, set[str] | None] = {b.table: set() for b in compiled.tables}
        for name in compiled.columns_read:
            table, column = name.rsplit(".", 1)
            columns = found.setdefault(table, set())
            if columns is not None:
                columns.add(column.lower())
        for access in compiled.access.values():
            columns = found.setdefault(access.table, set())
            for where in access.row_filters:
                if columns is not None:
                    columns.update(c.name.lower() for c in where.find_all(exp.Column))
        return found
    # every part of a reference: ``s.field`` may be a struct column's field as well as an alias's column
    names = {p.name.lower() for c in compiled.expression.find_all(exp.Column) for p in c.parts}
    star = any(not isinstance(s.parent, exp.Count) for s in compiled.expression.find_all(exp.Star))
    return {b.table: None if star else set(names) for b in compiled.tables}


#: Planned files by (metadata file, table, row filter): a metadata file never changes, so neither
#: does what it plans. A long-lived process plans each table version and filter once.
_PLANS: OrderedDict[tuple[str, str, str], list[FileScanTask]] = OrderedDict()
_PLANS_SIZE = 512
_PLANS_LOCK = Lock()


def _plan(table: Table, binding: TableBinding) -> list[FileScanTask]:
    key = (table.metadata_location, binding.table, repr(binding.row_filter))
    with _PLANS_LOCK:
        if (tasks := _PLANS.get(key)) is not None:
            _PLANS.move_to_end(key)
            return tasks
    tasks = _plan_files(table, binding)
    with _PLANS_LOCK:
        _PLANS[key] = tasks
        while len(_PLANS) > _PLANS_SIZE:
            _PLANS.popitem(last=False)
    return tasks


def _plan_files(table: Table, binding: TableBinding) -> list[FileScanTask]:
    if table.current_snapshot() is None:
        return []
    try:
        tasks = list(table.scan(row_filter=binding.row_filter or AlwaysTrue()).plan_files())
    except (ValueError, TypeError):  # as catalog.scan.plan_scan: planning reads every file
        tasks = list(table.scan().plan_files())
    for task in tasks:
        if task.delete_files:
            raise EngineError(
                f"table '{binding.table}' has row-level delete files; "
                "lakeplane reads only copy-on-write tables",
                table=binding.table,
            )
    return tasks


def _count(found: TableEstimate, table: Table, file: DataFile, ids: set[int]) -> None:
    sizes: dict[int, int] = dict(file.column_sizes or {})
    if sizes:
        scanned = sum(size for field_id, size in sizes.items() if field_id in ids)
    else:
        scanned = file.file_size_in_bytes
        found.whole_files += 1
    spec = table.specs().get(file.spec_id)
    partition = spec.partition_to_path(file.partition, table.schema()) if spec and spec.fields else ""
    found.files += 1
    found.bytes += scanned
    found.partitions[partition] = found.partitions.get(partition, 0) + scanned


def _source(table: Table, binding: TableBinding, tasks: list[FileScanTask]) -> ScanSource:
    """The planned files as :func:`lakeplane.catalog.scan.plan_scan` gives them to an engine."""
    schema: Schema = table.scan().projection()
    return ScanSource(
        binding.table,
        [t.file.file_path for t in tasks],
        schema.as_arrow(),
        sum(t.file.file_size_in_bytes for t in tasks),
        sum(t.file.record_count for t in tasks),
        file_name_mapping(table, schema),
    )


def _field_ids(field_: NestedField) -> list[int]:
    """``field_``'s id and the ids of every field nested in it (column sizes are kept per leaf)."""
    return [field_.field_id, *_nested_ids(field_.field_type)]


def _nested_ids(kind: IcebergType) -> list[int]:
    if isinstance(kind, StructType):
        return [i for f in kind.fields for i in _field_ids(f)]
    if isinstance(kind, ListType):
        return _field_ids(kind.element_field)
    if isinstance(kind, MapType):
        return [*_field_ids(kind.key_field), *_field_ids(kind.value_field)]
    return []

"""Scan planning: the data files an engine must read for a table, after pyiceberg's pruning."""

from __future__ import annotations

from pyiceberg.expressions import AlwaysTrue, BooleanExpression

from lakeplane.catalog.catalog import LakeCatalog
from lakeplane.engines.base import ScanSource
from lakeplane.errors import EngineError


def plan_scan(
    catalog: LakeCatalog,
    table_name: str,
    row_filter: BooleanExpression | None = None,
    snapshot_id: int | None = None,
) -> ScanSource:
    """The files an engine must read for ``table_name`` after pyiceberg's partition pruning.

    Raises:
        EngineError: the table has delete files, which engines here cannot apply.
    """
    table = catalog.load(table_name)
    schema = table.schema().as_arrow()
    if table.current_snapshot() is None and snapshot_id is None:
        return ScanSource(table_name, [], schema)
    files, size, records = [], 0, 0
    try:
        tasks = table.scan(row_filter=row_filter or AlwaysTrue(), snapshot_id=snapshot_id).plan_files()
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
    return ScanSource(table_name, files, schema, size, records)

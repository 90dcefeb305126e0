"""Bring tables made by older lakeplane versions up to what other Iceberg readers need.

Data files written before lakeplane wrote Parquet field ids carry none; Iceberg readers other than
lakeplane (pyiceberg, DuckDB's iceberg extension, polars, daft) then resolve their columns through
the table property ``schema.name-mapping.default``. Setting it rewrites no file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyiceberg.schema import Schema
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.name_mapping import MappedField, NameMapping, create_mapping_from_schema

from lakeplane.catalog.catalog import LakeCatalog
from lakeplane.catalog.commits import CommitRetry, retry_commit

#: The table property other readers resolve the columns of files without field ids through.
NAME_MAPPING_KEY = TableProperties.DEFAULT_NAME_MAPPING

NameMappingChange = Literal["set", "updated", "present"]


@dataclass(frozen=True)
class TableUpgrade:
    """What :func:`upgrade_tables` did to one table."""

    table: str
    #: ``set`` (the table had none), ``updated`` (it missed columns) or ``present`` (nothing to do).
    name_mapping: NameMappingChange


def name_mapping_json(schema: Schema) -> str:
    """The name mapping of ``schema`` (each column's name to its id), as the table property holds it."""
    return create_mapping_from_schema(schema).model_dump_json()


def ensure_name_mapping(table: Table, retry: CommitRetry) -> NameMappingChange:
    """Give ``table`` a name mapping covering every column of its schema, if it lacks one.

    A mapping that names every current column under its id is left as it is; one that misses some
    gets them added, keeping the names it holds (dropped or renamed columns old files still use).
    """
    change = _mapping_for(table)[0]
    if change == "present":
        return change

    def attempt(retry_number: int) -> None:
        if retry_number:
            table.refresh()
        needed, mapping = _mapping_for(table)
        if needed == "present":
            return
        with table.transaction() as tx:
            tx.set_properties({NAME_MAPPING_KEY: mapping})

    retry_commit(attempt, ".".join(table.name()), "set name mapping", retry)
    return change


def upgrade_tables(catalog: LakeCatalog) -> list[TableUpgrade]:
    """Set the name mapping on every table of ``catalog`` that lacks it; idempotent."""
    return [
        TableUpgrade(str(ref), ensure_name_mapping(catalog.load(ref), catalog.commit_retry))
        for ref in catalog.list_tables()
    ]


def _mapping_for(table: Table) -> tuple[NameMappingChange, str]:
    """What ``table``'s name mapping needs, and the mapping it should hold (as JSON)."""
    schema = table.schema()
    existing = table.name_mapping()
    if existing is None:
        return "set", name_mapping_json(schema)
    # Entries without an id (names a reader should leave unresolved) are kept as they are.
    unmapped = [field for field in existing.root if field.field_id is None]
    names = {field.field_id: list(field.names) for field in existing.root if field.field_id is not None}
    # A name another field holds (one dropped or renamed since) keeps meaning that field in files
    # without ids: a column added under it later is not given it (see catalog/evolution.py).
    held = {name for known in names.values() for name in known}
    missing = [f for f in schema.fields if f.name not in names.get(f.field_id, []) and f.name not in held]
    if not missing:
        return "present", existing.model_dump_json()
    for f in missing:
        names.setdefault(f.field_id, []).append(f.name)
    merged = NameMapping(
        [MappedField.model_validate({"field-id": i, "names": n}) for i, n in names.items()] + unmapped
    )
    return "updated", merged.model_dump_json()

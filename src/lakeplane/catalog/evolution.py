"""Schema and partition evolution of a table, as one Iceberg commit: ``lakeplane alter``.

A change is checked before anything is written (unknown column, a name already taken, a type that
cannot be promoted, a partition source dropped, a column the policy names dropped) and refused with
the table and column. It is committed with pyiceberg's ``update_schema`` / ``update_spec`` together
with the table's name mapping (``schema.name-mapping.default``) in the same commit. No data file is
rewritten: readers bind columns by field id (:mod:`lakeplane.engines.binding`).

The name mapping keeps every name a field was ever known by, dropped fields included: a name
written in a file without field ids means the field that held it then. So a column added under the
name of a dropped (or renamed) column gets no mapped name, and reads NULL in such files rather than
the old column's data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, TableProperties, Transaction
from pyiceberg.table.name_mapping import MappedField, NameMapping, create_mapping_from_schema
from pyiceberg.transforms import IdentityTransform, Transform, parse_transform
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    PrimitiveType,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

from lakeplane.catalog.catalog import LakeCatalog
from lakeplane.catalog.commits import retry_commit
from lakeplane.errors import SchemaChangeError, did_you_mean

#: Column types ``alter`` takes, by the names people write (``decimal(P,S)`` besides).
TYPES: dict[str, PrimitiveType] = {
    "boolean": BooleanType(),
    "bool": BooleanType(),
    "int": IntegerType(),
    "integer": IntegerType(),
    "long": LongType(),
    "bigint": LongType(),
    "float": FloatType(),
    "real": FloatType(),
    "double": DoubleType(),
    "string": StringType(),
    "varchar": StringType(),
    "binary": BinaryType(),
    "date": DateType(),
    "time": TimeType(),
    "timestamp": TimestampType(),
    "timestamp_ntz": TimestampType(),
    "timestamptz": TimestamptzType(),
}
_DECIMAL = re.compile(r"decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", re.IGNORECASE)
#: ``bucket[16](id)``, ``bucket(16, id)``, ``day(ts)``, ``truncate[4](name)`` or a bare column.
_TRANSFORM = re.compile(
    r"(?P<kind>\w+)\s*(?:\[\s*(?P<width>\d+)\s*\])?\s*\(\s*(?:(?P<arg>\d+)\s*,\s*)?(?P<source>\w+)\s*\)"
)
_TRANSFORMS = ("identity", "year", "month", "day", "hour", "bucket", "truncate")


def parse_type(text: str, table: str, change: str, column: str | None = None) -> PrimitiveType:
    """The Iceberg type written ``text`` (``long``, ``decimal(12,2)``...).

    Raises:
        SchemaChangeError: an unknown type, with the types known.
    """
    if match := _DECIMAL.fullmatch(text.strip()):
        precision, scale = int(match[1]), int(match[2])
        if 0 < precision <= 38 and scale <= precision:
            return DecimalType(precision, scale)
    elif text.strip().lower() in TYPES:
        return TYPES[text.strip().lower()]
    raise SchemaChangeError(
        f"unknown type '{text}'{did_you_mean(text.lower(), TYPES)}; expected one of "
        f"{', '.join(sorted(TYPES))} or decimal(P,S) with P <= 38",
        table=table,
        change=change,
        column=column,
        type=text,
    )


def promotable(old: IcebergType, new: IcebergType) -> bool:
    """Whether Iceberg lets ``old`` become ``new`` without rewriting data files."""
    if isinstance(old, IntegerType):
        return isinstance(new, LongType)
    if isinstance(old, FloatType):
        return isinstance(new, DoubleType)
    if isinstance(old, DecimalType) and isinstance(new, DecimalType):
        return new.scale == old.scale and new.precision > old.precision
    return False


# -- the changes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AddColumn:
    """A new optional column, last or where ``after`` / ``first`` put it."""

    name: str
    type: str
    after: str | None = None
    first: bool = False
    doc: str | None = None

    def describe(self) -> str:
        where = " FIRST" if self.first else f" AFTER {self.after}" if self.after else ""
        return f"ADD COLUMN {self.name} {self.type}{where}"

    def columns(self) -> list[str]:
        return [self.name]


@dataclass(frozen=True)
class RenameColumn:
    old: str
    new: str

    def describe(self) -> str:
        return f"RENAME COLUMN {self.old} TO {self.new}"

    def columns(self) -> list[str]:
        return [self.old, self.new]


@dataclass(frozen=True)
class DropColumn:
    name: str

    def describe(self) -> str:
        return f"DROP COLUMN {self.name}"

    def columns(self) -> list[str]:
        return [self.name]


@dataclass(frozen=True)
class WidenColumn:
    """A type promotion: int to long, float to double, a decimal's precision raised."""

    name: str
    type: str

    def describe(self) -> str:
        return f"ALTER COLUMN {self.name} TYPE {self.type}"

    def columns(self) -> list[str]:
        return [self.name]


@dataclass(frozen=True)
class PartitionBy:
    """The table's partitioning from now on: ``day(ts)``, ``bucket[16](id)``, ``country``..."""

    fields: tuple[str, ...]

    def describe(self) -> str:
        return f"PARTITION BY ({', '.join(self.fields)})"

    def columns(self) -> list[str]:
        """The source columns of the fields."""
        return [m["source"] if (m := _TRANSFORM.fullmatch(f.strip())) else f.strip() for f in self.fields]


SchemaChange = AddColumn | RenameColumn | DropColumn | WidenColumn | PartitionBy


class AlterGuard(Protocol):
    """What governance decides about a change: who may make it, what it must not break, the record."""

    def authorize(self, principal: str | None, table: str, change: str) -> None:
        """Raise unless ``principal`` may alter ``table`` (the refusal recorded)."""

    def policy_references(self, table: str, column: str, field_id: int) -> list[str]:
        """Where the policy names ``column`` (field ``field_id``) of ``table``; empty if nowhere."""

    def record(
        self, principal: str | None, table: str, change: str, columns: list[str], before: str, after: str
    ) -> None:
        """Record the change that was committed, naming the ``columns`` it touched."""


@dataclass(frozen=True)
class AlterResult:
    """What a change did (or, with ``dry_run``, would do) to a table."""

    table: str
    change: str
    dry_run: bool
    schema_id_before: int
    schema_id: int
    columns: list[dict[str, Any]]
    spec_id: int
    partition_by: list[str]
    columns_before: list[dict[str, Any]] = field(default_factory=list)


def alter_table(
    catalog: LakeCatalog,
    table_name: str,
    change: SchemaChange,
    guard: AlterGuard,
    *,
    principal: str | None = None,
    dry_run: bool = False,
) -> AlterResult:
    """Apply ``change`` to ``table_name`` in one commit (none with ``dry_run``).

    Raises:
        SchemaChangeError: the change is refused; nothing was committed.
        AccessDenied: ``principal`` may not alter the table (governed lakes).
    """
    text = change.describe()
    guard.authorize(principal, table_name, text)
    table = catalog.load(table_name)

    def attempt(retry_number: int) -> tuple[Schema, PartitionSpec, Transaction]:
        current = catalog.load(table_name) if retry_number else table
        schema, spec = current.schema(), current.spec()  # committing updates ``current`` in place
        tx = current.transaction()
        _stage(tx, current, table_name, change, guard)
        if not dry_run:
            tx.commit_transaction()
        return schema, spec, tx

    (schema, spec, tx), _ = retry_commit(attempt, table_name, "alter", catalog.commit_retry)
    after = tx.table_metadata
    result = AlterResult(
        table=table_name,
        change=text,
        dry_run=dry_run,
        schema_id_before=schema.schema_id,
        schema_id=after.current_schema_id,
        columns=_columns(after.schema(), after.spec()),
        spec_id=after.default_spec_id,
        partition_by=partition_fields(after.spec(), after.schema()),
        columns_before=_columns(schema, spec),
    )
    if not dry_run:
        before, now = _signature(schema, spec), _signature(after.schema(), after.spec())
        guard.record(principal, table_name, text, change.columns(), before, now)
    return result


def _stage(tx: Transaction, table: Table, name: str, change: SchemaChange, guard: AlterGuard) -> None:
    """Check ``change`` against ``table`` and stage it, with the name mapping, in ``tx``."""
    schema = table.schema()
    text = change.describe()

    def column(wanted: str) -> NestedField:
        found = next((f for f in schema.fields if f.name == wanted), None)
        if found is None:
            raise SchemaChangeError(
                f"table {name} has no column '{wanted}'{did_you_mean(wanted, schema.column_names)}",
                table=name,
                change=text,
                column=wanted,
            )
        return found

    def unused(wanted: str) -> None:
        if any(f.name == wanted for f in schema.fields):
            raise SchemaChangeError(
                f"table {name} already has a column '{wanted}'", table=name, change=text, column=wanted
            )

    if isinstance(change, PartitionBy):
        _stage_spec(tx, table, name, change)
        return
    with tx.update_schema() as update:
        if isinstance(change, AddColumn):
            unused(change.name)
            kind = parse_type(change.type, name, text, change.name)
            if change.after is not None:
                column(change.after)
            update.add_column(change.name, kind, doc=change.doc)
            if change.first:
                update.move_first(change.name)
            elif change.after is not None:
                update.move_after(change.name, change.after)
        elif isinstance(change, RenameColumn):
            column(change.old)
            unused(change.new)
            update.rename_column(change.old, change.new)
        elif isinstance(change, DropColumn):
            dropped = column(change.name)
            references = guard.policy_references(name, dropped.name, dropped.field_id)
            _check_droppable(table, name, dropped, references, text)
            update.delete_column(change.name)
        else:
            old = column(change.name)
            new = parse_type(change.type, name, text, change.name)
            if not promotable(old.field_type, new):
                raise SchemaChangeError(
                    f"column '{change.name}' of table {name} is {old.field_type}: it cannot become {new} "
                    "(Iceberg promotes int to long, float to double and a decimal to a higher precision "
                    "of the same scale; anything else needs the data rewritten)",
                    table=name,
                    change=text,
                    column=change.name,
                    type=change.type,
                )
            update.update_column(change.name, new)
    # A table without a mapping gets one of its schema from before the change (old names kept).
    known = table.name_mapping() or create_mapping_from_schema(schema)
    tx.set_properties(
        {TableProperties.DEFAULT_NAME_MAPPING: evolved_mapping(known, tx.table_metadata.schema())}
    )


def _check_droppable(table: Table, name: str, dropped: NestedField, references: list[str], text: str) -> None:
    if dropped.field_id in {f.source_id for f in table.spec().fields}:
        raise SchemaChangeError(
            f"column '{dropped.name}' of table {name} is a partition source "
            f"({', '.join(partition_fields(table.spec(), table.schema()))}); "
            "change the partitioning first (lakeplane alter TABLE partition-by ...)",
            table=name,
            change=text,
            column=dropped.name,
        )
    if references:
        raise SchemaChangeError(
            f"column '{dropped.name}' of table {name} is named by the policy ({'; '.join(references)}); "
            "remove it from the policy first, then drop the column",
            table=name,
            change=text,
            column=dropped.name,
        )


def _stage_spec(tx: Transaction, table: Table, name: str, change: PartitionBy) -> None:
    schema = table.schema()
    wanted: list[tuple[str, Transform[Any, Any]]] = []
    for written in change.fields:
        source, transform = parse_partition_field(written, name, change.describe())
        if not any(f.name == source for f in schema.fields):
            raise SchemaChangeError(
                f"table {name} has no column '{source}'{did_you_mean(source, schema.column_names)}",
                table=name,
                change=change.describe(),
                column=source,
            )
        wanted.append((source, transform))
    current = {(schema.find_field(f.source_id).name, str(f.transform)): f.name for f in table.spec().fields}
    keep = {(source, str(transform)) for source, transform in wanted}
    with tx.update_spec() as update:
        for key, field_name in current.items():
            if key not in keep:
                update.remove_field(field_name)
        for source, transform in wanted:
            if (source, str(transform)) not in current:
                update.add_field(source, transform)


def parse_partition_field(text: str, table: str, change: str) -> tuple[str, Transform[Any, Any]]:
    """``day(ts)`` as (``ts``, the day transform); a bare column name is an identity field.

    Raises:
        SchemaChangeError: a transform not known, or a bucket or truncate without its width.
    """
    text = text.strip()
    if re.fullmatch(r"\w+", text):
        return text, IdentityTransform()
    if match := _TRANSFORM.fullmatch(text):
        kind, width = match["kind"].lower(), match["width"] or match["arg"]
        if kind in _TRANSFORMS and (kind in ("bucket", "truncate")) == (width is not None):
            return match["source"], parse_transform(f"{kind}[{width}]" if width else kind)
    raise SchemaChangeError(
        f"partition field '{text}': expected COLUMN, year(COL), month(COL), day(COL), hour(COL), "
        "bucket[N](COL) or truncate[N](COL)",
        table=table,
        change=change,
    )


def evolved_mapping(existing: NameMapping, schema: Schema) -> str:
    """The name mapping after a change, as JSON: every name each field id was ever known by, and
    the current name of each field unless another field (dropped or renamed) holds it already."""
    names: dict[int, list[str]] = {}
    unmapped = []
    for entry in existing.root:
        if entry.field_id is None:
            unmapped.append(entry)
        else:
            known = names.setdefault(entry.field_id, [])
            known.extend(n for n in entry.names if n not in known)
    held = {n: i for i, ns in names.items() for n in ns}
    for f in schema.fields:
        if f.name not in held:
            names.setdefault(f.field_id, []).append(f.name)
            held[f.name] = f.field_id
    mapping = NameMapping(
        [MappedField.model_validate({"field-id": i, "names": n}) for i, n in names.items() if n] + unmapped
    )
    return mapping.model_dump_json()


def partition_fields(spec: PartitionSpec, schema: Schema) -> list[str]:
    """A spec's fields as written to ``partition-by``: ``ds``, ``day(ts)``, ``bucket[16](id)``."""
    written = []
    for f in spec.fields:
        try:
            source = schema.find_field(f.source_id).name
        except ValueError:  # a source column dropped since (an older spec)
            source = f"#{f.source_id}"
        written.append(source if isinstance(f.transform, IdentityTransform) else f"{f.transform}({source})")
    return written


def _columns(schema: Schema, spec: PartitionSpec) -> list[dict[str, Any]]:
    sources = {f.source_id for f in spec.fields}
    return [
        {
            "id": f.field_id,
            "name": f.name,
            "type": str(f.field_type),
            "required": f.required,
            "partition_source": f.field_id in sources,
        }
        for f in schema.fields
    ]


def _signature(schema: Schema, spec: PartitionSpec) -> str:
    """A schema in one line, for the audit record: ``schema 3 (1:ds date, 2:n long) by (ds)``."""
    columns = ", ".join(f"{f.field_id}:{f.name} {f.field_type}" for f in schema.fields)
    return (
        f"schema {schema.schema_id} ({columns}) partitioned by ({', '.join(partition_fields(spec, schema))})"
    )

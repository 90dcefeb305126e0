"""Mapping between engine column types and Iceberg types.

Engines describe results as Arrow schemas; pyiceberg converts Arrow to Iceberg types itself. What
Iceberg cannot hold exactly is widened first (unsigned integers, nanosecond times, zoned
timestamps to UTC), and nested or typeless columns are refused with the column's name.
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.io.pyarrow import pyarrow_to_schema
from pyiceberg.schema import Schema
from pyiceberg.table.name_mapping import MappedField, NameMapping
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
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

from lakeplane.errors import ModelError

#: Declared raw field types (``lakeplane.yaml``) as DuckDB types.
FIELD_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "INTEGER",
    "long": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",  # converted to UTC by the ingest parse
    "timestamp_ntz": "TIMESTAMP",
}


def iceberg_schema_for(schema: pa.Schema, required: frozenset[str] = frozenset()) -> Schema:
    """The Iceberg schema holding an engine's result ``schema``: field ids 1..n in column order.

    Raises:
        ModelError: a column whose type has no Iceberg equivalent here (nested or typeless).
    """
    fields = [pa.field(f.name, _storable(f.type, f.name), nullable=f.name not in required) for f in schema]
    mapping = NameMapping(
        [
            MappedField.model_validate({"field-id": i, "names": [f.name]})
            for i, f in enumerate(fields, start=1)
        ]
    )
    return pyarrow_to_schema(pa.schema(fields), name_mapping=mapping, downcast_ns_timestamp_to_us=True)


def _storable(kind: pa.DataType, column: str) -> pa.DataType:
    """``kind`` as an Arrow type that pyiceberg maps to an Iceberg type without loss."""
    if pa.types.is_dictionary(kind):
        return _storable(kind.value_type, column)
    if pa.types.is_unsigned_integer(kind):
        return {8: pa.int32(), 16: pa.int32(), 32: pa.int64()}.get(kind.bit_width, pa.decimal128(20, 0))
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz="UTC" if kind.tz else None)
    if pa.types.is_time(kind):
        return pa.time64("us")
    if pa.types.is_decimal(kind) and kind.precision <= 38:
        return pa.decimal128(kind.precision, kind.scale)
    if pa.types.is_nested(kind) or pa.types.is_null(kind) or pa.types.is_decimal(kind):
        raise ModelError(
            f"column '{column}' has type {kind}, which has no Iceberg equivalent here; "
            "cast it to a scalar type",
            column=column,
            type=str(kind),
        )
    return kind


def duckdb_type_for(iceberg_type: IcebergType) -> str:
    """The DuckDB type that writes exactly ``iceberg_type`` to Parquet."""
    if isinstance(iceberg_type, DecimalType):
        return f"DECIMAL({iceberg_type.precision}, {iceberg_type.scale})"
    names = {
        BooleanType: "BOOLEAN",
        IntegerType: "INTEGER",
        LongType: "BIGINT",
        FloatType: "FLOAT",
        DoubleType: "DOUBLE",
        StringType: "VARCHAR",
        BinaryType: "BLOB",
        DateType: "DATE",
        TimeType: "TIME",
        TimestampType: "TIMESTAMP",
        TimestamptzType: "TIMESTAMPTZ",
    }
    for kind, name in names.items():
        if isinstance(iceberg_type, kind):
            return name
    raise ModelError(f"Iceberg type {iceberg_type} is not supported by the DuckDB engine")

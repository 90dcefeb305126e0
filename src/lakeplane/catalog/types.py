"""Mapping between engine column types and Iceberg types."""

from __future__ import annotations

import re

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

_SIMPLE: dict[str, IcebergType] = {
    "BOOLEAN": BooleanType(),
    "TINYINT": IntegerType(),
    "SMALLINT": IntegerType(),
    "INTEGER": IntegerType(),
    "UTINYINT": IntegerType(),
    "USMALLINT": IntegerType(),
    "BIGINT": LongType(),
    "UINTEGER": LongType(),
    "HUGEINT": DecimalType(38, 0),
    "UBIGINT": DecimalType(20, 0),
    "FLOAT": FloatType(),
    "DOUBLE": DoubleType(),
    "VARCHAR": StringType(),
    "UUID": StringType(),
    "BLOB": BinaryType(),
    "DATE": DateType(),
    "TIME": TimeType(),
    "TIMESTAMP": TimestampType(),
    "TIMESTAMP_NS": TimestampType(),
    "TIMESTAMP_MS": TimestampType(),
    "TIMESTAMP_S": TimestampType(),
    "TIMESTAMP WITH TIME ZONE": TimestamptzType(),
}

#: Declared raw field types (``lakeplane.yaml``) as DuckDB types.
FIELD_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "INTEGER",
    "long": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}

_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def iceberg_type_for(duckdb_type: str, column: str) -> IcebergType:
    """The Iceberg type that holds a DuckDB column type."""
    upper = duckdb_type.upper()
    if upper in _SIMPLE:
        return _SIMPLE[upper]
    if match := _DECIMAL.fullmatch(upper):
        return DecimalType(int(match[1]), int(match[2]))
    raise ModelError(
        f"column '{column}' has type {duckdb_type}, which has no Iceberg equivalent here; "
        "cast it to a scalar type", column=column, type=duckdb_type,
    )


def duckdb_type_for(iceberg_type: IcebergType) -> str:
    """The DuckDB type that writes exactly ``iceberg_type`` to Parquet."""
    if isinstance(iceberg_type, DecimalType):
        return f"DECIMAL({iceberg_type.precision}, {iceberg_type.scale})"
    names = {
        BooleanType: "BOOLEAN", IntegerType: "INTEGER", LongType: "BIGINT", FloatType: "FLOAT",
        DoubleType: "DOUBLE", StringType: "VARCHAR", BinaryType: "BLOB", DateType: "DATE",
        TimeType: "TIME", TimestampType: "TIMESTAMP", TimestamptzType: "TIMESTAMPTZ",
    }
    for kind, name in names.items():
        if isinstance(iceberg_type, kind):
            return name
    raise ModelError(f"Iceberg type {iceberg_type} is not supported by the DuckDB engine")

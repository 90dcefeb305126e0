"""An S3 lake (read through pyarrow datasets, not DuckDB's own reader) binds columns by field id too."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tests.backends.conftest import S3Endpoint
from tests.catalog.test_binding import (
    COLUMNS,
    ORDERS,
    evolve_with_pyiceberg,
    expected_rows,
    make_orders,
    rows_of,
)


def test_an_evolved_table_on_s3_reads_by_id(tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str) -> None:
    lake = make_orders(tmp_path / "shop", moto_s3.storage_overrides(f"s3://{s3_bucket}/lake"))
    assert not lake.storage.is_local
    evolve_with_pyiceberg(lake)
    result = lake.query("SELECT * FROM processed.orders ORDER BY order_id")
    assert result.schema.names == COLUMNS
    assert result.schema.field("quantity").type == pa.int64()
    assert rows_of(result) == expected_rows(lake)
    oracle = lake.catalog.load(ORDERS).scan().to_arrow().sort_by("order_id").select(COLUMNS)
    assert rows_of(result) == rows_of(oracle)
    filtered = lake.query("SELECT sum(quantity) AS q FROM processed.orders WHERE price > 1")
    assert filtered.to_pylist() == [{"q": 14}]

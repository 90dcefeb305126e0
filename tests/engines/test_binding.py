"""How data files bind to a scan's columns, from their footers alone (no engine, no catalog)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakeplane.engines.base import ScanSource
from lakeplane.engines.binding import FIELD_ID_KEY, BoundColumn, bind_files, same_type
from lakeplane.errors import EngineError


def with_id(name: str, kind: pa.DataType, field_id: int) -> pa.Field:
    return pa.field(name, kind, metadata={FIELD_ID_KEY: str(field_id).encode()})


READ = pa.schema([with_id("quantity", pa.int64(), 3), with_id("note", pa.large_string(), 7)])
FOOTERS = {
    # written with ids, before the rename, as int, and before note (id 7) existed; its own old
    # note (id 6, dropped since) must not be read as the new one
    "a.parquet": pa.schema([with_id("qty", pa.int32(), 3), with_id("note", pa.string(), 6)]),
    "b.parquet": pa.schema([with_id("quantity", pa.int64(), 3), with_id("note", pa.string(), 7)]),
    # without ids: bound through the name mapping, which maps qty (an old name) to 3
    "c.parquet": pa.schema([pa.field("qty", pa.int32()), pa.field("note", pa.string())]),
    "d.parquet": pa.schema([with_id("qty", pa.int32(), 3), with_id("note", pa.string(), 6)]),
}


def test_files_group_by_how_their_columns_bind() -> None:
    source = ScanSource("t", list(FOOTERS), READ, name_mapping={"qty": 3, "quantity": 3, "note": 6})
    groups = bind_files(source, FOOTERS.__getitem__)
    assert [(g.files, g.by_id) for g in groups] == [
        (("a.parquet", "d.parquet"), True),
        (("b.parquet",), True),
        (("c.parquet",), False),
    ]
    old, new, unnamed = (g.columns for g in groups)
    assert old == (
        BoundColumn("quantity", pa.int64(), "qty", pa.int32()),
        BoundColumn("note", pa.large_string()),
    )
    assert new == (
        BoundColumn("quantity", pa.int64(), "quantity"),
        BoundColumn("note", pa.large_string(), "note"),
    )
    assert unnamed == old, "the old note of a file without ids is the dropped column too"
    assert groups[2].physical_schema() == pa.schema([pa.field("qty", pa.int32())])


def test_a_scan_schema_without_ids_is_refused() -> None:
    source = ScanSource("t", ["b.parquet"], pa.schema([pa.field("quantity", pa.int64())]))
    with pytest.raises(EngineError, match="column 'quantity' has no field id"):
        bind_files(source, FOOTERS.__getitem__)


def test_types_that_read_without_a_cast() -> None:
    assert same_type(pa.string(), pa.large_string())
    assert same_type(pa.timestamp("us", tz="+00:00"), pa.timestamp("us", tz="UTC"))
    assert not same_type(pa.timestamp("ns"), pa.timestamp("us"))
    assert not same_type(pa.timestamp("us"), pa.timestamp("us", tz="UTC"))
    assert not same_type(pa.decimal128(7, 2), pa.decimal128(12, 2))
    assert not same_type(pa.float32(), pa.float64())

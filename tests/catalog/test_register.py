"""``register``: existing Parquet files and Iceberg tables brought into the lake.

Files are written by pyarrow and DuckDB as other tools write them (no field ids, dictionary
encoding, Hive folders); every registered table is read back through lakeplane's query path and
by pyiceberg and compared with pyarrow's reading of the sources.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pyiceberg.catalog.sql import SqlCatalog

from lakeplane.catalog.upgrade import NAME_MAPPING_KEY
from lakeplane.cli.main import cli
from lakeplane.errors import AccessDenied, RegisterError
from lakeplane.lake import Lake, init_project, open_lake
from tests.backends.conftest import S3Endpoint, moto_s3, s3_bucket  # noqa: F401

TABLE = "tpch.curated.lineitem"
D1, D2, D3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def lineitems(day: dt.date, n: int = 50, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "ds": pa.array([day] * n, pa.date32()),
            "orderkey": pa.array(range(offset, offset + n), pa.int64()),
            "quantity": pa.array([i % 7 for i in range(n)], pa.int32()),
            "price": pa.array([round(1.5 * i, 2) for i in range(n)], pa.float64()),
            "status": pa.array(["F" if i % 3 else "O" for i in range(n)], pa.string()),
            "shipped_at": pa.array(
                [dt.datetime(2026, 11, 1, 8) + dt.timedelta(hours=5 * i) for i in range(n)],
                pa.timestamp("us"),
            ),
        }
    )


def rows_of(table: pa.Table) -> list[tuple[object, ...]]:
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def lakeplane_rows(lake: Lake, table: str, principal: str | None = None) -> list[tuple[object, ...]]:
    return rows_of(lake.query(f"SELECT * FROM {table}", principal=principal))


def pyarrow_rows(paths: list[Path]) -> list[tuple[object, ...]]:
    """The sources as pyarrow reads them, without partition folders turned into columns."""
    return sorted((row for p in paths for row in rows_of(pq.read_table(p, partitioning=None))), key=repr)


def head(lake: Lake, table: str) -> int | None:
    snapshot = lake.catalog.load(table).current_snapshot()
    return snapshot.snapshot_id if snapshot else None


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """An empty lake project whose domain is ``tpch``."""
    init_project(tmp_path / "project", "tpch")
    return open_lake(tmp_path / "project")


def write_days(folder: Path, days: tuple[dt.date, ...] = (D1, D2), **kwargs: Any) -> list[Path]:
    """One pyarrow file per day under Hive folders ``ds=YYYY-MM-DD`` (the column inside too)."""
    paths = []
    for i, day in enumerate(days):
        path = folder / f"ds={day.isoformat()}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(lineitems(day, offset=100 * i), path, **kwargs)
        paths.append(path)
    return paths


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


# -- in place, copied, partitions ----------------------------------------------------------------
def test_files_inside_the_lake_are_added_in_place(lake: Lake) -> None:
    paths = write_days(Path(lake.storage.path("landing/lineitem")))
    result = lake.register(TABLE, [lake.storage.path("landing/lineitem")])
    assert result.created and result.in_place == 2 and result.copied == 0 and result.rows == 100
    table = lake.catalog.load(TABLE)
    assert sorted(t.file.file_path for t in table.scan().plan_files()) == sorted(f"file://{p}" for p in paths)
    assert lakeplane_rows(lake, TABLE) == pyarrow_rows(paths)
    assert rows_of(table.scan().to_arrow()) == pyarrow_rows(paths)  # another reader: by name mapping
    assert table.name_mapping() is not None and NAME_MAPPING_KEY in table.properties
    # the inferred identity partition holds the real values, not NULL
    assert [f["partition"] for f in lake.describe(TABLE)["files"]] == [
        {"ds": "2026-11-01"},
        {"ds": "2026-11-02"},
    ]


def test_files_outside_are_copied_and_the_sources_stay(lake: Lake, tmp_path: Path) -> None:
    paths = write_days(tmp_path / "export")
    before = {p: p.read_bytes() for p in paths}
    result = lake.register(TABLE, [str(tmp_path / "export")])
    assert result.copied == 2 and result.in_place == 0
    location = lake.catalog.load(TABLE).location().removeprefix("file://")
    for file in result.files:
        assert file.path.startswith(f"file://{location}/data/registered/ds=")
        assert Path(file.path.removeprefix("file://")).read_bytes() in before.values()
    assert all(p.read_bytes() == before[p] for p in paths)
    assert lakeplane_rows(lake, "lineitem") == pyarrow_rows(paths)
    assert lake.query("SELECT count(*) AS n FROM lineitem WHERE ds = DATE '2026-11-02'").to_pylist() == [
        {"n": 50}
    ]


def test_copy_forces_a_copy_and_in_place_refuses_outside_files(lake: Lake, tmp_path: Path) -> None:
    inside = write_days(Path(lake.storage.path("landing/x")), (D1,))
    outside = write_days(tmp_path / "out", (D2,))
    with pytest.raises(RegisterError, match="--in-place needs files inside the lake") as refused:
        lake.register(TABLE, [str(outside[0])], mode="in-place")
    assert refused.value.file == str(outside[0]) and not lake.catalog.table_exists(
        lake.catalog.resolve(TABLE, "tpch")
    )
    result = lake.register(TABLE, [str(inside[0])], mode="copy")
    assert result.copied == 1 and "/data/registered/" in result.files[0].path


def test_partition_spec_given(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "flat" / "items.parquet"
    path.parent.mkdir()
    pq.write_table(lineitems(D1, n=40), path, row_group_size=10)
    with pytest.raises(RegisterError, match="more than one value of a partition field"):
        lake.register(TABLE, [str(path)], partition_by=["day(shipped_at)"])  # 40 rows, 5 h apart: 9 days
    with pytest.raises(RegisterError, match="spans several values of partition field orderkey_bucket_4"):
        lake.register(TABLE, [str(path)], partition_by=["bucket[4](orderkey)"])  # 40 keys, 4 buckets
    assert lake.tables() == []
    result = lake.register(TABLE, [str(path)], partition_by=["truncate[1000](orderkey), ds"])
    assert result.created
    info = lake.describe(TABLE)
    assert [(f["source"], f["transform"]) for f in info["partition_spec"]] == [
        ("orderkey", "truncate[1000]"),
        ("ds", "identity"),
    ]
    assert info["files"][0]["partition"] == {"orderkey_truncate_1000": "0", "ds": "2026-11-01"}
    assert lakeplane_rows(lake, TABLE) == pyarrow_rows([path])


def test_bucket_partitions_are_computed_from_the_column(lake: Lake, tmp_path: Path) -> None:
    paths = []
    for status in ("F", "O"):
        path = tmp_path / f"status-{status}.parquet"
        items = lineitems(D1, n=10)
        pq.write_table(items.set_column(4, "status", pa.array([status] * 10)), path)
        paths.append(path)
    lake.register("curated.by_status", [str(p) for p in paths], partition_by=["bucket[8](status)"])
    buckets = [f["partition"]["status_bucket_8"] for f in lake.describe("by_status")["files"]]
    assert None not in buckets and len(buckets) == 2
    from pyiceberg.transforms import BucketTransform
    from pyiceberg.types import StringType

    hash_of = BucketTransform(8).transform(StringType())
    assert sorted(int(str(b)) for b in buckets) == sorted(int(str(hash_of(s))) for s in ("F", "O"))
    assert lakeplane_rows(lake, "by_status") == pyarrow_rows(paths)
    # a reader pruning by bucket finds each status in its own file
    table = lake.catalog.load("tpch.curated.by_status")
    assert len(list(table.scan(row_filter="status = 'O'").plan_files())) == 1


def test_partition_by_day_and_appending_to_the_table(lake: Lake, tmp_path: Path) -> None:
    first = tmp_path / "a.parquet"
    pq.write_table(lineitems(D1, n=4), first)  # shipped 08:00 to 23:00 on one day
    lake.register(TABLE, [str(first)], partition_by=["day(shipped_at)"])
    second = tmp_path / "b.parquet"
    pq.write_table(
        lineitems(D2, n=4, offset=10).drop_columns(["status"]), second
    )  # an optional column left out
    with pytest.raises(RegisterError, match="partitioned by day"):
        lake.register(TABLE, [str(second)], partition_by=["ds"])
    lake.register(TABLE, [str(second)])
    info = lake.describe(TABLE)
    assert [f["partition"] for f in info["files"]] == [{"shipped_at_day": "2026-11-01"}] * 2
    assert len([s for s in info["snapshots"] if s["operation"] == "append"]) == 2
    expected = rows_of(pq.read_table(first)) + rows_of(
        pq.read_table(second)
        .append_column("status", pa.nulls(4, pa.string()))
        .select(pq.read_table(first).column_names)
    )
    assert lakeplane_rows(lake, TABLE) == sorted(expected, key=repr)


# -- other writers -------------------------------------------------------------------------------
def test_duckdb_files_without_field_ids_and_dictionary_encoded_pyarrow_files(
    lake: Lake, tmp_path: Path
) -> None:
    duck = tmp_path / "duck" / "ds=2026-11-01" / "data_0.parquet"
    duck.parent.mkdir(parents=True)
    con = duckdb.connect()
    source = lineitems(D1)
    con.register("src", source)
    con.execute(f"COPY src TO '{duck}' (FORMAT parquet)")
    assert pq.read_schema(duck).field("orderkey").metadata is None  # DuckDB writes no field ids unless asked
    dictionary = tmp_path / "dict" / "ds=2026-11-02" / "part.parquet"
    dictionary.parent.mkdir(parents=True)
    second = lineitems(D2, offset=100)
    coded = second.set_column(4, "status", second.column("status").dictionary_encode())
    pq.write_table(coded, dictionary, use_dictionary=True)
    assert pa.types.is_dictionary(pq.read_schema(dictionary).field("status").type)
    result = lake.register(TABLE, [str(duck), str(dictionary)])
    assert result.rows == 100
    assert lakeplane_rows(lake, TABLE) == pyarrow_rows([duck, dictionary])
    batches = lake.catalog.load(TABLE).scan().to_arrow_batch_reader()  # pyiceberg: one batch per file
    read = sorted((tuple(r.values()) for batch in batches for r in batch.to_pylist()), key=repr)
    assert read == pyarrow_rows([duck, dictionary])


def test_spark_style_folders_get_the_column_written_into_copies(lake: Lake, tmp_path: Path) -> None:
    """Spark's ``partitionBy`` and DuckDB's ``PARTITION_BY`` keep the column in folder names only."""
    out = tmp_path / "spark"
    con = duckdb.connect()
    source = pa.concat_tables([lineitems(D1), lineitems(D2, offset=100)])
    con.register("src", source)
    con.execute(f"COPY src TO '{out}' (FORMAT parquet, PARTITION_BY (ds))")
    (out / "_SUCCESS").write_text("")  # as Spark leaves it: skipped
    files = sorted(out.rglob("*.parquet"))
    assert len(files) == 2 and "ds" not in pq.read_schema(files[0]).names
    result = lake.register(TABLE, [str(out)])
    assert result.copied == 2 and result.rows == 100
    info = lake.describe(TABLE)
    assert info["schema"][-1] == {"id": 6, "name": "ds", "type": "date", "required": False}
    assert [f["partition"] for f in info["files"]] == [{"ds": "2026-11-01"}, {"ds": "2026-11-02"}]
    columns = ["orderkey", "quantity", "price", "status", "shipped_at", "ds"]
    assert lakeplane_rows(lake, TABLE) == rows_of(source.select(columns))
    assert rows_of(lake.catalog.load(TABLE).scan().to_arrow()) == rows_of(source.select(columns))
    with pytest.raises(RegisterError, match="already in"):
        lake.register(TABLE, [str(out)])
    # in place such a file cannot be added: its partition value would be recorded as NULL
    inside = Path(lake.storage.path("landing/spark"))
    inside.parent.mkdir(parents=True)
    con.execute(
        f"COPY (SELECT * FROM src WHERE ds = DATE '2026-11-01') TO '{inside}' (FORMAT parquet, PARTITION_BY (ds))"
    )
    with pytest.raises(RegisterError, match="column 'ds' exists only in its folder names") as refused:
        lake.register("curated.other", [str(inside)], mode="in-place")
    assert refused.value.reason == "partition" and lake.tables() == [lake.catalog.resolve(TABLE, "tpch")]


def test_folder_values_take_the_table_type_and_hive_nulls(lake: Lake, tmp_path: Path) -> None:
    out = tmp_path / "by_country"
    for country in ("US", "__HIVE_DEFAULT_PARTITION__"):
        folder = out / f"country={country}"
        folder.mkdir(parents=True)
        pq.write_table(lineitems(D1, n=3, offset=10 if country == "US" else 20), folder / "part-0.parquet")
    lake.register("curated.by_country", [str(out)])
    rows = lake.query(
        "SELECT country, count(*) AS n FROM by_country GROUP BY country ORDER BY country"
    ).to_pylist()
    assert rows == [{"country": "US", "n": 3}, {"country": None, "n": 3}]
    wrong = tmp_path / "wrong" / "ds=yesterday"
    wrong.mkdir(parents=True)
    pq.write_table(lineitems(D1, n=3).drop_columns(["ds"]), wrong / "part-0.parquet")
    existing_table(lake, tmp_path)  # ds is a date column there
    with pytest.raises(RegisterError, match="folder ds=yesterday is not a value of the table's column 'ds'"):
        lake.register(TABLE, [str(tmp_path / "wrong")])


# -- an existing Iceberg table -------------------------------------------------------------------
def test_register_an_iceberg_table_by_its_metadata_file(lake: Lake, tmp_path: Path) -> None:
    warehouse = Path(lake.storage.path("warehouse"))  # another catalog's table, in the lake's storage
    warehouse.mkdir()
    other = SqlCatalog("other", uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")
    other.create_namespace("shop")
    day1, day2 = lineitems(D1, n=10), lineitems(D2, n=10, offset=10)
    written = other.create_table("shop.items", schema=day1.schema)
    written.append(day1)
    written.append(day2)
    location = written.metadata_location.removeprefix("file://")
    first_snapshot = written.history()[0].snapshot_id

    result = lake.register("curated.items", [location])
    assert result.metadata_file == location and result.table_rows == 20 and result.created
    table = lake.catalog.load("tpch.curated.items")
    assert [s.snapshot_id for s in table.snapshots()] == [s.snapshot_id for s in written.snapshots()]
    assert table.name_mapping() is not None
    assert lakeplane_rows(lake, "items") == rows_of(pa.concat_tables([day1, day2]))
    old = lake.catalog.load("tpch.curated.items").scan(snapshot_id=first_snapshot).to_arrow()
    assert rows_of(old) == rows_of(day1)  # its history came along
    with pytest.raises(RegisterError, match="already exists at this metadata file"):
        lake.register("curated.items", [location])
    # appending Parquet files to it afterwards works as for any table
    extra = tmp_path / "extra.parquet"
    pq.write_table(lineitems(D3, n=5, offset=50), extra)
    lake.register("items", [str(extra)])
    assert len(lakeplane_rows(lake, "items")) == 25


def test_a_metadata_file_that_does_not_parse_is_refused(lake: Lake, tmp_path: Path) -> None:
    broken = tmp_path / "metadata" / "v3.metadata.json"
    broken.parent.mkdir()
    broken.write_text('{"format-version": 2, "table-uuid": ')
    with pytest.raises(RegisterError, match="not an Iceberg table metadata file") as refused:
        lake.register("curated.items", [str(broken)])
    assert refused.value.reason == "metadata" and refused.value.file == str(broken)
    broken.write_text(json.dumps({"format-version": 2, "hello": "world"}))
    with pytest.raises(RegisterError, match="not an Iceberg table metadata file"):
        lake.register("curated.items", [str(broken)])
    with pytest.raises(RegisterError, match="no such metadata file"):
        lake.register("curated.items", [str(tmp_path / "v9.metadata.json")])
    assert lake.tables() == []


# -- refusals ------------------------------------------------------------------------------------
def existing_table(lake: Lake, tmp_path: Path) -> int | None:
    """``TABLE`` made from one day's file; returns its head."""
    first = tmp_path / "seed" / "seed.parquet"
    first.parent.mkdir(exist_ok=True)
    pq.write_table(lineitems(D1, n=5), first)
    lake.register(TABLE, [str(first)])
    return head(lake, TABLE)


@pytest.mark.parametrize(
    ("change", "message", "column"),
    [
        (
            lambda t: t.append_column("discount", pa.array([0.1] * t.num_rows)),
            "column 'discount' is not in the table",
            "discount",
        ),
        (
            lambda t: t.set_column(1, "orderkey", pa.array([str(i) for i in range(t.num_rows)])),
            "column 'orderkey' is string, the table's is long",
            "orderkey",
        ),
        (
            lambda t: t.set_column(2, "quantity", pa.array([1.5] * t.num_rows)),
            "column 'quantity' is double, the table's is int",
            "quantity",
        ),
        (
            lambda t: t.set_column(
                5, "shipped_at", t.column("shipped_at").cast(pa.timestamp("us", tz="UTC"))
            ),
            "column 'shipped_at' is timestamptz",
            "shipped_at",
        ),
        (
            lambda t: t.cast(
                pa.schema(
                    [
                        f.with_metadata({b"PARQUET:field_id": str(7 - i).encode()})
                        for i, f in enumerate(t.schema)
                    ]
                )
            ),
            "column 'ds' carries field id 7, the table's is 1",
            "ds",
        ),
    ],
    ids=["extra column", "string for long", "double for int", "zoned timestamp", "other field ids"],
)
def test_a_file_whose_schema_does_not_map_is_refused(
    lake: Lake, tmp_path: Path, change: Any, message: str, column: str
) -> None:
    before = existing_table(lake, tmp_path)
    good = tmp_path / "good.parquet"
    pq.write_table(lineitems(D2, n=5), good)
    bad = tmp_path / "bad.parquet"
    pq.write_table(change(lineitems(D2, n=5)), bad)
    with pytest.raises(RegisterError, match=message) as refused:
        lake.register(TABLE, [str(good), str(bad)])
    assert refused.value.file == str(bad) and refused.value.column == column
    assert head(lake, TABLE) == before  # the good file was not committed either


def test_promoted_types_and_a_missing_required_column(lake: Lake, tmp_path: Path) -> None:
    from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
    from pyiceberg.schema import Schema
    from pyiceberg.types import DoubleType, LongType, NestedField, StringType

    from lakeplane.catalog import TableRef

    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "amount", DoubleType(), required=False),
        NestedField(3, "note", StringType(), required=False),
    )
    lake.catalog.create(TableRef("tpch", "curated", "payments"), schema, UNPARTITIONED_PARTITION_SPEC)
    narrow = tmp_path / "narrow.parquet"  # int32 and float32: Iceberg promotes both
    narrow_schema = pa.schema([pa.field("id", pa.int32(), nullable=False), pa.field("amount", pa.float32())])
    pq.write_table(pa.table({"id": [1, 2], "amount": [1.5, 2.5]}, schema=narrow_schema), narrow)
    nullable = tmp_path / "nullable.parquet"
    pq.write_table(pa.table({"id": pa.array([3], pa.int64()), "amount": [1.0]}), nullable)
    with pytest.raises(RegisterError, match="column 'id' may hold nulls here but is required in the table"):
        lake.register("payments", [str(nullable)])
    noted = tmp_path / "noted.parquet"
    noted_schema = pa.schema(
        [pa.field("id", pa.int64(), nullable=False), ("amount", pa.float64()), ("note", pa.string())]
    )
    pq.write_table(pa.table({"id": [9], "amount": [9.0], "note": ["n"]}, schema=noted_schema), noted)
    lake.register("payments", [str(narrow), str(noted)])
    assert lakeplane_rows(lake, "payments") == [(1, 1.5, None), (2, 2.5, None), (9, 9.0, "n")]
    no_id = tmp_path / "no_id.parquet"
    pq.write_table(pa.table({"amount": [3.0], "note": ["x"]}), no_id)
    with pytest.raises(RegisterError, match="required column 'id' is missing"):
        lake.register("payments", [str(no_id)])


def test_a_file_spanning_two_partition_values_is_refused(lake: Lake, tmp_path: Path) -> None:
    write_days(tmp_path / "days", (D1,))
    mixed = tmp_path / "days" / "ds=2026-11-02" / "part-0.parquet"
    mixed.parent.mkdir()
    pq.write_table(pa.concat_tables([lineitems(D2, n=3), lineitems(D3, n=3)]), mixed)
    with pytest.raises(RegisterError, match="spans several values of partition column 'ds'") as refused:
        lake.register(TABLE, [str(tmp_path / "days")])
    assert str(refused.value.file).endswith("ds=2026-11-02/part-0.parquet")
    assert lake.tables() == []
    lying = tmp_path / "lying" / "ds=2026-11-05" / "part-0.parquet"  # the folder says another day
    lying.parent.mkdir(parents=True)
    pq.write_table(lineitems(D1, n=3), lying)
    with pytest.raises(
        RegisterError, match="its folder says ds=2026-11-05 but its 'ds' column holds 2026-11-01"
    ):
        lake.register(TABLE, [str(lying)])


def test_not_parquet_and_missing_paths_are_refused(lake: Lake, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_days(folder, (D1,))
    fake = folder / "ds=2026-11-02" / "part-0.parquet"
    fake.parent.mkdir()
    fake.write_text("order,qty\n1,2\n")
    with pytest.raises(RegisterError, match="not a Parquet file") as refused:
        lake.register(TABLE, [str(folder)])
    assert (
        str(refused.value.file).endswith("ds=2026-11-02/part-0.parquet")
        and refused.value.reason == "not parquet"
    )
    with pytest.raises(RegisterError, match="no such file or folder") as missing:
        lake.register(TABLE, [str(tmp_path / "nowhere")])
    assert missing.value.reason == "missing"
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegisterError, match="holds no \\*.parquet file"):
        lake.register(TABLE, [str(tmp_path / "empty")])
    assert lake.tables() == []


def test_a_table_whose_files_all_lack_an_optional_column_reads_it_as_null(lake: Lake, tmp_path: Path) -> None:
    from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    from lakeplane.catalog import TableRef

    schema = Schema(NestedField(1, "id", LongType()), NestedField(2, "note", StringType()))
    lake.catalog.create(TableRef("tpch", "curated", "notes"), schema, UNPARTITIONED_PARTITION_SPEC)
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64())}), path)
    lake.register("notes", [str(path)])
    assert lakeplane_rows(lake, "notes") == [(1, None), (2, None)]


def test_another_tables_files_and_a_bare_new_name_are_refused(lake: Lake, tmp_path: Path) -> None:
    existing_table(lake, tmp_path)
    data = lake.catalog.load(TABLE).location().removeprefix("file://") + "/data"
    with pytest.raises(RegisterError, match="a file of table tpch.curated.lineitem") as refused:
        lake.register("curated.copycat", [data])
    assert refused.value.reason == "another table's file"
    assert lake.register("curated.copycat", [data], mode="copy").copied == 1
    with pytest.raises(RegisterError, match="a new table is named <zone>.<name> or <domain>.<zone>.<name>"):
        lake.register("brand_new", [data], mode="copy")


# -- never twice ---------------------------------------------------------------------------------
@pytest.mark.parametrize("inside", [True, False], ids=["in place", "copied"])
def test_registering_the_same_files_again_is_refused_and_adds_nothing(
    lake: Lake, tmp_path: Path, inside: bool
) -> None:
    folder = Path(lake.storage.path("landing/li")) if inside else tmp_path / "li"
    paths = write_days(folder)
    lake.register(TABLE, [str(folder)])
    before = head(lake, TABLE)
    with pytest.raises(RegisterError, match="already in tpch.curated.lineitem") as refused:
        lake.register(TABLE, [str(folder)])
    assert refused.value.reason == "already registered"
    # a new file next to the old ones does not sneak the old ones in again
    write_days(folder, (D3,))
    with pytest.raises(RegisterError, match="already in"):
        lake.register(TABLE, [str(folder)])
    assert head(lake, TABLE) == before
    assert lakeplane_rows(lake, TABLE) == pyarrow_rows(paths)


@pytest.mark.parametrize("inside", [True, False], ids=["in place", "copied"])
def test_two_concurrent_registers_of_the_same_files_add_them_once(
    lake: Lake, tmp_path: Path, inside: bool
) -> None:
    folder = Path(lake.storage.path("landing/li")) if inside else tmp_path / "li"
    paths = write_days(folder, (D1, D2, D3))
    existing_table(lake, tmp_path)  # both append to one table (creation races are the catalog's)
    lakes = [open_lake(lake.project_dir) for _ in range(4)]
    start = threading.Barrier(len(lakes))
    outcomes: list[str] = []

    def register(other: Lake) -> None:
        start.wait()
        try:
            other.register(TABLE, [str(folder)])
            outcomes.append("registered")
        except RegisterError as exc:
            assert exc.reason == "already registered", exc
            outcomes.append("refused")

    threads = [threading.Thread(target=register, args=(other,)) for other in lakes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 3 + ["registered"]
    seed = pyarrow_rows([tmp_path / "seed" / "seed.parquet"])
    assert lakeplane_rows(lake, TABLE) == sorted(seed + pyarrow_rows(paths), key=repr)
    files = [t.file.file_path for t in lake.catalog.load(TABLE).scan().plan_files()]
    assert len(files) == len(set(files)) == 4


def register_in_a_process(project: str, folder: str) -> str:
    try:
        open_lake(project).register(TABLE, [folder])
    except RegisterError as exc:
        return str(exc.reason)
    return "registered"


@pytest.mark.slow
def test_concurrent_registers_in_separate_processes_add_the_files_once(lake: Lake, tmp_path: Path) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    paths = write_days(tmp_path / "li", (D1, D2, D3))
    existing_table(lake, tmp_path)
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcomes = list(
            pool.map(register_in_a_process, [str(lake.project_dir)] * 3, [str(tmp_path / "li")] * 3)
        )
    assert sorted(outcomes) == ["already registered"] * 2 + ["registered"]
    seed = pyarrow_rows([tmp_path / "seed" / "seed.parquet"])
    assert lakeplane_rows(lake, TABLE) == sorted(seed + pyarrow_rows(paths), key=repr)


# -- governance, CLI -----------------------------------------------------------------------------
POLICY = """\
principals:
  users:
    loader: {roles: [loader]}
    appender: {roles: [appender]}
    reader: {roles: [reader]}
  roles: [loader, appender, reader]
grants:
  - to: role:loader
    privileges: [CREATE, INSERT, SELECT]
    on: tpch
  - to: role:appender
    privileges: [INSERT, SELECT]
    on: tpch
  - to: role:reader
    privileges: [SELECT]
    on: tpch
"""


def test_a_principal_without_the_privilege_is_refused_and_audited(lake: Lake, tmp_path: Path) -> None:
    (lake.project_dir / "policy.yaml").write_text(POLICY)
    paths = write_days(tmp_path / "li")
    with pytest.raises(RegisterError, match="name a principal"):
        lake.register(TABLE, [str(paths[0])])
    with pytest.raises(AccessDenied, match="no CREATE grant"):
        lake.register(TABLE, [str(paths[0])], principal="appender")  # INSERT, but the table is new
    lake.register(TABLE, [str(paths[0])], principal="loader")
    with pytest.raises(AccessDenied, match="'reader' may not register into tpch.curated.lineitem"):
        lake.register(TABLE, [str(paths[1])], principal="reader")
    lake.register("lineitem", [str(paths[1])], principal="appender")
    assert lakeplane_rows(lake, TABLE, principal="reader") == pyarrow_rows(paths)
    log = lake.governance.audit_log()
    registers = [r for r in log.search(table=TABLE) if r.sql.startswith("REGISTER")]
    assert [(r.principal, r.decision) for r in reversed(registers)] == [
        ("appender", "denied"),
        ("loader", "allowed"),
        ("reader", "denied"),
        ("appender", "allowed"),
    ]
    assert registers[0].rows == 50


def test_cli_register_dry_run_then_register(lake: Lake, tmp_path: Path) -> None:
    write_days(tmp_path / "li")
    code, out = invoke(
        lake, "register", "curated.lineitem", str(tmp_path / "li"), "--dry-run", "--output", "json"
    )
    assert code == 0, out
    planned = json.loads(out)
    assert planned["dry_run"] and planned["created"] and planned["rows"] == 100 and planned["copied"] == 2
    assert lake.tables() == []
    code, out = invoke(lake, "register", "curated.lineitem", str(tmp_path / "li"))
    assert code == 0, out
    assert "registered 2 files, 100 rows" in out and "0 in place, 2 copied" in out and "(new table)" in out
    code, out = invoke(lake, "register", "lineitem", str(tmp_path / "li"))
    assert code == 1 and "already in tpch.curated.lineitem" in out
    code, out = invoke(lake, "register", "lineitem", str(tmp_path / "nope"), "--output", "json")
    assert code == 1 and json.loads(out)["reason"] == "missing"
    code, out = invoke(lake, "register", "lineitem", str(tmp_path / "li"), "--partition-by", "week(ds)")
    assert code == 1 and "expected column, year(column)" in out


# -- S3 ------------------------------------------------------------------------------------------
def test_register_on_an_s3_lake_copied_and_in_place(
    tmp_path: Path,
    moto_s3: S3Endpoint,  # noqa: F811
    s3_bucket: str,  # noqa: F811
) -> None:
    init_project(tmp_path / "project", "tpch")
    lake = open_lake(tmp_path / "project", moto_s3.storage_overrides(f"s3://{s3_bucket}/lake"))
    local = write_days(tmp_path / "export", (D1,))
    copied = lake.register(TABLE, [str(tmp_path / "export")])
    assert copied.copied == 1 and copied.files[0].path.startswith(
        f"s3://{s3_bucket}/lake/curated/tpch/lineitem/data/registered/"
    )
    # a file already in the bucket, inside the lake's prefix, is added where it is
    day2 = lineitems(D2, offset=100)
    key = f"{s3_bucket}/lake/landing/ds=2026-11-02/part-0.parquet"
    assert isinstance(lake.storage.fs, pafs.S3FileSystem)
    with lake.storage.fs.open_output_stream(key) as out:
        pq.write_table(day2, out)
    in_place = lake.register(TABLE, [f"s3://{s3_bucket}/lake/landing"])
    assert in_place.in_place == 1 and in_place.files[0].path == f"s3://{key}"
    assert lakeplane_rows(lake, TABLE) == sorted(pyarrow_rows(local) + rows_of(day2), key=repr)
    with pytest.raises(RegisterError, match="already in"):
        lake.register(TABLE, [str(tmp_path / "export")])
    assert len(moto_s3.keys(s3_bucket, "lake/curated/tpch/lineitem/data/registered/")) == 1

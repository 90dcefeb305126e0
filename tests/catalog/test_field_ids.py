"""Open tables: every data file lakeplane writes carries Parquet field ids, every table holds its
name mapping, and other Iceberg readers (pyiceberg here) read every table as lakeplane does."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pyiceberg.table import Table

from lakeplane.catalog import TableRef
from lakeplane.catalog.upgrade import NAME_MAPPING_KEY
from lakeplane.catalog.writer import TableWriter, new_write_dir
from lakeplane.cli.main import cli
from lakeplane.lake import Lake
from tests.conftest import DAY1, DAY2, land_drop, on_engine
from tests.pipelines.test_models import write_model

OLD = TableRef("adtech", "processed", "old_events")
OLD_SCHEMA = pa.schema(
    [pa.field("ds", pa.date32(), nullable=False), ("event", pa.string()), ("n", pa.int64())]
)


def local(uri: str) -> str:
    return uri.removeprefix("file://")


def data_files(table: Table) -> list[str]:
    return [local(task.file.file_path) for task in table.scan().plan_files()]


def pyiceberg_rows(table: Table) -> list[tuple[object, ...]]:
    return sorted((tuple(r.values()) for r in table.scan().to_arrow().to_pylist()), key=repr)


def lakeplane_rows(lake: Lake, table: str) -> list[tuple[object, ...]]:
    return sorted((tuple(r.values()) for r in lake.query(f"SELECT * FROM {table}").to_pylist()), key=repr)


def assert_files_carry_field_ids(table: Table) -> int:
    """Every column of every data file of ``table`` carries its field id; returns the files seen."""
    files = data_files(table)
    for path in files:
        schema = pq.read_schema(path)
        for field in table.schema().fields:
            written = schema.field(field.name)
            assert written.metadata is not None, f"{path}: {field.name} has no field id"
            assert written.metadata[b"PARQUET:field_id"] == str(field.field_id).encode(), (path, field.name)
            if field.required:  # a required column is written REQUIRED (pyiceberg's commit checks it)
                assert not written.nullable, (path, field.name)
    return len(files)


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


def test_every_table_of_a_run_is_readable_by_pyiceberg(demo_lake: Lake, drops: dict) -> None:
    for day in (DAY1, DAY2):
        land_drop(demo_lake, drops[day])
        demo_lake.run(day)
    refs = demo_lake.tables()
    assert len(refs) == 8  # three processed tables, their quarantines, two curated
    checked = 0
    for ref in refs:
        table = demo_lake.catalog.load(ref)
        mapping = table.name_mapping()
        assert mapping is not None, f"{ref} has no {NAME_MAPPING_KEY}"
        assert {(f.names[0], f.field_id) for f in mapping.root} == {
            (f.name, f.field_id) for f in table.schema().fields
        }
        checked += assert_files_carry_field_ids(table)
        assert pyiceberg_rows(table) == lakeplane_rows(demo_lake, str(ref)), f"{ref} reads differently"
    assert checked >= 10, "too few files to prove anything"
    assert pyiceberg_rows(demo_lake.catalog.load("adtech.curated.daily_campaign_stats"))


def write_old_file(lake: Lake, table: Table, rows: pa.Table, day: dt.date) -> str:
    """A data file as lakeplane wrote them before field ids: columns found by name only."""
    path = f"{new_write_dir(OLD)}/ds={day.isoformat()}/old.parquet"
    target = Path(lake.storage.path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, target)
    assert pq.read_schema(target).field("event").metadata is None
    return path


def test_upgrade_sets_the_name_mapping_and_old_files_become_readable(demo_lake: Lake) -> None:
    writer = TableWriter(demo_lake.catalog)
    table = writer.ensure_table(OLD, OLD_SCHEMA, ["ds"], frozenset({"ds"}))
    with table.transaction() as tx:  # a table created before lakeplane set the mapping
        tx.remove_properties(NAME_MAPPING_KEY)
    rows = pa.table({"ds": [DAY1, DAY1], "event": ["a", "b"], "n": [1, 2]}, schema=OLD_SCHEMA)
    path = write_old_file(demo_lake, table, rows, DAY1)
    writer.commit(table, [path], "append", rows.num_rows, 0)
    table = demo_lake.catalog.load(OLD)
    assert NAME_MAPPING_KEY not in table.properties
    with pytest.raises(ValueError, match="does not have field-ids"):
        table.scan().to_arrow()

    code, out = invoke(demo_lake, "--output", "json", "upgrade")
    assert code == 0, out
    assert json.loads(out) == [{"table": str(OLD), "name_mapping": "set"}]
    table = demo_lake.catalog.load(OLD)
    assert pyiceberg_rows(table) == [(DAY1, "a", 1), (DAY1, "b", 2)]

    code, out = invoke(demo_lake, "upgrade")  # idempotent: nothing left to do
    assert code == 0, out
    assert "already set" in out and "0 of 1 tables changed" in out
    assert demo_lake.upgrade()[0].name_mapping == "present"
    assert demo_lake.catalog.load(OLD).metadata_location == table.metadata_location


def test_the_name_mapping_follows_added_columns(demo_lake: Lake) -> None:
    writer = TableWriter(demo_lake.catalog)
    writer.ensure_table(OLD, OLD_SCHEMA, ["ds"], frozenset({"ds"}))
    table = writer.ensure_table(OLD, OLD_SCHEMA.append(pa.field("extra", pa.float64())), ["ds"])
    mapping = table.name_mapping()
    assert mapping is not None
    assert {f.names[0]: f.field_id for f in mapping.root} == writer.field_ids(table)
    assert "extra" in writer.field_ids(table)

    # A mapping missing a column (one set by hand, say) gets it added; the names it held stay.
    stale = '[{"field-id": 1, "names": ["ds", "day"]}]'
    with table.transaction() as tx:
        tx.set_properties({NAME_MAPPING_KEY: stale})
    assert [(u.table, u.name_mapping) for u in demo_lake.upgrade()] == [(str(OLD), "updated")]
    mapping = demo_lake.catalog.load(OLD).name_mapping()
    assert mapping is not None
    names = {f.field_id: f.names for f in mapping.root}
    assert names[1] == ["ds", "day"]
    assert {i: n[0] for i, n in names.items()} == {i: n for n, i in writer.field_ids(table).items()}


def test_model_files_carry_field_ids_on_each_engine(tmp_path: Path, engine: str) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "lakeplane.yaml").write_text("name: t\n")
    lake = on_engine(project, engine)
    write_model(
        project,
        "curated",
        "numbers",
        "-- partition_by: [ds]\n"
        "SELECT :ds AS ds, n, 'n' || CAST(n AS VARCHAR) AS label FROM (VALUES (0), (1), (2)) AS t(n)\n",
    )
    lake.run(DAY1)
    lake.run(DAY2)
    table = lake.catalog.load("t.curated.numbers")
    assert assert_files_carry_field_ids(table) >= 2
    assert {task.file.partition[0] for task in table.scan().plan_files()} == {
        (d - dt.date(1970, 1, 1)).days for d in (DAY1, DAY2)
    }
    assert pyiceberg_rows(table) == lakeplane_rows(lake, "curated.numbers")
    assert len(pyiceberg_rows(table)) == 6

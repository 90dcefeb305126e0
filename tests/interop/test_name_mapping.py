"""Files without field ids (written before lakeplane wrote them, or by a tool that does not) are
read by the independent readers through the table's name mapping, by name, never by position."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeplane.catalog import TableRef
from lakeplane.catalog.writer import TableWriter, new_write_dir
from lakeplane.lake import Lake
from tests.conftest import DAY1, DAY2
from tests.interop.harness import READERS, Answer, Read, Rows, differences, lakeplane_rows, run_reader

pytestmark = [pytest.mark.interop, pytest.mark.slow]

OLD = TableRef("adtech", "processed", "old_events")
SCHEMA = pa.schema([pa.field("ds", pa.date32(), nullable=False), ("event", pa.string()), ("n", pa.int64())])

#: Readers that do not apply the table's name mapping (``schema.name-mapping.default``).
NO_NAME_MAPPING = {
    "datafusion": "iceberg-rust (pyiceberg-core 0.10) does not apply schema.name-mapping.default: it "
    "finds the columns of a file without field ids by the file's own names, so after a rename "
    "the scan fails ('Column kind not found in table')",
    "daft": "daft 0.7 does not apply schema.name-mapping.default: it refuses a data file without "
    "Parquet field ids ('carries no parquet field IDs, but a field ID mapping was supplied')",
}


def write_file_without_ids(lake: Lake, rows: pa.Table, name: str) -> str:
    """A data file whose columns carry no field id, in another order than the table's."""
    path = f"{new_write_dir(OLD)}/ds={rows['ds'][0]}/{name}.parquet"
    target = Path(lake.storage.path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows.select(["n", "event", "ds"]), target)
    assert pq.read_schema(target).field("event").metadata is None
    return path


@pytest.fixture
def old_table(demo_lake: Lake) -> tuple[Lake, list[Read], Rows]:
    """``processed.old_events``: two files without field ids, then ``event`` renamed ``kind``."""
    writer = TableWriter(demo_lake.catalog)
    table = writer.ensure_table(OLD, SCHEMA, ["ds"], frozenset({"ds"}))
    for day, name in ((DAY1, "a"), (DAY2, "b")):
        rows = pa.table({"ds": [day, day], "event": [f"{name}1", f"{name}2"], "n": [1, 2]}, schema=SCHEMA)
        writer.commit(table, [write_file_without_ids(demo_lake, rows, name)], "append", rows.num_rows, 0)
        table = demo_lake.catalog.load(OLD)
    before = table.metadata_location
    with table.update_schema() as update:  # pyiceberg keeps the old name in the mapping
        update.rename_column("event", "kind")
    after = demo_lake.catalog.load(OLD).metadata_location
    expected = sorted(
        ((day, f"{name}{i}", i) for day, name in ((DAY1, "a"), (DAY2, "b")) for i in (1, 2)), key=repr
    )
    reads = [Read("before", before), Read("renamed", after)]
    return demo_lake, reads, Rows(("ds", "kind", "n"), tuple(expected))


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param(
            r, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=NO_NAME_MAPPING[r])
        )
        if r in NO_NAME_MAPPING
        else r
        for r in READERS
    ],
)
def test_files_without_field_ids_read_through_the_name_mapping(
    reader_python: Path, tmp_path: Path, old_table: tuple[Lake, list[Read], Rows], reader: str
) -> None:
    _, reads, renamed = old_table
    got = run_reader(reader_python, reader, reads, tmp_path / reader)
    before = Rows(("ds", "event", "n"), renamed.rows)
    found = {
        name: why
        for name, want in (("before", before), ("renamed", renamed))
        if (why := differences(Answer(rows=want), got[name], sides=("the table", reader))) is not None
    }
    assert not found, found


def test_lakeplane_reads_files_without_field_ids_after_a_rename(
    old_table: tuple[Lake, list[Read], Rows],
) -> None:
    lake, _, renamed = old_table
    why = differences(Answer(rows=renamed), lakeplane_rows(lake, str(OLD)), sides=("the table", "lakeplane"))
    assert why is None, why

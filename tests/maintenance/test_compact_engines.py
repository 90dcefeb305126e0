"""Compaction on each engine (DuckDB, Spark), and the compacted tables read by the independent
Iceberg readers of the interop tier exactly as lakeplane reads them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lakeplane.lake import Lake
from lakeplane.maintenance.actions import MaintenanceAction
from tests.conftest import ENGINES, on_engine
from tests.interop.conftest import reader_python  # noqa: F401 - the readers' virtualenv, as a fixture
from tests.interop.harness import READERS, Answer, Read, differences, lakeplane_rows, reading_lake, run_reader
from tests.maintenance.test_compact import FULL, TABLE, files_by_partition, head, rows, small_files_lake

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Compacted:
    engine: str
    lake: Lake
    rows_before: list[tuple[object, ...]]
    answer_before: Answer
    action: MaintenanceAction
    #: The table's metadata file right after the compaction, and after a manifest rewrite that followed.
    compacted_metadata: str
    rewritten_metadata: str


@pytest.fixture(scope="module", params=ENGINES)
def compacted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Compacted:
    """A table of 4 small files in each of 3 partitions, compacted (sorted) by each engine in turn."""
    engine = str(request.param)
    lake = small_files_lake(tmp_path_factory.mktemp(f"compact-{engine}") / "p", writes=4)
    before = rows(lake)
    answer = lakeplane_rows(reading_lake(lake), TABLE)
    action = on_engine(lake, engine).compact(TABLE, sort_by=["country", "event_id"])
    compacted_metadata = lake.catalog.load(FULL).metadata_location
    assert lake.rewrite_manifests(TABLE).snapshot_id is not None
    rewritten_metadata = lake.catalog.load(FULL).metadata_location
    return Compacted(engine, lake, before, answer, action, compacted_metadata, rewritten_metadata)


def test_compaction_keeps_contents_on_each_engine(compacted: Compacted) -> None:
    lake = compacted.lake
    assert rows(lake) == compacted.rows_before
    assert (compacted.action.files_before, compacted.action.files_after) == (12, 3)
    assert all(len(files) == 1 for files in files_by_partition(lake).values())
    snapshot = head(lake).current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation.value == "replace"
    import pyarrow.parquet as pq

    schema = {f.name: f.field_id for f in head(lake).schema().fields}
    for files in files_by_partition(lake).values():  # field ids in every new file, on both engines
        written = pq.read_schema(files[0]["path"].removeprefix("file://"))
        assert {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in written} == schema


@pytest.fixture(scope="module")
def read_compacted(reader_python: Path) -> Callable[[Compacted, str], dict[str, Answer]]:  # noqa: F811
    """What a reader reads of the table as compacted, and after its manifests were rewritten."""
    done: dict[tuple[str, str], dict[str, Answer]] = {}

    def read(table: Compacted, reader: str) -> dict[str, Answer]:
        if (table.engine, reader) not in done:
            out = table.lake.project_dir.parent / "reads" / reader
            reads = [Read("compacted", table.compacted_metadata), Read("manifests", table.rewritten_metadata)]
            done[table.engine, reader] = run_reader(reader_python, reader, reads, out)
        return done[table.engine, reader]

    return read


@pytest.mark.interop
@pytest.mark.parametrize("reader", READERS)
def test_independent_readers_read_the_compacted_table_as_before(
    read_compacted: Callable[[Compacted, str], dict[str, Answer]], compacted: Compacted, reader: str
) -> None:
    expected = compacted.answer_before
    assert expected.rows is not None
    assert len(expected.rows.rows) == 4 * 500 * 3  # writes x rows per day x days
    for key, got in read_compacted(compacted, reader).items():
        why = differences(expected, got, sides=("lakeplane before compaction", reader))
        assert why is None, f"{reader} reads the table ({key}, by {compacted.engine}) differently: {why}"

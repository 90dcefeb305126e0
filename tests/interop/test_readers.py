"""Independent Iceberg readers read every demo table exactly as lakeplane does.

The demo lake is built on each engine (see ``lakes.py``); each reader of ``harness.READERS`` then
reads, in one process of ``.venv-readers``: every table as day 1 left it, every table at the end,
every table at its day-1 snapshot through the final metadata (time travel), and
``curated.evolving`` after rename, drop, add, reorder and widening with files from before and after.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ENGINES
from tests.interop.harness import READERS, Answer, Answers, differences, run_reader
from tests.interop.lakes import EVOLVING, InteropLake, build, key

pytestmark = [pytest.mark.interop, pytest.mark.slow]

#: What a reader cannot do, each checked: the test fails on it (strict xfail) until the reader can.
NO_TIME_TRAVEL = {
    "datafusion": "pyiceberg-core 0.10's IcebergDataFusionTable(identifier, metadata_location, "
    "file_io_properties) always scans the metadata's current snapshot: no snapshot id, no time travel",
}


@pytest.fixture(scope="session", params=ENGINES)
def interop_lake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> InteropLake:
    """The demo lake written by each engine in turn, built once per test run."""
    engine = str(request.param)
    return build(tmp_path_factory.mktemp(f"interop-{engine}"), engine)


_read_cache: dict[tuple[str, str], Answers] = {}


def answers(reader_python: Path, lake: InteropLake, reader: str) -> Answers:
    """Everything ``reader`` read of ``lake``, in one process for all the tests of that pair."""
    cached = _read_cache.get((lake.engine, reader))
    if cached is None:
        out = lake.lake.project_dir.parent / "reads" / reader
        cached = _read_cache[(lake.engine, reader)] = run_reader(reader_python, reader, lake.reads(), out)
    return cached


def mismatches(expected: dict[str, Answer], got: Answers) -> dict[str, str]:
    found = {}
    for name, answer in expected.items():
        why = differences(answer, got[name])
        if why is not None:
            found[name] = why
    return found


def with_xfail(reasons: dict[str, str]) -> list[object]:
    return [
        pytest.param(r, marks=pytest.mark.xfail(strict=True, reason=reasons[r])) if r in reasons else r
        for r in READERS
    ]


def report(lake: InteropLake, reader: str, found: dict[str, str]) -> str:
    lines = "\n".join(f"  {table}: {why}" for table, why in sorted(found.items()))
    return (
        f"{reader} reads {len(found)} table(s) written by {lake.engine} differently from lakeplane:\n{lines}"
    )


@pytest.mark.parametrize("reader", READERS)
def test_every_table_as_written_reads_as_lakeplane_answers(
    reader_python: Path, interop_lake: InteropLake, reader: str
) -> None:
    got = answers(reader_python, interop_lake, reader)
    expected = {key("written", t): s.answer for t, s in interop_lake.written.items()}
    assert len(expected) == 14  # 5 processed tables, their 5 quarantines, 4 curated
    assert all(a.rows is not None for a in expected.values()), "lakeplane itself failed to read a table"
    assert sum(len(a.rows.rows) for a in expected.values() if a.rows) > 5_000
    found = mismatches(expected, got)
    assert not found, report(interop_lake, reader, found)


@pytest.mark.parametrize("reader", with_xfail(NO_TIME_TRAVEL))
def test_older_snapshots_read_as_lakeplane_answered_then(
    reader_python: Path, interop_lake: InteropLake, reader: str
) -> None:
    traveled = interop_lake.traveled()
    assert EVOLVING in traveled  # across the schema change: the old snapshot keeps its old schema
    if interop_lake.engine == "duckdb":
        assert len(traveled) >= 8, sorted(traveled)
    got = answers(reader_python, interop_lake, reader)
    found = mismatches({key("travel", t): s.answer for t, s in traveled.items()}, got)
    assert not found, report(interop_lake, reader, found)


@pytest.mark.parametrize("reader", READERS)
def test_evolved_table_reads_as_the_spec_says(
    reader_python: Path, interop_lake: InteropLake, reader: str
) -> None:
    got = answers(reader_python, interop_lake, reader)[key("final", EVOLVING)]
    why = differences(Answer(rows=interop_lake.evolved), got, sides=("the spec", reader))
    assert why is None, f"{reader} on {EVOLVING} written by {interop_lake.engine} and evolved: {why}"


@pytest.mark.parametrize("reader", READERS)
def test_every_table_at_the_end_reads_as_lakeplane_answers(
    reader_python: Path, interop_lake: InteropLake, reader: str
) -> None:
    # curated.evolving is compared with what the spec says (below), not with lakeplane's answer
    final = {key("final", t): s.answer for t, s in interop_lake.final.items() if t != EVOLVING}
    found = mismatches(final, answers(reader_python, interop_lake, reader))
    assert not found, report(interop_lake, reader, found)


@pytest.mark.parametrize("read_by", ["embedded", "writer"])
def test_lakeplane_reads_the_evolved_table_as_the_spec_says(interop_lake: InteropLake, read_by: str) -> None:
    """lakeplane's own query of the evolved table, on DuckDB and on the engine that wrote it."""
    answer = interop_lake.final[EVOLVING].answer if read_by == "embedded" else interop_lake.evolved_on_engine
    why = differences(Answer(rows=interop_lake.evolved), answer, sides=("the spec", "lakeplane"))
    engine = "duckdb" if read_by == "embedded" else interop_lake.engine
    assert why is None, (
        f"lakeplane on {engine}, {EVOLVING} written by {interop_lake.engine} and evolved: {why}"
    )

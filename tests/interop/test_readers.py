"""Independent Iceberg readers read every demo table exactly as lakeplane does.

The demo lake is built on each engine (see ``lakes.py``); each reader of ``harness.READERS`` then
reads, in one process of ``.venv-readers``: every table as day 1 left it, every table at the end,
every table at its day-1 snapshot through the final metadata (time travel), and the two evolved
tables (rename, drop, add, reorder, widening) with files from before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ENGINES
from tests.interop.harness import READERS, Answer, Answers, differences, run_reader
from tests.interop.lakes import EVOLVED, EVOLVING, InteropLake, build, key

pytestmark = [pytest.mark.interop, pytest.mark.slow]

#: What a reader cannot do, each checked: the test fails on it (strict xfail) until the reader can.
NO_TIME_TRAVEL = {
    "datafusion": "pyiceberg-core 0.10's IcebergDataFusionTable(identifier, metadata_location, "
    "file_io_properties) always scans the metadata's current snapshot: no snapshot id, no time travel",
}


#: Reader bugs on evolved tables, each checked the same way.
EVOLUTION_BUGS = {
    ("adtech.processed.impressions", "daft"): "daft 0.7.26 cannot read a data file holding a column "
    "since dropped from the table when that column is not the file's last (publisher_id, 6th of 11): "
    "DaftError::CorruptFile 'failed to fill whole buffer' (so with a table pyiceberg wrote, too); "
    "daft.read_parquet reads the same file, and daft read the table before the drop",
}


@pytest.fixture(scope="session", params=ENGINES)
def interop_lake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> InteropLake:
    """The demo lake written by each engine in turn, built once per test run."""
    engine = str(request.param)
    return build(tmp_path_factory.mktemp(f"interop-{engine}"), engine)


@pytest.fixture(scope="session")
def read_by(reader_python: Path) -> Callable[[InteropLake, str], Answers]:
    """Everything a reader read of a lake: one process per reader and lake, for all their tests."""
    done: dict[tuple[str, str], Answers] = {}

    def read(lake: InteropLake, reader: str) -> Answers:
        if (lake.engine, reader) not in done:
            out = lake.lake.project_dir.parent / "reads" / reader
            done[lake.engine, reader] = run_reader(reader_python, reader, lake.reads(), out)
        return done[lake.engine, reader]

    return read


def mismatches(expected: dict[str, Answer], got: Answers) -> dict[str, str]:
    found = {}
    for name, answer in expected.items():
        why = differences(answer, got[name])
        if why is not None:
            found[name] = why
    return found


def with_xfail(reasons: dict[str, str]) -> list[object]:
    return [
        pytest.param(r, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=reasons[r]))
        if r in reasons
        else r
        for r in READERS
    ]


def report(lake: InteropLake, reader: str, found: dict[str, str]) -> str:
    lines = "\n".join(f"  {table}: {why}" for table, why in sorted(found.items()))
    return (
        f"{reader} reads {len(found)} table(s) written by {lake.engine} differently from lakeplane:\n{lines}"
    )


@pytest.mark.parametrize("reader", READERS)
def test_every_table_as_written_reads_as_lakeplane_answers(
    read_by: Callable[[InteropLake, str], Answers], interop_lake: InteropLake, reader: str
) -> None:
    got = read_by(interop_lake, reader)
    expected = {key("written", t): s.answer for t, s in interop_lake.written.items()}
    assert len(expected) >= 14  # 5 processed tables, their 5 quarantines, 4 curated
    assert all(a.rows is not None for a in expected.values()), "lakeplane itself failed to read a table"
    assert sum(len(a.rows.rows) for a in expected.values() if a.rows) > 5_000
    found = mismatches(expected, got)
    assert not found, report(interop_lake, reader, found)


@pytest.mark.parametrize("reader", with_xfail(NO_TIME_TRAVEL))
def test_older_snapshots_read_as_lakeplane_answered_then(
    read_by: Callable[[InteropLake, str], Answers], interop_lake: InteropLake, reader: str
) -> None:
    traveled = interop_lake.traveled()
    assert EVOLVING in traveled  # across the schema change: the old snapshot keeps its old schema
    if interop_lake.engine == "duckdb":
        assert len(traveled) >= 8, sorted(traveled)
    got = read_by(interop_lake, reader)
    found = mismatches({key("travel", t): s.answer for t, s in traveled.items()}, got)
    assert not found, report(interop_lake, reader, found)


def test_the_evolution_is_what_the_readers_must_get_right(interop_lake: InteropLake) -> None:
    """The expected contents of the evolved tables: columns in the new order, old values found by id."""
    evolving = interop_lake.evolved[EVOLVING]
    assert evolving.names == tuple(
        ["low_bid", "ds", "max_bid", "campaign_id", "n_impressions", "first_device", "note", "last_country"]
    )
    old = [r for r in evolving.rows if r[6] is None]
    new = [r for r in evolving.rows if r[6] == "after"]
    assert old and new and len(old) + len(new) == len(evolving.rows)
    assert all(r[4] is not None and r[7] is None for r in old), "renamed kept, re-added column NULL"
    impressions = interop_lake.evolved["adtech.processed.impressions"]
    assert impressions.names[0] == "page_url" and {"visitor_id", "user_id", "publisher_id"} <= set(
        impressions.names
    )


@pytest.mark.parametrize(
    ("table", "reader"),
    [
        pytest.param(
            t, r, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=EVOLUTION_BUGS[t, r])
        )
        if (t, r) in EVOLUTION_BUGS
        else (t, r)
        for t in EVOLVED
        for r in READERS
    ],
)
def test_evolved_tables_read_as_the_spec_says(
    read_by: Callable[[InteropLake, str], Answers], interop_lake: InteropLake, table: str, reader: str
) -> None:
    got = read_by(interop_lake, reader)[key("final", table)]
    why = differences(Answer(rows=interop_lake.evolved[table]), got, sides=("the spec", reader))
    assert why is None, f"{reader} on {table} written by {interop_lake.engine} and evolved: {why}"


@pytest.mark.parametrize("reader", READERS)
def test_every_table_at_the_end_reads_as_lakeplane_answers(
    read_by: Callable[[InteropLake, str], Answers], interop_lake: InteropLake, reader: str
) -> None:
    # the evolved tables are compared with what the spec says (above), not with lakeplane's answer
    final = {key("final", t): s.answer for t, s in interop_lake.final.items() if t not in EVOLVED}
    found = mismatches(final, read_by(interop_lake, reader))
    assert not found, report(interop_lake, reader, found)


@pytest.mark.parametrize("reading", ["embedded", "writer"])
def test_lakeplane_reads_the_evolved_tables_as_the_spec_says(interop_lake: InteropLake, reading: str) -> None:
    """lakeplane's own query of the evolved tables, on DuckDB and on the engine that wrote them."""
    engine = "duckdb" if reading == "embedded" else interop_lake.engine
    found = {}
    for table, rows in interop_lake.evolved.items():
        answer = (
            interop_lake.final[table].answer
            if reading == "embedded"
            else interop_lake.evolved_on_engine[table]
        )
        why = differences(Answer(rows=rows), answer, sides=("the spec", "lakeplane"))
        if why is not None:
            found[table] = why
    assert not found, f"lakeplane on {engine}, tables written by {interop_lake.engine} and evolved: {found}"

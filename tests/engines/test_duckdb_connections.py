"""A job's DuckDB connection goes to the next job of the same size emptied, never while in use, and
never after it was sandboxed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from lakeplane.engines import duckdb_connections
from lakeplane.engines.compute import Compute
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.errors import EngineError
from lakeplane.lake import open_lake


@pytest.fixture
def compute(tmp_path: Path) -> Iterator[Compute]:
    duckdb_connections.close_idle()
    yield open_lake(tmp_path).compute
    duckdb_connections.close_idle()


def connection(session: object) -> object:
    """The DuckDB connection a session holds."""
    assert isinstance(session, DuckDBSession)
    return session.con


def test_the_next_job_gets_the_connection_emptied_and_reset(compute: Compute) -> None:
    with compute.embedded("first") as first:
        first.execute("CREATE TEMP TABLE __b0 AS SELECT 1 AS v")
        first.execute("CREATE TEMP VIEW __accepted AS SELECT 2 AS v")
        first.register_arrow("__lines", pa.table({"line": [1, 2]}))
        first.execute("SET TimeZone = 'America/New_York'")
        first.execute("SET preserve_insertion_order = true")
        used = connection(first)
    with compute.embedded("second") as second:
        assert connection(second) is used, "the idle connection is taken, not a new database opened"
        for name in ("__b0", "__accepted", "__lines"):
            with pytest.raises(EngineError, match=name):
                second.execute(f"SELECT * FROM {name}")
        # The same names can be made again, as every ingest does.
        second.execute("CREATE TEMP TABLE __b0 AS SELECT 3 AS v")
        assert second.execute("SELECT current_setting('preserve_insertion_order')") == [(False,)]
        assert second.execute("SELECT current_setting('TimeZone')") != [("America/New_York",)]
        assert second.execute("SELECT current_setting('memory_limit')")[0][0].endswith("iB")


def test_a_sandboxed_connection_is_closed_not_handed_on(compute: Compute, tmp_path: Path) -> None:
    with compute.embedded("query") as locked:
        locked.sandbox()
        used = connection(locked)
    with compute.embedded("ingest") as after:
        assert connection(after) is not used
        after.execute("SET TimeZone = 'UTC'")  # a locked configuration would refuse this
        outside = tmp_path / "outside.csv"
        outside.write_text("a\n1\n")
        assert after.execute(f"SELECT a FROM read_csv('{outside}')") == [(1,)]


def test_jobs_at_the_same_time_never_share_a_connection(compute: Compute) -> None:
    held: list[object] = []
    seen: dict[str, list[tuple[object, ...]]] = {}
    ready = threading.Barrier(3)

    def job(name: str) -> None:
        with compute.embedded(name) as session:
            session.execute(f"CREATE TEMP TABLE mine AS SELECT '{name}' AS who")
            held.append(connection(session))
            ready.wait(timeout=10)  # all three are open at once
            seen[name] = session.execute("SELECT who FROM mine")

    threads = [threading.Thread(target=job, args=(f"j{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(con) for con in held}) == 3
    assert seen == {f"j{n}": [(f"j{n}",)] for n in range(3)}


def test_another_size_opens_its_own_connection(compute: Compute) -> None:
    with compute.embedded("small") as small:
        used = connection(small)
    compute.config = compute.config.model_copy(
        update={"engine": compute.config.engine.model_copy(update={"memory_limit": "300MB"})}
    )
    with compute.embedded("other") as other:
        assert connection(other) is not used
        assert other.execute("SELECT current_setting('memory_limit')")[0][0].startswith("286")


def test_a_session_counts_the_time_of_its_own_statements(compute: Compute) -> None:
    with compute.embedded("first") as first:
        assert first.engine_seconds == 0.0
        started = time.perf_counter()
        first.execute("SELECT sum(i) FROM range(20000000) AS t(i)")
        took = time.perf_counter() - started
        assert 0 < first.engine_seconds <= took
    with compute.embedded("second") as second:
        assert second.engine_seconds == 0.0, "the connection is handed on, its count is not"


def test_a_session_counts_what_its_statements_spill(compute: Compute) -> None:
    """The bytes a statement spilled to disk come from its profile: a grouping too large for the
    memory limit spills, a small one does not, and a streaming reader is not counted."""
    compute.config = compute.config.model_copy(
        update={"engine": compute.config.engine.model_copy(update={"memory_limit": "100MB", "threads": 2})}
    )
    with compute.embedded("small", record_spill=True) as session:
        session.execute("SELECT count(*) FROM range(1000)")
        assert session.spill_bytes == 0
        session.execute(
            "CREATE TEMP TABLE t AS SELECT i, md5(CAST(i AS VARCHAR)) AS s FROM range(3000000) r(i)"
        )
        before = session.spill_bytes or 0
        session.execute("SELECT s, count(*) FROM t GROUP BY s ORDER BY 2 DESC LIMIT 1")
        assert (session.spill_bytes or 0) - before > 50_000_000, "the grouping spilled its hash table"
        spilled = session.spill_bytes
        session.arrow_reader("SELECT * FROM t").read_next_batch()
        assert session.spill_bytes == spilled


@pytest.mark.parametrize(
    ("limit", "threads", "runs"), [("96MB", 2, 1), ("128MB", 2, 2), ("2GB", 2, 2), ("64MB", 1, 1)]
)
def test_a_small_memory_limit_runs_fewer_threads(
    compute: Compute, limit: str, threads: int, runs: int
) -> None:
    """Each DuckDB thread needs working memory of its own: a job gets at most one per 64 MB."""
    engine = compute.config.engine.model_copy(update={"memory_limit": limit, "threads": threads})
    compute.config = compute.config.model_copy(update={"engine": engine})
    with compute.embedded("sized") as session:
        assert session.execute("SELECT current_setting('threads')") == [(runs,)]
        assert session.usage()["cores"] == runs

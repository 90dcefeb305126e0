"""Several processes committing to one SQLite catalog at once: nothing doubled, nothing lost.

Each test starts its writers as separate processes (``forkserver``: nothing shared but the files) held at
a barrier, so they plan and commit in the same instant, and then checks the table against what any
serial order of the same commits gives.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.table import Table

from lakeplane.catalog import TableRef
from lakeplane.catalog.commits import CommitRetry
from lakeplane.catalog.writer import Mode, TableWriter, WriteResult, new_write_dir
from lakeplane.errors import CommitConflictError, LakeplaneError
from lakeplane.governance.policy import load_policy
from lakeplane.governance.store import PolicyStore
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.gate import write_audit_publish

WRITERS = 6
ROWS = 200
REF = TableRef("t", "processed", "events")
DAY = "2026-11-01"
SCHEMA = pa.schema([("ds", pa.string()), ("writer", pa.int64()), ("n", pa.int64())])
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class Outcome:
    """What one writer process ended with: a value, or the error it raised."""

    writer: int
    value: Any = None
    error: BaseException | None = None
    trace: str = ""


def _entry(job: Callable[..., Any], barrier: Any, results: Any, writer: int, args: tuple[Any, ...]) -> None:
    try:
        barrier.wait(START_TIMEOUT_S)
        results.put(Outcome(writer, value=job(writer, *args)))
    except BaseException as exc:  # reported to the test, which decides what is acceptable
        error = exc if isinstance(exc, LakeplaneError) else RuntimeError(repr(exc))
        results.put(Outcome(writer, error=error, trace=traceback.format_exc()))


def at_once(job: Callable[..., Any], *args: Any, writers: int = WRITERS) -> list[Outcome]:
    """Run ``job(writer, *args)`` in ``writers`` fresh processes released together."""
    # forkserver: each writer is a fresh fork of one server process that imported lakeplane once
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    barrier, results = context.Barrier(writers), context.Queue()
    processes = [
        context.Process(target=_entry, args=(job, barrier, results, i, args)) for i in range(writers)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=START_TIMEOUT_S * 2) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return sorted(outcomes, key=lambda o: o.writer)


def _project(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "lakeplane.yaml").write_text("name: t\n")
    return path


def _write_day(lake: Lake, table: Table, writer: int, ds: str, rows: int) -> str:
    """One Parquet file of ``rows`` rows of ``writer`` for day ``ds``, not yet in any commit."""
    relative = f"{new_write_dir(REF)}/ds={ds}/part-{writer}.parquet"
    target = Path(lake.catalog.storage.path(relative))
    target.parent.mkdir(parents=True, exist_ok=True)
    data = pa.table(  # the table's Arrow schema carries the field ids
        {"ds": [ds] * rows, "writer": [writer] * rows, "n": list(range(rows))},
        schema=table.schema().as_arrow(),
    )
    pq.write_table(data, target)
    return relative


def _commit(project: Path, writer: int, ds: str, mode: Mode, retries: int | None) -> int:
    """Create the table if needed, write one file for ``ds`` and commit it; return the retries."""
    lake = open_lake(project)
    if retries is not None:
        lake.catalog.commit_retry = CommitRetry(retries=retries, base_delay_s=0.001, max_delay_s=0.002)
    writer_ = TableWriter(lake.catalog)
    table = writer_.ensure_table(REF, SCHEMA, ["ds"])
    path = _write_day(lake, table, writer, ds, ROWS)
    result = writer_.commit(table, [path], mode, ROWS, 0)
    return result.commit_retries


def overwrite_same_day(writer: int, project: Path, retries: int | None = None) -> int:
    return _commit(project, writer, DAY, "overwrite_partitions", retries)


def overwrite_own_day(writer: int, project: Path) -> int:
    day = (dt.date(2026, 11, 1) + dt.timedelta(days=writer)).isoformat()
    return _commit(project, writer, day, "overwrite_partitions", None)


def append_rows(writer: int, project: Path) -> int:
    return _commit(project, writer, DAY, "append", None)


def create_table(writer: int, project: Path) -> str:
    lake = open_lake(project)
    return str(TableWriter(lake.catalog).ensure_table(REF, SCHEMA, ["ds"]).metadata.table_uuid)


def record_policy(writer: int, project: Path, policies: list[str]) -> int:
    lake = open_lake(project)
    policy = load_policy(project / policies[writer % len(policies)])
    return PolicyStore(lake.catalog.state_engine).record(policy, dict).number


def _rows(project: Path) -> list[tuple[str, int, int]]:
    table = open_lake(project).catalog.load(str(REF))
    data = table.scan().to_arrow().sort_by([("ds", "ascending"), ("writer", "ascending"), ("n", "ascending")])
    return list(zip(*(data.column(c).to_pylist() for c in ("ds", "writer", "n")), strict=True))


def _succeeded(outcomes: list[Outcome]) -> list[Any]:
    failed = [f"writer {o.writer}: {o.error}\n{o.trace}" for o in outcomes if o.error is not None]
    assert not failed, "\n".join(failed)
    return [o.value for o in outcomes]


def test_writers_overwriting_one_day_leave_exactly_one_copy_of_it(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    retries = _succeeded(at_once(overwrite_same_day, project))

    rows = _rows(project)
    winners = {writer for _, writer, _ in rows}
    assert len(rows) == ROWS and len(winners) == 1, "one writer's day, whole, and nobody else's"
    assert sorted(n for *_, n in rows) == list(range(ROWS))
    assert sum(retries) > 0, "the writers really did collide"
    table = open_lake(project).catalog.load(str(REF))
    assert len(table.snapshots()) == WRITERS, "each writer committed once, on top of the others"


def test_writers_overwriting_their_own_days_all_land(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    _succeeded(at_once(overwrite_own_day, project))

    per_day = Counter((ds, writer) for ds, writer, _ in _rows(project))
    expected = {((dt.date(2026, 11, 1) + dt.timedelta(days=w)).isoformat(), w): ROWS for w in range(WRITERS)}
    assert per_day == expected


def test_appending_writers_each_add_their_rows_once(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    _succeeded(at_once(append_rows, project))

    assert Counter(writer for _, writer, _ in _rows(project)) == {w: ROWS for w in range(WRITERS)}


def test_a_commit_that_keeps_losing_fails_retryably_and_leaves_one_copy(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    outcomes = at_once(overwrite_same_day, project, 0)

    errors = [o.error for o in outcomes if o.error is not None]
    assert all(isinstance(e, CommitConflictError) and e.retryable for e in errors), [
        o.trace for o in outcomes if o.error
    ]
    assert errors, "with no retry allowed, some of the colliding writers lose"
    conflict = errors[0]
    assert isinstance(conflict, CommitConflictError)
    assert conflict.table == str(REF) and conflict.attempts == 1 and conflict.cause
    rows = _rows(project)
    assert len(rows) == ROWS and len({w for _, w, _ in rows}) == 1


def test_eight_processes_creating_one_table_get_the_same_table(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    uuids = _succeeded(at_once(create_table, project, writers=8))

    assert len(set(uuids)) == 1
    assert open_lake(project).catalog.list_tables() == [REF]


def test_eight_processes_recording_one_policy_make_one_version(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    (project / "policy.yaml").write_text("principals:\n  users:\n    ana: {}\n")
    versions = _succeeded(at_once(record_policy, project, ["policy.yaml"], writers=8))

    assert versions == [1] * 8
    history = PolicyStore(open_lake(project).catalog.state_engine).history()
    assert [v.number for v in history] == [1]


def test_processes_recording_different_policies_get_consecutive_versions(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    names = []
    for i in range(4):
        (project / f"policy{i}.yaml").write_text(f"principals:\n  users:\n    user{i}: {{}}\n")
        names.append(f"policy{i}.yaml")
    _succeeded(at_once(record_policy, project, names, writers=8))

    history = PolicyStore(open_lake(project).catalog.state_engine).history()
    assert [v.number for v in history] == list(range(1, len(history) + 1))
    assert {v.digest for v in history} == {load_policy(project / n).digest for n in names}


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Any:
    yield
    assert not multiprocessing.active_children()


def test_a_publish_after_main_moved_audits_again_on_the_new_main(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    lake = open_lake(project)
    writer = TableWriter(lake.catalog)
    table = writer.ensure_table(REF, SCHEMA, ["ds"])
    ours = _write_day(lake, table, 0, DAY, ROWS)
    audited: list[int] = []

    def gate(name: str, snapshot_id: int) -> list[dict[str, Any]]:
        audited.append(snapshot_id)
        if len(audited) == 1:  # meanwhile another writer publishes another day, and this day too
            other = open_lake(project)
            other_writer, other_table = TableWriter(other.catalog), other.catalog.load(str(REF))
            for day, who in (("2026-11-02", 1), (DAY, 2)):
                path = _write_day(other, other_table, who, day, ROWS)
                other_writer.commit(other_table, [path], "overwrite_partitions", ROWS, 0)
        return [{"rule": "RowCount > 0", "passed": True, "observed": ROWS, "blocking": True}]

    def commit(branch: str | None) -> WriteResult:
        return writer.commit(table, [ours], "overwrite_partitions", ROWS, 0, branch=branch)

    written, _ = write_audit_publish(table, commit, gate)

    assert len(audited) == 2, "the output was audited again on top of the new main"
    assert written.commit_retries >= 1
    per_writer = Counter((ds, writer) for ds, writer, _ in _rows(project))
    assert per_writer == {(DAY, 0): ROWS, ("2026-11-02", 1): ROWS}, "the other day kept, ours once"
    table = open_lake(project).catalog.load(str(REF))
    assert list(table.refs()) == ["main"], "no audit branch left behind"
    head = table.current_snapshot()
    assert head is not None and head.snapshot_id == written.snapshot_id == audited[-1]

"""One run at a time writes a pipeline's day: leases, waiting, heartbeats and dead runners."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.demo.generator import DayDrop
from lakeplane.errors import ConfigError, RunBusy
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.leases import DayLeases
from lakeplane.pipelines.runner import RunOptions
from lakeplane.pipelines.store import RunRecord, RunStore
from tests.backends.conftest import pg_catalog_uri, postgres_server  # noqa: F401 (fixtures)
from tests.conftest import DAY1
from tests.pipelines.runners import RunnerProcess, wait_for
from tests.pipelines.test_crash_safety import prepared, tables

DAY = dt.date(2026, 11, 1)
HOST = socket.gethostname()
#: A pipeline whose one step runs until the project has a file ``release``.
HELD = "steps:\n  held: {python: 'tests.pipelines.test_leases:held', timeout_s: 120}\n"


def held(lake: Any, ds: dt.date) -> None:
    """A step that holds its run until the test releases it."""
    deadline = time.monotonic() + 60
    while not (lake.project_dir / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def nap(lake: Any, ds: dt.date) -> None:
    time.sleep(1.0)


def project(tmp_path: Path, pipeline: str) -> Lake:
    root = tmp_path / "proj"
    (root / "pipelines").mkdir(parents=True)
    (root / "lakeplane.yaml").write_text("name: t\n")
    (root / "pipelines" / "p.yaml").write_text(pipeline)
    return open_lake(root)


def cli_output(lake: Lake, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.output


# -- the lease and the heartbeat, on SQLite and PostgreSQL --------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    """The catalog database lakeplane keeps its state in: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return sa.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    uri = str(request.getfixturevalue("pg_catalog_uri"))
    return sa.create_engine(uri.replace("postgresql://", "postgresql+psycopg://"))


def test_a_lease_is_held_renewed_taken_over_once_expired_and_released(state_engine: sa.Engine) -> None:
    leases = DayLeases(state_engine)
    first = leases.acquire("p", "2026-11-01", "run-a", "host-a:1", ttl_s=0.5)
    assert (first.run_id, first.holder) == ("run-a", "host-a:1")
    assert leases.acquire("p", "2026-11-01", "run-b", "host-b:2", ttl_s=0.5) == first, "held: b sees a"
    assert leases.acquire("p", "2026-11-02", "run-c", "host-b:2", ttl_s=0.5).run_id == "run-c", (
        "another day is another lease"
    )
    assert leases.acquire("p", "2026-11-01", "run-a", "host-a:1", ttl_s=0.5).run_id == "run-a", (
        "taking it again is harmless"
    )
    time.sleep(0.3)
    assert leases.renew(first, ttl_s=0.5)
    time.sleep(0.3)
    assert leases.acquire("p", "2026-11-01", "run-b", "host-b:2", ttl_s=0.5).run_id == "run-a", "renewed"
    time.sleep(0.6)
    second = leases.acquire("p", "2026-11-01", "run-b", "host-b:2", ttl_s=5)
    assert second.run_id == "run-b", "a lease nobody renewed is taken over"
    assert not leases.renew(first, ttl_s=5), "a runner whose lease was taken over hears of it"
    leases.release(first)
    assert leases.holder_of("p", "2026-11-01") == second, "releasing a lost lease leaves the new one"
    leases.release(second)
    assert leases.holder_of("p", "2026-11-01") is None


def test_of_runs_that_take_a_free_lease_at_once_exactly_one_gets_it(state_engine: sa.Engine) -> None:
    DayLeases(state_engine)  # the table exists before the race
    start = threading.Barrier(6)

    def take(n: int) -> str:
        start.wait()
        return DayLeases(state_engine).acquire("p", "2026-11-01", f"run-{n}", f"h:{n}", ttl_s=30).run_id

    with ThreadPoolExecutor(6) as pool:
        holders = list(pool.map(take, range(6)))
    assert len(set(holders)) == 1, holders


def test_a_run_that_stopped_heart_beating_is_recorded_failed_once(state_engine: sa.Engine) -> None:
    store = RunStore(state_engine)
    alive = store.start_run("p", "2026-11-01", holder="h:1", alive_s=30)
    dead = store.start_run("p", "2026-11-02", holder="h:2", alive_s=0.3)
    store.start_attempt(dead, "load", 1)
    legacy = store.start_run("p", "2026-11-03")  # no heartbeat: liveness unknown, left as it is
    time.sleep(0.4)
    assert store.beat(alive, 30)
    assert RunStore(state_engine).reap() == [dead.run_id]
    assert RunStore(state_engine).reap() == [], "decided once"
    found = store.get(dead.run_id)
    assert found is not None and found.state == "failed"
    assert found.reason == f"runner stopped heart-beating at {dead.heartbeat_at} (h:2)"
    assert found.ended_at == dead.heartbeat_at
    [attempt] = found.attempts
    assert attempt.state == "failed" and attempt.retryable
    assert attempt.error == f"the runner stopped heart-beating at {dead.heartbeat_at} (h:2)"
    assert not store.beat(dead, 30), "a runner that comes back finds its run taken for dead"
    store.finish_run(dead, "succeeded")
    assert dead.state == "failed" and dead.reason == found.reason, "and cannot overwrite that"
    assert {r.run_id: r.state for r in store.runs()} == {
        alive.run_id: "running",
        dead.run_id: "failed",
        legacy.run_id: "running",
    }


def test_a_run_store_created_before_heartbeats_gets_their_columns(state_engine: sa.Engine) -> None:
    with state_engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE lakeplane_runs (run_id VARCHAR(40) PRIMARY KEY, pipeline VARCHAR(200) "
                "NOT NULL, ds VARCHAR(10) NOT NULL, state VARCHAR(20) NOT NULL, started_at VARCHAR(40) "
                "NOT NULL, ended_at VARCHAR(40), redrive_of VARCHAR(40))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO lakeplane_runs VALUES ('old', 'p', '2026-10-31', 'succeeded', "
                "'2026-10-31T02:30:00.000+00:00', '2026-10-31T02:31:00.000+00:00', NULL)"
            )
        )
    store = RunStore(state_engine)
    RunStore(state_engine)  # a second opener finds the columns there
    run = store.start_run("p", "2026-11-01", holder="h:1", alive_s=30)
    assert [(r.run_id, r.state, r.heartbeat_at is None) for r in store.runs()] == [
        (run.run_id, "running", False),
        ("old", "succeeded", True),
    ]


def test_run_options_refuse_a_dead_after_shorter_than_the_heartbeat() -> None:
    with pytest.raises(ConfigError, match=r"dead_after_s \(1.0 s\) must be longer than heartbeat_s"):
        RunOptions(heartbeat_s=2.0, dead_after_s=1.0)


# -- runs of one day wait for each other; runs of other days do not -------------------------------
@pytest.mark.slow
def test_two_runs_of_one_day_started_at_once_run_one_after_the_other(
    tmp_path: Path, drops: dict[dt.date, DayDrop]
) -> None:
    reference = prepared(tmp_path / "reference", drops[DAY1])
    assert reference.run_pipeline("nightly", DAY1).state == "succeeded"
    expected = tables(reference)

    lake = prepared(tmp_path / "twice", drops[DAY1])
    said: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def run(n: int) -> RunRecord:
        start.wait()
        options = RunOptions(progress=said[n].append, heartbeat_s=0.2, dead_after_s=5)
        return lake.run_pipeline("nightly", DAY1, options)

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run, n) for n in (0, 1)]
        waiting = wait_for(
            "a run recorded as waiting", lambda: [r for r in lake.runs("nightly") if r.state == "waiting"]
        )
        shown = json.loads(cli_output(lake, "--output", "json", "runs"))
        runs = [future.result() for future in futures]

    assert [r.state for r in runs] == ["succeeded", "succeeded"]
    [second] = [r for r, words in zip(runs, said, strict=True) if any("waiting" in w for w in words)]
    [first] = [r for r in runs if r is not second]
    assert first.holder == second.holder == f"{HOST}:{os.getpid()}"
    message = f"waiting for run {first.run_id} (holder {first.holder}) on nightly/{DAY1}"
    assert [w for w in said[runs.index(second)] if "waiting" in w][:1] == [message]
    assert said[runs.index(second)][1].startswith(f"nightly/{DAY1}: took the lease after waiting ")
    assert [(r.run_id, r.reason) for r in waiting] == [(second.run_id, message)]
    assert {r["run_id"]: r["reason"] for r in shown if r["state"] == "waiting"} == {second.run_id: message}
    first_ended = lake.run_record(first.run_id).ended_at or ""
    second_attempts = lake.run_record(second.run_id).attempts
    assert second_attempts and min(a.started_at for a in second_attempts) >= first_ended, (
        "the second run's steps started only after the first had ended"
    )
    assert lake.run_record(second.run_id).reason is None
    assert tables(lake) == expected, "two runs of one day give the tables of one"


def test_runs_of_different_days_do_not_wait_for_each_other(tmp_path: Path) -> None:
    lake = project(tmp_path, "steps:\n  nap: {python: 'tests.pipelines.test_leases:nap'}\n")
    said: list[str] = []
    runs = lake.backfill(
        "p", DAY, DAY + dt.timedelta(days=1), parallel=2, options=RunOptions(progress=said.append)
    )
    assert [r.state for r in runs] == ["succeeded", "succeeded"]
    assert not [w for w in said if "waiting" in w]
    one, two = (lake.run_record(r.run_id).attempts[0] for r in runs)
    assert one.started_at < (two.ended_at or "") and two.started_at < (one.ended_at or ""), (
        "the two days' steps ran at the same time"
    )


# -- a runner that dies, and one that is still alive ----------------------------------------------
def test_the_lease_of_a_dead_runner_expires_and_the_next_run_proceeds(tmp_path: Path) -> None:
    lake = project(tmp_path, HELD)
    runner = RunnerProcess(lake, "p", DAY, heartbeat_s=0.1, dead_after_s=2.0)
    seen = wait_for("the held step running", lambda: runner.reached("held"))
    runner.kill()
    (lake.project_dir / "release").touch()
    said: list[str] = []
    started = time.monotonic()
    run = lake.run_pipeline("p", DAY, RunOptions(progress=said.append))
    assert run.state == "succeeded"
    assert said[0] == f"waiting for run {seen.run_id} (holder {HOST}:{runner.pid}) on p/{DAY}"
    assert said[1].startswith(f"p/{DAY}: took the lease after waiting ")
    assert time.monotonic() - started < 10

    dead = lake.run_record(seen.run_id)
    reason = f"runner stopped heart-beating at {dead.heartbeat_at} ({HOST}:{runner.pid})"
    assert (dead.state, dead.reason) == ("failed", reason)
    assert [(a.step, a.state, a.error) for a in dead.attempts] == [("held", "failed", f"the {reason}")]
    listed = {r["run_id"]: r for r in json.loads(cli_output(lake, "--output", "json", "runs"))}
    assert (listed[seen.run_id]["state"], listed[seen.run_id]["reason"]) == ("failed", reason)
    shown = cli_output(lake, "run-show", seen.run_id)
    assert "failed" in shown and "runner stopped heart-beating" in shown


def test_redrive_of_a_run_whose_runner_is_alive_is_refused(tmp_path: Path) -> None:
    lake = project(tmp_path, HELD)
    runner = RunnerProcess(lake, "p", DAY, heartbeat_s=0.1, dead_after_s=1.0)
    try:
        seen = wait_for("the held step running", lambda: runner.reached("held"))
        time.sleep(1.5)  # longer than dead_after_s: it is alive because it beats, not because it is new
        with pytest.raises(
            RunBusy, match=rf"run {seen.run_id} is still running \(runner {HOST}:{runner.pid}"
        ):
            lake.redrive(seen.run_id)
        assert lake.run_record(seen.run_id).state == "running"
        assert f"runner {HOST}:{runner.pid}, last heartbeat" in cli_output(lake, "run-show", seen.run_id)
    finally:
        runner.kill()
    (lake.project_dir / "release").touch()
    wait_for("the killed run taken for dead", lambda: lake.run_record(seen.run_id).state == "failed")
    again = lake.redrive(seen.run_id)
    assert again.state == "succeeded" and again.redrive_of == seen.run_id


def test_a_run_that_waits_longer_than_wait_s_fails_with_a_retryable_error(tmp_path: Path) -> None:
    lake = project(tmp_path, HELD)
    runner = RunnerProcess(lake, "p", DAY, heartbeat_s=0.1, dead_after_s=5.0)
    try:
        seen = wait_for("the held step running", lambda: runner.reached("held"))
        with pytest.raises(RunBusy) as caught:
            lake.run_pipeline("p", DAY, RunOptions(wait_s=0.5, heartbeat_s=0.1, dead_after_s=1.0))
    finally:
        runner.kill()
    error = caught.value
    assert error.retryable and (error.holder_run, error.holder) == (seen.run_id, f"{HOST}:{runner.pid}")
    assert re.search(
        rf"gave up after waiting \d+\.\d s for run {seen.run_id} \(holder {HOST}:{runner.pid}\) on p/{DAY}; ",
        str(error),
    )
    assert error.run_id is not None
    gave_up = lake.run_record(error.run_id)
    assert (gave_up.state, gave_up.reason, gave_up.attempts) == ("failed", str(error), [])


def test_a_runner_whose_run_was_taken_for_dead_stops_its_steps(tmp_path: Path) -> None:
    lake = project(tmp_path, HELD)
    options = RunOptions(heartbeat_s=0.1, dead_after_s=30)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(lake.run_pipeline, "p", DAY, options)
        [run] = wait_for("the held step running", lambda: [r for r in lake.runs() if held_running(lake, r)])
        # As if the runner had stalled past its deadline and another reader had seen it.
        store = RunStore(lake.catalog.state_engine)
        with store.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE lakeplane_runs SET alive_until = '2000-01-01' WHERE run_id = :run"),
                {"run": run.run_id},
            )
        assert store.reap() == [run.run_id]
        reaped = time.monotonic()
        stopped = future.result(timeout=30)
        assert time.monotonic() - reaped < 10, "the held step was stopped, not left to run for a minute"
    assert stopped.state == "failed" and (stopped.reason or "").startswith("runner stopped heart-beating at ")
    assert [(a.step, a.state) for a in lake.run_record(run.run_id).attempts] == [("held", "failed")]
    assert DayLeases(lake.catalog.state_engine).holder_of("p", DAY.isoformat()) is None


def held_running(lake: Lake, run: RunRecord) -> bool:
    return lake.run_record(run.run_id).step_state("held") == "running"

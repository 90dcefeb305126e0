"""Workgroups: the scan estimate from the manifests, the per-query cutoff refusing before anything is
read, the daily budget, and max_concurrent with its queue, across threads and processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, EqualTo, Reference, literal

from lakeplane.config import load_config
from lakeplane.errors import AccessDenied, ConfigError, EngineError, QueryRefused
from lakeplane.lake import Lake, open_lake
from lakeplane.query.admission import waiting_notices
from lakeplane.query.estimate import MINIMUM_BILLED, athena_cost
from lakeplane.query.history import QueryHistory
from lakeplane.query.reuse import cache_hit
from lakeplane.query.slots import SLOTS, WAITERS, QuerySlots
from tests.query.workgroup_world import (
    CDR,
    SUBSCRIBERS,
    SessionWatch,
    invoke,
    lakeplane,
    slot_held_elsewhere,
    telco_drops,
    telco_lake,
    with_workgroups,
)

__all__ = ["telco_drops", "telco_lake"]

DAY_ONE = "SELECT region, sum(duration_s) AS seconds FROM cdr WHERE ds = DATE '2026-11-01' GROUP BY region"
ALL_DAYS = "SELECT region, sum(duration_s) AS seconds FROM cdr GROUP BY region"
STAR = "SELECT * FROM cdr"
FIRST_DAY = EqualTo(term=Reference("ds"), value=literal("2026-11-01"))

ANALYSTS = """workgroups:
  analysts:
    members: [role:analyst]
    bytes_scanned_cutoff_per_query: {cutoff}
    bytes_scanned_per_day: {daily}
    max_concurrent: {concurrent}
    queue: {{length: {length}, timeout_s: {timeout}}}
    result_reuse: {{enabled: true, max_age: 1h}}
"""


def analysts(
    cutoff: str | int = "3TB",
    daily: str | int = "50TB",
    concurrent: int = 4,
    length: int = 20,
    timeout: str | float = 300,
) -> str:
    return ANALYSTS.format(cutoff=cutoff, daily=daily, concurrent=concurrent, length=length, timeout=timeout)


def manifest_bytes(
    lake: Lake, table: str, row_filter: BooleanExpression, columns: list[str]
) -> tuple[int, int]:
    """(files, bytes) of ``columns`` in the files pyiceberg plans for ``row_filter``: the oracle."""
    iceberg = lake.catalog.load(table)
    ids = {iceberg.schema().find_field(c).field_id for c in columns}
    tasks = list(iceberg.scan(row_filter=row_filter).plan_files())
    return len(tasks), sum(size for t in tasks for fid, size in t.file.column_sizes.items() if fid in ids)


# -- configuration --------------------------------------------------------------------------------
def test_the_issue_example_parses_sizes_and_durations(tmp_path: Path) -> None:
    (tmp_path / "lakeplane.yaml").write_text(analysts(timeout="5m"))
    group = load_config(tmp_path).workgroups["analysts"]
    assert group.bytes_scanned_cutoff_per_query == 3 * 1024**4
    assert group.bytes_scanned_per_day == 50 * 1024**4
    assert group.max_concurrent == 4 and group.queue.length == 20 and group.queue.timeout_s == 300
    assert group.result_reuse.enabled and group.result_reuse.max_age == 3600


@pytest.mark.parametrize(
    ("section", "key", "line"),
    [
        ("workgroups:\n  analysts:\n    queue: {timeout: 5}\n", "workgroups.analysts.queue.timeout", 3),
        ("workgroups:\n  a:\n    bytes_scanned_per_day: lots\n", "workgroups.a.bytes_scanned_per_day", 3),
        ("workgroups:\n  a:\n    result_reuse: {max_age: soon}\n", "workgroups.a.result_reuse.max_age", 3),
        ("workgroups:\n  a:\n    max_concurrent: 0\n", "workgroups.a.max_concurrent", 3),
    ],
)
def test_a_wrong_key_names_file_line_and_key(tmp_path: Path, section: str, key: str, line: int) -> None:
    (tmp_path / "lakeplane.yaml").write_text(section)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.key == key and caught.value.line == line
    assert caught.value.file == str(tmp_path / "lakeplane.yaml") and key in str(caught.value)


def test_an_unknown_member_names_file_and_key(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, "workgroups:\n  analysts:\n    members: [role:analyst, role:nobody]\n")
    with pytest.raises(ConfigError) as caught:
        lake.query(DAY_ONE, principal="ana")
    assert caught.value.key == "workgroups.analysts.members.1" and caught.value.line is not None
    assert "lakeplane.yaml" in str(caught.value) and "role:nobody" in str(caught.value)


def test_membership_first_declared_wins_and_default_catches_the_rest(telco_lake: Lake) -> None:
    lake = with_workgroups(
        telco_lake,
        "workgroups:\n"
        "  staff:\n    members: [group:telco_staff]\n"
        "  analysts:\n    members: [role:analyst]\n"
        "  interns:\n    members: [ian]\n"
        "  default:\n    max_concurrent: 1\n",
    )
    admission = lake.queries.admission
    found = {p: getattr(admission.workgroup_for(p), "name", None) for p in ("ana", "eve", "fred", "ian")}
    # ana is in group telco_staff and role analyst: staff is declared first
    assert found == {"ana": "staff", "eve": "staff", "fred": "staff", "ian": "interns"}
    assert getattr(admission.workgroup_for("role:pipeline"), "name", None) == "default"
    assert admission.workgroup_for("ana").result_reuse.enabled is False  # type: ignore[union-attr]


def test_a_principal_in_no_workgroup_runs_uncapped(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(cutoff=1, daily=1, concurrent=1, length=0))
    assert lake.queries.admission.workgroup_for("fred") is None
    assert lake.query(STAR, principal="fred").num_rows == 2 * 500


# -- the estimate ---------------------------------------------------------------------------------
def test_the_estimate_is_the_manifest_column_sizes_of_the_pruned_files(telco_lake: Lake) -> None:
    estimate = telco_lake.queries.estimate(DAY_ONE, principal="ana")
    files, expected = manifest_bytes(telco_lake, CDR, FIRST_DAY, ["region", "duration_s", "ds"])
    [table] = estimate.tables
    assert (table.table, table.files, table.bytes, files) == (CDR, 1, expected, 1)
    assert sorted(table.columns) == ["ds", "duration_s", "region"]
    assert list(table.partitions) == ["ds=2026-11-01"] and table.whole_files == 0
    assert estimate.cost == athena_cost(expected) == MINIMUM_BILLED / 1024**4 * 5

    unfiltered = telco_lake.queries.estimate(ALL_DAYS, principal="ana")
    files, expected = manifest_bytes(telco_lake, CDR, AlwaysTrue(), ["region", "duration_s"])
    assert (unfiltered.tables[0].files, unfiltered.bytes) == (2, expected)
    star = telco_lake.queries.estimate(STAR, principal="ana")
    schema = [f.name for f in telco_lake.catalog.load(CDR).schema().fields]
    assert star.bytes == manifest_bytes(telco_lake, CDR, AlwaysTrue(), schema)[1]
    assert estimate.bytes < unfiltered.bytes < star.bytes


def test_the_estimate_counts_the_columns_a_row_filter_reads(telco_lake: Lake) -> None:
    sql = "SELECT sum(duration_s) FROM cdr"
    ana = telco_lake.queries.estimate(sql, principal="ana")
    eve = telco_lake.queries.estimate(sql, principal="eve")  # her rows are filtered on region
    assert ana.tables[0].columns == ["duration_s"] and sorted(eve.tables[0].columns) == [
        "duration_s",
        "region",
    ]
    assert eve.bytes == manifest_bytes(telco_lake, CDR, AlwaysTrue(), ["duration_s", "region"])[1]


def test_a_join_is_itemised_per_table(telco_lake: Lake) -> None:
    sql = (
        "SELECT s.card_pan, count(*) FROM cdr c JOIN subscribers s ON s.msisdn = c.msisdn "
        "WHERE c.ds = DATE '2026-11-02' GROUP BY 1"
    )
    estimate = telco_lake.queries.estimate(sql, principal="ana")
    found = {t["table"]: t for t in estimate.breakdown}
    assert found[CDR]["partitions"] == ["ds=2026-11-02"] and sorted(found[CDR]["columns"]) == ["ds", "msisdn"]
    assert sorted(found[SUBSCRIBERS]["columns"]) == ["card_pan", "msisdn"]
    assert (
        found[SUBSCRIBERS]["bytes"]
        == manifest_bytes(telco_lake, SUBSCRIBERS, AlwaysTrue(), ["card_pan", "msisdn"])[1]
    )


def test_a_file_without_column_sizes_is_counted_whole(
    telco_lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyiceberg.manifest import DataFile

    monkeypatch.setattr(DataFile, "column_sizes", property(lambda self: {}), raising=False)
    estimate = telco_lake.queries.estimate(DAY_ONE, principal="ana")
    iceberg = telco_lake.catalog.load(CDR)
    [task] = iceberg.scan(row_filter=FIRST_DAY).plan_files()
    assert estimate.bytes == task.file.file_size_in_bytes and estimate.tables[0].whole_files == 1
    assert "counted at their whole size" in "\n".join(estimate.lines())


def test_the_query_reads_exactly_the_files_it_was_estimated_on(telco_lake: Lake) -> None:
    watch = SessionWatch(telco_lake)
    telco_lake.query(DAY_ONE, principal="ana")
    [scan] = watch.scans
    assert len(scan) == 1 and "ds=2026-11-01" in scan[0]


def test_estimate_on_the_command_line(telco_lake: Lake) -> None:
    code, out = invoke(telco_lake, "query", "--as", "ana", "--estimate", DAY_ONE)
    assert code == 0 and "telco.processed.cdr" in out and "ds=2026-11-01" in out and "$" in out
    code, out = invoke(telco_lake, "--output", "json", "query", "--as", "ana", "--dry-run", STAR)
    data = json.loads(out)
    assert code == 0 and data["tables"][0]["files"] == 2 and data["bytes"] > 0
    assert QueryHistory(telco_lake.catalog.state_engine).list() == []  # nothing ran


# -- the per-query cutoff -------------------------------------------------------------------------
def test_the_cutoff_refuses_before_any_data_file_is_opened(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(cutoff="4KB"))
    star = lake.queries.estimate(STAR, principal="ana")
    assert star.bytes > 4096 > lake.queries.estimate(DAY_ONE, principal="ana").bytes
    # The data files leave the lake: only the manifests remain to be read.
    data = Path(lake.catalog.load(CDR).location().removeprefix("file://")) / "data"
    data.rename(data.with_name("data.away"))
    watch = SessionWatch(lake)
    with pytest.raises(QueryRefused) as caught:
        lake.query(STAR, principal="ana")
    refused = caught.value
    assert watch.opened == 0 and watch.scans == []
    assert (refused.reason, refused.workgroup, refused.limit, refused.estimate) == (
        "cutoff",
        "analysts",
        4096,
        star.bytes,
    )
    [item] = refused.breakdown or []
    assert item["table"] == CDR and item["partitions"] == ["ds=2026-11-01", "ds=2026-11-02"]
    assert item["files"] == 2 and item["bytes"] == star.bytes and "msisdn" in item["columns"]
    message = str(refused)
    assert (
        "bytes_scanned_cutoff_per_query of workgroup analysts, 4.0 KB" in message
        and "ds=2026-11-02" in message
    )
    assert f"${athena_cost(star.bytes):.6f}" in message
    # A query under the cap does open the files, and so fails without them.
    with pytest.raises(EngineError):
        lake.query(DAY_ONE, principal="ana")
    assert watch.opened == 1
    data.with_name("data.away").rename(data)
    assert lake.query(DAY_ONE, principal="ana").num_rows > 0


def test_the_cutoff_refusal_on_the_command_line(telco_lake: Lake) -> None:
    with_workgroups(telco_lake, analysts(cutoff="4KB"))
    code, out = invoke(telco_lake, "query", "--as", "ana", STAR)
    assert code == 1 and "query refused before it ran" in out and "ds=2026-11-01" in out and "columns:" in out
    code, out = invoke(telco_lake, "--output", "json", "query", "--as", "ana", STAR)
    error = json.loads(out)
    assert code == 1 and error["error"] == "QueryRefused" and error["breakdown"][0]["table"] == CDR
    code, out = invoke(telco_lake, "query", "--as", "ana", DAY_ONE)
    assert code == 0


# -- the daily budget -----------------------------------------------------------------------------
@pytest.mark.slow
def test_the_daily_budget_across_queries_and_processes(telco_lake: Lake) -> None:
    each = telco_lake.queries.estimate(ALL_DAYS, principal="ana").bytes
    small = telco_lake.queries.estimate(DAY_ONE, principal="ana").bytes
    assert small < each
    lake = with_workgroups(telco_lake, analysts(daily=2 * each + small))
    assert lakeplane(lake, "query", "--as", "ana", ALL_DAYS).returncode == 0  # another process
    lake.query(ALL_DAYS, principal="fred")  # not in the workgroup: does not count
    # the workgroup reuses results: the same secured query on the same snapshot reads nothing and
    # counts nothing against the budget
    assert cache_hit(lake.query(ALL_DAYS, principal="ana"))
    lake.query(ALL_DAYS, principal="ana", reuse=False)
    with pytest.raises(QueryRefused) as caught:
        lake.query(ALL_DAYS, principal="ana", reuse=False)
    assert caught.value.reason == "daily" and caught.value.remaining == small
    assert "bytes_scanned_per_day" in str(caught.value) and CDR in str(caught.value)
    # a refused query scanned nothing: a query that fits what is left runs
    assert lake.query(DAY_ONE, principal="ana", reuse=False).num_rows > 0
    other = lakeplane(lake, "query", "--as", "ana", "--no-reuse", DAY_ONE)
    assert other.returncode == 1 and "bytes_scanned_per_day" in other.stderr and "0 B" in other.stderr


def test_yesterdays_queries_do_not_count(telco_lake: Lake) -> None:
    each = telco_lake.queries.estimate(ALL_DAYS, principal="ana").bytes
    lake = with_workgroups(telco_lake, analysts(daily=int(each * 1.5)))
    history = lake.queries.admission.history
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat(timespec="microseconds")
    history.insert("y1", yesterday, "ana", "analysts", ALL_DAYS, bytes_estimated=each * 100, outcome="ok")
    lake.query(ALL_DAYS, principal="ana", reuse=False)
    with pytest.raises(QueryRefused):
        lake.query(ALL_DAYS, principal="ana", reuse=False)


# -- max_concurrent and the queue -----------------------------------------------------------------
@pytest.mark.slow
def test_max_concurrent_holds_across_threads(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(concurrent=2, length=10, timeout=30))
    watch = SessionWatch(lake, hold_s=0.4)
    elsewhere: list[str] = []
    lake.queries.admission.on_wait = elsewhere.append
    told: dict[int, list[str]] = {n: [] for n in range(6)}  # each caller's own channel
    results: list[pa.Table | BaseException] = []

    def one(n: int) -> None:
        try:
            with waiting_notices(told[n].append):
                results.append(lake.query(DAY_ONE, principal="ana"))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, pa.Table) for r in results) and len(results) == 6
    assert watch.most_at_once == 2
    waited = [m for messages in told.values() for m in messages]
    assert waited and all(m.startswith("waiting: workgroup analysts runs 2 of 2 queries") for m in waited)
    assert elsewhere == [] and all(len(m) <= 1 for m in told.values())


@pytest.mark.slow
def test_a_queued_query_waits_for_a_slot_held_by_another_process(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(concurrent=1, length=5, timeout=30))
    messages: list[str] = []
    lake.queries.admission.on_wait = messages.append
    with slot_held_elsewhere(lake, "analysts", 1) as holder:
        done = threading.Event()

        def run() -> None:
            lake.query(DAY_ONE, principal="ana")
            done.set()

        thread = threading.Thread(target=run)
        thread.start()
        assert not done.wait(1.0)  # queued behind the other process
        assert messages and messages[0].startswith("waiting: workgroup analysts runs 1 of 1 queries")
        holder.kill()  # the holder crashes: its slot comes back at once (its pid is gone)
        holder.wait()
        assert done.wait(10)
        thread.join()


@pytest.mark.slow
def test_the_cli_says_why_it_waits(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(concurrent=1, length=5, timeout=30))
    slots = lake.queries.admission.slots
    slot = slots.try_acquire("analysts", 1, "held-here")
    assert slot is not None
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakeplane.cli.main",
            "--lake",
            str(lake.project_dir),
            "query",
            "--as",
            "ana",
            DAY_ONE,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert waiting.stderr is not None
        line = waiting.stderr.readline()
        assert line.startswith("waiting: workgroup analysts runs 1 of 1 queries")
        assert waiting.poll() is None
        slots.release(slot)
        out, _ = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 0 and "rows" in out


def test_a_full_queue_refuses_at_once(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(concurrent=1, length=1, timeout=30))
    with slot_held_elsewhere(lake, "analysts", 1):
        waiter = threading.Thread(target=lambda: lake.query(DAY_ONE, principal="ana"), daemon=True)
        waiter.start()
        deadline = time.monotonic() + 10
        while not lake.queries.admission.slots._waiting("analysts") and time.monotonic() < deadline:
            time.sleep(0.05)
        began = time.monotonic()
        with pytest.raises(QueryRefused) as caught:
            open_lake(lake.project_dir).query(DAY_ONE, principal="ana")
        assert caught.value.reason == "queue_full" and time.monotonic() - began < 5
        assert "queue is full" in str(caught.value) and caught.value.retryable
    waiter.join(10)
    assert not waiter.is_alive()


def test_no_queue_refuses_when_every_slot_runs(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(concurrent=1, length=0))
    with slot_held_elsewhere(lake, "analysts", 1), pytest.raises(QueryRefused) as caught:
        lake.query(DAY_ONE, principal="ana")
    assert caught.value.reason == "queue_full"
    assert lake.query(DAY_ONE, principal="ana").num_rows > 0  # the holder is gone


@pytest.mark.slow
def test_a_queued_query_times_out(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(concurrent=1, length=5, timeout=0.6))
    with slot_held_elsewhere(lake, "analysts", 1):
        began = time.monotonic()
        with pytest.raises(QueryRefused) as caught:
            lake.query(DAY_ONE, principal="ana")
        waited = time.monotonic() - began
    assert caught.value.reason == "queue_timeout" and 0.6 <= waited < 5
    [row] = lake.queries.admission.history.list()
    assert row.outcome == "refused" and "0.6 s" in (row.reason or "")
    assert lake.queries.admission.slots._waiting("analysts") == []  # it left the queue


def test_an_expired_slot_of_another_host_is_taken_back(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(concurrent=1, length=0))
    engine = lake.catalog.state_engine
    QuerySlots(engine)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat(timespec="microseconds")
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)).isoformat(timespec="microseconds")
    with engine.begin() as conn:
        conn.execute(
            SLOTS.insert().values(
                workgroup="analysts", slot=0, query_id="q", holder="far:1", expires_at=future
            )
        )
    with pytest.raises(QueryRefused):  # alive as far as anyone here can tell
        lake.query(DAY_ONE, principal="ana")
    with engine.begin() as conn:
        conn.execute(SLOTS.update().values(expires_at=past))
    assert lake.query(DAY_ONE, principal="ana").num_rows > 0


def test_a_running_slot_is_kept_alive_by_its_heartbeat(telco_lake: Lake) -> None:
    engine = telco_lake.catalog.state_engine
    slots = QuerySlots(engine, ttl_s=0.3)
    slot = slots.try_acquire("analysts", 1, "long")
    assert slot is not None
    time.sleep(1.0)  # three ttls: without renewals it would have expired
    assert slots.running("analysts") == 1 and slots.try_acquire("analysts", 1, "other") is None
    slots.release(slot)
    assert slots.running("analysts") == 0


def test_refusals_by_the_policy_are_not_queued(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(concurrent=1, length=0))
    with pytest.raises(AccessDenied):
        lake.query(DAY_ONE, principal="ian")
    assert lake.queries.admission.slots.running("analysts") == 0


def test_a_dead_waiter_neither_fills_the_queue_nor_blocks_it(telco_lake: Lake) -> None:
    lake = with_workgroups(telco_lake, analysts(concurrent=1, length=1, timeout=30))
    slots = lake.queries.admission.slots
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    before = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat(timespec="microseconds")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)).isoformat(timespec="microseconds")
    with lake.catalog.state_engine.begin() as conn:
        conn.execute(
            WAITERS.insert().values(
                query_id="dead",
                workgroup="analysts",
                holder=f"{socket.gethostname()}:{int(ended.stdout)}",
                enqueued_at=before,
                expires_at=later,
            )
        )
    slot = slots.try_acquire("analysts", 1, "held-here")
    assert slot is not None
    threading.Timer(0.5, slots.release, args=(slot,)).start()
    began = time.monotonic()
    assert lake.query(DAY_ONE, principal="ana").num_rows > 0  # queued (not refused), then first in line
    assert 0.4 < time.monotonic() - began < 10


def test_the_estimate_of_an_ungoverned_lake(telco_lake: Lake) -> None:
    (telco_lake.project_dir / "policy.yaml").unlink()
    lake = open_lake(telco_lake.project_dir)
    columns = {
        sql: lake.queries.estimate(sql).tables[0].columns
        for sql in (
            "SELECT c.region FROM cdr c WHERE c.ds = DATE '2026-11-01'",
            "SELECT count(*) FROM cdr",
            STAR,
        )
    }
    assert list(columns.values())[:2] == [["region", "ds"], []]
    assert columns[STAR] == [f.name for f in lake.catalog.load(CDR).schema().fields]
    estimate = lake.queries.estimate("SELECT c.region FROM cdr c WHERE c.ds = DATE '2026-11-01'")
    assert estimate.bytes == manifest_bytes(lake, CDR, FIRST_DAY, ["region", "ds"])[1]

"""Snapshot expiry: what it frees, what it must never touch, failed-gate audit snapshots, races."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pyiceberg.exceptions import CommitFailedException

import lakeplane.maintenance.expire as expire_module
from lakeplane.catalog.writer import WriteResult
from lakeplane.cli.context import Context
from lakeplane.cli.group import LakeplaneGroup
from lakeplane.cli.main import cli
from lakeplane.cli.maintain import maintain
from lakeplane.errors import QualityGateFailed, StorageError
from lakeplane.lake import Lake
from lakeplane.maintenance.actions import MaintenanceLog
from lakeplane.pipelines.gate import write_audit_publish
from tests.maintenance.history import (
    History,
    folder_bytes,
    new_lake,
    rows,
    snapshot_paths,
    snapshot_rows,
    table_folder,
)

MAINTAIN = "lakeplane.cli.maintain:maintain"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return new_lake(tmp_path / "project")


def files_on_disk(lake: Lake, name: str) -> set[str]:
    return {str(p) for p in table_folder(lake, name).rglob("*") if p.is_file()}


def snapshot_reads(history: History) -> dict[int, tuple[list[tuple[Any, ...]], set[str]]]:
    """Each snapshot's rows and the files it opens, read before an expiry."""
    table = history.table
    return {
        s.snapshot_id: (snapshot_rows(table, s.snapshot_id), snapshot_paths(table, s.snapshot_id))
        for s in table.metadata.snapshots
    }


def test_expiry_frees_storage_and_keeps_what_main_reads(lake: Lake) -> None:
    history = History.create(lake)
    for _ in range(4):
        history.append()
    for _ in range(4):
        history.overwrite()
    before = snapshot_reads(history)
    head = history.table.metadata.current_snapshot_id
    assert head is not None
    bytes_before = folder_bytes(table_folder(lake, history.name))

    action = lake.expire_snapshots(history.name, older_than=0, retain_last=1)

    table = history.table
    assert [s.snapshot_id for s in table.metadata.snapshots] == [head]
    assert snapshot_rows(table, head) == before[head][0]
    assert folder_bytes(table_folder(lake, history.name)) < bytes_before
    assert action.deleted_bytes > 0 and action.details["snapshots_expired"] == len(before) - 1
    on_disk = files_on_disk(lake, history.name)
    assert before[head][1] <= on_disk
    expired_only = (
        set().union(*(files for sid, (_, files) in before.items() if sid != head)) - before[head][1]
    )
    assert expired_only and not expired_only & on_disk
    data_on_disk = {p for p in on_disk if p.endswith(".parquet")}
    assert data_on_disk == {p for p in before[head][1] if p.endswith(".parquet")}
    assert MaintenanceLog(lake.catalog.state_engine).for_table(history.name)[0]["action"] == "expire"


def test_retain_last_and_age_keep_snapshots(lake: Lake) -> None:
    history = History.create(lake)
    ids = [history.append() for _ in range(5)]
    action = lake.expire_snapshots(history.name, older_than=0, retain_last=3)
    assert [s.snapshot_id for s in history.table.metadata.snapshots] == ids[2:]
    assert action.details["snapshots_expired"] == 2

    young = lake.expire_snapshots(history.name, older_than=3600, retain_last=1)
    assert young.details["snapshots_expired"] == 0 and young.skipped
    assert [s.snapshot_id for s in history.table.metadata.snapshots] == ids[2:]


def test_dry_run_changes_nothing_and_says_what_a_run_deletes(lake: Lake) -> None:
    history = History.create(lake)
    for _ in range(3):
        history.overwrite()
    location = history.table.metadata_location
    on_disk = files_on_disk(lake, history.name)

    dry = lake.expire_snapshots(history.name, older_than=0, retain_last=1, dry_run=True)

    assert history.table.metadata_location == location
    assert files_on_disk(lake, history.name) == on_disk
    assert dry.deleted and dry.dry_run
    real = lake.expire_snapshots(history.name, older_than=0, retain_last=1)
    assert sorted(real.deleted) == sorted(dry.deleted)
    assert real.deleted_bytes == dry.deleted_bytes


def test_branches_and_tags_keep_their_snapshots_and_files(lake: Lake) -> None:
    history = History.create(lake)
    first = history.append()
    history.tag("v1", first)
    history.branch("dev", first)
    dev_base = history.append(branch="dev")
    dev_head = history.append(branch="dev")
    for _ in range(3):
        history.overwrite()
    before = snapshot_reads(history)

    lake.expire_snapshots(history.name, older_than=0, retain_last=1)

    table = history.table
    kept = {s.snapshot_id for s in table.metadata.snapshots}
    assert {first, dev_head} <= kept and dev_base not in kept
    on_disk = files_on_disk(lake, history.name)
    for sid in kept:
        rows_then, files_then = before[sid]
        assert snapshot_rows(table, sid) == rows_then
        assert files_then <= on_disk
    assert table.snapshot_by_name("v1") is not None and table.snapshot_by_name("dev") is not None


def test_failed_gate_audit_snapshots_expire(lake: Lake) -> None:
    history = History.create(lake)
    history.append()
    table = history.table

    def commit(branch: str | None) -> WriteResult:
        table.append(rows(5), branch=branch or "main", snapshot_properties={"lakeplane.rows": "5"})
        table.refresh()
        landed = table.snapshot_by_name(branch or "main")
        assert landed is not None
        return WriteResult(history.name, 5, 1, 0, landed.snapshot_id, [])

    def failing_gate(_name: str, _snapshot_id: int) -> list[dict[str, Any]]:
        return [{"rule": "RowCount > 100", "passed": False, "observed": 5, "blocking": True}]

    with pytest.raises(QualityGateFailed):
        write_audit_publish(table, commit, failing_gate)
    table.refresh()
    dropped = [s for s in table.metadata.snapshots if s.snapshot_id not in history.read]
    assert dropped, "the failed gate's audit snapshot stays in the history"
    # A gate whose process died before it could drop its branch leaves the branch as well.
    killed = f"audit-{uuid.uuid4().hex[:12]}"
    history.branch(killed, history.table.metadata.current_snapshot_id or 0)
    history.append(branch=killed, properties={"lakeplane.rows": "3"})
    # A user's branches that only look alike stay: not written by lakeplane, or not the gate's name.
    lookalike = f"audit-{uuid.uuid4().hex[:12]}"
    history.branch(lookalike, history.table.metadata.current_snapshot_id or 0)
    history.append(branch=lookalike)
    users = "audit-quarterly"
    history.branch(users, history.table.metadata.current_snapshot_id or 0)
    history.append(branch=users, properties={"lakeplane.rows": "3"})
    head = history.append()
    audit_files = set().union(*(snapshot_paths(history.table, s.snapshot_id) for s in dropped))
    killed_head = history.table.snapshot_by_name(killed)
    assert killed_head is not None
    audit_files |= snapshot_paths(history.table, killed_head.snapshot_id)

    action = lake.expire_snapshots(history.name, older_than=0, retain_last=1)

    table = history.table
    assert action.details["audit_branches_removed"] == [killed]
    assert table.snapshot_by_name(killed) is None
    assert table.snapshot_by_name(lookalike) is not None and table.snapshot_by_name(users) is not None
    kept = {s.snapshot_id for s in table.metadata.snapshots}
    assert not kept & {s.snapshot_id for s in dropped}
    audit_only = audit_files - set().union(*(snapshot_paths(table, sid) for sid in kept))
    assert len(audit_only) >= 4  # two manifest lists, at least one data file each
    assert not audit_only & files_on_disk(lake, history.name)
    assert snapshot_rows(table, head) == history.read[head]


def test_a_tag_made_during_expiry_is_kept(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    history = History.create(lake)
    old = history.append()
    for _ in range(3):
        history.append()
    before = snapshot_reads(history)
    planned = expire_module.plan_expiry
    other = new_lake_handle(lake).catalog.load(history.name)
    calls: list[expire_module.ExpiryPlan] = []

    def plan_then_tag(*args: Any, **kwargs: Any) -> expire_module.ExpiryPlan:
        plan = planned(*args, **kwargs)
        if not calls:  # another process tags a snapshot this expiry is about to remove
            other.manage_snapshots().create_tag(old, "release").commit()
        calls.append(plan)
        return plan

    monkeypatch.setattr(expire_module, "plan_expiry", plan_then_tag)
    lake.expire_snapshots(history.name, older_than=0, retain_last=1)

    table = history.table
    assert len(calls) == 2 and old in calls[0].expire and old not in calls[1].expire
    assert table.snapshot_by_name("release") is not None
    assert snapshot_rows(table, old) == before[old][0]
    assert before[old][1] <= files_on_disk(lake, history.name)


def new_lake_handle(lake: Lake) -> Lake:
    """The same lake opened again, as another process would."""
    return Lake(lake.project_dir)


def test_commits_during_expiry_lose_nothing(lake: Lake) -> None:
    history = History.create(lake)
    for _ in range(10):
        history.append()
    writer = History(new_lake_handle(lake), history.name)
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                try:
                    writer.append(2)
                except CommitFailedException:
                    continue  # the expiry landed first: this append did not, and is tried again
                written.append(2)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(8):
            lake.expire_snapshots(history.name, older_than=0, retain_last=2)
    finally:
        stop.set()
        thread.join()
    assert not errors and written, "the writer must have committed while expiries ran"
    table = history.table
    expected = 10 * 3 + sum(written)
    head = table.metadata.current_snapshot_id
    assert head is not None and len(snapshot_rows(table, head)) == expected
    on_disk = files_on_disk(lake, history.name)
    for snapshot in table.metadata.snapshots:
        assert snapshot_paths(table, snapshot.snapshot_id) <= on_disk


def test_old_metadata_files_beyond_the_log_are_deleted(lake: Lake) -> None:
    history = History.create(lake)
    history.table.transaction().set_properties(
        {"write.metadata.previous-versions-max": "2"}
    ).commit_transaction()
    for _ in range(6):
        history.append()
    metadata_dir = table_folder(lake, history.name) / "metadata"
    assert len(list(metadata_dir.glob("*.metadata.json"))) > 4

    lake.expire_snapshots(history.name, older_than=3600, retain_last=1)

    table = history.table
    kept = {Path(e.metadata_file.removeprefix("file://")).name for e in table.metadata.metadata_log}
    kept.add(Path(table.metadata_location.removeprefix("file://")).name)
    assert {p.name for p in metadata_dir.glob("*.metadata.json")} == kept
    assert len(snapshot_rows(table, table.metadata.current_snapshot_id or 0)) == 18


def run_cli(lake: Lake, *args: str) -> Any:
    return CliRunner().invoke(maintain, list(args), obj=Context(str(lake.project_dir)))


def test_cli_expire_json_and_usage_errors(lake: Lake) -> None:
    history = History.create(lake)
    for _ in range(3):
        history.overwrite()
    result = run_cli(lake, "expire", "events", "--older-than", "0d", "--retain-last", "1", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["action"] == "expire" and data["deleted_count"] == len(data["deleted"]) > 0
    assert data["details"]["snapshots_expired"] == 4  # the overwrites of rows made 5 snapshots

    dry = run_cli(lake, "expire", "events", "--older-than", "0d", "--dry-run")
    assert dry.exit_code == 0 and "would delete 0 files" in dry.output
    assert run_cli(lake, "expire", "events", "--retain-last", "0").exit_code == 2
    assert run_cli(lake, "expire", "events", "--older-than", "soon").exit_code == 2


def test_cli_errors_are_one_line(lake: Lake) -> None:
    History.create(lake)
    # ``maintain`` joins the top-level commands with the policy work; wire it the same way here.
    top = LakeplaneGroup(
        name="lakeplane", params=cli.params, callback=cli.callback, lazy_commands={"maintain": MAINTAIN}
    )
    result = CliRunner().invoke(
        top, ["--lake", str(lake.project_dir), "maintain", "expire", "nope", "--older-than", "0d"]
    )
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: table 'nope'") and "Traceback" not in result.output
    json_args = ["--lake", str(lake.project_dir), "maintain", "orphans", "nope", "--output", "json"]
    as_json = CliRunner().invoke(top, json_args)
    assert as_json.exit_code == 1 and json.loads(as_json.output)["error"] == "TableNotFoundError"


def test_files_registered_in_place_outside_the_table_folder_stay(lake: Lake) -> None:
    history = History.create(lake)
    landed = Path(lake.storage.path("landing/partner/part-0.parquet"))
    landed.parent.mkdir(parents=True)
    pq.write_table(rows(4, ["a"]), landed)
    history.table.add_files([str(landed)])
    history.overwrite(where="grp == 'a'")

    action = lake.expire_snapshots(history.name, older_than=0, retain_last=1)

    assert landed.exists()
    assert action.details["kept_outside_table_folder"] == 1
    assert str(landed) not in action.deleted


def test_a_file_that_cannot_be_deleted_is_reported_and_the_action_recorded(lake: Lake) -> None:
    history = History.create(lake)
    history.overwrite()
    first = history.table.metadata.current_snapshot_id or 0
    history.overwrite()
    stuck = sorted(p for p in snapshot_paths(history.table, first) if p.endswith(".parquet"))[0]
    Path(stuck).unlink()
    Path(stuck).mkdir()  # a folder where the file was: deleting it as a file fails
    (Path(stuck) / "keep").write_bytes(b"x")

    with pytest.raises(StorageError, match="cannot delete") as raised:
        lake.expire_snapshots(history.name, older_than=0, retain_last=1)

    assert raised.value.path == stuck
    assert len(history.table.metadata.snapshots) == 1, "the snapshots are expired all the same"
    record = MaintenanceLog(lake.catalog.state_engine).for_table(history.name)[0]
    assert list(record["details"]["not_deleted"]) == [stuck] and record["deleted_count"] > 0


def test_an_empty_table_has_nothing_to_do(lake: Lake) -> None:
    history = History.create(lake)
    expired = lake.expire_snapshots(history.name, older_than=0, retain_last=1)
    orphans = lake.remove_orphans(history.name, older_than=0)
    assert expired.skipped and not expired.deleted
    assert orphans.skipped and not orphans.deleted
    assert files_on_disk(lake, history.name) == {history.table.metadata_location.removeprefix("file://")}

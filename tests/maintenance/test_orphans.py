"""Orphan removal: unreferenced files older than the grace period go; anything referenced, or
written too recently to tell (a write in flight), stays."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeplane.cli.context import Context
from lakeplane.cli.maintain import maintain
from lakeplane.errors import CleanupRefused
from lakeplane.lake import Lake
from lakeplane.maintenance.orphans import remove_orphans
from tests.maintenance.history import History, new_lake, snapshot_paths, snapshot_rows, table_folder

DAY = 86400


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return new_lake(tmp_path / "project")


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_grace_period_keeps_writes_in_flight_and_referenced_files_never_go(lake: Lake) -> None:
    history = History.create(lake)
    for _ in range(3):
        history.append()
    history.overwrite()
    table = history.table
    rows_before = {s.snapshot_id: snapshot_rows(table, s.snapshot_id) for s in table.metadata.snapshots}
    folder = table_folder(lake, history.name)
    for path in folder.rglob("*"):  # every committed file is old: only references protect them
        if path.is_file():
            age(path, 10 * DAY)
    old_orphan = folder / "data" / "grp=a" / "00000-lost-write.parquet"
    old_orphan.write_bytes(b"PAR1" * 100)
    age(old_orphan, 5 * DAY)
    in_flight = folder / "data" / "20261130T000000-abcd1234" / "part-0.parquet"
    in_flight.parent.mkdir(parents=True)
    in_flight.write_bytes(b"PAR1" * 10)

    action = lake.remove_orphans(history.name, older_than=3 * DAY)

    assert action.deleted == [str(old_orphan)] and action.deleted_bytes == 400
    assert not old_orphan.exists() and in_flight.exists()
    assert action.details["recent"] == 1
    table.refresh()
    for snapshot in table.metadata.snapshots:
        assert snapshot_paths(table, snapshot.snapshot_id) <= {str(p) for p in folder.rglob("*")}
        assert snapshot_rows(table, snapshot.snapshot_id) == rows_before[snapshot.snapshot_id]

    # The same write, once older than the grace period, is an orphan.
    age(in_flight, 4 * DAY)
    assert lake.remove_orphans(history.name, older_than=3 * DAY).deleted == [str(in_flight)]
    assert lake.remove_orphans(history.name, older_than=0).deleted == []


def test_dry_run_lists_with_sizes_and_deletes_nothing(lake: Lake) -> None:
    history = History.create(lake)
    history.append()
    stray = table_folder(lake, history.name) / "data" / "stray.parquet"
    stray.write_bytes(b"x" * 123)
    age(stray, 2 * DAY)

    runner = CliRunner()
    args = ["orphans", "events", "--older-than", "1d", "--dry-run", "--output", "json"]
    result = runner.invoke(maintain, args, obj=Context(str(lake.project_dir)))

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dry_run"] and data["deleted"] == [str(stray)] and data["details"]["deleted_sizes"] == [123]
    assert stray.exists()
    shown = runner.invoke(maintain, args[:-2], obj=Context(str(lake.project_dir)))
    assert (
        "stray.parquet" in shown.output and "123 B" in shown.output and "would delete 1 files" in shown.output
    )


def test_metadata_files_dropped_from_the_log_are_orphans(lake: Lake) -> None:
    history = History.create(lake)
    history.table.transaction().set_properties(
        {"write.metadata.previous-versions-max": "1"}
    ).commit_transaction()
    for _ in range(4):
        history.append()
    metadata_dir = table_folder(lake, history.name) / "metadata"
    for path in metadata_dir.iterdir():
        age(path, 2 * DAY)

    action = lake.remove_orphans(history.name, older_than=DAY)

    table = history.lake.catalog.load(history.name)
    kept = {p.name for p in metadata_dir.glob("*.metadata.json")}
    assert len(kept) == 2 and all(p.endswith(".metadata.json") for p in action.deleted)
    assert len(snapshot_rows(table, table.metadata.current_snapshot_id or 0)) == 12


def test_a_table_outside_the_lake_is_refused(lake: Lake, tmp_path: Path) -> None:
    from lakeplane.catalog import TableRef
    from tests.maintenance.history import SCHEMA

    lake.catalog.create_namespaces(TableRef.parse("demo.curated.outside"))
    outside = tmp_path / "elsewhere"
    table = lake.catalog.iceberg.create_table("demo.curated.outside", SCHEMA, location=f"file://{outside}")
    with pytest.raises(CleanupRefused, match="outside the lake"):
        remove_orphans(table, lake.storage, older_than=0)

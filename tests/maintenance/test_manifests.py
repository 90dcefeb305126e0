"""Manifest rewrite: fewer manifests, the same live files and rows, a ``replace`` snapshot that
changes no data file, history and time travel intact."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pyiceberg.manifest import ManifestContent
from pyiceberg.table import Table

from lakeplane.cli.maintain import maintain
from lakeplane.maintenance.actions import MaintenanceLog
from tests.maintenance.test_compact import FULL, TABLE, head, live_files, rows, small_files_lake


def data_manifests(table: Table) -> int:
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return len([m for m in snapshot.manifests(table.io) if m.content == ManifestContent.DATA])


def test_rewrite_manifests_regroups_the_same_files(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p", writes=8)
    before_rows = rows(lake)
    before_files = sorted(f["path"] for f in live_files(lake))
    table = head(lake)
    first = table.snapshots()[0]
    first_rows = table.scan(snapshot_id=first.snapshot_id).to_arrow().num_rows
    assert data_manifests(table) == 8

    action = lake.rewrite_manifests(TABLE)

    table = head(lake)
    assert data_manifests(table) == 1
    assert action.details["manifests_after"] == 1 and action.details["data_manifests_before"] == 8
    assert sorted(f["path"] for f in live_files(lake)) == before_files
    assert rows(lake) == before_rows
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.snapshot_id == action.snapshot_id
    assert snapshot.summary is not None and snapshot.summary.operation.value == "replace"
    assert snapshot.summary["total-data-files"] == str(len(before_files))
    assert snapshot.summary["total-records"] == str(len(before_rows))
    assert snapshot.summary["added-data-files"] is None and snapshot.summary["deleted-data-files"] is None
    # Entries keep the snapshot that added them: an incremental reader still sees 8 appends.
    entries = snapshot.manifests(table.io)[0].fetch_manifest_entry(table.io)
    assert len({e.snapshot_id for e in entries}) == 8
    assert all(e.status.name == "EXISTING" for e in entries)
    assert table.scan(snapshot_id=first.snapshot_id).to_arrow().num_rows == first_rows  # time travel
    assert [r["action"] for r in MaintenanceLog(lake.catalog.state_engine).for_table(FULL)] == [
        "rewrite-manifests"
    ]


def test_rewrite_manifests_dry_run_and_a_table_with_one_manifest(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p", writes=3)
    snapshot_id = head(lake).current_snapshot().snapshot_id  # type: ignore[union-attr]

    dry = lake.rewrite_manifests(TABLE, dry_run=True)
    assert dry.dry_run and dry.snapshot_id is None and dry.details["data_manifests_before"] == 3
    assert head(lake).current_snapshot().snapshot_id == snapshot_id  # type: ignore[union-attr]

    lake.compact(TABLE)  # the replace snapshot keeps one manifest of the new files ...
    lake.rewrite_manifests(TABLE)
    again = lake.rewrite_manifests(TABLE)  # ... and after a rewrite there is nothing to regroup
    assert again.skipped is not None and again.snapshot_id is None


def test_cli_rewrite_manifests(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p", writes=3)
    runner = CliRunner()
    env = {"LAKEPLANE_LAKE": str(lake.project_dir)}
    done = runner.invoke(maintain, ["rewrite-manifests", TABLE, "--output", "json"], env=env)
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["action"] == "rewrite-manifests" and report["details"]["manifests_after"] == 1
    assert report["snapshot_id"] == head(lake).current_snapshot().snapshot_id  # type: ignore[union-attr]
    again = runner.invoke(maintain, ["rewrite-manifests", TABLE], env=env)
    assert again.exit_code == 0 and "nothing to do" in again.output

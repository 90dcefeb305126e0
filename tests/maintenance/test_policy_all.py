"""``maintain all``: by each table's policy, what is due is listed (``--dry-run`` changes nothing) or
done: small files compacted, old snapshots expired and their files deleted, orphans removed, and
every action recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.errors import MaintenancePolicyError
from lakeplane.lake import Lake
from tests.maintenance.history import History, new_lake, snapshot_rows, table_folder

CROWDED, HEALTHY = "demo.curated.events", "demo.processed.healthy"
#: Everything old enough at once, so one run shows every action.
EAGER = {"maintenance": {"older_than": "0d", "orphan_grace": "0d", "max_manifests": 4}}


def crowded_lake(root: Path, overrides: dict[str, Any] | None = None) -> Lake:
    """``CROWDED``: 8 appends of two partitions (16 small files, 8 manifests, 8 snapshots);
    ``HEALTHY``: one append (2 files, one snapshot)."""
    lake = new_lake(root)
    settings = EAGER if overrides is None else overrides
    with (root / "lakeplane.yaml").open("a") as config:  # in the file, for the command line too
        config.write(f"maintenance: {json.dumps(settings['maintenance'])}\n")
    lake = Lake(root)
    crowded = History.create(lake, CROWDED)
    for _ in range(8):
        crowded.append(4)
    History.create(lake, HEALTHY).append(4)
    return lake


def every_file(lake: Lake) -> dict[str, int]:
    """Every file under the lake's zones, with its size."""
    root = Path(lake.storage.base)
    return {str(p): p.stat().st_size for zone in ("processed", "curated") for p in (root / zone).rglob("*")}


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return out.exit_code, out.output


def by_action(actions: list[dict[str, Any]], table: str) -> dict[str, dict[str, Any]]:
    return {a["action"]: a for a in actions if a["table"] == table}


def test_dry_run_lists_what_is_due_and_changes_nothing(tmp_path: Path) -> None:
    lake = crowded_lake(tmp_path / "p")
    orphan = table_folder(lake, CROWDED) / "data" / "grp=a" / "stray.parquet"
    orphan.write_bytes(b"x" * 100)
    before = every_file(lake)
    heads = {t: lake.catalog.load(t).metadata_location for t in (CROWDED, HEALTHY)}

    code, out = invoke(lake, "maintain", "all", "--dry-run", "--output", "json")
    assert code == 0, out
    report = json.loads(out)
    assert report["dry_run"] is True
    crowded = by_action(report["actions"], CROWDED)
    assert set(crowded) == {"compact", "rewrite-manifests", "expire", "orphans"}
    assert all(a["dry_run"] for a in report["actions"])
    assert crowded["compact"]["skipped"] is None and crowded["compact"]["files_before"] == 16
    assert crowded["compact"]["files_after"] == 2, "one file per partition would remain"
    assert crowded["expire"]["skipped"] is None and crowded["expire"]["deleted_count"] > 0
    assert str(orphan) in [p.removeprefix("file://") for p in crowded["orphans"]["deleted"]]
    healthy = by_action(report["actions"], HEALTHY)
    assert healthy["compact"]["skipped"].startswith("not due: no partition has 5+ small files")
    assert healthy["expire"]["skipped"].startswith("not due")
    assert healthy["rewrite-manifests"]["skipped"].startswith("not due: 1 manifests")
    total = report["total"]
    assert (total["tables"], total["not_due"], total["actions_taken"]) == (2, 3, 4)
    assert (total["files_before"], total["files_after"]) == (18, 4), "compaction would leave 2 + 2"
    assert total["deleted"] == crowded["expire"]["deleted_count"] + crowded["orphans"]["deleted_count"]

    assert every_file(lake) == before, "a dry run touches no file"
    assert {t: lake.catalog.load(t).metadata_location for t in heads} == heads

    code, text = invoke(lake, "maintain", "all", "--dry-run")
    assert code == 0 and "dry run: nothing changed" in text and "would run" in text
    assert "files to delete" in text


def test_maintain_all_compacts_expires_removes_orphans_and_records_each_action(tmp_path: Path) -> None:
    lake = crowded_lake(tmp_path / "p")
    table = lake.catalog.load(CROWDED)
    rows_before = snapshot_rows(table, table.current_snapshot().snapshot_id)  # type: ignore[union-attr]
    orphan = table_folder(lake, CROWDED) / "data" / "grp=b" / "stray.parquet"
    orphan.write_bytes(b"x" * 100)
    old = orphan.stat().st_mtime - 86400
    os.utime(orphan, (old, old))
    healthy_before = lake.catalog.load(HEALTHY).metadata_location

    code, out = invoke(lake, "maintain", "all", "--output", "json")
    assert code == 0, out
    report = json.loads(out)
    crowded = by_action(report["actions"], CROWDED)
    assert [a["action"] for a in report["actions"] if a["table"] == CROWDED] == [
        "compact",
        "rewrite-manifests",
        "expire",
        "orphans",
    ]
    assert crowded["compact"]["files_before"] == 16 and crowded["compact"]["files_after"] == 2

    table = lake.catalog.load(CROWDED)
    head = table.current_snapshot()
    assert head is not None and snapshot_rows(table, head.snapshot_id) == rows_before
    assert len(table.snapshots()) == 1, "retain_last 1 and older_than 0d leave main's head only"
    live = {t.file.file_path.removeprefix("file://") for t in table.scan().plan_files()}
    assert len(live) == 2
    data_files = {str(p) for p in (table_folder(lake, CROWDED) / "data").rglob("*.parquet")}
    assert data_files == live, "the small files and the orphan are gone from storage"
    assert not orphan.exists()
    assert lake.catalog.load(HEALTHY).metadata_location == healthy_before, "a healthy table is left alone"

    recorded = lake.maintenance_log.for_table(CROWDED)
    taken = [a for a in recorded if not a["dry_run"]]
    assert sorted(a["action"] for a in taken) == ["compact", "expire", "orphans", "rewrite-manifests"]
    compacted = next(a for a in taken if a["action"] == "compact")
    assert (compacted["files_before"], compacted["files_after"]) == (16, 2)
    assert compacted["snapshot_id"] is not None
    expired = next(a for a in taken if a["action"] == "expire")
    assert expired["deleted_count"] >= 16 and expired["deleted_bytes"] > 0

    # Run again: nothing is due any more but the orphan check.
    again = lake.maintain_all()
    assert [(a.table, a.action) for a in again if not a.skipped or not a.skipped.startswith("not due")] == [
        (HEALTHY, "orphans"),  # processed before curated
        (CROWDED, "orphans"),
    ]


def test_table_and_action_selection(tmp_path: Path) -> None:
    lake = crowded_lake(tmp_path / "p")
    done = lake.maintain_all(tables=["curated.events"], actions=["compact"])
    assert [(a.table, a.action, a.skipped) for a in done] == [(CROWDED, "compact", None)]
    assert len(lake.catalog.load(CROWDED).snapshots()) == 9, "nothing expired"
    with pytest.raises(MaintenancePolicyError, match="vacuum"):
        lake.maintain_all(actions=["vacuum"])
    code, out = invoke(lake, "maintain", "all", "--action", "vacuum")
    assert code == 2 and "vacuum" in out


def test_the_policy_decides_zone_by_zone(tmp_path: Path) -> None:
    """Curated keeps its snapshots for 30 days and needs 20 small files: nothing is due there."""
    lake = crowded_lake(
        tmp_path / "p",
        {"maintenance": {"older_than": "0d", "zones": {"curated": {"older_than": "30d", "min_files": 20}}}},
    )
    done = {(a.table, a.action): a for a in lake.maintain_all(dry_run=True)}
    assert done[(CROWDED, "compact")].skipped == "not due: no partition has 20+ small files"
    assert done[(CROWDED, "expire")].skipped == "not due: no snapshot past retention"
    assert done[(HEALTHY, "expire")].skipped == "not due: no snapshot past retention"  # one snapshot, kept


def test_a_failed_action_is_recorded_and_the_other_tables_still_get_theirs(tmp_path: Path) -> None:
    """A table in the raw zone is never cleaned (raw data is deleted only by its retention policy):
    its expiry fails, is recorded with the reason, and the run goes on but exits 1."""
    lake = crowded_lake(tmp_path / "p")
    in_raw = History.create(lake, "demo.raw.landed")
    in_raw.append(2)
    in_raw.append(2)
    code, out = invoke(lake, "maintain", "all", "--action", "expire", "--output", "json")
    assert code == 1, out
    report = json.loads(out)
    failed = by_action(report["actions"], "demo.raw.landed")["expire"]
    assert failed["details"]["error"] == "CleanupRefused" and failed["skipped"].startswith("failed: ")
    assert report["total"]["failed"] == 1
    assert by_action(report["actions"], CROWDED)["expire"]["skipped"] is None
    assert len(lake.catalog.load(CROWDED).snapshots()) == 1, "the other tables' expiry ran"
    assert len(lake.catalog.load("demo.raw.landed").snapshots()) == 2
    recorded = lake.maintenance_log.for_table("demo.raw.landed")
    assert [(a["action"], a["details"]["error"]) for a in recorded] == [("expire", "CleanupRefused")]

"""``describe TABLE --output json``: exactly the live data files (as pyiceberg plans them) under
``files``, small-file health, and the table's housekeeping history under ``maintenance``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pyiceberg.catalog.sql import SqlCatalog

from lakeplane.cli.main import cli
from tests.maintenance.history import History, new_lake

CROWDED = "demo.curated.events"


def describe(root: Path, *args: str) -> str:
    out = CliRunner().invoke(cli, ["--lake", str(root), "describe", CROWDED, *args])
    assert out.exit_code == 0, out.output
    return out.output


def test_describe_lists_exactly_the_live_files_and_the_housekeeping_history(tmp_path: Path) -> None:
    root = tmp_path / "p"
    lake = new_lake(root)
    history = History.create(lake, CROWDED)
    for _ in range(6):
        history.append(4)
    history.overwrite(2, where="grp = 'a'")  # replaces every file of partition a

    info = json.loads(describe(root, "--output", "json"))
    # An independent reader: pyiceberg's own catalog on the lake's database, planning the scan.
    outside = SqlCatalog("lakeplane", uri=lake.catalog.uri, warehouse=lake.storage.root_uri)
    planned = {
        (t.file.file_path, t.file.file_size_in_bytes, t.file.record_count)
        for t in outside.load_table(CROWDED).scan().plan_files()
    }
    assert {(f["path"], f["bytes"], f["records"]) for f in info["files"]} == planned
    assert len(info["files"]) == len(planned) == 7  # 6 small files of b and the one new file of a
    assert sorted({f["partition"]["grp"] for f in info["files"]}) == ["a", "b"]
    assert info["health"]["small_files"] == 7 and info["health"]["partitions_to_compact"] == ["grp=b"]
    assert info["maintenance"] == []

    dry = lake.maintain_all(dry_run=True, actions=["compact"])[0]
    lake.maintain_all(actions=["compact"])
    info = json.loads(describe(root, "--output", "json"))
    outside_table = outside.load_table(CROWDED)
    assert {f["path"] for f in info["files"]} == {t.file.file_path for t in outside_table.scan().plan_files()}
    assert len(info["files"]) == 2 and info["health"]["partitions_to_compact"] == []
    newest, oldest = info["maintenance"]
    assert (newest["action"], newest["dry_run"], newest["files_before"], newest["files_after"]) == (
        "compact",
        False,
        7,
        2,
    )
    assert newest["snapshot_id"] == outside_table.current_snapshot().snapshot_id  # type: ignore[union-attr]
    assert (oldest["dry_run"], oldest["started_at"]) == (True, dry.started_at)

    text = describe(root)
    assert "2 of 2 files under 96.0 MB; no partition due for compaction" in text
    assert "housekeeping" in text and "compact (dry run)" in text and "7 -> 2" in text

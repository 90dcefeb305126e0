"""Compaction on DuckDB: same rows, fewer files near the target size, healthy partitions left alone,
``--where``, dry runs, and commits racing other writers (one that replaces a compacted partition,
one that appends)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from pyiceberg.table import Table

from lakeplane.catalog.writer import TableWriter, new_write_dir
from lakeplane.cli.maintain import maintain
from lakeplane.errors import CommitConflictError, MaintenanceOptionError
from lakeplane.lake import Lake, init_project, open_lake
from lakeplane.maintenance.actions import MaintenanceLog
from lakeplane.maintenance.compact import Compactor, compaction_policy

TABLE = "processed.events"
FULL = "shop.processed.events"
DAYS = (dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3))
REPO = Path(__file__).resolve().parents[2]
COUNTRIES = ("FR", "DE", "US", None)


def batch(days: Sequence[dt.date], rows_per_day: int, seed: int, text_bytes: int = 8) -> pa.Table:
    """Rows for ``days`` with random (hardly compressible) text of ``text_bytes`` hex characters."""
    rng = np.random.default_rng(seed)
    n = rows_per_day * len(days)
    text = [os.urandom(text_bytes // 2).hex() for _ in range(n)]
    return pa.table(
        {
            "ds": pa.array([days[i % len(days)] for i in range(n)], pa.date32()),
            "event_id": pa.array(np.arange(n, dtype=np.int64) + seed * 10_000_000),
            "amount": pa.array(rng.normal(100, 30, n).round(2)),
            "country": pa.array([COUNTRIES[i] for i in rng.integers(0, len(COUNTRIES), n)], pa.string()),
            "payload": pa.array(text, pa.string()),
        }
    )


def write_batch(lake: Lake, data: pa.Table, mode: str = "append") -> None:
    """``data`` committed to the table as one write (one file per partition), as a model would."""
    writer = TableWriter(lake.catalog)
    ref = lake.catalog.resolve(TABLE, lake.config.name)
    with lake.compute.embedded("test-write") as session:
        session.register_arrow("batch", data)
        schema = session.result_schema("SELECT * FROM batch")
        table = writer.ensure_table(ref, schema, ["ds"])
        sql = writer.conforming_select(table, "SELECT * FROM batch", schema.names)
        files = session.write_parquet(sql, new_write_dir(ref), ["ds"], writer.field_ids(table))
        writer.commit(table, files.paths, mode, files.rows, files.bytes)  # type: ignore[arg-type]


def small_files_lake(
    root: Path,
    writes: int = 6,
    rows_per_day: int = 500,
    days: Sequence[dt.date] = DAYS,
    overrides: dict[str, Any] | None = None,
    text_bytes: int = 8,
) -> Lake:
    """A fresh project whose table ``processed.events`` got ``writes`` appends: that many small
    files in each partition of ``days``."""
    if not (root / "lakeplane.yaml").exists():
        init_project(root, "shop")
    lake = open_lake(root, overrides)
    for seed in range(writes):
        write_batch(lake, batch(days, rows_per_day, seed, text_bytes))
    return lake


def rows(lake: Lake, table: str = TABLE) -> list[tuple[object, ...]]:
    return sorted((tuple(r.values()) for r in lake.query(f"SELECT * FROM {table}").to_pylist()), key=repr)


def live_files(lake: Lake) -> list[dict[str, Any]]:
    return list(lake.describe(TABLE)["files"])


def files_by_partition(lake: Lake) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for f in live_files(lake):
        found.setdefault(str(f["partition"]["ds"]), []).append(f)
    return found


def lake_data_files(lake: Lake) -> set[str]:
    return {p for p in lake.storage.list_files("processed") if p.endswith(".parquet")}


def head(lake: Lake) -> Table:
    return lake.catalog.load(FULL)


def test_compaction_keeps_every_row_and_leaves_one_file_per_partition(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p")
    before_rows, before_files = rows(lake), live_files(lake)
    schema_before = lake.describe(TABLE)["schema"]
    assert len(before_files) == 18

    action = lake.compact(TABLE, target_file_size=8 * 1024**2)

    assert rows(lake) == before_rows  # no row lost, none duplicated, every value the same
    assert lake.describe(TABLE)["schema"] == schema_before
    after = files_by_partition(lake)
    assert sorted(after) == [d.isoformat() for d in DAYS]
    assert all(len(files) == 1 for files in after.values())
    for day, (file,) in after.items():  # each new file holds exactly its partition's rows
        (count,) = (
            lake.query(f"SELECT count(*) AS n FROM {TABLE} WHERE ds = DATE '{day}'").column(0).to_pylist()
        )
        assert file["records"] == count
    assert (action.files_before, action.files_after) == (18, 3)
    assert action.bytes_after == sum(f["bytes"] for files in after.values() for f in files)
    snapshot = head(lake).current_snapshot()
    assert snapshot is not None and snapshot.snapshot_id == action.snapshot_id
    assert snapshot.summary is not None and snapshot.summary.operation.value == "replace"
    assert snapshot.summary["deleted-data-files"] == "18"
    assert snapshot.summary["added-data-files"] == "3"
    assert snapshot.summary["total-records"] == str(len(before_rows))
    (recorded,) = MaintenanceLog(lake.catalog.state_engine).for_table(FULL)
    assert recorded["action"] == "compact" and recorded["files_after"] == 3
    # The new files carry the table's field ids, as every file lakeplane writes.
    new_file = next(iter(after.values()))[0]["path"]
    import pyarrow.parquet as pq

    ids = {f.name: f.metadata[b"PARQUET:field_id"] for f in pq.read_schema(new_file.removeprefix("file://"))}
    assert ids == {f["name"]: str(f["id"]).encode() for f in schema_before}


def test_sorted_compaction_orders_rows_within_each_file(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p", writes=4)
    before = rows(lake)
    lake.compact(TABLE, sort_by=["amount"])
    assert rows(lake) == before
    import pyarrow.parquet as pq

    for f in live_files(lake):
        amounts = pq.read_table(f["path"].removeprefix("file://"), columns=["amount"]).column(0).to_pylist()
        assert amounts == sorted(amounts)


def test_new_files_respect_the_target_size(tmp_path: Path) -> None:
    """About 4.5 MB of hardly compressible rows per partition in 30 files, target 1 MB: every new
    file is at most 10 % above the target, and at most one per partition is below half of it."""
    lake = small_files_lake(tmp_path / "p", writes=30, rows_per_day=1500, days=DAYS[:2], text_bytes=96)
    before = rows(lake)
    target = 1024**2
    action = lake.compact(TABLE, target_file_size=target)
    assert rows(lake) == before
    for day, files in files_by_partition(lake).items():
        sizes = sorted(f["bytes"] for f in files)
        assert max(sizes) <= target * 1.1, (day, sizes)
        assert sum(1 for s in sizes if s < target / 2) <= 1, (day, sizes)
        assert 3 <= len(files) <= 8, (day, sizes)
    assert action.files_after < action.files_before / 3


def test_healthy_partitions_are_skipped(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p", writes=1)  # one file in each of the three days
    write_batch(lake, batch(DAYS[2:], 300, seed=7))  # a second small file for day 3 only
    healthy = {d: [f["path"] for f in fs] for d, fs in files_by_partition(lake).items() if d != "2026-11-03"}

    action = lake.compact(TABLE)

    after = files_by_partition(lake)
    assert {d: [f["path"] for f in after[d]] for d in healthy} == healthy  # untouched
    assert len(after["2026-11-03"]) == 1
    plans = {p["partition"]["ds"]: p for p in action.details["partition_plans"]}
    assert plans["2026-11-01"]["skipped"].startswith("healthy")
    assert plans["2026-11-03"]["rewritten_files"] == 2

    again = lake.compact(TABLE)  # now every partition is healthy: no commit at all
    assert again.skipped is not None and again.snapshot_id is None
    assert head(lake).current_snapshot().snapshot_id == action.snapshot_id  # type: ignore[union-attr]


def test_where_limits_compaction_to_matching_partitions(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p", writes=3)
    action = lake.compact(TABLE, where="ds >= '2026-11-02'")
    counts = {d: len(fs) for d, fs in files_by_partition(lake).items()}
    assert counts == {"2026-11-01": 3, "2026-11-02": 1, "2026-11-03": 1}
    assert action.details["partitions"] == 2

    with pytest.raises(MaintenanceOptionError) as not_partition:
        lake.compact(TABLE, where="amount > 3")
    assert not_partition.value.column == "amount" and "partition columns only" in str(not_partition.value)
    with pytest.raises(MaintenanceOptionError, match="not a filter"):
        lake.compact(TABLE, where="ds >>= 1")
    with pytest.raises(MaintenanceOptionError, match="no such column"):
        lake.compact(TABLE, sort_by=["nope"])


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p", writes=3)
    snapshot_before = head(lake).current_snapshot().snapshot_id  # type: ignore[union-attr]
    files_before = lake_data_files(lake)

    action = lake.compact(TABLE, dry_run=True)

    assert action.dry_run and action.snapshot_id is None
    assert (action.files_before, action.files_after) == (9, 3)
    assert head(lake).current_snapshot().snapshot_id == snapshot_before  # type: ignore[union-attr]
    assert lake_data_files(lake) == files_before
    (recorded,) = MaintenanceLog(lake.catalog.state_engine).for_table(FULL)
    assert recorded["dry_run"] is True


OVERWRITE_DAY = """
import datetime as dt, sys
from lakeplane.lake import open_lake
from tests.maintenance.test_compact import batch, write_batch
write_batch(open_lake(sys.argv[1]), batch([dt.date(2026, 11, 2)], 50, seed=99), "overwrite_partitions")
"""


def test_a_concurrent_overwrite_of_a_compacted_partition_makes_compaction_fail_cleanly(
    tmp_path: Path,
) -> None:
    """Another process replaces day 2 between the compaction's write and its commit: the compaction
    fails with a conflict, commits nothing, and its new files are gone; the other write stands."""
    lake = small_files_lake(tmp_path / "p", writes=3)
    files_before = lake_data_files(lake)
    made: list[set[str]] = []

    def other_process_overwrites(table: Table) -> None:
        made.append(lake_data_files(lake) - files_before)  # the compaction's new files, written
        done = subprocess.run(
            [sys.executable, "-c", OVERWRITE_DAY, str(lake.project_dir)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]

    compactor = Compactor(lake.catalog, lake.compute.embedded, before_commit=other_process_overwrites)
    with pytest.raises(CommitConflictError) as conflict:
        compactor.compact(FULL, compaction_policy(None, FULL, None))

    assert conflict.value.operation == "compact" and "deleted or replaced" in str(conflict.value)
    assert made and len(made[0]) == 3  # one new file per partition had been written ...
    assert not (lake_data_files(lake) & made[0])  # ... and is removed
    other = lake_data_files(lake) - files_before
    assert len(other) == 1  # the other writer's day 2, which stands
    assert {d: len(fs) for d, fs in files_by_partition(lake).items()} == {
        "2026-11-01": 3,
        "2026-11-02": 1,
        "2026-11-03": 3,
    }
    snapshot = head(lake).current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation.value == "overwrite"
    assert lake.query(f"SELECT count(*) FROM {TABLE} WHERE ds = DATE '2026-11-02'").column(0)[0].as_py() == 50


def test_a_concurrent_append_does_not_stop_compaction(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p", writes=3)
    extra = batch(DAYS[1:2], 40, seed=42)
    other = open_lake(lake.project_dir)  # its own catalog connection and table metadata

    compactor = Compactor(
        lake.catalog, lake.compute.embedded, before_commit=lambda _table: write_batch(other, extra)
    )
    expected = sorted([*rows(lake), *(tuple(r.values()) for r in extra.to_pylist())], key=repr)
    action = compactor.compact(FULL, compaction_policy(None, FULL, None))

    assert action.details["commit_retries"] == 1
    assert rows(lake) == expected
    counts = {d: len(fs) for d, fs in files_by_partition(lake).items()}
    assert counts == {"2026-11-01": 1, "2026-11-02": 2, "2026-11-03": 1}  # compacted + the append
    snapshot = head(lake).current_snapshot()
    assert snapshot is not None and snapshot.snapshot_id == action.snapshot_id
    assert snapshot.summary is not None and snapshot.summary.operation.value == "replace"


@pytest.mark.slow
def test_compaction_runs_within_the_engines_memory_limit(tmp_path: Path) -> None:
    """1.2 M rows in one partition (about 45 MB of Parquet, 120 MB in memory), sorted by a random
    text column while compacted, by a DuckDB job limited to 64 MB and one thread: it streams group
    by group and spills the sort, and fails on nothing."""
    overrides = {"engine": {"memory_limit": "64MB", "threads": 1}}
    lake = small_files_lake(tmp_path / "p", writes=20, rows_per_day=60_000, days=DAYS[:1], text_bytes=64)
    assert sum(f["bytes"] for f in live_files(lake)) > 40 * 1024**2
    limited = open_lake(lake.project_dir, overrides)
    whole = limited.query(f"SELECT * FROM {TABLE}")
    assert whole.nbytes > 96 * 1024**2
    action = limited.compact(TABLE, target_file_size=32 * 1024**2, sort_by=["payload"])
    assert action.files_after < action.files_before
    after = limited.query(f"SELECT * FROM {TABLE}")
    key = [("event_id", "ascending")]
    assert after.sort_by(key).equals(whole.sort_by(key))


def test_cli_compact_json_and_usage_errors(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path / "p", writes=2)
    runner = CliRunner()
    env = {"LAKEPLANE_LAKE": str(lake.project_dir)}
    done = runner.invoke(maintain, ["compact", TABLE, "--dry-run", "--output", "json"], env=env)
    assert done.exit_code == 0, done.output
    import json

    report = json.loads(done.output)
    assert report["dry_run"] is True and report["files_before"] == 6 and report["files_after"] == 3
    bad = runner.invoke(maintain, ["compact", TABLE, "--target-file-size", "big"], env=env)
    assert bad.exit_code == 2 and "is not a size" in bad.output
    done = runner.invoke(
        maintain, ["compact", TABLE, "--target-file-size", "64MB", "--sort-by", "event_id"], env=env
    )
    assert done.exit_code == 0, done.output
    assert "files 6 -> 3" in done.output


def test_of_two_compactions_racing_one_wins_and_the_other_leaves_nothing(tmp_path: Path) -> None:
    """A second compaction (its own lake object and catalog connection) lands while the first is
    about to commit: the first loses, its files are removed, and the table holds one copy of each
    row in one file per partition."""
    lake = small_files_lake(tmp_path / "p", writes=3)
    before = rows(lake)
    files_before = lake_data_files(lake)
    second: list[Any] = []

    def the_other_compaction_lands(_table: Table) -> None:
        second.append(open_lake(lake.project_dir).compact(TABLE))

    first = Compactor(lake.catalog, lake.compute.embedded, before_commit=the_other_compaction_lands)
    with pytest.raises(CommitConflictError):
        first.compact(FULL, compaction_policy(None, FULL, None))

    (winner,) = second
    assert rows(lake) == before
    assert head(lake).current_snapshot().snapshot_id == winner.snapshot_id  # type: ignore[union-attr]
    assert len(lake_data_files(lake) - files_before) == 3  # the winner's files only
    assert all(len(fs) == 1 for fs in files_by_partition(lake).values())

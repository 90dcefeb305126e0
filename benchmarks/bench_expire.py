"""Snapshot expiry and orphan removal on a table with 1,000 snapshots, against baselines.

Usage::

    .venv/bin/python benchmarks/bench_expire.py [--snapshots 1000] [--retain-last 10] [--strays 50]

Two identical tables are built in one lake, commit by commit: small appends, with every fifth
commit an overwrite of one partition (copy-on-write, so files go out of use). ``--strays`` Parquet
files that no commit references (failed writes) are left in each table's folder, aged past the
grace period. Then:

- orphans, before the expiry (a dry run: every snapshot's manifests are read) and after it:
  ``Lake.remove_orphans`` against a bare listing of the table's folder (the part of the work no
  implementation can skip);
- expiry: ``Lake.expire_snapshots`` (keep main's last ``--retain-last``, delete what only expired
  snapshots read) on one table, against pyiceberg's metadata-only
  ``expire_snapshots().older_than(...)`` removing the same snapshots from the other (it deletes no
  file).

It prints the seconds of each, the ratio, and the files and bytes freed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

from lakeplane.catalog import TableRef
from lakeplane.lake import Lake, init_project
from lakeplane.maintenance.references import ancestors
from lakeplane.units import human_bytes

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "grp", StringType(), required=False),
)
SPEC = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="grp"))
GROUPS = ("a", "b", "c", "d")
DAY = 86400


def batch(start: int, n: int, groups: tuple[str, ...] = GROUPS) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({"id": pa.array(ids, pa.int64()), "grp": [groups[i % len(groups)] for i in range(n)]})


def build(lake: Lake, names: list[str], snapshots: int, rows: int) -> None:
    """Commit the same history to each table until it has ``snapshots`` snapshots."""
    tables = [lake.catalog.create(TableRef.parse(name), SCHEMA, SPEC) for name in names]
    commit, next_id = 0, 0
    started = time.perf_counter()
    while len(tables[0].metadata.snapshots) < snapshots:
        commit += 1
        for table in tables:
            if commit % 5 == 0:  # a partition replaced: an overwrite makes a delete and an append
                group = GROUPS[commit % len(GROUPS)]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    table.overwrite(batch(next_id, rows, (group,)), overwrite_filter=f"grp == '{group}'")
            else:
                table.append(batch(next_id, rows))
        next_id += rows
        if commit % 100 == 0:
            print(f"  {len(tables[0].metadata.snapshots)} snapshots, {time.perf_counter() - started:.0f} s")


def leave_strays(table: Table, count: int) -> None:
    """``count`` Parquet files in the table's data folder that no commit references, 4 days old."""
    folder = Path(table.metadata.location.removeprefix("file://")) / "data" / "failed-write"
    folder.mkdir(parents=True, exist_ok=True)
    then = time.time() - 4 * DAY
    for i in range(count):
        path = folder / f"part-{i}.parquet"
        pq.write_table(batch(10**9 + i * 10, 10), path)
        os.utime(path, (then, then))


def folder_size(table: Table) -> tuple[int, int]:
    files = [p for p in Path(table.metadata.location.removeprefix("file://")).rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def pyiceberg_expire(table: Table, retain_last: int) -> int:
    """pyiceberg's own expiry of the same snapshots, metadata only: ``older_than`` the
    ``retain_last``-th newest snapshot of main (no branch or tag here)."""
    newest = ancestors(table.metadata, table.metadata.current_snapshot_id or 0)[:retain_last]
    oldest_kept = table.metadata.snapshot_by_id(newest[-1])
    assert oldest_kept is not None
    cutoff = dt.datetime.fromtimestamp(oldest_kept.timestamp_ms / 1000, dt.UTC)
    before = len(table.metadata.snapshots)
    table.maintenance.expire_snapshots().older_than(cutoff).commit()
    return before - len(table.metadata.snapshots)


def list_folder(table: Table) -> int:
    selector = pafs.FileSelector(table.metadata.location.removeprefix("file://"), recursive=True)
    return len(pafs.LocalFileSystem().get_file_info(selector))


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - started
    print(f"  {label:<44} {seconds:8.3f} s")
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--retain-last", type=int, default=10)
    parser.add_argument("--rows", type=int, default=20, help="rows per commit")
    parser.add_argument("--strays", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-expire-"))
    try:
        init_project(root, "bench")
        lake = Lake(root)
        ours, theirs = "bench.curated.ours", "bench.curated.theirs"
        print(f"building two tables of {args.snapshots} snapshots ({args.rows} rows per commit)")
        _, build_s = timed("build (both tables)", build, lake, [ours, theirs], args.snapshots, args.rows)
        for name in (ours, theirs):
            leave_strays(lake.catalog.load(name), args.strays)
        files_before, bytes_before = folder_size(lake.catalog.load(ours))
        print(f"each table: {files_before} files, {human_bytes(bytes_before)} in its folder")

        print("orphans before expiry (grace 3 days), every snapshot's manifests read")
        listed, list_s = timed("list the table folder (baseline)", list_folder, lake.catalog.load(ours))
        _dry, dry_s = timed(
            "lakeplane remove_orphans --dry-run", lake.remove_orphans, ours, older_than=3 * DAY, dry_run=True
        )
        print(f"  {listed} files listed; {len(_dry.deleted)} orphans found")
        print(f"  ratio lakeplane / listing: {dry_s / list_s:.1f}x")

        print("expiry, keeping main's last", args.retain_last)
        expired, base_s = timed(
            "pyiceberg expire_snapshots (metadata only)",
            pyiceberg_expire,
            lake.catalog.load(theirs),
            args.retain_last,
        )
        action, ours_s = timed(
            "lakeplane expire_snapshots (frees files)",
            lake.expire_snapshots,
            ours,
            older_than=0,
            retain_last=args.retain_last,
        )
        files_after, bytes_after = folder_size(lake.catalog.load(ours))
        theirs_files, theirs_bytes = folder_size(lake.catalog.load(theirs))
        print(
            f"  snapshots expired: lakeplane {action.details['snapshots_expired']}, pyiceberg {expired}; "
            f"lakeplane deleted {len(action.deleted)} files ({human_bytes(action.deleted_bytes)})"
        )
        print(
            f"  folder after: lakeplane {files_after} files, {human_bytes(bytes_after)}; "
            f"pyiceberg {theirs_files} files, {human_bytes(theirs_bytes)} (nothing freed)"
        )
        print(f"  ratio lakeplane / pyiceberg: {ours_s / base_s:.1f}x")

        print("orphans after expiry (grace 3 days)")
        listed, list_s = timed("list the table folder (baseline)", list_folder, lake.catalog.load(ours))
        removed, orph_s = timed("lakeplane remove_orphans", lake.remove_orphans, ours, older_than=3 * DAY)
        print(
            f"  {listed} files listed; {len(removed.deleted)} orphans deleted "
            f"({human_bytes(removed.deleted_bytes)}), {removed.details['recent']} recent kept"
        )
        print(f"  ratio lakeplane / listing: {orph_s / list_s:.1f}x")
        print(f"build {build_s:.0f} s; expire {ours_s:.2f} s; orphans {orph_s:.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Orphan removal: files in a table's folder that no metadata references.

They come from writes that failed or lost a race after writing their files, from an expiry stopped
part way, and from metadata JSON files that dropped out of the metadata log. The folder is listed
first and the metadata read after, so a commit landing during the listing is counted as referencing
its files. A file that no metadata references but that was modified within the grace period is
kept: it may belong to a write in flight (files written, commit not yet made).
"""

from __future__ import annotations

import datetime as dt
import time

import pyarrow.fs as pafs
from pyiceberg.table import Table

from lakeplane.catalog.commits import table_name
from lakeplane.errors import StorageError
from lakeplane.maintenance.actions import MaintenanceAction
from lakeplane.maintenance.references import (
    FileSet,
    ManifestReader,
    check_inside_lake,
    delete_files,
    live_totals,
    referenced_files,
    shown_path,
)
from lakeplane.storage import LakeStorage


def remove_orphans(
    table: Table,
    storage: LakeStorage,
    *,
    older_than: float,
    dry_run: bool = False,
    now: float | None = None,
) -> MaintenanceAction:
    """Delete the files under ``table``'s location that no metadata references and that were last
    modified more than ``older_than`` seconds before ``now`` (epoch seconds, default: the clock).

    ``details`` lists what was kept for being too recent (``recent``, ``recent_bytes``).

    Raises:
        ValueError: ``older_than`` is negative.
        CleanupRefused: the table lives outside the lake's storage.
        StorageError: the folder cannot be listed.

    Files that cannot be deleted are listed in ``details["not_deleted"]``.
    """
    if older_than < 0:
        raise ValueError(f"older_than must not be negative, not {older_than}")
    name = table_name(table)
    folder = check_inside_lake(table, storage)
    action = MaintenanceAction("orphans", name, dry_run=dry_run)
    cutoff = (time.time() if now is None else now) - older_than
    listed = _list(storage.fs, folder)
    table.refresh()  # after the listing: a commit made during it references files listed
    action.files_before, action.bytes_before = live_totals(table.metadata)
    referenced = referenced_files(
        table.metadata, table.metadata_location, ManifestReader(table.io), live_only=False
    )
    orphans, recent = FileSet(), FileSet()
    for key, (size, modified) in listed.items():
        if key not in referenced:
            (orphans if modified < cutoff else recent).sizes[key] = size
    order = sorted(orphans.sizes)
    done, failed = (order, {}) if dry_run else delete_files(storage.fs, order)
    action.deleted = [shown_path(storage, key) for key in done]
    action.deleted_bytes = sum(orphans.sizes[key] for key in done)
    action.files_after, action.bytes_after = action.files_before, action.bytes_before
    action.details = {
        "not_deleted": {shown_path(storage, key): reason for key, reason in failed.items()},
        "deleted_sizes": [orphans.sizes[key] for key in done],
        "listed": len(listed),
        "referenced": len(referenced),
        "recent": len(recent),
        "recent_bytes": sum(recent.sizes.values()),
        "grace_seconds": older_than,
    }
    if not orphans.sizes:
        action.skipped = "no unreferenced file older than the grace period"
    return action.finish()


def _list(fs: pafs.FileSystem, folder: str) -> dict[str, tuple[int, float]]:
    """Every file below ``folder``: its size and modification time (epoch seconds)."""
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    try:
        infos = fs.get_file_info(selector)
    except OSError as exc:
        raise StorageError(f"cannot list {folder}: {exc}", path=folder) from exc
    return {
        info.path: (int(info.size or 0), _epoch(info.mtime))
        for info in infos
        if info.type == pafs.FileType.File
    }


def _epoch(mtime: dt.datetime | None) -> float:
    if mtime is None:  # a store that does not say: treat the file as new, so it is kept
        return time.time()
    if mtime.tzinfo is None:
        mtime = mtime.replace(tzinfo=dt.UTC)
    return mtime.timestamp()

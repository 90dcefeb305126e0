"""Bookmarks: what an ingest step has already published, kept in the same commit as its output.

Each processed-table commit records the business date and the content hashes of the raw batches it
holds (``lakeplane.ds``, ``lakeplane.batches`` in the snapshot summary). A crash therefore can never
leave bookmark and data disagreeing. A step whose batches for a day are exactly the ones already
published skips the work; a batch landed late, or re-delivered with other content (another hash),
makes the day run again. Only snapshots on main's lineage count, and ``reset`` sets a marker (a table
property) before which bookmarks are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.table import Table

DS_KEY = "lakeplane.ds"
BATCHES_KEY = "lakeplane.batches"
RESET_KEY = "lakeplane.bookmark.reset-after"


@dataclass(frozen=True)
class Bookmark:
    """The batches published for one business date, and the snapshot that published them."""

    ds: str
    batches: tuple[str, ...]
    snapshot_id: int
    committed_at_ms: int


def bookmarks(table: Table) -> dict[str, Bookmark]:
    """The newest bookmark of every business date on main's lineage (after any reset marker)."""
    reset_after = int(table.properties.get(RESET_KEY, "0") or 0)
    found: dict[str, Bookmark] = {}
    snapshot = table.current_snapshot()
    while snapshot is not None and snapshot.snapshot_id != reset_after:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        ds, batches = summary.get(DS_KEY), summary.get(BATCHES_KEY)
        if ds and batches is not None and ds not in found:
            found[ds] = Bookmark(ds, tuple(b for b in batches.split(",") if b), snapshot.snapshot_id,
                                 snapshot.timestamp_ms)
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    return found


def reset(table: Table) -> int | None:
    """Forget every bookmark so far: the next run of each day processes its batches again."""
    current = table.current_snapshot()
    if current is None:
        return None
    with table.transaction() as tx:
        tx.set_properties({RESET_KEY: str(current.snapshot_id)})
    return current.snapshot_id

"""Manifest rewrite: the current snapshot's manifests regrouped into few, sorted by partition.

Every commit adds at least one manifest, so a table written daily lists hundreds of small manifests
and planning a scan opens each of them. The rewrite lists the same live data files in as few
manifests as :data:`~lakeplane.maintenance.snapshots.ENTRIES_PER_MANIFEST` allows, each holding
neighbouring partitions, so a filtered scan skips whole manifests by their partition bounds. It is
one ``replace`` snapshot that adds and removes no data file; readers see the same files.
"""

from __future__ import annotations

from pyiceberg.manifest import ManifestContent

from lakeplane.catalog.catalog import LakeCatalog
from lakeplane.catalog.commits import retry_commit, stop_pyiceberg_retries
from lakeplane.maintenance.actions import MaintenanceAction, MaintenanceLog
from lakeplane.maintenance.compact import live_totals
from lakeplane.maintenance.snapshots import RewriteManifests

#: A table listing at most this many data manifests is left alone.
HEALTHY_MANIFESTS = 1


def rewrite_manifests(
    catalog: LakeCatalog, table_name: str, *, dry_run: bool = False, log: MaintenanceLog | None = None
) -> MaintenanceAction:
    """Rewrite ``table_name``'s current manifests into few, grouped by partition (none with
    ``dry_run``: the action then says how many there are).

    Raises:
        CommitConflictError: other writers kept winning the race past the catalog's ``commit_retry``.
    """
    action = MaintenanceAction("rewrite-manifests", table_name, dry_run=dry_run)
    table = catalog.load(table_name)
    action.files_before, action.bytes_before = live_totals(table)
    action.files_after, action.bytes_after = action.files_before, action.bytes_before
    head = table.current_snapshot()
    manifests = head.manifests(table.io) if head else []
    data_manifests = sum(1 for m in manifests if m.content == ManifestContent.DATA)
    action.details = {"manifests_before": len(manifests), "data_manifests_before": data_manifests}
    if data_manifests <= HEALTHY_MANIFESTS:
        action.skipped = f"{data_manifests} data manifest(s): nothing to regroup"
    elif not dry_run:
        stop_pyiceberg_retries(table, catalog.commit_retry)

        def attempt(retry: int) -> tuple[int | None, int]:
            if retry:
                table.refresh()
            with table.transaction() as tx, RewriteManifests(tx) as rewrite:
                pass
            landed = table.current_snapshot()
            return (landed.snapshot_id if landed else None), rewrite.manifests_after

        (action.snapshot_id, after), retries = retry_commit(
            attempt, table_name, "rewrite-manifests", catalog.commit_retry
        )
        action.details |= {"manifests_after": after, "commit_retries": retries}
    action.finish()
    if log is not None:
        log.record(action)
    return action

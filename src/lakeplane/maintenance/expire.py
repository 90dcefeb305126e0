"""Snapshot expiry that frees storage.

pyiceberg's ``expire_snapshots`` removes snapshots from the metadata and deletes no file. Here the
removal is one commit, and then the files that only the removed snapshots referenced are deleted:

1. Plan on the current metadata: every snapshot older than the cut-off expires, except the last
   ``retain_last`` of main, the head of every other branch (or its ``min-snapshots-to-keep``) and
   every tagged snapshot. A lakeplane audit branch left by a quality gate (``audit-<12 hex>``,
   written by lakeplane, never published to main) whose head is older than the cut-off is removed
   with its snapshots: the gate failed, or its process died before it could drop the branch.
2. Commit the removal with a requirement that the table's refs are exactly as planned. pyiceberg
   applies a removal to the metadata current at commit time and silently drops any ref pointing at
   a removed snapshot, so a tag or branch made meanwhile would be lost; instead the commit fails and
   is planned again (:func:`lakeplane.catalog.commits.retry_commit`).
3. Read the metadata again, after the commit, and delete (files of expired snapshots) minus (files
   live in any snapshot still in the metadata), of those inside the table's folder: a file
   registered in place elsewhere in the lake is not the table's to delete. A writer committing
   meanwhile builds on a ref's head, which was retained, so it can add references only to retained
   or new files.
4. Delete the metadata JSON files older than the oldest one the metadata log still keeps
   (``write.metadata.previous-versions-max``, 100 by default): no reader or writer can reach them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal, cast

import pyarrow.fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update import (
    AssertTableUUID,
    RemoveSnapshotRefUpdate,
    RemoveSnapshotsUpdate,
    TableRequirement,
    TableUpdate,
    ValidatableTableRequirement,
)

from lakeplane.catalog.commits import CommitRetry, retry_commit, table_name
from lakeplane.maintenance.actions import MaintenanceAction
from lakeplane.maintenance.references import (
    FileSet,
    ManifestReader,
    ancestors,
    check_inside_lake,
    delete_files,
    live_totals,
    metadata_files,
    metadata_version,
    shown_path,
    stat_sizes,
    storage_key,
)
from lakeplane.storage import LakeStorage

#: The name pipelines/gate.py gives an audit branch.
AUDIT_BRANCH = re.compile(r"^audit-[0-9a-f]{12}$")
#: A summary key every commit of lakeplane's table writer carries.
WRITER_KEY = "lakeplane.rows"


@dataclass(frozen=True)
class ExpiryPlan:
    """What one expiry removes, planned on one version of the metadata."""

    refs: dict[str, int]
    expire: frozenset[int]
    audit_branches: tuple[str, ...]
    cutoff_ms: int


class _RefsUnchanged(ValidatableTableRequirement):
    """The table's refs are exactly those the expiry was planned with, and the snapshots it removes
    are all still there (otherwise the plan is made again)."""

    type: Literal["assert-lakeplane-refs-unchanged"] = "assert-lakeplane-refs-unchanged"
    refs: dict[str, int]
    snapshot_ids: list[int]

    def validate(self, base_metadata: TableMetadata | None) -> None:  # type: ignore[override]
        if base_metadata is None:
            raise CommitFailedException("Requirement failed: current table metadata is missing")
        current = {name: ref.snapshot_id for name, ref in base_metadata.refs.items()}
        if current != self.refs:
            raise CommitFailedException("Requirement failed: the table's branches or tags changed")
        present = {s.snapshot_id for s in base_metadata.snapshots}
        if not present.issuperset(self.snapshot_ids):
            raise CommitFailedException("Requirement failed: snapshots to expire were removed meanwhile")


def plan_expiry(metadata: TableMetadata, cutoff_ms: int, retain_last: int) -> ExpiryPlan:
    """Which snapshots expire and which abandoned audit branches go, by the rules of the module."""
    main = metadata.refs.get(MAIN_BRANCH)
    published = set(ancestors(metadata, main.snapshot_id)) if main else set()
    protected: set[int] = set()
    audit: list[str] = []
    for name, ref in metadata.refs.items():
        if ref.snapshot_ref_type == SnapshotRefType.TAG:
            protected.add(ref.snapshot_id)
            continue
        if _abandoned_audit_branch(metadata, name, ref.snapshot_id, cutoff_ms, published):
            audit.append(name)
            continue
        keep = max(retain_last if name == MAIN_BRANCH else 1, ref.min_snapshots_to_keep or 1)
        protected.update(ancestors(metadata, ref.snapshot_id)[:keep])
    old = (s.snapshot_id for s in metadata.snapshots if s.timestamp_ms < cutoff_ms)
    expire = frozenset(snapshot_id for snapshot_id in old if snapshot_id not in protected)
    refs = {name: ref.snapshot_id for name, ref in metadata.refs.items()}
    return ExpiryPlan(refs, expire, tuple(sorted(audit)), cutoff_ms)


def _abandoned_audit_branch(
    metadata: TableMetadata, name: str, head_id: int, cutoff_ms: int, published: set[int]
) -> bool:
    """A branch the quality gate made and never published, whose head is older than the cut-off.

    A user's branch is never taken for one: the name must be the gate's, the head must have been
    written by lakeplane's table writer, and main must not contain it.
    """
    if not AUDIT_BRANCH.match(name) or head_id in published:
        return False
    head = metadata.snapshot_by_id(head_id)
    if head is None or head.timestamp_ms >= cutoff_ms:
        return False
    summary = head.summary.additional_properties if head.summary else {}
    return WRITER_KEY in summary


def expire_snapshots(
    table: Table,
    storage: LakeStorage,
    *,
    older_than: float,
    retain_last: int,
    dry_run: bool = False,
    retry: CommitRetry | None = None,
    now: float | None = None,
) -> MaintenanceAction:
    """Expire ``table``'s snapshots older than ``older_than`` seconds and delete the files only they
    referenced (see the module). ``now`` (epoch seconds) is the clock the age is measured against.

    Raises:
        ValueError: ``retain_last`` is below 1 or ``older_than`` is negative.
        CleanupRefused: the table lives outside the lake's storage.
        CommitConflictError: the table's refs kept changing while the expiry was committed.

    Files that cannot be deleted are listed in ``details["not_deleted"]`` (the snapshots are
    expired all the same; ``maintain orphans`` removes the files later).
    """
    if retain_last < 1:
        raise ValueError(f"retain_last must be at least 1 (main's head always stays), not {retain_last}")
    if older_than < 0:
        raise ValueError(f"older_than must not be negative, not {older_than}")
    name = table_name(table)
    folder = check_inside_lake(table, storage) + "/"
    action = MaintenanceAction("expire", name, dry_run=dry_run)
    cutoff_ms = int(((time.time() if now is None else now) - older_than) * 1000)
    table.refresh()
    action.files_before, action.bytes_before = live_totals(table.metadata)
    reader = ManifestReader(table.io)

    def attempt(n: int) -> tuple[ExpiryPlan, list[Snapshot], TableMetadata]:
        if n:
            table.refresh()
        base = table.metadata
        plan = plan_expiry(base, cutoff_ms, retain_last)
        expired = [s for s in base.snapshots if s.snapshot_id in plan.expire]
        if not dry_run and (plan.expire or plan.audit_branches):
            _commit(table, plan)
        return plan, expired, base

    (plan, expired, base), _ = retry_commit(attempt, name, "expire", retry)
    candidates = reader.files_of(expired, live_only=False)
    for statistics in [*base.statistics, *base.partition_statistics]:
        if statistics.snapshot_id in plan.expire:
            candidates.add(statistics.statistics_path, int(statistics.file_size_in_bytes))
    if dry_run:
        retained = [s for s in base.snapshots if s.snapshot_id not in plan.expire]
        location = table.metadata_location
    else:
        table.refresh()  # a commit made since ours may reference more: read what is there now
        retained, location = list(table.metadata.snapshots), table.metadata_location
    keep = reader.files_of(retained, live_only=True)
    keep.update(metadata_files(table.metadata, location))
    unused = candidates.minus(keep)
    # Files registered in place live outside the table's folder (another folder of the lake, the raw
    # zone): the table does not own them, so they are never deleted.
    doomed = FileSet({key: size for key, size in unused.sizes.items() if key.startswith(folder)})
    doomed.update(_stale_metadata_files(storage.fs, table.metadata, location).minus(keep))
    stat_sizes(storage.fs, doomed)
    # Data files, then manifests, then manifest lists and metadata files, as Iceberg's own expiry
    # orders them. Nothing references any of them now: a failure part way leaves orphans only.
    order = sorted(doomed.sizes, key=lambda key: (_kind(key), key))
    done, failed = (order, {}) if dry_run else delete_files(storage.fs, order)
    action.deleted = [shown_path(storage, key) for key in done]
    action.deleted_bytes = sum(doomed.sizes[key] for key in done)
    action.files_after, action.bytes_after = action.files_before, action.bytes_before
    action.details = {
        "not_deleted": {shown_path(storage, key): reason for key, reason in failed.items()},
        "deleted_sizes": [doomed.sizes[key] for key in done],
        "snapshots_expired": len(plan.expire),
        "snapshots_kept": len(base.snapshots) - len(plan.expire),
        "audit_branches_removed": list(plan.audit_branches),
        "cutoff_ms": cutoff_ms,
        "retain_last": retain_last,
        "kept_outside_table_folder": len(unused) - len(doomed),
    }
    if not plan.expire and not action.deleted:
        action.skipped = f"no snapshot older than the cut-off beyond the last {retain_last} of main"
    return action.finish()


def _commit(table: Table, plan: ExpiryPlan) -> None:
    updates: tuple[TableUpdate, ...] = (
        *(
            RemoveSnapshotRefUpdate(ref_name=branch)  # type: ignore[call-arg]
            for branch in plan.audit_branches
        ),
        RemoveSnapshotsUpdate(snapshot_ids=sorted(plan.expire)),  # type: ignore[call-arg]
    )
    requirements = (
        AssertTableUUID(uuid=table.metadata.table_uuid),
        cast(TableRequirement, _RefsUnchanged(refs=plan.refs, snapshot_ids=sorted(plan.expire))),
    )
    table.catalog.commit_table(table, requirements, updates)


def _stale_metadata_files(fs: pafs.FileSystem, metadata: TableMetadata, location: str) -> FileSet:
    """Metadata JSON files of the table older than the oldest its metadata log keeps.

    A writer commits the version after the current one, so a file with a lower version than every
    kept one is no current, previous or coming metadata of the table.
    """
    kept = [location, *(entry.metadata_file for entry in metadata.metadata_log)]
    versions = [metadata_version(path) for path in kept]
    if None in versions:
        return FileSet()  # not named as pyiceberg names them: leave the folder to orphan removal
    oldest = min(v for v in versions if v is not None)
    folder = storage_key(location).rsplit("/", 1)[0]
    selector = pafs.FileSelector(folder, recursive=False, allow_not_found=True)
    stale = FileSet()
    for info in fs.get_file_info(selector):
        version = metadata_version(info.path)
        if info.type == pafs.FileType.File and version is not None and version < oldest:
            stale.sizes[info.path] = int(info.size or 0)
    return stale


def _kind(key: str) -> int:
    """The order files are deleted in: data and delete files, manifests, manifest lists, metadata."""
    name = key.rsplit("/", 1)[-1]
    if name.endswith(".metadata.json"):
        return 3
    if name.startswith("snap-"):
        return 2
    if name.endswith(".avro"):
        return 1
    return 0

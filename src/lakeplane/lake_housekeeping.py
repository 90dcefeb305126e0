"""The lake's housekeeping, as methods of the :class:`~lakeplane.lake.Lake` facade: compaction,
manifest rewrites, snapshot expiry, orphan removal, ``maintain all`` by policy, and S3 storage tiers.

Each action is recorded in the catalog's maintenance log (``describe`` shows it) and returned as a
:class:`~lakeplane.maintenance.actions.MaintenanceAction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from lakeplane.config import CONFIG_FILE, LakeConfig
from lakeplane.maintenance.actions import MaintenanceAction, MaintenanceLog
from lakeplane.maintenance.compact import Compactor, compaction_policy
from lakeplane.maintenance.expire import expire_snapshots
from lakeplane.maintenance.lifecycle import LifecycleResult, StorageTiers
from lakeplane.maintenance.manifests import rewrite_manifests
from lakeplane.maintenance.orphans import remove_orphans
from lakeplane.maintenance.policy import Housekeeping
from lakeplane.maintenance.references import raise_if_not_deleted

if TYPE_CHECKING:
    from lakeplane.catalog import LakeCatalog
    from lakeplane.engines.compute import Compute
    from lakeplane.governance.plane import Governance
    from lakeplane.storage import LakeStorage


class LakeHousekeeping:
    """Housekeeping over the lake's catalog, storage and engines (mixed into ``Lake``)."""

    if TYPE_CHECKING:
        config: LakeConfig
        project_dir: Path
        storage: LakeStorage
        compute: Compute
        governance: Governance

        @property
        def catalog(self) -> LakeCatalog: ...

        def resolve_table(self, name: str) -> str: ...

    @cached_property
    def maintenance_log(self) -> MaintenanceLog:
        """Every housekeeping action taken on the lake's tables (``describe`` shows a table's)."""
        return MaintenanceLog(self.catalog.state_engine)

    # -- housekeeping: compaction and manifests ------------------------------------------------
    def compact(
        self,
        table: str,
        *,
        target_file_size: int | None = None,
        sort_by: Sequence[str] = (),
        where: str | None = None,
        dry_run: bool = False,
        min_files: int | None = None,
    ) -> MaintenanceAction:
        """Rewrite ``table``'s small files into files near ``target_file_size`` bytes (default: the
        ``maintenance:`` policy, else 128 MB) on the lake's engine, in one ``replace`` snapshot;
        see :mod:`lakeplane.maintenance.compact`. The action is recorded."""
        full = self.resolve_table(table)
        engine = self.compute.engine()
        compactor = Compactor(
            self.catalog,
            lambda job: self.compute.session(engine, job),
            self.maintenance_log,
        )
        policy = compaction_policy(self.config.maintenance, full, target_file_size, min_files)
        return compactor.compact(full, policy, sort_by=sort_by, where=where, dry_run=dry_run)

    def rewrite_manifests(self, table: str, *, dry_run: bool = False) -> MaintenanceAction:
        """Regroup ``table``'s manifests by partition in one ``replace`` snapshot (no data file
        changes); the action is recorded."""
        return rewrite_manifests(
            self.catalog,
            self.resolve_table(table),
            dry_run=dry_run,
            log=self.maintenance_log,
        )

    # -- housekeeping policies and storage tiers -----------------------------------------------
    @cached_property
    def housekeeping(self) -> Housekeeping:
        """Each table's due housekeeping by the ``maintenance:`` policy."""
        return Housekeeping(
            self.config.maintenance,
            lambda: [str(ref) for ref in self.catalog.list_tables()],
            self.catalog.load,
            self,
            self.maintenance_log.record,
        )

    def maintain_all(
        self,
        *,
        dry_run: bool = False,
        tables: Sequence[str] | None = None,
        actions: Sequence[str] | None = None,
    ) -> list[MaintenanceAction]:
        """Compact, rewrite manifests, expire snapshots and remove orphans on every table (or
        ``tables``) where its policy says they are due (only ``actions``, when given); with
        ``dry_run``, say what would happen and change nothing."""
        names = [self.resolve_table(t) for t in tables] if tables else None
        return self.housekeeping.run(dry_run=dry_run, tables=names, actions=actions)

    @cached_property
    def storage_tiers(self) -> StorageTiers:
        """The lake's S3 lifecycle configuration and raw retention."""
        return StorageTiers(
            self.config.storage,
            self.storage,
            self.project_dir / CONFIG_FILE,
            audit=lambda event: self.governance.audit(event),
            policy_version=lambda: self.governance.version().label if self.governance.enabled else "none",
            record=self.maintenance_log.record,
        )

    def storage_lifecycle(self, *, apply: bool = False, principal: str | None = None) -> LifecycleResult:
        """The S3 lifecycle configuration of ``storage: lifecycle:`` and ``retention:``; with
        ``apply``, set on the lake's bucket (a raw retention is audited as ``principal``)."""
        return self.storage_tiers.lifecycle(apply=apply, principal=principal)

    # -- housekeeping: snapshot expiry and orphan removal ---------------------------------------
    def expire_snapshots(
        self, table: str, *, older_than: float, retain_last: int, dry_run: bool = False
    ) -> MaintenanceAction:
        """Expire ``table``'s snapshots older than ``older_than`` seconds (keeping main's last
        ``retain_last``, every branch head and tag) and delete the files only they referenced."""
        ref = self.resolve_table(table)
        action = expire_snapshots(
            self.catalog.load(ref),
            self.storage,
            older_than=older_than,
            retain_last=retain_last,
            dry_run=dry_run,
            retry=self.catalog.commit_retry,
        )
        self.maintenance_log.record(action)
        raise_if_not_deleted(action)
        return action

    def remove_orphans(self, table: str, *, older_than: float, dry_run: bool = False) -> MaintenanceAction:
        """Delete files in ``table``'s folder that no metadata references, modified more than
        ``older_than`` seconds ago."""
        ref = self.resolve_table(table)
        action = remove_orphans(self.catalog.load(ref), self.storage, older_than=older_than, dry_run=dry_run)
        self.maintenance_log.record(action)
        raise_if_not_deleted(action)
        return action

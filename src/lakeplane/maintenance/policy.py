"""``maintain all``: what housekeeping each table is due for under its ``maintenance:`` policy, and
running it.

For each table, in this order (each may free what the one before left behind):

1. ``compact`` when some partition holds ``min_files`` or more files under ``small_file_threshold``
   (compaction itself leaves healthy partitions alone);
2. ``rewrite-manifests`` when the current snapshot has more than ``max_manifests`` manifests;
3. ``expire`` when a snapshot is older than ``older_than`` and neither among main's newest
   ``retain_last`` nor the head of a branch or tag;
4. ``orphans`` always: only listing the table's files can tell whether any are unreferenced, and it
   removes only those older than ``orphan_grace``.

The actions themselves belong to compaction and expiry (:class:`TableHousekeeper`, which the facade
provides); this module decides and sums up. An action that is not due is reported, not recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, get_args

from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from lakeplane.config_maintenance import MaintenanceConfig, TablePolicy
from lakeplane.errors import LakeplaneError, MaintenancePolicyError
from lakeplane.maintenance.actions import ActionKind, MaintenanceAction

#: The actions ``maintain all`` takes, in the order it takes them.
TABLE_ACTIONS: tuple[ActionKind, ...] = ("compact", "rewrite-manifests", "expire", "orphans")


class TableHousekeeper(Protocol):
    """The housekeeping actions on one table; each records what it did and returns it."""

    def compact(
        self,
        table: str,
        *,
        target_file_size: int | None = None,
        sort_by: Sequence[str] = (),
        where: str | None = None,
        dry_run: bool = False,
        min_files: int | None = None,
    ) -> MaintenanceAction: ...

    def rewrite_manifests(self, table: str, *, dry_run: bool = False) -> MaintenanceAction: ...

    def expire_snapshots(
        self, table: str, *, older_than: float, retain_last: int, dry_run: bool = False
    ) -> MaintenanceAction: ...

    def remove_orphans(
        self, table: str, *, older_than: float, dry_run: bool = False
    ) -> MaintenanceAction: ...


@dataclass(frozen=True)
class Decision:
    """Whether ``action`` is due on ``table`` and why (or why not); ``files`` and ``bytes`` are the
    table's live data files when it was decided."""

    table: str
    action: ActionKind
    due: bool
    reason: str
    files: int = 0
    bytes: int = 0


def small_file_health(files: Iterable[dict[str, Any]], policy: TablePolicy) -> dict[str, Any]:
    """How many of a table's live files (``describe``'s ``files``) are small, and the partitions
    holding enough of them to be compacted."""
    small_by_partition: dict[str, int] = {}
    total = small = 0
    for f in files:
        total += 1
        if f["bytes"] < policy.small_file_threshold:
            small += 1
            key = "/".join(f"{k}={v}" for k, v in f["partition"].items())
            small_by_partition[key] = small_by_partition.get(key, 0) + 1
    return {
        "files": total,
        "small_files": small,
        "small_file_threshold": policy.small_file_threshold,
        "partitions_to_compact": sorted(p for p, n in small_by_partition.items() if n >= policy.min_files),
    }


def decide(table: Table, name: str, policy: TablePolicy, now: float | None = None) -> list[Decision]:
    """What of :data:`TABLE_ACTIONS` is due on ``table`` (called ``name``) at ``now`` (epoch seconds)."""
    now = time.time() if now is None else now
    snapshot = table.current_snapshot()
    if snapshot is None:
        return [Decision(name, action, False, "no snapshot") for action in TABLE_ACTIONS]
    small: dict[tuple[int, str], int] = {}
    files = size = 0
    for task in table.scan().plan_files():
        files += 1
        size += task.file.file_size_in_bytes
        if task.file.file_size_in_bytes < policy.small_file_threshold:
            key = (task.file.spec_id, repr(task.file.partition))
            small[key] = small.get(key, 0) + 1
    crowded = sum(1 for count in small.values() if count >= policy.min_files)
    manifests = len(snapshot.manifests(table.io))
    expirable = _expirable_snapshots(table, policy, now)
    decisions = [
        Decision(
            name,
            "compact",
            crowded > 0,
            f"{crowded} partition(s) with {policy.min_files}+ files under {policy.small_file_threshold} B"
            if crowded
            else f"no partition has {policy.min_files}+ small files",
        ),
        Decision(
            name,
            "rewrite-manifests",
            manifests > policy.max_manifests,
            f"{manifests} manifests (more than {policy.max_manifests})"
            if manifests > policy.max_manifests
            else f"{manifests} manifests",
        ),
        Decision(
            name,
            "expire",
            expirable > 0,
            f"{expirable} snapshot(s) past retention" if expirable else "no snapshot past retention",
        ),
        Decision(name, "orphans", True, f"files unreferenced for {policy.orphan_grace:g} s"),
    ]
    return [replace(d, files=files, bytes=size) for d in decisions]


def _expirable_snapshots(table: Table, policy: TablePolicy, now: float) -> int:
    """Snapshots older than the retention that no ref's head and none of main's newest keep."""
    cutoff_ms = (now - policy.older_than) * 1000
    kept = {ref.snapshot_id for ref in table.metadata.refs.values()}
    head = table.current_snapshot()
    if head is not None:
        for position, snapshot in enumerate(ancestors_of(head, table.metadata)):
            if position >= policy.retain_last:
                break
            kept.add(snapshot.snapshot_id)
    return sum(1 for s in table.snapshots() if s.timestamp_ms < cutoff_ms and s.snapshot_id not in kept)


class Housekeeping:
    """Runs each table's due housekeeping by its policy.

    Args:
        config: the ``maintenance:`` section.
        table_names: every table's full name.
        load: a table by full name.
        actions: who compacts, rewrites manifests, expires and removes orphans.
        record: keeps an action that failed (the actions record their own successes).
    """

    def __init__(
        self,
        config: MaintenanceConfig,
        table_names: Callable[[], list[str]],
        load: Callable[[str], Table],
        actions: TableHousekeeper,
        record: Callable[[MaintenanceAction], None],
    ) -> None:
        self.config = config
        self.table_names = table_names
        self.load = load
        self.actions = actions
        self.record = record

    def plan(self, tables: Sequence[str] | None = None, now: float | None = None) -> list[Decision]:
        """What is due on each of ``tables`` (default: every table)."""
        names = list(tables) if tables else self.table_names()
        return [d for name in names for d in decide(self.load(name), name, self.config.for_table(name), now)]

    def run(
        self,
        *,
        dry_run: bool = False,
        tables: Sequence[str] | None = None,
        actions: Sequence[str] | None = None,
    ) -> list[MaintenanceAction]:
        """Take every due action of ``actions`` (default: all) on ``tables`` (default: every table);
        with ``dry_run`` each says what it would do and changes nothing. One table's failure does not
        stop the others: it is returned (and recorded) with ``details["error"]``.

        Raises:
            MaintenanceError: ``actions`` names an unknown action.
        """
        wanted = _wanted_actions(actions)
        done: list[MaintenanceAction] = []
        for decision in self.plan(tables):
            if decision.action not in wanted:
                continue
            if not decision.due:
                skipped = MaintenanceAction(
                    decision.action,
                    decision.table,
                    dry_run=dry_run,
                    files_before=decision.files,
                    files_after=decision.files,
                    bytes_before=decision.bytes,
                    bytes_after=decision.bytes,
                    skipped=f"not due: {decision.reason}",
                )
                done.append(skipped.finish())
                continue
            done.append(self._take(decision, dry_run))
        return done

    def _take(self, decision: Decision, dry_run: bool) -> MaintenanceAction:
        name, policy = decision.table, self.config.for_table(decision.table)
        started = MaintenanceAction(decision.action, name, dry_run=dry_run)
        try:
            if decision.action == "compact":
                # the compactor reads the same policy (target size, threshold) itself
                action = self.actions.compact(name, dry_run=dry_run, min_files=policy.min_files)
            elif decision.action == "rewrite-manifests":
                action = self.actions.rewrite_manifests(name, dry_run=dry_run)
            elif decision.action == "expire":
                action = self.actions.expire_snapshots(
                    name, older_than=policy.older_than, retain_last=policy.retain_last, dry_run=dry_run
                )
            else:
                action = self.actions.remove_orphans(name, older_than=policy.orphan_grace, dry_run=dry_run)
        except LakeplaneError as exc:
            started.skipped = f"failed: {exc}"
            started.details = {
                "error": type(exc).__name__,
                "message": str(exc),
                "retryable": exc.retryable,
                "reason": decision.reason,
            }
            self.record(started.finish())
            return started
        action.details.setdefault("reason", decision.reason)
        return action


def _wanted_actions(actions: Sequence[str] | None) -> set[str]:
    if not actions:
        return set(TABLE_ACTIONS)
    known = set(get_args(ActionKind)) & set(TABLE_ACTIONS)
    unknown = sorted(set(actions) - known)
    if unknown:
        raise MaintenancePolicyError(
            f"unknown maintenance action(s) {', '.join(unknown)}; expected {', '.join(TABLE_ACTIONS)}",
            action=unknown[0],
        )
    return set(actions)


def summarize(actions: Sequence[MaintenanceAction]) -> dict[str, Any]:
    """Totals over ``actions``: the tables' live files and bytes before the first action on each, and
    after every change the actions made (or, on a dry run, would make), what was deleted, and how
    many actions changed something (or would), found nothing to do, were not due, or failed."""
    counted = [a for a in actions if "error" not in a.details]
    first: dict[str, MaintenanceAction] = {}
    for action in counted:
        first.setdefault(action.table, action)
    files_before = sum(a.files_before for a in first.values())
    bytes_before = sum(a.bytes_before for a in first.values())
    return {
        "tables": len({a.table for a in actions}),
        "actions_taken": sum(1 for a in actions if not a.skipped),
        "nothing_to_do": sum(1 for a in counted if a.skipped and not a.skipped.startswith("not due")),
        "not_due": sum(1 for a in actions if a.skipped and a.skipped.startswith("not due")),
        "failed": len(actions) - len(counted),
        "files_before": files_before,
        "files_after": files_before + sum(a.files_after - a.files_before for a in counted),
        "bytes_before": bytes_before,
        "bytes_after": bytes_before + sum(a.bytes_after - a.bytes_before for a in counted),
        "deleted": sum(len(a.deleted) for a in actions),
        "deleted_bytes": sum(a.deleted_bytes for a in actions),
    }

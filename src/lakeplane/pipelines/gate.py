"""Write-audit-publish: a model's output goes to an audit branch, is checked there, then published.

The branch starts at main's head; the write commits to it; the gate's rules run against that
snapshot. Only if every blocking rule passes is main moved to it (a fast-forward: if main moved
meanwhile, the publish is refused and may be retried). A failing gate removes the branch, so nothing
reaches consumers, and raises :class:`QualityGateFailed` with each failing rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pyiceberg.table import Table

from lakeplane.catalog.writer import WriteResult
from lakeplane.errors import CatalogError, QualityGateFailed

#: ``gate(table_name, snapshot_id)`` evaluates the rules on that snapshot: one dict per rule with at
#: least ``rule``, ``passed``, ``observed`` and ``blocking``.
Gate = Callable[[str, int], list[dict[str, Any]]]


def write_audit_publish(
    table: Table, commit: Callable[[str | None], WriteResult], gate: Gate
) -> tuple[WriteResult, list[dict[str, Any]]]:
    """Commit to an audit branch, run ``gate`` on it, and publish or discard."""
    name = ".".join(table.name())
    branch = f"audit-{uuid.uuid4().hex[:12]}"
    base = table.current_snapshot()
    if base is None:  # a branch needs a snapshot to start from: give the new, empty table one
        with table.transaction() as tx, tx.update_snapshot().fast_append():
            pass
        base = table.current_snapshot()
    assert base is not None
    table.manage_snapshots().create_branch(base.snapshot_id, branch).commit()
    written = commit(branch)
    if written.snapshot_id is None:  # nothing was written: nothing to audit or publish
        _drop(table, branch)
        return written, []
    outcomes = gate(name, written.snapshot_id)
    failed = [o for o in outcomes if not o.get("passed") and o.get("blocking", True)]
    if failed:
        _drop(table, branch)
        raise QualityGateFailed(
            f"quality gate on {name} failed: "
            + "; ".join(f"{o['rule']} (observed {o.get('observed')})" for o in failed)
            + " - nothing was published",
            table=name,
            rules=failed,
        )
    head = table.current_snapshot()
    if (head.snapshot_id if head else None) != (base.snapshot_id if base else None):
        _drop(table, branch)
        raise CatalogError(
            f"{name} changed while its new data was being audited; run the step again", table=name
        )
    table.manage_snapshots().set_current_snapshot(snapshot_id=written.snapshot_id).remove_branch(
        branch
    ).commit()
    return written, outcomes


def _drop(table: Table, branch: str) -> None:
    if table.snapshot_by_name(branch) is not None:
        table.manage_snapshots().remove_branch(branch).commit()

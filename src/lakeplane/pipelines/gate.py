"""Write-audit-publish: a model's output goes to an audit branch, is checked there, then published.

The branch starts at main's head; the write commits to it; the gate's rules run against that
snapshot. Only if every blocking rule passes is main moved to it: a fast-forward, which requires
main to be still at the branch's start. A failing gate removes the branch, so nothing reaches
consumers, and raises :class:`QualityGateFailed` with each failing rule.

When another writer moved main while this output was written and audited, fast-forwarding would
drop that writer's commit, and committing the audited files onto the new main would publish a table
nobody audited. So the write-audit-publish is done again from the new main: a new branch, the same
data files committed to it (the files to replace planned against it), the gate run again, and the
fast-forward tried again. Only the commits and the audit are redone, never the engine's work, and
what main shows is always exactly a snapshot that passed the gate.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from lakeplane.catalog.commits import CommitRetry, retry_commit, table_name
from lakeplane.catalog.writer import WriteResult
from lakeplane.errors import CommitConflictError, QualityGateFailed

#: ``gate(table_name, snapshot_id)`` evaluates the rules on that snapshot: one dict per rule with at
#: least ``rule``, ``passed``, ``observed`` and ``blocking``.
Gate = Callable[[str, int], list[dict[str, Any]]]


def write_audit_publish(
    table: Table,
    commit: Callable[[str | None], WriteResult],
    gate: Gate,
    retry: CommitRetry | None = None,
) -> tuple[WriteResult, list[dict[str, Any]]]:
    """Commit to an audit branch, run ``gate`` on it, and publish or discard.

    ``commit(branch)`` commits the step's data files to ``branch`` (it is called again, with a new
    branch, each time main moved before the publish). The result's ``commit_retries`` counts the
    publishes redone as well as the retries of each commit.

    Raises:
        QualityGateFailed: a blocking rule failed; main is untouched.
        CommitConflictError: main moved before every one of the allowed publishes.
    """
    name = table_name(table)
    retries = 0
    rounds = (retry or CommitRetry()).retries + 1

    def publish(round_: int) -> tuple[WriteResult, list[dict[str, Any]]]:
        nonlocal retries
        if round_:
            table.refresh()
        base, branch = _start_branch(table, retry)
        try:
            written = commit(branch)
            retries += written.commit_retries
            if written.snapshot_id is None:  # nothing was written: nothing to audit or publish
                _drop(table, branch, retry)
                return written, []
            outcomes = gate(name, written.snapshot_id)
            failed = [o for o in outcomes if not o.get("passed") and o.get("blocking", True)]
            if failed:
                raise QualityGateFailed(
                    f"quality gate on {name} failed: "
                    + "; ".join(f"{o['rule']} (observed {o.get('observed')})" for o in failed)
                    + " - nothing was published",
                    table=name,
                    rules=failed,
                )
            table.refresh()
            head = table.current_snapshot()
            if head is None or head.snapshot_id != base:
                raise CommitFailedException(
                    f"main moved from {base} to {head.snapshot_id if head else None} during the audit"
                )
            # The fast-forward requires main to be at ``base`` still (the metadata just read says so).
            table.manage_snapshots().set_current_snapshot(snapshot_id=written.snapshot_id).remove_branch(
                branch
            ).commit()
            return written, outcomes
        except BaseException:
            _drop(table, branch, retry)
            raise

    try:
        (written, outcomes), rebased = retry_commit(publish, name, "publish", retry)
    except CommitConflictError as exc:
        raise CommitConflictError(
            f"{name} changed while its new data was being audited, {rounds} times in a row; "
            "nothing was published, run the step again",
            table=name,
            operation="publish",
            attempts=exc.attempts,
            cause=exc.cause,
        ) from exc
    return dataclasses.replace(written, commit_retries=retries + rebased), outcomes


def _start_branch(table: Table, retry: CommitRetry | None) -> tuple[int, str]:
    """A new audit branch at main's head (given an empty snapshot first if the table has none)."""
    branch = f"audit-{uuid.uuid4().hex[:12]}"

    def attempt(n: int) -> int:
        if n:
            table.refresh()
        base = table.current_snapshot()
        if base is None:  # a branch needs a snapshot to start from: give the new, empty table one
            with table.transaction() as tx, tx.update_snapshot().fast_append():
                pass
            base = table.current_snapshot()
            assert base is not None
        table.manage_snapshots().create_branch(base.snapshot_id, branch).commit()
        return base.snapshot_id

    base, _ = retry_commit(attempt, table_name(table), "create audit branch", retry)
    return base, branch


def _drop(table: Table, branch: str, retry: CommitRetry | None) -> None:
    def attempt(n: int) -> None:
        table.refresh()
        if table.snapshot_by_name(branch) is not None:
            table.manage_snapshots().remove_branch(branch).commit()

    retry_commit(attempt, table_name(table), "drop audit branch", retry)

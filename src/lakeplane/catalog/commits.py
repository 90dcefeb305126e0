"""Commits that lose a race are planned again and retried, a bounded number of times.

Every change lakeplane makes to a table is a compare-and-swap in the catalog: pyiceberg's SQL catalog
checks the commit's requirements (main is still at the snapshot the commit was planned from) against
the table's current metadata and then moves the metadata pointer with
``UPDATE ... WHERE metadata_location = <the one just checked>``, so of two writers at most one wins
and the other gets :class:`~pyiceberg.exceptions.CommitFailedException`. That is the same on SQLite
and PostgreSQL. What the loser must then do depends on the change, so the caller passes the whole
attempt (reload, plan, commit) and :func:`retry_commit` runs it again after a pause.

pyiceberg's own retry is turned off on lakeplane's tables (:data:`NO_PYICEBERG_RETRY`): it keeps the
first plan and rebases it onto the new head, which for an overwrite whose day had no files yet is a
plain append of a second copy of the day.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import sqlalchemy as sa
from pydantic import Field
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.update import (
    AssertRefSnapshotId,
    AssertTableUUID,
    SetPropertiesUpdate,
    ValidatableTableRequirement,
)

from lakeplane.errors import CommitConflictError

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: A table property: pyiceberg does not retry commits itself, lakeplane plans them again instead.
NO_PYICEBERG_RETRY = {TableProperties.COMMIT_NUM_RETRIES: "0"}
#: The snapshot summary key telling how many conflicts the commit that landed lost first.
RETRIES_KEY = "lakeplane.commit-retries"

# PostgreSQL: serialization failure, deadlock detected, lock not available.
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}
_STALE_SEQUENCE = "Cannot add snapshot with sequence number"


@dataclass(frozen=True)
class CommitRetry:
    """How often, and how patiently, a commit that lost a race is tried again.

    The pause before retry ``n`` (from 1) is drawn uniformly from
    ``[0, min(max_delay_s, base_delay_s * 2 ** (n - 1))]`` ("full jitter"), so writers that collided
    once spread out instead of colliding again in step.
    """

    retries: int = 10
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0

    def pause(self, retry: int) -> float:
        return random.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1)))


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` means another writer got there first (so planning again can succeed)."""
    if isinstance(exc, CommitFailedException | ValidationException):
        return True
    if isinstance(exc, ValueError) and str(exc).startswith(_STALE_SEQUENCE):
        # The commit's ref did not move but another ref did (a branch commit while main moved, or
        # the reverse): its sequence number was taken from metadata that is no longer current.
        return True
    if isinstance(exc, sa.exc.OperationalError) and "locked" in str(exc.orig).lower():
        return True  # SQLite: another process held the write lock past the busy timeout
    if isinstance(exc, sa.exc.DBAPIError):
        return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES
    return False


def retry_commit(
    attempt: Callable[[int], T], table: str, operation: str, policy: CommitRetry | None = None
) -> tuple[T, int]:
    """Run ``attempt(n)`` (``n`` = 0, 1, ...) until it does not conflict.

    ``attempt`` must reload whatever it planned from when ``n > 0``. An exception that is not a
    conflict is raised at once.

    Returns:
        What the successful attempt returned, and how many conflicts came before it.

    Raises:
        CommitConflictError: every one of ``policy.retries + 1`` attempts conflicted.
    """
    policy = policy or CommitRetry()
    last: BaseException | None = None
    for n in range(policy.retries + 1):
        if n:
            time.sleep(policy.pause(n))
        try:
            return attempt(n), n
        except Exception as exc:
            if not is_conflict(exc):
                raise
            last = exc
            logger.info("%s of %s conflicted (attempt %d): %s", operation, table, n + 1, exc)
    raise CommitConflictError(
        f"{operation} of {table} conflicted with other writers {policy.retries + 1} times in a row; "
        "nothing was committed, run it again",
        table=table,
        operation=operation,
        attempts=policy.retries + 1,
        cause=f"{type(last).__name__}: {last}",
    ) from last


def stop_pyiceberg_retries(table: Table, policy: CommitRetry) -> None:
    """Turn pyiceberg's own commit retry off on a table created before lakeplane did so itself:
    pyiceberg would rebase an append onto a head that may hold the same files."""
    if all(table.properties.get(k) == v for k, v in NO_PYICEBERG_RETRY.items()):
        return

    def attempt(retry: int) -> None:
        if retry:
            table.refresh()
        with table.transaction() as tx:
            tx.set_properties(NO_PYICEBERG_RETRY)

    retry_commit(attempt, table_name(table), "set properties", policy)


def table_name(table: Table) -> str:
    return ".".join(table.name())


class AssertProperty(ValidatableTableRequirement):
    """The table property ``key`` must still have ``value`` (None: unset) when the commit lands.

    Iceberg has no such requirement; pyiceberg's SQL catalog checks requirements itself, against the
    metadata it then swaps, so one of its own makes a read-modify-write of a property safe.
    """

    type: Literal["assert-lakeplane-property"] = Field(default="assert-lakeplane-property")
    key: str
    value: str | None = None

    def validate(self, base_metadata: TableMetadata | None) -> None:  # type: ignore[override]
        if base_metadata is None:
            raise CommitFailedException("Requirement failed: current table metadata is missing")
        if base_metadata.properties.get(self.key) != self.value:
            raise CommitFailedException(f"Requirement failed: table property {self.key} has changed")


def set_properties_if_unchanged(table: Table, updates: dict[str, str], read: dict[str, str | None]) -> None:
    """Set ``updates`` in one commit that requires main's head and each property in ``read`` to be
    what this process read (else :class:`CommitFailedException`); ``table`` is then reloaded."""
    head = table.current_snapshot()
    requirements = (
        AssertTableUUID(uuid=table.metadata.table_uuid),
        AssertRefSnapshotId(ref=MAIN_BRANCH, snapshot_id=head.snapshot_id if head else None),  # type: ignore[call-arg]
        *(AssertProperty(key=k, value=v) for k, v in read.items()),
    )
    # The catalog's signature lists Iceberg's own requirement types; the SQL catalog only calls
    # ``validate`` on each, which ``AssertProperty`` has.
    table.catalog.commit_table(table, requirements, (SetPropertiesUpdate(updates=updates),))  # type: ignore[arg-type]
    table.refresh()

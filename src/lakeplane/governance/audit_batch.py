"""Group commit for the audit log: appends made at the same time share one transaction.

Every caller of :meth:`GroupCommit.submit` blocks until its record is committed, so a record is
*acknowledged* (the call returns, and the query's rows are handed over after it) only once it is in
the database. While one batch commits, the appends that arrive queue up; the first of them to see
the log free commits all that are waiting, in one transaction, in the order they arrived. So
concurrent queries pay for one commit between them, a lone query pays for its own, and nothing is
ever held in memory without a caller waiting for it: a process that exits (or is killed) loses only
records whose queries had not returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from lakeplane.governance.audit_records import AuditEvent, AuditRecord

#: The most records one transaction takes; the rest wait for the next one.
MAX_BATCH = 256


@dataclass
class _Pending:
    event: AuditEvent
    record: AuditRecord | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit:
    """Batches :meth:`submit` calls into calls of ``commit(events) -> records`` (one transaction)."""

    def __init__(self, commit: Callable[[list[AuditEvent]], list[AuditRecord]]) -> None:
        self._commit = commit
        self._changed = threading.Condition()
        self._waiting: list[_Pending] = []
        self._committing = False
        self.batches = 0

    def submit(self, event: AuditEvent) -> AuditRecord:
        """Commit ``event`` (with whatever else is waiting) and return its record once committed.

        Raises:
            whatever the commit raised, for every record of the failed batch.
        """
        mine = _Pending(event)
        with self._changed:
            self._waiting.append(mine)
        while True:
            with self._changed:
                while not mine.done and self._committing:
                    self._changed.wait()
                if mine.done:
                    break
                # The log is free: commit what is waiting (this record among it, unless more than
                # a batch waits ahead of it: then the next round).
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                self._committing = True
            self._commit_batch(batch)
        if mine.error is not None:
            raise mine.error
        assert mine.record is not None
        return mine.record

    def _commit_batch(self, batch: list[_Pending]) -> None:
        try:
            records = self._commit([p.event for p in batch])
            for pending, record in zip(batch, records, strict=True):
                pending.record = record
        except BaseException as error:  # every waiter learns its record was not written
            for pending in batch:
                pending.error = error
        finally:
            with self._changed:
                for pending in batch:
                    pending.done = True
                self._committing = False
                self.batches += 1
                self._changed.notify_all()

"""Admission of a query to its workgroup, before it runs, and its line in the history.

:meth:`lakeplane.query.service.Queries.run` opens a :class:`Ticket` when a query arrives and, once
the query is compiled (and governed), asks it to :meth:`~Ticket.admit` the query:

1. the scan is estimated from the manifests (:mod:`lakeplane.query.estimate`);
2. over the workgroup's ``bytes_scanned_cutoff_per_query``: refused, nothing read;
3. a running slot is taken, waiting in the queue when ``max_concurrent`` queries run;
4. over what is left of ``bytes_scanned_per_day`` (today, UTC, from the history): refused.

Every query, admitted or not, leaves one history row (:mod:`lakeplane.query.history`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa

from lakeplane.catalog.catalog import LakeCatalog
from lakeplane.config import LakeConfig
from lakeplane.errors import AccessDenied, ConfigError, PolicyError, QueryRefused
from lakeplane.governance.policy import Policy
from lakeplane.query.compiler import CompiledQuery
from lakeplane.query.estimate import ScanEstimate, estimate_scan
from lakeplane.query.history import QueryHistory, new_query_id, now_stamp, start_of_day
from lakeplane.query.slots import QuerySlots, Slot
from lakeplane.query.workgroups import Workgroup, Workgroups
from lakeplane.units import human_bytes

log = logging.getLogger("lakeplane.query")

#: Where this thread's (or task's) queued queries say why they wait, when set by :func:`waiting_notices`.
_NOTICES: ContextVar[Callable[[str], None] | None] = ContextVar("lakeplane_waiting_notices", default=None)


@contextmanager
def waiting_notices(notice: Callable[[str], None]) -> Iterator[None]:
    """Within the block, a query of this thread that waits for a slot tells ``notice`` why (a server
    passes each client's own channel); elsewhere :attr:`Admission.on_wait` is told."""
    token = _NOTICES.set(notice)
    try:
        yield
    finally:
        _NOTICES.reset(token)


class Admission:
    """Workgroups, their running slots and the query history of one lake.

    Args:
        catalog: the lake's catalog (its database holds the slots and the history).
        config: the project's settings (``workgroups:``).
        config_file: ``lakeplane.yaml``.
        policy: the policy, or None when the lake is not governed.
    """

    def __init__(
        self, catalog: LakeCatalog, config: LakeConfig, config_file: Path, policy: Callable[[], Policy | None]
    ) -> None:
        self.catalog = catalog
        self.workgroups = Workgroups(config.workgroups, config_file, policy)
        #: Told why a query waits for a slot (``waiting: workgroup analysts runs 4 of 4 queries``).
        self.on_wait: Callable[[str], None] = log.warning

    @cached_property
    def history(self) -> QueryHistory:
        return QueryHistory(self.catalog.state_engine)

    @cached_property
    def slots(self) -> QuerySlots:
        return QuerySlots(self.catalog.state_engine)

    def workgroup_for(self, principal: str | None) -> Workgroup | None:
        return self.workgroups.workgroup_for(principal)

    def begin(self, sql: str, principal: str | None) -> Ticket:
        """A ticket for a query that just arrived (its workgroup found, if the principal has one).

        Raises:
            ConfigError: the workgroups name an unknown principal (the query is recorded as failed).
        """
        ticket = Ticket(self, sql, principal)
        try:
            ticket.workgroup = self.workgroup_for(principal)
        except ConfigError as exc:
            ticket.fail(exc)
            raise
        except PolicyError:  # an unknown principal: compiling the query says so, and is recorded
            ticket.workgroup = None
        return ticket


class Ticket:
    """One query on its way through admission, and its history row."""

    def __init__(self, admission: Admission, sql: str, principal: str | None) -> None:
        self.admission = admission
        self.sql = sql
        self.principal = principal
        self.workgroup: Workgroup | None = None
        self.started_at = now_stamp()
        self.clock = time.monotonic()
        self.estimate: ScanEstimate | None = None
        self.slot: Slot | None = None
        self.query_id = new_query_id()
        self.saved = False
        self.ended = False

    @property
    def history(self) -> QueryHistory:
        return self.admission.history

    def admit(self, compiled: CompiledQuery) -> ScanEstimate:
        """Estimate ``compiled``'s scan and let it run within its workgroup's limits.

        Raises:
            QueryRefused: over the per-query cutoff or the day's budget, or the queue is full or
                timed out; it carries the estimate's breakdown.
        """
        self.estimate = estimate = estimate_scan(self.admission.catalog, compiled)
        group = self.workgroup
        if group is None:
            return estimate
        if group.cutoff is not None and estimate.bytes > group.cutoff:
            raise self._refusal("cutoff", group.cutoff, None)
        if group.max_concurrent is not None:
            self.slot = self.admission.slots.acquire(
                group.name,
                group.max_concurrent,
                group.config.queue,
                self.query_id,
                _NOTICES.get() or self.admission.on_wait,
            )
        if group.daily is not None:
            scanned = self.history.scanned_since(group.name, start_of_day(self.started_at))
            remaining = max(group.daily - scanned, 0)
            if estimate.bytes > remaining:
                raise self._refusal("daily", group.daily, remaining)
            self._save(outcome="running")  # counts against the budget while it runs
        return estimate

    def release(self) -> None:
        """Give the running slot back (done when the engine is done)."""
        if self.slot is not None:
            self.admission.slots.release(self.slot)
            self.slot = None

    def finish(self, rows: int | None, *, cache_hit: bool = False, bytes_actual: int | None = None) -> None:
        """Record the query as run: ``rows`` returned (``cache_hit`` when answered from a reused result)."""
        self.release()
        self._end("ok", None, rows=rows, cache_hit=cache_hit, bytes_actual=bytes_actual)

    def fail(self, exc: BaseException) -> None:
        """Record the query as refused (a workgroup or the policy said no) or failed."""
        self.release()
        if self.ended:
            return
        outcome = "refused" if isinstance(exc, QueryRefused | AccessDenied) else "failed"
        reason = str(exc) or type(exc).__name__
        self._end(outcome, reason[:4000])

    def _end(self, outcome: str, reason: str | None, **values: object) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            self._save(outcome=outcome, reason=reason, seconds=time.monotonic() - self.clock, **values)
        except sa.exc.SQLAlchemyError:
            log.exception("the query history could not be written")

    def _save(self, **values: object) -> None:
        estimate = self.estimate
        if estimate is not None:
            billed = not values.get("cache_hit") and values.get("outcome") != "refused"
            values |= {
                "tables": [t.table for t in estimate.tables],
                "bytes_estimated": estimate.bytes,
                "cost_usd": estimate.cost if billed else 0.0,
            }
        if self.saved:
            self.history.update(self.query_id, **values)
            return
        workgroup = self.workgroup.name if self.workgroup else None
        self.history.insert(self.query_id, self.started_at, self.principal, workgroup, self.sql, **values)
        self.saved = True

    def _refusal(self, reason: str, limit: int, remaining: int | None) -> QueryRefused:
        assert self.estimate is not None and self.workgroup is not None
        estimate, name = self.estimate, self.workgroup.name
        if reason == "cutoff":
            cap = f"{human_bytes(limit)} ({limit} bytes)"
            why = f"over the bytes_scanned_cutoff_per_query of workgroup {name}, {cap}"
        else:
            why = (
                f"over what is left of the bytes_scanned_per_day of workgroup {name}, {human_bytes(limit)}: "
                f"{human_bytes(remaining or 0)} ({remaining} bytes) until midnight UTC"
            )
        message = "\n".join(
            [
                f"query refused before it ran: it would scan {human_bytes(estimate.bytes)}, {why}",
                *estimate.lines(),
            ]
        )
        return QueryRefused(
            message,
            workgroup=name,
            principal=self.principal,
            reason=reason,
            limit=limit,
            remaining=remaining,
            estimate=estimate.bytes,
            breakdown=estimate.breakdown,
        )

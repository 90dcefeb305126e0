"""Running slots of workgroups, shared by every process that shares the catalog's database.

A workgroup with ``max_concurrent: N`` has slots ``0 .. N-1``, rows of ``lakeplane_query_slots``:
a query takes a free one with an INSERT (the primary key makes two takers of one slot impossible),
keeps it alive with a heartbeat while it runs, and deletes it when done. A query that finds every
slot taken joins the workgroup's queue (rows of ``lakeplane_query_waiters``, at most
``queue.length``), says why it waits, and polls until a slot frees up, in arrival order, or its
``timeout_s`` passes.

A slot (or a place in the queue) whose holder died is taken back: at once when the holder was a
process of this host that no longer exists, else when its heartbeat stops and the row expires
(``ttl_s``, 30 s by default).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables
from lakeplane.config import QueueConfig
from lakeplane.errors import QueryRefused

log = logging.getLogger("lakeplane.query")

_META = sa.MetaData()
SLOTS = sa.Table(
    "lakeplane_query_slots",
    _META,
    sa.Column("workgroup", sa.String(200), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("query_id", sa.String(40), nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
)
WAITERS = sa.Table(
    "lakeplane_query_waiters",
    _META,
    sa.Column("query_id", sa.String(40), primary_key=True),
    sa.Column("workgroup", sa.String(200), nullable=False, index=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("enqueued_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
)


def this_holder() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _stamp(seconds_from_now: float = 0.0) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now)
    return moment.isoformat(timespec="microseconds")


def holder_alive(holder: str) -> bool | None:
    """Whether the process ``host:pid`` runs; None when it is on another host (only expiry tells)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _live(rows: Iterable[Any], now: str) -> tuple[list[Any], list[Any]]:
    """``rows`` split into those whose holder is alive and those it left behind."""
    live: list[Any] = []
    dead: list[Any] = []
    for row in rows:
        gone = row.expires_at < now or holder_alive(row.holder) is False
        (dead if gone else live).append(row)
    return live, dead


@dataclass
class Slot:
    """A running slot held by one query, renewed by a heartbeat thread until released."""

    workgroup: str
    number: int
    query_id: str
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)


class QuerySlots:
    """Takes, renews and gives back workgroups' running slots.

    Args:
        engine: the catalog's database.
        ttl_s: how long a slot outlives its holder's last heartbeat (a heartbeat every third of it).
        poll_s: how often a queued query looks for a free slot.
    """

    def __init__(self, engine: sa.Engine, ttl_s: float = 30.0, poll_s: float = 0.1) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        ensure_tables(engine, SLOTS, WAITERS)

    def acquire(
        self,
        workgroup: str,
        limit: int,
        queue: QueueConfig,
        query_id: str,
        on_wait: Callable[[str], None],
    ) -> Slot:
        """A slot of ``workgroup``, waiting in its queue for one if all ``limit`` are taken.

        Raises:
            QueryRefused: the queue is full (``queue_full``), or no slot freed up within
                ``queue.timeout_s`` (``queue_timeout``).
        """
        if not self._waiting(workgroup):
            slot = self.try_acquire(workgroup, limit, query_id)
            if slot is not None:
                return slot
        running = self.running(workgroup)
        ahead = self._enqueue(workgroup, query_id)
        try:
            if ahead >= queue.length:
                raise QueryRefused(
                    f"workgroup {workgroup} runs {running} of {limit} queries and its queue is full "
                    f"({queue.length} waiting at most): try again later",
                    workgroup=workgroup,
                    reason="queue_full",
                    limit=limit,
                    retryable=True,
                )
            on_wait(
                f"waiting: workgroup {workgroup} runs {running} of {limit} queries "
                f"({ahead} queued ahead; waiting up to {queue.timeout_s:g} s)"
            )
            return self._wait(workgroup, limit, queue, query_id)
        finally:
            with self.engine.begin() as conn:
                conn.execute(WAITERS.delete().where(WAITERS.c.query_id == query_id))

    def try_acquire(self, workgroup: str, limit: int, query_id: str) -> Slot | None:
        """A free slot of ``workgroup`` for ``query_id`` (freeing those whose holder died), or None."""
        now = _stamp()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(SLOTS).where(SLOTS.c.workgroup == workgroup)).all()
        live, dead = _live(rows, now)
        self._clear(
            SLOTS, [(SLOTS.c.slot == r.slot) & (SLOTS.c.query_id == r.query_id) for r in dead], workgroup
        )
        taken = {r.slot for r in live}
        for number in range(limit):
            if number in taken:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        SLOTS.insert().values(
                            workgroup=workgroup,
                            slot=number,
                            query_id=query_id,
                            holder=this_holder(),
                            expires_at=_stamp(self.ttl_s),
                        )
                    )
            except sa.exc.IntegrityError:
                continue  # another query took it first
            slot = Slot(workgroup, number, query_id)
            threading.Thread(target=self._beat, args=(slot,), daemon=True, name="lakeplane-slot").start()
            return slot
        return None

    def release(self, slot: Slot) -> None:
        slot._stop.set()
        with self.engine.begin() as conn:
            conn.execute(
                SLOTS.delete().where(
                    (SLOTS.c.workgroup == slot.workgroup)
                    & (SLOTS.c.slot == slot.number)
                    & (SLOTS.c.query_id == slot.query_id)
                )
            )

    def running(self, workgroup: str) -> int:
        """How many of ``workgroup``'s slots are held by live queries."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(SLOTS).where(SLOTS.c.workgroup == workgroup)).all()
        return len(_live(rows, _stamp())[0])

    def _beat(self, slot: Slot) -> None:
        while not slot._stop.wait(self.ttl_s / 3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        SLOTS.update()
                        .where(
                            (SLOTS.c.workgroup == slot.workgroup)
                            & (SLOTS.c.slot == slot.number)
                            & (SLOTS.c.query_id == slot.query_id)
                        )
                        .values(expires_at=_stamp(self.ttl_s))
                    )
            except sa.exc.SQLAlchemyError:  # the next beat tries again; the slot expires if none lands
                log.warning("could not renew running slot %s/%d", slot.workgroup, slot.number, exc_info=True)

    # -- the queue ----------------------------------------------------------------------------
    def _enqueue(self, workgroup: str, query_id: str) -> int:
        """Join ``workgroup``'s queue; how many live waiters arrived before."""
        with self.engine.begin() as conn:
            conn.execute(
                WAITERS.insert().values(
                    query_id=query_id,
                    workgroup=workgroup,
                    holder=this_holder(),
                    enqueued_at=_stamp(),
                    expires_at=_stamp(self.ttl_s),
                )
            )
        return self._ahead(workgroup, query_id)

    def _waiting(self, workgroup: str) -> list[Any]:
        """The live waiters of ``workgroup`` in arrival order (clearing those whose holder died)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(WAITERS)
                .where(WAITERS.c.workgroup == workgroup)
                .order_by(WAITERS.c.enqueued_at, WAITERS.c.query_id)
            ).all()
        live, dead = _live(rows, _stamp())
        self._clear(WAITERS, [WAITERS.c.query_id == r.query_id for r in dead], workgroup)
        return live

    def _ahead(self, workgroup: str, query_id: str) -> int:
        ids = [r.query_id for r in self._waiting(workgroup)]
        return ids.index(query_id) if query_id in ids else len(ids)

    def _wait(self, workgroup: str, limit: int, queue: QueueConfig, query_id: str) -> Slot:
        deadline = time.monotonic() + queue.timeout_s
        while True:
            time.sleep(self.poll_s)
            with self.engine.begin() as conn:
                conn.execute(
                    WAITERS.update()
                    .where(WAITERS.c.query_id == query_id)
                    .values(expires_at=_stamp(self.ttl_s))
                )
            # First come, first served: only the waiters at the head may take the free slots.
            if self._ahead(workgroup, query_id) < max(limit - self.running(workgroup), 0):
                slot = self.try_acquire(workgroup, limit, query_id)
                if slot is not None:
                    return slot
            if time.monotonic() >= deadline:
                raise QueryRefused(
                    f"workgroup {workgroup} runs {limit} of {limit} queries: no slot freed up "
                    f"within {queue.timeout_s:g} s (queue.timeout_s)",
                    workgroup=workgroup,
                    reason="queue_timeout",
                    limit=limit,
                    retryable=True,
                )

    def _clear(self, table: sa.Table, conditions: list[Any], workgroup: str) -> None:
        """Delete rows left behind by dead holders (each only if still the same row)."""
        if not conditions:
            return
        with self.engine.begin() as conn:
            for condition in conditions:
                conn.execute(table.delete().where((table.c.workgroup == workgroup) & condition))

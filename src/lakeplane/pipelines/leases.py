"""Day leases: one run at a time writes a pipeline's business date.

Two runs of pipeline P for day D (a schedule and a person, two machines sharing a PostgreSQL catalog)
would commit the same partitions at once. Before it runs a step, a run takes the lease of P/D, a row
of ``lakeplane_run_leases`` in the catalog's database; its runner renews the lease with every
heartbeat and deletes it when the run ends. A run that finds the lease held waits, polling, until
it is released or expires (its holder stopped renewing it: the runner died).

Taking the lease is one atomic statement, so it works the same on SQLite and PostgreSQL: an INSERT
of the row, or, when the row exists, an ``UPDATE ... WHERE expires_at < now`` that only one of two
contenders can win. Times come from the database's clock (PostgreSQL's ``clock_timestamp()``; a
SQLite file is on this machine, so its clock is ours), so runners on hosts whose clocks disagree
still agree on when a lease expired.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables

_META = sa.MetaData()
LEASES = sa.Table(
    "lakeplane_run_leases",
    _META,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("ds", sa.String(10), primary_key=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
)


def this_holder() -> str:
    """``host:pid`` of this process, as leases and runs name their runner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def database_now(conn: sa.Connection) -> dt.datetime:
    """The database's time (UTC): one clock for every runner that shares the catalog."""
    if conn.dialect.name == "postgresql":
        moment = conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
        return moment.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    """``moment`` as stored: ISO 8601 in UTC with milliseconds, so text order is time order."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Lease:
    """Who holds pipeline/ds: ``run_id``, run by ``holder`` (host:pid), until ``expires_at``."""

    pipeline: str
    ds: str
    run_id: str
    holder: str
    acquired_at: str
    expires_at: str

    @property
    def label(self) -> str:
        return f"{self.pipeline}/{self.ds}"


class DayLeases:
    """Takes, renews and releases the leases of pipeline days.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``); the table is created in it
            if it is missing.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, LEASES)

    def acquire(self, pipeline: str, ds: str, run_id: str, holder: str, ttl_s: float) -> Lease:
        """Take the lease of ``pipeline``/``ds`` for ``run_id`` if it is free or expired.

        Returns:
            the lease as it now stands: ``run_id``'s own if taken, else the other run's that holds it.
        """
        for _ in range(5):  # the lease can be released between a refused INSERT and the read
            with self.engine.connect() as conn:
                now = database_now(conn)
            values = {
                "run_id": run_id,
                "holder": holder,
                "acquired_at": stamp(now),
                "expires_at": stamp(now + dt.timedelta(seconds=ttl_s)),
            }
            try:
                with self.engine.begin() as conn:
                    conn.execute(LEASES.insert().values(pipeline=pipeline, ds=ds, **values))
                return Lease(pipeline, ds, **values)
            except sa.exc.IntegrityError:
                pass  # held, or left behind by a runner that died: take it over only if expired
            with self.engine.begin() as conn:
                taken = conn.execute(
                    LEASES.update()
                    .where(
                        (LEASES.c.pipeline == pipeline)
                        & (LEASES.c.ds == ds)
                        & ((LEASES.c.expires_at < values["acquired_at"]) | (LEASES.c.run_id == run_id))
                    )
                    .values(**values)
                ).rowcount
            if taken:
                return Lease(pipeline, ds, **values)
            current = self.holder_of(pipeline, ds)
            if current is not None:
                return current
        raise RuntimeError(f"the lease of {pipeline}/{ds} changed hands five times while being read")

    def renew(self, lease: Lease, ttl_s: float) -> bool:
        """Push ``lease``'s expiry ``ttl_s`` seconds past now; False if its run no longer holds it."""
        with self.engine.begin() as conn:
            expires = stamp(database_now(conn) + dt.timedelta(seconds=ttl_s))
            return bool(
                conn.execute(
                    LEASES.update()
                    .where(
                        (LEASES.c.pipeline == lease.pipeline)
                        & (LEASES.c.ds == lease.ds)
                        & (LEASES.c.run_id == lease.run_id)
                    )
                    .values(expires_at=expires)
                ).rowcount
            )

    def release(self, lease: Lease) -> None:
        """Give the lease up (a no-op if another run has taken it over)."""
        with self.engine.begin() as conn:
            conn.execute(
                LEASES.delete().where(
                    (LEASES.c.pipeline == lease.pipeline)
                    & (LEASES.c.ds == lease.ds)
                    & (LEASES.c.run_id == lease.run_id)
                )
            )

    def holder_of(self, pipeline: str, ds: str) -> Lease | None:
        """The lease of ``pipeline``/``ds`` (perhaps expired), or None if nobody holds it."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(LEASES).where((LEASES.c.pipeline == pipeline) & (LEASES.c.ds == ds))
            ).first()
        return Lease(**row._mapping) if row else None

"""The lineage store: each commit's edges, in the catalog's database.

``lakeplane_lineage`` holds one row per commit of a model or an ingest step: the table written, the
snapshot the commit made, what wrote it, and its edges (JSON). The latest row of each table is that
table's incoming lineage; older rows answer for the snapshots they made (time travel).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables
from lakeplane.lineage.edges import Edge

_META = sa.MetaData()
LINEAGE = sa.Table(
    "lakeplane_lineage",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(400), nullable=False),
    sa.Column("snapshot_id", sa.BigInteger),
    sa.Column("model", sa.String(400)),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("edges", sa.Text, nullable=False),
    sa.Index("ix_lakeplane_lineage_table", "table_name", "id"),
)
EVENTS = sa.Table(
    "lakeplane_lineage_events",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sent_at", sa.String(40), nullable=False),
    sa.Column("job", sa.String(400), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(20), nullable=False),
    sa.Column("transport", sa.String(20), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
)


@dataclass(frozen=True)
class LineageCommit:
    """The edges one commit wrote into ``table``."""

    table: str
    snapshot_id: int | None
    model: str | None
    kind: str
    recorded_at: str
    origin: str
    edges: list[Edge] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "snapshot_id": self.snapshot_id,
            "model": self.model,
            "kind": self.kind,
            "recorded_at": self.recorded_at,
            "origin": self.origin,
            "edges": [e.to_dict() for e in self.edges],
        }


class LineageStore:
    """Writes and reads ``lakeplane_lineage`` and the log of OpenLineage events sent.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, LINEAGE, EVENTS)

    def record(
        self,
        table: str,
        snapshot_id: int | None,
        edges: list[Edge],
        *,
        model: str | None,
        kind: str,
        origin: str = "commit",
    ) -> None:
        """Keep ``edges`` as what the commit making ``snapshot_id`` of ``table`` wrote."""
        with self.engine.begin() as conn:
            conn.execute(
                LINEAGE.insert().values(
                    table_name=table,
                    snapshot_id=snapshot_id,
                    model=model,
                    kind=kind,
                    recorded_at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
                    origin=origin,
                    edges=json.dumps([e.to_dict() for e in edges]),
                )
            )

    def latest(self) -> dict[str, LineageCommit]:
        """The newest commit of every table, by table: together, the lineage graph now."""
        newest = sa.select(sa.func.max(LINEAGE.c.id)).group_by(LINEAGE.c.table_name)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(LINEAGE).where(LINEAGE.c.id.in_(newest))).all()
        return {row.table_name: _commit(row) for row in rows}

    def commits(self, table: str) -> list[LineageCommit]:
        """Every recorded commit of ``table``, oldest first."""
        query = sa.select(LINEAGE).where(LINEAGE.c.table_name == table).order_by(LINEAGE.c.id)
        with self.engine.connect() as conn:
            return [_commit(row) for row in conn.execute(query).all()]

    def at(self, table: str, snapshot_id: int) -> LineageCommit | None:
        """The newest commit recorded for snapshot ``snapshot_id`` of ``table``, if any."""
        query = (
            sa.select(LINEAGE)
            .where(LINEAGE.c.table_name == table, LINEAGE.c.snapshot_id == snapshot_id)
            .order_by(LINEAGE.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _commit(row) if row is not None else None

    def is_empty(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(LINEAGE.c.id).limit(1)).first() is None

    def log_event(self, job: str, run_id: str, event_type: str, transport: str, error: str | None) -> None:
        """Note one OpenLineage event sent (``error`` None) or not."""
        with self.engine.begin() as conn:
            conn.execute(
                EVENTS.insert().values(
                    sent_at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
                    job=job,
                    run_id=run_id,
                    event_type=event_type,
                    transport=transport,
                    ok=error is None,
                    error=error,
                )
            )

    def event_counts(self) -> dict[str, int]:
        """How many OpenLineage events were sent and how many failed, ever."""
        query = sa.select(EVENTS.c.ok, sa.func.count()).group_by(EVENTS.c.ok)
        with self.engine.connect() as conn:
            counts = {bool(ok): int(n) for ok, n in conn.execute(query).all()}
        return {"sent": counts.get(True, 0), "failed": counts.get(False, 0)}


def _commit(row: Any) -> LineageCommit:
    return LineageCommit(
        table=row.table_name,
        snapshot_id=row.snapshot_id,
        model=row.model,
        kind=row.kind,
        recorded_at=row.recorded_at,
        origin=row.origin,
        edges=[Edge.from_dict(e) for e in json.loads(row.edges)],
    )

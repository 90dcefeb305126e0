"""Query history: one row per query, by every path, in the catalog's database.

``lakeplane query``, ``Lake.query`` and the servers all run queries through
:meth:`lakeplane.query.service.Queries.run`, which opens a row when a query arrives (outcome
``running``) and closes it with ``ok``, ``refused`` (a workgroup's cap or queue, or the policy) or
``failed``. A running row counts against its workgroup's daily budget, so queries running at once in
several processes see each other's bytes; a row left ``running`` by a process that died keeps
counting (its scan most likely happened).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables

_META = sa.MetaData()
HISTORY = sa.Table(
    "lakeplane_query_history",
    _META,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("principal", sa.String(200)),
    sa.Column("workgroup", sa.String(200)),
    sa.Column("sql", sa.Text, nullable=False),
    sa.Column("tables", sa.Text, nullable=False, default="[]"),
    sa.Column("bytes_estimated", sa.BigInteger),
    sa.Column("bytes_actual", sa.BigInteger),
    sa.Column("rows", sa.BigInteger),
    sa.Column("seconds", sa.Float),
    sa.Column("cache_hit", sa.Boolean, nullable=False, default=False),
    sa.Column("cost_usd", sa.Float),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Index("ix_lakeplane_query_history_workgroup", "workgroup", "started_at"),
    sa.Index("ix_lakeplane_query_history_principal", "principal", "started_at"),
    sa.Index("ix_lakeplane_query_history_started", "started_at"),
)

#: Outcomes whose scan counts against a daily budget (the query ran, or is running).
SCANNED = ("ok", "failed", "running")


def new_query_id() -> str:
    return uuid.uuid4().hex


def now_stamp() -> str:
    """This moment as history stores it: ISO 8601 in UTC with microseconds (text order is time order)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class QueryRecord:
    """One query as the history keeps it."""

    id: str
    started_at: str
    principal: str | None
    workgroup: str | None
    sql: str
    tables: list[str]
    bytes_estimated: int | None
    bytes_actual: int | None
    rows: int | None
    seconds: float | None
    cache_hit: bool
    cost_usd: float | None
    outcome: str
    reason: str | None

    @property
    def bytes_scanned(self) -> int | None:
        """What the query read: the engine's count when it gave one, else the estimate; 0 when it was
        refused (it read nothing) or answered from a reused result."""
        if self.cache_hit or self.outcome == "refused":
            return 0
        return self.bytes_actual if self.bytes_actual is not None else self.bytes_estimated

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bytes_scanned": self.bytes_scanned}


class QueryHistory:
    """Writes and reads ``lakeplane_query_history``.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, HISTORY)

    def insert(
        self,
        query_id: str,
        started_at: str,
        principal: str | None,
        workgroup: str | None,
        sql: str,
        **values: Any,
    ) -> None:
        """Write a query's row (``tables`` is given as a list)."""
        values["tables"] = json.dumps(values.get("tables", []))
        values.setdefault("cache_hit", False)
        values.setdefault("outcome", "running")
        with self.engine.begin() as conn:
            conn.execute(
                HISTORY.insert().values(
                    id=query_id,
                    started_at=started_at,
                    principal=principal,
                    workgroup=workgroup,
                    sql=sql,
                    **values,
                )
            )

    def update(self, query_id: str, **values: Any) -> None:
        """Set columns of a row (``tables`` is given as a list)."""
        if "tables" in values:
            values["tables"] = json.dumps(values["tables"])
        with self.engine.begin() as conn:
            conn.execute(HISTORY.update().where(HISTORY.c.id == query_id).values(**values))

    def scanned_since(self, workgroup: str, since: str) -> int:
        """Bytes the workgroup's queries scanned (or are scanning) since ``since`` (a stored stamp)."""
        scanned = sa.case(
            (HISTORY.c.cache_hit.is_(True), 0),
            else_=sa.func.coalesce(HISTORY.c.bytes_actual, HISTORY.c.bytes_estimated, 0),
        )
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(scanned), 0)).where(
                    (HISTORY.c.workgroup == workgroup)
                    & (HISTORY.c.started_at >= since)
                    & HISTORY.c.outcome.in_(SCANNED)
                )
            ).scalar_one()
        return int(total)

    def get(self, query_id: str) -> QueryRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(HISTORY).where(HISTORY.c.id == query_id)).first()
        return _record(row._mapping) if row else None

    def list(
        self, *, principal: str | None = None, workgroup: str | None = None, limit: int | None = 50
    ) -> list[QueryRecord]:
        """The latest queries first, optionally of one principal or one workgroup."""
        query = sa.select(HISTORY).order_by(HISTORY.c.started_at.desc(), HISTORY.c.id)
        if principal is not None:
            query = query.where(HISTORY.c.principal == principal)
        if workgroup is not None:
            query = query.where(HISTORY.c.workgroup == workgroup)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_record(row._mapping) for row in conn.execute(query)]


def start_of_day(stamp: str | None = None) -> str:
    """Midnight UTC of the day of ``stamp`` (default: today), as a stored stamp."""
    moment = dt.datetime.fromisoformat(stamp) if stamp else dt.datetime.now(dt.UTC)
    midnight = moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.isoformat(timespec="microseconds")


def _record(row: Any) -> QueryRecord:
    values = dict(row)
    values["tables"] = json.loads(values["tables"] or "[]")
    values["cache_hit"] = bool(values["cache_hit"])
    return QueryRecord(**values)

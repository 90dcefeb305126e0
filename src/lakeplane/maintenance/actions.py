"""What a housekeeping action did to a table, and the record of every action in the catalog database.

Each action (compaction, snapshot expiry, orphan removal, manifest rewrite, a lifecycle change) is
one :class:`MaintenanceAction`: the table's live files and bytes before and after, the snapshot it
committed, what it deleted (or, on a dry run, would delete), and why it did nothing when it did
nothing. :class:`MaintenanceLog` keeps them in ``lakeplane_maintenance`` so ``describe`` can show a
table's housekeeping history and ``maintain all`` can say what it changed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables

ActionKind = Literal["compact", "expire", "orphans", "rewrite-manifests", "lifecycle", "retention"]

#: How many deleted paths a record keeps (the count is always whole).
KEPT_PATHS = 50

_META = sa.MetaData()
ACTIONS = sa.Table(
    "lakeplane_maintenance",
    _META,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("table_name", sa.String(400), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("files_before", sa.BigInteger, nullable=False),
    sa.Column("files_after", sa.BigInteger, nullable=False),
    sa.Column("bytes_before", sa.BigInteger, nullable=False),
    sa.Column("bytes_after", sa.BigInteger, nullable=False),
    sa.Column("snapshot_id", sa.BigInteger),
    sa.Column("deleted", sa.BigInteger, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Index("ix_lakeplane_maintenance_table", "table_name", "started_at"),
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class MaintenanceAction:
    """One housekeeping action on one table.

    Attributes:
        action: what was done.
        table: the table's full name.
        dry_run: nothing was changed; ``deleted`` and the ``*_after`` figures say what would be.
        files_before, bytes_before: the table's live data files (current snapshot) before.
        files_after, bytes_after: the same after (equal to before for expiry and orphans, which
            remove only what no live snapshot uses).
        snapshot_id: the snapshot the action committed, if it committed one.
        deleted: paths deleted (or that would be), data files, manifests, manifest lists, orphans.
        deleted_bytes: their summed size.
        skipped: why nothing was done (a healthy table, nothing old enough), or None.
        details: action-specific figures (partitions rewritten, snapshots expired, ...).
    """

    action: ActionKind
    table: str
    dry_run: bool = False
    started_at: str = field(default_factory=_now)
    seconds: float = 0.0
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    snapshot_id: int | None = None
    deleted: list[str] = field(default_factory=list)
    deleted_bytes: int = 0
    skipped: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    _clock: float = field(default_factory=time.monotonic, repr=False)

    def finish(self) -> MaintenanceAction:
        """Stamp the action's duration (from when it was made); returns it."""
        self.seconds = round(time.monotonic() - self._clock, 3)
        return self

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["deleted_count"] = len(self.deleted)
        return data


class MaintenanceLog:
    """Writes and reads ``lakeplane_maintenance``.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, ACTIONS)

    def record(self, action: MaintenanceAction) -> None:
        """Keep ``action`` (a dry run too: what it would have done is worth seeing)."""
        kept = action.to_dict()
        kept["deleted"] = action.deleted[:KEPT_PATHS]
        with self.engine.begin() as conn:
            conn.execute(
                ACTIONS.insert().values(
                    id=uuid.uuid4().hex,
                    table_name=action.table,
                    action=action.action,
                    started_at=action.started_at,
                    dry_run=action.dry_run,
                    seconds=action.seconds,
                    files_before=action.files_before,
                    files_after=action.files_after,
                    bytes_before=action.bytes_before,
                    bytes_after=action.bytes_after,
                    snapshot_id=action.snapshot_id,
                    deleted=len(action.deleted),
                    record=json.dumps(kept, default=str),
                )
            )

    def for_table(self, table: str, limit: int = 20) -> list[dict[str, Any]]:
        """``table``'s most recent actions, newest first, as :meth:`MaintenanceAction.to_dict` gave
        them (deleted paths cut to the first :data:`KEPT_PATHS`)."""
        query = (
            sa.select(ACTIONS.c.record)
            .where(ACTIONS.c.table_name == table)
            .order_by(ACTIONS.c.started_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [json.loads(row.record) for row in conn.execute(query)]

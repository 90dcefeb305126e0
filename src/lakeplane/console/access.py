"""Governance as the console shows it: what the viewer gets of each table, who can see a column and
why, audit search, and the query history (bytes scanned, cost).

A viewer sees its own queries and audit records; an admin (``console.admins``) sees everyone's.
Records that name a table the viewer may not read are left out, whoever made them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakeplane.console.viewer import Viewer
from lakeplane.errors import LakeplaneError
from lakeplane.query.history import HISTORY, QueryHistory

if TYPE_CHECKING:
    from lakeplane.lake import Lake


def my_access(lake: Lake, viewer: Viewer) -> list[dict[str, Any]]:
    """What ``viewer`` gets of every table it may read: columns unmasked or masked, row filters."""
    found = []
    for table in sorted(viewer.readable):
        access = lake.governance.access(viewer.principal, table)
        found.append(
            {
                "table": table,
                "unmasked": [c.column for c in access.visible if c.access == "unmasked"],
                "masked": {c.column: c.mask.kind for c in access.visible if c.mask is not None},
                "row_filters": [f.sql() for f in access.row_filters],
            }
        )
    return found


def who_can_see(lake: Lake, viewer: Viewer, table_column: str) -> dict[str, Any]:
    """Every principal's access to ``table.column`` and the rule deciding it; ``viewer`` must be able
    to read the table (else the answer is that no such column is known)."""
    table, _, column = table_column.rpartition(".")
    try:
        full = lake.resolve_table(table) if table else ""
    except LakeplaneError:  # an unknown name answers as a hidden one does
        full = ""
    if not viewer.can_read(full):
        return {"column": table_column, "error": f"no table '{table}' you may read", "principals": []}
    try:
        answers = lake.governance.who_can_see(full, column)
    except LakeplaneError as exc:
        return {"column": table_column, "error": str(exc), "principals": []}
    return {"column": f"{full}.{column}", "error": None, "principals": [a.to_dict() for a in answers]}


def audit_search(
    lake: Lake,
    viewer: Viewer,
    principal: str | None = None,
    table: str | None = None,
    column: str | None = None,
    decision: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Audit records newest first; a viewer that is not an admin sees only its own."""
    if not viewer.admin:
        principal = viewer.principal
    records = lake.governance.audit_log().search(
        principal=principal or None,
        table=table or None,
        column=column or None,
        decision=decision or None,
        since=since,
        limit=limit * 4,
    )
    shown = []
    for record in records:
        if not viewer.admin and (
            any(not viewer.can_read(t) for t in record.tables) or viewer.names_hidden(record.sql)
        ):
            continue
        shown.append(
            {
                "seq": record.seq,
                "at": record.at,
                "principal": record.principal,
                "decision": record.decision,
                "sql": lake.governance.redact_key_material(record.sql),
                "tables": record.tables,
                "columns": record.columns,
                "masks": record.masks,
                "filters": record.filters,
                "rows": record.rows,
                "reason": record.reason,
            }
        )
        if len(shown) == limit:
            break
    return shown


def queries_page(lake: Lake, viewer: Viewer, page: int = 1, page_size: int = 50) -> dict[str, Any]:
    """A page of the query history, newest first: the viewer's own queries (an admin: everyone's),
    without those naming a table the viewer may not read."""
    QueryHistory(lake.catalog.state_engine)  # makes the history table on a lake that ran no query
    where = [] if viewer.admin else [HISTORY.c.principal == viewer.principal]
    page = max(page, 1)
    with lake.catalog.state_engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(HISTORY).where(*where)).scalar_one())
        rows = conn.execute(
            sa.select(HISTORY)
            .where(*where)
            .order_by(HISTORY.c.started_at.desc(), HISTORY.c.id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
    queries = []
    for row in rows:
        data = dict(row._mapping)
        tables = _tables(data.get("tables"))
        if not viewer.admin and (
            any(not viewer.can_read(t) for t in tables) or viewer.names_hidden(data["sql"])
        ):
            continue
        scanned = (
            0
            if data.get("cache_hit") or data.get("outcome") == "refused"
            else (
                data.get("bytes_actual")
                if data.get("bytes_actual") is not None
                else data.get("bytes_estimated")
            )
        )
        queries.append(
            {
                "id": data["id"],
                "started_at": data["started_at"],
                "principal": data["principal"],
                "workgroup": data["workgroup"],
                "sql": lake.governance.redact_key_material(data["sql"]),
                "tables": tables,
                "outcome": data["outcome"],
                "rows": data["rows"],
                "seconds": data["seconds"],
                "bytes_scanned": scanned,
                "cache_hit": bool(data.get("cache_hit")),
                "cost_usd": data["cost_usd"],
                "reason": data["reason"],
            }
        )
    return {
        "queries": queries,
        "page": page,
        "pages": max(1, math.ceil(total / page_size)),
        "total": total,
        "all_principals": viewer.admin,
    }


def _tables(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(v) for v in json.loads(str(value or "[]"))]

"""Data quality as the console shows it: each rule's history with its bound, pass rate, and the
rows that failed it, read again through the governed query path.

Outcomes come from the run store: every gated model step and quality step records its rules'
outcomes in its attempt's metrics. Those hold a sample of failing rows as the engine read them,
before any policy: the console never shows it. It finds the same rows again with a governed query
as the viewer, matching them on the columns the viewer sees unmasked, so masks and row filters
apply to what is shown (a viewer with no unmasked column sees no sample, and is told why).

The lookup query carries the matched values, and the query history and the audit log keep its
text, which the viewer may read. So before it is built, the recorded rows are cut to those the
viewer's row filters let through (evaluated by an in-memory DuckDB over those rows alone, with no
access to files): the query then holds only values the viewer may see anyway.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlglot import exp

from lakeplane.console.steps import StepTables
from lakeplane.console.viewer import Viewer
from lakeplane.errors import LakeplaneError
from lakeplane.pipelines.store import ATTEMPTS, RUNS

if TYPE_CHECKING:
    from lakeplane.lake import Lake

#: Step attempts with rule outcomes read for the quality page, newest first.
HISTORY_ATTEMPTS = 400
_ROW_NUMBER = "__lakeplane_row"


def quality_overview(
    lake: Lake, steps: StepTables, viewer: Viewer, table: str | None = None, sample_rows: int = 5
) -> dict[str, Any]:
    """Every rule recorded on a table ``viewer`` may read: its outcomes newest first, pass rate and
    bound; with ``table``, only that table's rules, each failing one with a governed sample."""
    query = (
        sa.select(
            RUNS.c.pipeline,
            RUNS.c.ds,
            ATTEMPTS.c.run_id,
            ATTEMPTS.c.step,
            ATTEMPTS.c.attempt,
            ATTEMPTS.c.started_at,
            ATTEMPTS.c.metrics,
        )
        .join(RUNS, RUNS.c.run_id == ATTEMPTS.c.run_id)
        .where(ATTEMPTS.c.metrics.like('%"quality": [{%'))
        .order_by(ATTEMPTS.c.started_at.desc())
        .limit(HISTORY_ATTEMPTS)
    )
    with lake.catalog.state_engine.connect() as conn:
        rows = conn.execute(query).all()
    rules: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        target = steps.of(row.pipeline).get(row.step)
        if target is None or not viewer.can_read(target) or (table and target != table):
            continue
        for outcome in json.loads(row.metrics).get("quality", []):
            key = (target, str(outcome.get("ruleset")), str(outcome.get("rule")))
            rule = rules.setdefault(
                key,
                {
                    "table": target,
                    "ruleset": key[1],
                    "rule": key[2],
                    "blocking": outcome.get("blocking"),
                    "labels": outcome.get("labels") or {},  # as the newest outcome has them
                    "history": [],
                    "latest_failure": None,
                },
            )
            rule["history"].append(
                {
                    "run_id": row.run_id,
                    "ds": row.ds,
                    "at": row.started_at,
                    "passed": bool(outcome.get("passed")),
                    "observed": outcome.get("observed"),
                    "message": outcome.get("message"),
                    "failing_rows": outcome.get("failing_rows"),
                }
            )
            if not outcome.get("passed") and rule["latest_failure"] is None:
                rule["latest_failure"] = {
                    "run_id": row.run_id,
                    "ds": row.ds,
                    "recorded": outcome.get("failing_sample") or [],
                }
    found = []
    for rule in sorted(rules.values(), key=lambda r: (r["table"], r["ruleset"], r["rule"])):
        history = rule["history"]
        passed = sum(1 for h in history if h["passed"])
        failure = rule.pop("latest_failure")
        sample = None
        if table and failure is not None:
            sample = governed_sample(lake, viewer, rule["table"], failure["recorded"], sample_rows)
            sample |= {"run_id": failure["run_id"], "ds": failure["ds"]}
        found.append(
            rule
            | {
                "runs": len(history),
                "pass_rate": round(passed / len(history), 4) if history else None,
                "last_passed": history[0]["passed"] if history else None,
                "failing_sample": sample,
            }
        )
    return {"table": table, "rules": found}


def governed_sample(
    lake: Lake, viewer: Viewer, table: str, recorded: list[dict[str, Any]], limit: int
) -> dict[str, Any]:
    """The recorded failing rows found again as ``viewer`` through the governed query path."""
    if not recorded or limit == 0:
        return {"columns": [], "rows": [], "note": "no failing rows were recorded"}
    access = lake.governance.access(viewer.principal, table)
    try:
        recorded = _within_filters(recorded, access.row_filters)
    except (duckdb.Error, pa.ArrowException):
        return {"columns": [], "rows": [], "note": "the recorded rows cannot be matched to your row filters"}
    if not recorded:
        return {"columns": [], "rows": [], "note": "none of the failing rows is one you may see"}
    keys = [c.column for c in access.visible if c.access == "unmasked"]
    keys = [k for k in keys if all(_scalar(r.get(k)) for r in recorded)]
    if not keys:
        return {
            "columns": [],
            "rows": [],
            "note": "no column you may see unmasked identifies the failing rows",
        }
    matches = [
        exp.and_(*(exp.NullSafeEQ(this=exp.column(k), expression=_literal(r.get(k))) for k in keys))
        for r in recorded[:limit]
    ]
    sql = (
        exp.select("*").from_(exp.to_table(table)).where(exp.or_(*matches)).limit(limit).sql(dialect="trino")
    )
    try:
        result = lake.query(sql, principal=viewer.principal)
    except LakeplaneError as exc:
        return {"columns": [], "rows": [], "note": f"sample not read: {exc}"}
    rows = [list(r.values()) for r in result.to_pylist()]
    note = None if rows else "none of the failing rows is one you may see"
    return {"columns": result.column_names, "rows": rows, "note": note}


def _within_filters(rows: list[dict[str, Any]], filters: list[exp.Expression]) -> list[dict[str, Any]]:
    """The rows that pass every row filter, decided over those rows alone."""
    if not filters:
        return rows
    recorded = pa.Table.from_pylist([{**r, _ROW_NUMBER: i} for i, r in enumerate(rows)])
    condition = exp.and_(*filters).sql(dialect="duckdb")
    with duckdb.connect() as conn:
        conn.execute("SET enable_external_access = false")
        conn.register("recorded", recorded)
        kept = conn.execute(f"SELECT {_ROW_NUMBER} FROM recorded WHERE {condition}").fetchall()
    return [rows[n] for (n,) in kept]


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool | dt.date)


def _literal(value: object) -> exp.Expression:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))

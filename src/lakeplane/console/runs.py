"""Runs as the console shows them: a page of the run store, and one run's steps, usage and cost."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakeplane.console.steps import StepTables, step_visible
from lakeplane.console.viewer import Viewer
from lakeplane.errors import LakeplaneError
from lakeplane.pipelines.store import ATTEMPTS, RUNS

if TYPE_CHECKING:
    from lakeplane.lake import Lake

#: Step metrics a run page shows, in this order, when recorded.
STEP_METRICS = (
    "engine",
    "placement",
    "rows_in",
    "rows_out",
    "quarantined",
    "bytes_read",
    "bytes_written",
    "bytes_scanned",
    "peak_memory_mb",
    "spill_bytes",
    "stage_skew",
    "spark_executors",
    "seconds",
    "cpu_seconds",
)


def runs_page(
    lake: Lake,
    steps: StepTables,
    viewer: Viewer,
    page: int = 1,
    page_size: int = 50,
    pipeline: str | None = None,
    state: str | None = None,
) -> dict[str, Any]:
    """One page of runs, newest first, each with the totals of the steps ``viewer`` may see."""
    lake.pipeline_runs.store().reap()
    where = []
    if pipeline:
        where.append(RUNS.c.pipeline == pipeline)
    if state:
        where.append(RUNS.c.state == state)
    page = max(page, 1)
    with lake.catalog.state_engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(RUNS).where(*where)).scalar_one())
        rows = conn.execute(
            sa.select(RUNS)
            .where(*where)
            .order_by(RUNS.c.started_at.desc(), RUNS.c.run_id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        attempts = conn.execute(
            sa.select(ATTEMPTS.c.run_id, ATTEMPTS.c.step, ATTEMPTS.c.state, ATTEMPTS.c.metrics).where(
                ATTEMPTS.c.run_id.in_([r.run_id for r in rows])
            )
        ).all()
    by_run: dict[str, list[Any]] = {}
    for attempt in attempts:
        by_run.setdefault(attempt.run_id, []).append(attempt)
    runs = []
    for row in rows:
        tables = steps.of(row.pipeline)
        shown = [
            a
            for a in by_run.get(row.run_id, [])
            if step_visible(tables, a.step, viewer.readable, viewer.admin)
        ]
        metrics = [json.loads(a.metrics) if a.metrics else {} for a in shown]
        runs.append(
            {
                "run_id": row.run_id,
                "pipeline": row.pipeline,
                "ds": row.ds,
                "state": row.state,
                "started_at": row.started_at,
                "ended_at": row.ended_at,
                "reason": row.reason,
                "steps": len({a.step for a in shown}),
                "attempts": len(shown),
                "failed_attempts": sum(1 for a in shown if a.state == "failed"),
                "rows_out": sum(int(m.get("rows_out", 0) or 0) for m in metrics),
                "bytes_written": sum(int(m.get("bytes_written", 0) or 0) for m in metrics),
                "seconds": round(sum(float(m.get("seconds", 0) or 0) for m in metrics), 3),
            }
        )
    return {
        "runs": runs,
        "page": page,
        "pages": max(1, math.ceil(total / page_size)),
        "total": total,
        "pipeline": pipeline,
        "state": state,
    }


def run_detail(lake: Lake, steps: StepTables, viewer: Viewer, run_id: str) -> dict[str, Any] | None:
    """One run with the attempts ``viewer`` may see: state, timing, metrics and cost; None if unknown."""
    run = lake.pipeline_runs.store().get(run_id)
    if run is None:
        return None
    tables = steps.of(run.pipeline)
    shown = [a for a in run.attempts if step_visible(tables, a.step, viewer.readable, viewer.admin)]
    hidden = len(run.attempts) - len(shown)
    costs: dict[tuple[str, int], Any] = {}
    cost_note = None
    try:
        detail = lake.costs.run_detail(run).to_dict()
        costs = {(s["step"], s["attempt"]): s for s in detail["steps"]}
    except LakeplaneError as exc:
        cost_note = f"cost not computed: {exc}"
    attempts = []
    for attempt in shown:
        cost = costs.get((attempt.step, attempt.attempt), {})
        attempts.append(
            {
                "step": attempt.step,
                "table": tables.get(attempt.step),
                "attempt": attempt.attempt,
                "state": attempt.state,
                "started_at": attempt.started_at,
                "ended_at": attempt.ended_at,
                "error": attempt.error,
                "retryable": attempt.retryable,
                "metrics": {k: attempt.metrics[k] for k in STEP_METRICS if k in attempt.metrics},
                "quality": [_rule_summary(r) for r in attempt.metrics.get("quality", []) or []],
                "cost_usd": cost.get("here_usd"),
            }
        )
    return {
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "ds": run.ds,
        "state": run.state,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "redrive_of": run.redrive_of,
        "reason": run.reason,
        "attempts": attempts,
        "hidden_attempts": hidden,
        "cost_usd": round(sum(a["cost_usd"] or 0.0 for a in attempts), 6) if costs else None,
        "cost_note": cost_note,
    }


def _rule_summary(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule outcome without its failing sample (raw rows, read before any policy applied)."""
    return {k: rule.get(k) for k in ("rule", "passed", "observed", "message", "blocking", "labels")}

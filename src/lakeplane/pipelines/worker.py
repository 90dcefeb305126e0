"""One step in its own process: the child opens the lake, runs the step, and reports back.

A step that runs away (memory, time) is killed alone; the runner and the other steps go on.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import resource
import sys
import traceback
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

from lakeplane.errors import LakeplaneError

#: Stages whose slowest task is quicker than this are too short for their skew to mean anything.
SKEW_MIN_TASK_MS = 500


def run_step(project_dir: str, pipeline_path: str, step: str, ds: str, overrides: dict[str, Any],
             report: Connection, runner_pid: int | None = None) -> None:
    """Entry point of the child process: run ``step`` for ``ds`` and send a result dict."""
    _die_with_parent()
    if runner_pid is not None and not psutil.pid_exists(runner_pid):
        # The runner died while this step was being forked, maybe before the death signal was
        # armed: a redrive will run the step; running it here too would race that run's commits.
        os._exit(1)
    try:
        try:
            metrics = _execute(Path(project_dir), Path(pipeline_path), step, dt.date.fromisoformat(ds),
                               overrides)
        finally:
            _stop_engines()
        metrics["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        report.send({"ok": True, "metrics": metrics})
    except LakeplaneError as exc:
        report.send({"ok": False, "error": f"{type(exc).__name__}: {exc}", "retryable": exc.retryable,
                     "details": exc.to_dict()})
    except BaseException as exc:
        report.send({"ok": False, "error": f"{type(exc).__name__}: {exc}", "retryable": False,
                     "traceback": traceback.format_exc(limit=20)})
    finally:
        report.close()


def _stop_engines() -> None:
    """Stop a Spark driver the step started before reporting: a step process ends with os._exit,
    which runs no exit handlers, and its JVM must not outlive it."""
    runtime = sys.modules.get("lakeplane.engines.spark.runtime")
    if runtime is not None:
        runtime.stop_driver()


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the runner dies, so no orphan step commits later."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the runner's redrive still tolerates orphans
        pass


def _execute(project_dir: Path, pipeline_path: Path, step: str, ds: dt.date,
             overrides: dict[str, Any]) -> dict[str, Any]:
    from lakeplane.lake import open_lake
    from lakeplane.pipelines.definition import load_pipeline

    spec = load_pipeline(pipeline_path).steps[step]
    lake = open_lake(project_dir, overrides or None)
    if spec.kind == "ingest":
        if spec.if_missing == "skip" and not lake.raw.batches(spec.ingest or "", ds):
            return {"skipped": f"no batches of {spec.ingest} landed for {ds}"}
        result = lake.ingest(spec.ingest or "", ds)
        return {"rows_in": result.read, "rows_out": result.rows_written, "quarantined": result.quarantined,
                "bytes_read": result.bytes_read, "bytes_written": result.bytes_written,
                "engine": "duckdb", "snapshot_id": result.snapshot_id}
    if spec.kind == "model":
        model = lake.model(spec.model or "")
        outcome = lake.run_model(model, ds, quality=spec.quality, blocking=spec.blocking)
        if outcome.skipped:  # the bookmark: this day was built from these inputs already
            return {"skipped": outcome.skipped, "snapshot_id": outcome.snapshot_id}
        metrics = {"rows_out": outcome.rows, "bytes_read": outcome.bytes_read,
                   "bytes_written": outcome.bytes_written, "engine": outcome.engine,
                   "placement": outcome.placement, "snapshot_id": outcome.snapshot_id}
        if outcome.stage_skew:
            metrics["stage_skew"] = outcome.stage_skew
            timed = [s["skew"] for s in outcome.stage_skew if s["max_task_ms"] >= SKEW_MIN_TASK_MS]
            metrics["max_stage_skew"] = max(timed, default=1.0)
        return {**metrics, "quality": outcome.quality} if outcome.quality else metrics
    if spec.kind == "quality":
        report = lake.dq_check(spec.table or "", spec.quality or "", ds=ds)
        failed = [r for r in report if not r["passed"]]
        if failed and spec.blocking:
            from lakeplane.errors import QualityGateFailed

            raise QualityGateFailed(f"{len(failed)} of {len(report)} rules failed on {spec.table}: "
                                    + "; ".join(f"{r['rule']} (observed {r['observed']})" for r in failed),
                                    rules=failed)
        return {"quality": report}
    module_name, _, function_name = (spec.python or "").partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    returned = function(lake, ds)
    return dict(returned) if isinstance(returned, dict) else (asdict(returned) if returned else {})

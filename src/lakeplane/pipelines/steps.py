"""What each kind of pipeline step does, against the lake it runs in.

A step runs in its own process (:mod:`lakeplane.pipelines.worker`), which opens the lake with the
opener it is given and calls :func:`execute_step`. The pipelines tier never imports the facade: it
knows the lake only as a :class:`StepHost`, the few operations its steps call.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from lakeplane.config import LakeConfig
from lakeplane.errors import MaintenanceFailed, QualityGateFailed
from lakeplane.ingest.step import IngestResult
from lakeplane.maintenance.actions import MaintenanceAction
from lakeplane.maintenance.policy import summarize
from lakeplane.pipelines.definition import StepSpec
from lakeplane.pipelines.models import Model, ModelResult
from lakeplane.storage.raw import RawZone

#: Stages whose slowest task is quicker than this are too short for their skew to mean anything.
SKEW_MIN_TASK_MS = 500


class ScanCounter(Protocol):
    """Counts the bytes the lake's quality checks scanned."""

    @property
    def bytes_scanned(self) -> int: ...


class StepHost(Protocol):
    """The lake as pipeline steps use it."""

    @property
    def config(self) -> LakeConfig: ...

    @property
    def raw(self) -> RawZone: ...

    @property
    def quality(self) -> ScanCounter: ...

    def ingest(self, dataset: str, ds: dt.date) -> IngestResult: ...

    def model(self, name: str) -> Model: ...

    def run_model(
        self, model: Model, ds: dt.date | None, quality: str | None = None, blocking: bool = True
    ) -> ModelResult: ...

    def dq_check(self, table: str, ruleset: str, *, ds: dt.date | None = None) -> list[dict[str, Any]]: ...

    def maintain_all(
        self,
        *,
        dry_run: bool = False,
        tables: Sequence[str] | None = None,
        actions: Sequence[str] | None = None,
    ) -> list[MaintenanceAction]: ...


#: Opens the lake of a project folder with settings overrides, in the step's process.
OpenHost = Callable[[Path, dict[str, Any] | None], StepHost]


def execute_step(host: StepHost, spec: StepSpec, ds: dt.date) -> dict[str, Any]:
    """Run one step for ``ds`` and return its metrics: what it reported, with the ``cores`` it held
    (the embedded engine's threads unless it says otherwise, as a Spark model does) and the
    ``bytes_scanned`` of the quality checks it ran.

    Raises:
        QualityGateFailed: a blocking ``quality`` step's rules failed.
    """
    scanned = host.quality.bytes_scanned
    metrics = _run_step(host, spec, ds)
    metrics.setdefault("cores", host.config.engine.threads or os.cpu_count() or 1)
    if spec.kind == "quality" or host.quality.bytes_scanned > scanned:
        metrics.setdefault("bytes_scanned", host.quality.bytes_scanned - scanned)
    return metrics


def _run_step(host: StepHost, spec: StepSpec, ds: dt.date) -> dict[str, Any]:
    if spec.kind == "ingest":
        if spec.if_missing == "skip" and not host.raw.batches(spec.ingest or "", ds):
            return {"skipped": f"no batches of {spec.ingest} landed for {ds}"}
        result = host.ingest(spec.ingest or "", ds)
        return {
            "rows_in": result.read,
            "rows_out": result.rows_written,
            "quarantined": result.quarantined,
            "duplicates": result.duplicates,
            "duplicates_across_days": result.duplicates_across_days,
            "bytes_read": result.bytes_read,
            "bytes_written": result.bytes_written,
            "engine": "duckdb",
            "engine_seconds": result.engine_seconds,
            **({} if result.spill_bytes is None else {"spill_bytes": result.spill_bytes}),
            **({} if result.cores is None else {"cores": result.cores}),
            "snapshot_id": result.snapshot_id,
        }
    if spec.kind == "model":
        return model_metrics(
            host.run_model(host.model(spec.model or ""), ds, quality=spec.quality, blocking=spec.blocking)
        )
    if spec.kind == "quality":
        report = host.dq_check(spec.table or "", spec.quality or "", ds=ds)
        failed = [r for r in report if not r["passed"]]
        if failed and spec.blocking:
            raise QualityGateFailed(
                f"{len(failed)} of {len(report)} rules failed on {spec.table}: "
                + "; ".join(f"{r['rule']} (observed {r['observed']})" for r in failed),
                rules=failed,
            )
        return {"quality": report}
    if spec.kind == "maintain" and spec.maintain is not None:
        return maintain_metrics(
            host.maintain_all(
                dry_run=spec.maintain.dry_run,
                tables=spec.maintain.tables or None,
                actions=list(spec.maintain.actions) or None,
            )
        )
    module_name, _, function_name = (spec.python or "").partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    returned = function(host, ds)
    return dict(returned) if isinstance(returned, dict) else (asdict(returned) if returned else {})


def maintain_metrics(actions: list[MaintenanceAction]) -> dict[str, Any]:
    """A housekeeping step's metrics: the totals of ``maintain all`` and one line per action.

    Raises:
        MaintenanceFailed: an action failed (the others ran and were recorded).
    """
    totals = summarize(actions)
    metrics: dict[str, Any] = {
        **totals,
        "actions": [
            {
                "table": a.table,
                "action": a.action,
                "files_before": a.files_before,
                "files_after": a.files_after,
                "deleted": len(a.deleted),
                "deleted_bytes": a.deleted_bytes,
                "skipped": a.skipped,
            }
            for a in actions
        ],
    }
    failed = [a for a in actions if "error" in a.details]
    if failed:
        raise MaintenanceFailed(
            f"{len(failed)} of {len(actions)} housekeeping actions failed: "
            + "; ".join(f"{a.action} {a.table}: {a.details['message']}" for a in failed),
            failed=[f"{a.action} {a.table}" for a in failed],
            retryable=all(a.details.get("retryable") for a in failed),
        )
    return metrics


def model_metrics(outcome: ModelResult) -> dict[str, Any]:
    """A model run's step metrics (rows, bytes, engine, cores, Spark executors and stage skew)."""
    if outcome.skipped:  # the bookmark: this day was built from these inputs already
        return {"skipped": outcome.skipped, "snapshot_id": outcome.snapshot_id}
    metrics: dict[str, Any] = {
        "rows_out": outcome.rows,
        "bytes_read": outcome.bytes_read,
        "bytes_written": outcome.bytes_written,
        "engine": outcome.engine,
        "engine_seconds": outcome.engine_seconds,
        "placement": outcome.placement,
        "snapshot_id": outcome.snapshot_id,
        "commit_retries": outcome.commit_retries,
        "cores": outcome.cores,
    }
    if outcome.spill_bytes is not None:
        metrics["spill_bytes"] = outcome.spill_bytes
    if outcome.spark_executors is not None:
        metrics["spark_executors"] = outcome.spark_executors
    if outcome.stage_skew:
        metrics["stage_skew"] = outcome.stage_skew
        timed = [s["skew"] for s in outcome.stage_skew if s["max_task_ms"] >= SKEW_MIN_TASK_MS]
        metrics["max_stage_skew"] = max(timed, default=1.0)
    if outcome.io:
        metrics["io"] = outcome.io
    return {**metrics, "quality": outcome.quality} if outcome.quality else metrics

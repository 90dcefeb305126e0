"""The nightly run without a pipeline file: every dataset landed that day, then every model.

Each model runs behind its own quality gate (its header's ``quality``), as in a pipeline. A model
whose gate fails publishes nothing; the models reading it are skipped, the others run, and the run
then raises the gate's :class:`~lakeplane.errors.QualityGateFailed`.
"""

from __future__ import annotations

import datetime as dt
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.compute.here import machine_cores
from lakeplane.config import LakeConfig
from lakeplane.errors import QualityGateFailed
from lakeplane.ingest.ingestion import Ingestion
from lakeplane.ingest.step import IngestResult
from lakeplane.pipelines.model_jobs import ModelJobs
from lakeplane.pipelines.models import ModelResult, qualify
from lakeplane.pipelines.usage import StepMeter

Progress = Callable[[str], None]


@dataclass
class RunSummary:
    """One nightly run: each ingest and model step, with totals."""

    ds: str
    ingests: list[IngestResult] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    #: Each step that ran (``ingest NAME``, ``model NAME``): the step metrics keys of
    #: :mod:`lakeplane.pipelines.usage`, as a pipeline's step attempt records them.
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ds": self.ds,
            "seconds": self.seconds,
            "peak_memory_mb": self.peak_memory_mb,
            "read": sum(i.read for i in self.ingests),
            "accepted": sum(i.accepted for i in self.ingests),
            "quarantined": sum(i.quarantined for i in self.ingests),
            "duplicates": sum(i.duplicates for i in self.ingests),
            "duplicates_across_days": sum(i.duplicates_across_days for i in self.ingests),
            "bytes_read": sum(i.bytes_read for i in self.ingests),
            "bytes_written": sum(i.bytes_written for i in self.ingests)
            + sum(m.bytes_written for m in self.models),
            "ingests": [i.to_dict() for i in self.ingests],
            "models": [vars(m) for m in self.models],
            "usage": self.usage,
        }


def nightly_steps(ingestion: Ingestion, models: ModelJobs, ds: dt.date) -> list[str]:
    """What :func:`run_nightly` would run for ``ds``, in order: the datasets landed that day, then
    every model (each is reported, run or skipped)."""
    landed = [f"ingest {name}" for name in ingestion.config.datasets if ingestion.raw.batches(name, ds)]
    return landed + [f"model {model.name}" for model in models.all()]


def run_nightly(
    ingestion: Ingestion,
    models: ModelJobs,
    catalog: LakeCatalog,
    ds: dt.date,
    progress: Progress | None = None,
    force: bool = False,
) -> RunSummary:
    """Ingest every dataset with batches for ``ds``, then run every model whose inputs exist, each
    behind its quality gate.

    Days whose batches were published already are skipped unless ``force``.

    Raises:
        QualityGateFailed: a model's gate failed (after the models not reading it have run); with
            several, one error naming every failing rule.
    """
    started = time.perf_counter()
    summary = RunSummary(ds.isoformat())
    for name in ingestion.config.datasets:
        if batches := ingestion.raw.batches(name, ds):
            if progress:
                progress(f"ingest {name}")
            with StepMeter() as meter:
                ingested = ingestion.ingest(name, ds, batches, force=force)
            summary.ingests.append(ingested)
            summary.usage[f"ingest {name}"] = meter.metrics(
                {
                    "bytes_read": ingested.bytes_read,
                    "bytes_written": ingested.bytes_written,
                    "engine_seconds": ingested.engine_seconds,
                    "cores": ingested.cores or ingestion.config.engine.threads or machine_cores(),
                }
            )
    stopped: dict[str, QualityGateFailed] = {}
    blocked: dict[str, str] = {}  # a model reading a stopped one (directly or not) -> the stopped one
    for model in models.all():
        if progress:
            progress(f"model {model.name}")
        inputs = [qualify(d, model.ref.domain) for d in model.depends_on]
        if upstream := sorted(
            {blocked.get(name, name) for name in inputs if name in blocked or name in stopped}
        ):
            blocked[model.name] = upstream[0]
            summary.models.append(
                ModelResult(model.name, skipped=f"quality gate of {', '.join(upstream)} failed")
            )
            continue
        missing = [name for name in inputs if not catalog.table_exists(TableRef.parse(name))]
        if missing:  # its domain's data has not arrived yet: nothing to build from
            summary.models.append(ModelResult(model.name, skipped=f"no table {', '.join(missing)} yet"))
            continue
        meter, result = StepMeter(), None
        try:
            with meter:
                result = models.run(model, ds, force=force)
            summary.models.append(result)
        except QualityGateFailed as failed:  # a verdict on this model's data: the others go on
            stopped[model.name] = failed
        summary.usage[f"model {model.name}"] = meter.metrics(_model_reported(result, models.config))
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.peak_memory_mb = peak_memory_mb()
    if stopped:
        raise _gates_failed(list(stopped.values()), sorted(blocked))
    return summary


def _model_reported(result: ModelResult | None, config: LakeConfig) -> dict[str, Any]:
    """What a model's run reported for its usage (None: its gate failed, it reported nothing)."""
    if result is None:
        return {"cores": config.engine.threads or machine_cores()}
    reported: dict[str, Any] = {
        "bytes_read": result.bytes_read,
        "bytes_written": result.bytes_written,
        "engine_seconds": result.engine_seconds,
        "cores": result.cores or config.engine.threads or machine_cores(),
    }
    if result.spark_executors is not None:
        reported["spark_executors"] = result.spark_executors
    return reported


def _gates_failed(failures: list[QualityGateFailed], skipped: list[str]) -> QualityGateFailed:
    """One error for the run: the gate's own when one failed, else one naming every failing rule."""
    after = f"; not run, as they read what was not published: {', '.join(skipped)}" if skipped else ""
    if len(failures) == 1:
        only = failures[0]
        return QualityGateFailed(only.message + after, rules=only.rules, table=only.table)
    return QualityGateFailed(
        " | ".join(f.message for f in failures) + after,
        rules=[{**rule, "table": f.table} for f in failures for rule in f.rules],
    )


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

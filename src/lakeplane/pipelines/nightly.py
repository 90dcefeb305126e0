"""The nightly run without a pipeline file: every dataset landed that day, then every model."""

from __future__ import annotations

import datetime as dt
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.ingest.ingestion import Ingestion
from lakeplane.ingest.step import IngestResult
from lakeplane.pipelines.model_jobs import ModelJobs
from lakeplane.pipelines.models import ModelResult, qualify

Progress = Callable[[str], None]


@dataclass
class RunSummary:
    """One nightly run: each ingest and model step, with totals."""

    ds: str
    ingests: list[IngestResult] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)
    seconds: float = 0.0
    peak_memory_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ds": self.ds,
            "seconds": self.seconds,
            "peak_memory_mb": self.peak_memory_mb,
            "read": sum(i.read for i in self.ingests),
            "accepted": sum(i.accepted for i in self.ingests),
            "quarantined": sum(i.quarantined for i in self.ingests),
            "duplicates": sum(i.duplicates for i in self.ingests),
            "bytes_read": sum(i.bytes_read for i in self.ingests),
            "bytes_written": sum(i.bytes_written for i in self.ingests)
            + sum(m.bytes_written for m in self.models),
            "ingests": [i.to_dict() for i in self.ingests],
            "models": [vars(m) for m in self.models],
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
    """Ingest every dataset with batches for ``ds``, then run every model whose inputs exist.

    Days whose batches were published already are skipped unless ``force``.
    """
    started = time.perf_counter()
    summary = RunSummary(ds.isoformat())
    for name in ingestion.config.datasets:
        if batches := ingestion.raw.batches(name, ds):
            if progress:
                progress(f"ingest {name}")
            summary.ingests.append(ingestion.ingest(name, ds, batches, force=force))
    for model in models.all():
        if progress:
            progress(f"model {model.name}")
        missing = [
            name
            for name in (qualify(d, model.ref.domain) for d in model.depends_on)
            if not catalog.table_exists(TableRef.parse(name))
        ]
        if missing:  # its domain's data has not arrived yet: nothing to build from
            summary.models.append(ModelResult(model.name, skipped=f"no table {', '.join(missing)} yet"))
            continue
        summary.models.append(models.run(model, ds, force=force))
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.peak_memory_mb = peak_memory_mb()
    return summary


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

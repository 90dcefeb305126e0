"""The pipeline part of the ``Lake`` facade: run, redrive, backfill and history."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeplane.errors import LakeplaneError
from lakeplane.pipelines.definition import Pipeline, all_pipelines, find_pipeline
from lakeplane.pipelines.runner import Runner, RunOptions
from lakeplane.pipelines.store import RunRecord, RunStore

if TYPE_CHECKING:
    from lakeplane.catalog import LakeCatalog


class RunNotFound(LakeplaneError, LookupError):
    """No run has that id."""


class PipelinesMixin:
    """Mixed into ``Lake``: needs ``project_dir`` and ``catalog``."""

    project_dir: Path

    @property
    def catalog(self) -> LakeCatalog:  # the Lake's
        raise NotImplementedError

    def run_store(self) -> RunStore:
        return RunStore(self.catalog.iceberg.engine)

    def pipeline(self, name: str) -> Pipeline:
        return find_pipeline(self.project_dir, name)

    def pipelines(self) -> list[Pipeline]:
        return all_pipelines(self.project_dir)

    def run_pipeline(self, name: str, ds: dt.date, options: RunOptions | None = None) -> RunRecord:
        """Run pipeline ``name`` for business date ``ds``; every attempt goes to the run store."""
        return Runner(self.project_dir, self.pipeline(name), self.run_store(), options).run(ds)

    def redrive(self, run_id: str, options: RunOptions | None = None) -> RunRecord:
        """Rerun the failed and not-yet-run steps of ``run_id``, keeping the ones that succeeded."""
        original = self.run_record(run_id)
        runner = Runner(self.project_dir, self.pipeline(original.pipeline), self.run_store(), options)
        return runner.run(dt.date.fromisoformat(original.ds), redrive_of=original)

    def backfill(self, name: str, start: dt.date, end: dt.date, parallel: int = 1,
                 options: RunOptions | None = None) -> list[RunRecord]:
        """Run ``name`` for every day from ``start`` to ``end``, at most ``parallel`` runs at once."""
        days = backfill_days(start, end)
        pipeline = self.pipeline(name)
        store = self.run_store()
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return list(pool.map(lambda day: Runner(self.project_dir, pipeline, store, options).run(day),
                                 days))

    def backfill_plan(self, name: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        """What :meth:`backfill` would run, without running it."""
        pipeline = self.pipeline(name)
        return [{"pipeline": name, "ds": day.isoformat(), "steps": pipeline.order()}
                for day in backfill_days(start, end)]

    def run_due(self, now: dt.datetime | None = None, options: RunOptions | None = None) -> list[RunRecord]:
        """Run every pipeline whose schedule fired since its last run (for the day before)."""
        from lakeplane.pipelines.schedule import due

        moment = now or dt.datetime.now(dt.UTC)
        started = []
        store = self.run_store()
        for pipeline in self.pipelines():
            if not pipeline.schedule:
                continue
            last = store.last_run(pipeline.name)
            since = dt.datetime.fromisoformat(last.started_at) if last else None
            day = due(pipeline.schedule, since, moment)
            if day is not None:
                started.append(Runner(self.project_dir, pipeline, store, options).run(day))
        return started

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[RunRecord]:
        return self.run_store().runs(pipeline, limit)

    def run_record(self, run_id: str) -> RunRecord:
        run = self.run_store().get(run_id)
        if run is None:
            raise RunNotFound(f"no run '{run_id}' (see `lakeplane runs`)", run_id=run_id)
        return run


def backfill_days(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise LakeplaneError(f"backfill range is empty: {start} is after {end}")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]

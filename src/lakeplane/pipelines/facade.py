"""The pipeline part of the ``Lake`` facade: run, redrive, backfill, history and bookmarks."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lakeplane.config import merge_settings
from lakeplane.errors import LakeplaneError, RunNotFound
from lakeplane.pipelines import step_bookmarks
from lakeplane.pipelines.definition import Pipeline, all_pipelines, find_pipeline
from lakeplane.pipelines.runner import Runner, RunOptions
from lakeplane.pipelines.store import RunRecord, RunStore

if TYPE_CHECKING:
    from lakeplane.catalog import LakeCatalog
    from lakeplane.config import LakeConfig
    from lakeplane.engines import JobSpec
    from lakeplane.lake import Lake


class PipelinesMixin:
    """Mixed into ``Lake``: needs ``project_dir`` and ``catalog``."""

    project_dir: Path
    overrides: dict[str, Any]
    config: LakeConfig

    def job(self, name: str) -> JobSpec:  # the Lake's
        raise NotImplementedError

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
        with self.run_compute(options) as options:
            return Runner(self.project_dir, self.pipeline(name), self.run_store(), options).run(ds)

    def redrive(self, run_id: str, options: RunOptions | None = None) -> RunRecord:
        """Rerun the failed and not-yet-run steps of ``run_id``, keeping the ones that succeeded."""
        original = self.run_record(run_id)
        with self.run_compute(options) as options:
            runner = Runner(self.project_dir, self.pipeline(original.pipeline), self.run_store(), options)
            return runner.run(dt.date.fromisoformat(original.ds), redrive_of=original)

    @contextlib.contextmanager
    def run_compute(self, options: RunOptions | None) -> Iterator[RunOptions]:
        """The compute of one run (or backfill): this lake's overrides reach every step, and with
        ``spark.master: spark-cluster`` one transient cluster is started for the run, shared by
        its Spark steps, and stopped when the run ends, whatever happened."""
        options = options or RunOptions()
        merged = RunOptions(overrides=merge_settings(self.overrides, options.overrides),
                            progress=options.progress, sleep=options.sleep)
        config = self.config
        if config.engine.type != "spark" or config.spark.master != "spark-cluster":
            yield merged
            return
        from lakeplane.engines.spark.cluster import TransientCluster

        spark = config.spark
        cluster = TransientCluster(spark.workers, spark.worker_cores, spark.worker_memory,
                                   self.job("cluster").temp_dir / f"cluster-{uuid.uuid4().hex[:8]}",
                                   spark.start_timeout_s)
        master = cluster.start()
        if options.progress:
            options.progress(f"spark-cluster: {spark.workers} workers at {master} "
                             f"(started in {cluster.started_in_s} s)")
        try:
            merged.overrides = merge_settings(merged.overrides, {"spark": {"master": master}})
            yield merged
        finally:
            cluster.stop()
            if options.progress:
                options.progress(f"spark-cluster: stopped ({len(cluster.process_ids())} processes left)")

    def backfill(self, name: str, start: dt.date, end: dt.date, parallel: int = 1,
                 options: RunOptions | None = None) -> list[RunRecord]:
        """Run ``name`` for every day from ``start`` to ``end``, at most ``parallel`` runs at once."""
        days = backfill_days(start, end)
        pipeline = self.pipeline(name)
        store = self.run_store()
        with self.run_compute(options) as shared, ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return list(pool.map(lambda day: Runner(self.project_dir, pipeline, store, shared).run(day),
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
                with self.run_compute(options) as shared:
                    started.append(Runner(self.project_dir, pipeline, store, shared).run(day))
        return started

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[RunRecord]:
        return self.run_store().runs(pipeline, limit)

    def run_record(self, run_id: str) -> RunRecord:
        run = self.run_store().get(run_id)
        if run is None:
            raise RunNotFound(f"no run '{run_id}' (see `lakeplane runs`)", run_id=run_id)
        return run

    # -- bookmarks -------------------------------------------------------------------------
    def bookmarks(self, step: str, pipeline: str | None = None) -> step_bookmarks.BookmarkReport:
        """The bookmarks of ``step`` (of ``pipeline``, default the first pipeline) or of a table."""
        return step_bookmarks.show(cast("Lake", self), step, pipeline)

    def reset_bookmarks(self, step: str, pipeline: str | None = None) -> step_bookmarks.BookmarkReport:
        """Forget ``step``'s bookmarks: its next run of any day processes that day again."""
        return step_bookmarks.reset(cast("Lake", self), step, pipeline)

    def rewind_bookmarks(self, step: str, run_id: str,
                         pipeline: str | None = None) -> step_bookmarks.BookmarkReport:
        """Make ``step``'s bookmarks what they were right after run ``run_id``."""
        return step_bookmarks.rewind(cast("Lake", self), step, run_id, pipeline)


def backfill_days(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise LakeplaneError(f"backfill range is empty: {start} is after {end}")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]

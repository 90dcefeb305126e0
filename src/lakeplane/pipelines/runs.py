"""Pipeline runs of one project: run, redrive, backfill, schedules, run history and bookmarks."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lakeplane.catalog import LakeCatalog
from lakeplane.config import LakeConfig, merge_settings
from lakeplane.engines.compute import Compute
from lakeplane.errors import LakeplaneError, RunBusy, RunNotFound
from lakeplane.pipelines import step_bookmarks
from lakeplane.pipelines.definition import Pipeline, all_pipelines, find_pipeline
from lakeplane.pipelines.runner import AfterRun, Runner, RunOptions
from lakeplane.pipelines.schedule import due
from lakeplane.pipelines.steps import OpenHost
from lakeplane.pipelines.store import LIVE, RunRecord, RunStore


class PipelineRuns:
    """The project's pipelines and their runs.

    Args:
        project_dir: the project folder (pipelines live in ``pipelines/``).
        config: the lake's configuration (engine and Spark settings for a run's compute).
        overrides: settings every step process gets over the file's.
        catalog: the lake's catalog, whose database holds the run store.
        compute: engines (a transient cluster's folder).
        open_host: opens the lake in a step's process.
        names: how step settings name tables (for bookmarks).
        after_run: called with each run once it has ended (SLOs and alerts).
    """

    def __init__(
        self,
        project_dir: Path,
        config: LakeConfig,
        overrides: dict[str, Any],
        catalog: LakeCatalog,
        compute: Compute,
        open_host: OpenHost,
        names: step_bookmarks.TableNames,
        after_run: AfterRun | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.config = config
        self.overrides = overrides
        self.catalog = catalog
        self.compute = compute
        self.open_host = open_host
        self.names = names
        self.after_run = after_run

    def _runner(self, pipeline: Pipeline, options: RunOptions, store: RunStore | None = None) -> Runner:
        return Runner(
            self.project_dir, pipeline, store or self.store(), self.open_host, options, self.after_run
        )

    def store(self) -> RunStore:
        """The run store, in the catalog database."""
        return RunStore(self.catalog.state_engine)

    def get(self, name: str) -> Pipeline:
        return find_pipeline(self.project_dir, name)

    def all(self) -> list[Pipeline]:
        return all_pipelines(self.project_dir)

    def run(self, name: str, ds: dt.date, options: RunOptions | None = None) -> RunRecord:
        """Run pipeline ``name`` for business date ``ds``; every attempt goes to the run store."""
        with self.run_compute(options) as options:
            return self._runner(self.get(name), options).run(ds)

    def redrive(self, run_id: str, options: RunOptions | None = None) -> RunRecord:
        """Rerun the failed and not-yet-run steps of ``run_id``, keeping the ones that succeeded.

        A run whose runner died (it stopped heart-beating) is redriven like a failed one.

        Raises:
            RunBusy: the runner of ``run_id`` is still alive.
        """
        original = self.record(run_id)
        if original.state in LIVE and original.alive_until is not None:
            raise RunBusy(
                f"run {run_id} is still {original.state} (runner {original.holder}, last heartbeat "
                f"{original.heartbeat_at}); redrive it once it has ended. A runner that was killed is "
                f"taken for dead once it misses its heartbeats, at {original.alive_until}",
                pipeline=original.pipeline,
                ds=original.ds,
                holder_run=run_id,
                holder=original.holder,
                run_id=run_id,
            )
        with self.run_compute(options) as options:
            runner = self._runner(self.get(original.pipeline), options)
            return runner.run(dt.date.fromisoformat(original.ds), redrive_of=original)

    @contextlib.contextmanager
    def run_compute(self, options: RunOptions | None) -> Iterator[RunOptions]:
        """The compute of one run (or backfill): this lake's overrides reach every step, and with
        ``spark.master: spark-cluster`` one transient cluster is started for the run, shared by
        its Spark steps, and stopped when the run ends, whatever happened."""
        options = options or RunOptions()
        merged = dataclasses.replace(options, overrides=merge_settings(self.overrides, options.overrides))
        config = self.config
        if config.engine.type != "spark" or config.spark.master != "spark-cluster":
            yield merged
            return
        from lakeplane.engines.spark.cluster import TransientCluster

        spark = config.spark
        cluster = TransientCluster(
            spark.workers,
            spark.worker_cores,
            spark.worker_memory,
            self.compute.job("cluster").temp_dir / f"cluster-{uuid.uuid4().hex[:8]}",
            spark.start_timeout_s,
        )
        master = cluster.start()
        if options.progress:
            options.progress(
                f"spark-cluster: {spark.workers} workers at {master} (started in {cluster.started_in_s} s)"
            )
        try:
            merged.overrides = merge_settings(merged.overrides, {"spark": {"master": master}})
            yield merged
        finally:
            cluster.stop()
            if options.progress:
                options.progress(f"spark-cluster: stopped ({len(cluster.process_ids())} processes left)")

    def backfill(
        self, name: str, start: dt.date, end: dt.date, parallel: int = 1, options: RunOptions | None = None
    ) -> list[RunRecord]:
        """Run ``name`` for every day from ``start`` to ``end``, at most ``parallel`` runs at once."""
        days = backfill_days(start, end)
        pipeline = self.get(name)
        store = self.store()
        with self.run_compute(options) as shared, ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return list(pool.map(lambda day: self._runner(pipeline, shared, store).run(day), days))

    def backfill_plan(self, name: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        """What :meth:`backfill` would run, without running it."""
        pipeline = self.get(name)
        return [
            {"pipeline": name, "ds": day.isoformat(), "steps": pipeline.order()}
            for day in backfill_days(start, end)
        ]

    def run_due(self, now: dt.datetime | None = None, options: RunOptions | None = None) -> list[RunRecord]:
        """Run every pipeline whose schedule fired since its last run (for the day before)."""
        moment = now or dt.datetime.now(dt.UTC)
        started = []
        store = self.store()
        for pipeline in self.all():
            if not pipeline.schedule:
                continue
            last = store.last_run(pipeline.name)
            since = dt.datetime.fromisoformat(last.started_at) if last else None
            day = due(pipeline.schedule, since, moment)
            if day is not None:
                with self.run_compute(options) as shared:
                    started.append(self._runner(pipeline, shared, store).run(day))
        return started

    def history(self, pipeline: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The newest runs first (of ``pipeline``, or of every pipeline)."""
        return self.store().runs(pipeline, limit)

    def record(self, run_id: str) -> RunRecord:
        """Run ``run_id`` with its attempts.

        Raises:
            RunNotFound: no run has that id.
        """
        run = self.store().get(run_id)
        if run is None:
            raise RunNotFound(f"no run '{run_id}' (see `lakeplane runs`)", run_id=run_id)
        return run

    # -- bookmarks -------------------------------------------------------------------------
    def bookmark_target(self, step: str, pipeline: str | None = None) -> step_bookmarks.BookmarkTarget:
        """The table holding ``step``'s bookmarks (a step of ``pipeline``, default the first pipeline)."""
        chosen = self.get(pipeline) if pipeline else next(iter(self.all()), None)
        return step_bookmarks.bookmark_target(chosen, step, self.names)

    def bookmarks(self, step: str, pipeline: str | None = None) -> step_bookmarks.BookmarkReport:
        """The bookmarks of ``step`` (of ``pipeline``, default the first pipeline) or of a table."""
        return step_bookmarks.show(self.catalog, self.bookmark_target(step, pipeline))

    def reset_bookmarks(self, step: str, pipeline: str | None = None) -> step_bookmarks.BookmarkReport:
        """Forget ``step``'s bookmarks: its next run of any day processes that day again."""
        return step_bookmarks.reset(self.catalog, self.bookmark_target(step, pipeline))

    def rewind_bookmarks(
        self, step: str, run_id: str, pipeline: str | None = None
    ) -> step_bookmarks.BookmarkReport:
        """Make ``step``'s bookmarks what they were right after run ``run_id``."""
        run = self.record(run_id)
        step_bookmarks.check_rewind(run, pipeline)
        target = self.bookmark_target(step, pipeline or run.pipeline)
        return step_bookmarks.rewind(self.catalog, target, run)


def backfill_days(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise LakeplaneError(f"backfill range is empty: {start} is after {end}")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]

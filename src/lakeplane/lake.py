"""The ``Lake`` facade: the one object the CLI, the console and users' code share.

A ``Lake`` holds the services of one project, each owned by its tier and given only the
collaborators it needs: :attr:`storage` and :attr:`raw` (storage), :attr:`catalog`,
:attr:`compute` (engines and placement), :attr:`governance`, :attr:`ingestion`, :attr:`queries`,
:attr:`model_jobs` and :attr:`pipeline_runs`. Its methods are one-line delegations to them, so
this module holds no tier logic.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakeplane.catalog import LakeCatalog, TableRef
from lakeplane.catalog.evolution import AlterResult, SchemaChange, alter_table
from lakeplane.catalog.register import Mode, RegisterProgress, RegisterResult, Registrations
from lakeplane.catalog.scan import plan_scan
from lakeplane.catalog.upgrade import TableUpgrade, upgrade_tables
from lakeplane.config import CONFIG_FILE, DEFAULT_CONFIG, DatasetConfig, LakeConfig, load_config
from lakeplane.engines.base import Capability
from lakeplane.engines.compute import Compute
from lakeplane.errors import ConfigError
from lakeplane.governance.alter import AlterPolicy
from lakeplane.governance.answers import Change, Visibility
from lakeplane.governance.plane import Governance
from lakeplane.ingest.ingestion import Ingestion, Progress
from lakeplane.ingest.step import IngestResult
from lakeplane.lake_housekeeping import LakeHousekeeping
from lakeplane.lineage.graph import Direction, LineageGraph, Visible, lineage_graph
from lakeplane.lineage.store import LineageCommit
from lakeplane.pipelines.definition import Pipeline
from lakeplane.pipelines.model_jobs import ModelJobs
from lakeplane.pipelines.models import Model, ModelResult
from lakeplane.pipelines.nightly import RunSummary, nightly_steps, run_nightly
from lakeplane.pipelines.runner import RunOptions
from lakeplane.pipelines.runs import PipelineRuns
from lakeplane.pipelines.step_bookmarks import BookmarkReport, TableNames
from lakeplane.pipelines.store import RunRecord
from lakeplane.quality.files_source import lake_files
from lakeplane.quality.history import MetricHistory, adopt_history_file
from lakeplane.quality.service import QualityChecks
from lakeplane.query.introspection import answer_metadata
from lakeplane.query.reuse import ReusePolicy
from lakeplane.query.service import DEFAULT_DIALECT, Queries
from lakeplane.storage import LakeStorage, open_storage
from lakeplane.storage.raw import LandResult, RawBatch, RawZone

if TYPE_CHECKING:
    from lakeplane.compute.lake_costs import LakeCosts
    from lakeplane.observe.slo import SloResult

__all__ = ["Lake", "RunSummary", "init_project", "open_lake"]

STATE_DIR = ".lakeplane"


class Lake(LakeHousekeeping):
    """A lake project: its config and the services of its tiers.

    Args:
        project_dir: the folder holding ``lakeplane.yaml``.
        overrides: settings that win over the file and the environment.
    """

    def __init__(
        self, project_dir: str | os.PathLike[str] = ".", overrides: dict[str, Any] | None = None
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        if not self.project_dir.is_dir():
            raise ConfigError(f"{self.project_dir}: no such lake project folder", file=str(self.project_dir))
        self.overrides: dict[str, Any] = dict(overrides or {})
        self.config: LakeConfig = load_config(self.project_dir, overrides)
        self.state_dir = self.project_dir / STATE_DIR
        self.storage: LakeStorage = open_storage(self.config.storage, self.project_dir)
        self.raw = RawZone(self.storage)
        self.compute = Compute(self.config, self.storage, self.project_dir, self.state_dir)
        self.governance = Governance(
            self.config.governance, self.project_dir, self.state_dir, lambda: self.catalog
        )

    # -- services, built on first use (opening the catalog connects to its database) ----------
    @cached_property
    def catalog(self) -> LakeCatalog:
        return LakeCatalog(self.config.catalog, self.storage, self.state_dir, self.config.storage)

    @cached_property
    def ingestion(self) -> Ingestion:
        return Ingestion(self.config, self.project_dir / CONFIG_FILE, self.raw, self.catalog, self.compute)

    @cached_property
    def quality(self) -> QualityChecks:
        adopt_history_file(self.state_dir / "dq_history.sqlite", self.catalog.state_engine)
        return QualityChecks(
            open_session=lambda job: self.compute.embedded(job, (Capability.SANDBOX,)),
            plan=lambda table, snapshot_id: plan_scan(self.catalog, table, snapshot_id=snapshot_id),
            resolve=self.resolve_table,
            project_dir=self.project_dir,
            history_for=lambda table: MetricHistory(self.catalog.state_engine, table),
            files_for=lambda target, day: lake_files(
                self.storage, self.project_dir, self.config, target, day
            ),
        )

    @cached_property
    def queries(self) -> Queries:
        return Queries(self.catalog, self.compute, self.governance, self.resolve_table)

    @cached_property
    def model_jobs(self) -> ModelJobs:
        return ModelJobs(
            self.config,
            self.project_dir,
            self.catalog,
            self.compute,
            self.governance,
            self.queries,
            self.dq_check,
            fits_for=lambda model: self.costs.engine_fits(model),
        )

    @cached_property
    def costs(self) -> LakeCosts:
        """Prices, cost reports and advice from this lake's run history."""
        from lakeplane.compute.lake_costs import LakeCosts  # numpy and scipy: only when asked

        return LakeCosts(
            self.config,
            self.project_dir,
            self.pipeline_runs.store(),
            self.pipelines,
            lambda name: self.model_jobs.get(name).name,
        )

    @cached_property
    def pipeline_runs(self) -> PipelineRuns:
        names = TableNames(
            of_dataset=lambda name: self.ingestion.dataset(name).table,
            of_model=lambda name: self.model_jobs.get(name).name,
            resolve=self.resolve_table,
        )
        return PipelineRuns(
            self.project_dir,
            self.config,
            self.overrides,
            self.catalog,
            self.compute,
            open_lake,
            names,
            after_run=self._observe_run,
        )

    # -- raw zone and ingest -------------------------------------------------------------------
    def dataset(self, name: str) -> DatasetConfig:
        return self.ingestion.dataset(name)

    def land(
        self,
        dataset: str,
        files: Sequence[str | os.PathLike[str]],
        ingest_date: dt.date | None = None,
        progress: Progress | None = None,
    ) -> list[LandResult]:
        """Copy partner files into the raw zone for ``ingest_date`` (default today), once each."""
        return self.ingestion.land(dataset, files, ingest_date, progress)

    def ingest(
        self, dataset: str, ds: dt.date, batches: list[RawBatch] | None = None, force: bool = False
    ) -> IngestResult:
        """Parse the batches of ``dataset`` landed for ``ds`` into its processed table (once)."""
        return self.ingestion.ingest(dataset, ds, batches, force)

    # -- models --------------------------------------------------------------------------------
    def models(self) -> list[Model]:
        return self.model_jobs.all()

    def model(self, name: str) -> Model:
        """The model that builds table ``name`` (``zone.table`` or ``domain.zone.table``)."""
        return self.model_jobs.get(name)

    def run_model(
        self,
        model: Model,
        ds: dt.date | None,
        quality: str | None = None,
        blocking: bool = True,
        force: bool = False,
    ) -> ModelResult:
        """Run one model for ``ds`` behind the gate its header declares (``-- quality:``), if any;
        ``quality`` (a DQDL file) adds one more ruleset, blocking when ``blocking``."""
        return self.model_jobs.run(model, ds, quality, blocking, force)

    def run(self, ds: dt.date, progress: Progress | None = None, force: bool = False) -> RunSummary:
        """The nightly run for ``ds``: ingest every dataset with batches that day, then every model."""
        return run_nightly(self.ingestion, self.model_jobs, self.catalog, ds, progress, force)

    def nightly_steps(self, ds: dt.date) -> list[str]:
        """The steps :meth:`run` would take for ``ds``, in order."""
        return nightly_steps(self.ingestion, self.model_jobs, ds)

    # -- pipelines -----------------------------------------------------------------------------
    def pipelines(self) -> list[Pipeline]:
        return self.pipeline_runs.all()

    def run_pipeline(self, name: str, ds: dt.date, options: RunOptions | None = None) -> RunRecord:
        """Run pipeline ``name`` for business date ``ds``; every attempt goes to the run store."""
        return self.pipeline_runs.run(name, ds, options)

    def redrive(self, run_id: str, options: RunOptions | None = None) -> RunRecord:
        """Rerun the failed and not-yet-run steps of ``run_id``, keeping the ones that succeeded."""
        return self.pipeline_runs.redrive(run_id, options)

    def backfill(
        self, name: str, start: dt.date, end: dt.date, parallel: int = 1, options: RunOptions | None = None
    ) -> list[RunRecord]:
        """Run ``name`` for every day from ``start`` to ``end``, at most ``parallel`` runs at once."""
        return self.pipeline_runs.backfill(name, start, end, parallel, options)

    def pipeline(self, name: str) -> Pipeline:
        return self.pipeline_runs.get(name)

    def backfill_plan(self, name: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        """What :meth:`backfill` would run, without running it."""
        return self.pipeline_runs.backfill_plan(name, start, end)

    def run_due(self, now: dt.datetime | None = None, options: RunOptions | None = None) -> list[RunRecord]:
        """Run every pipeline whose schedule fired since its last run (for the day before)."""
        return self.pipeline_runs.run_due(now, options)

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[RunRecord]:
        return self.pipeline_runs.history(pipeline, limit)

    def run_record(self, run_id: str) -> RunRecord:
        return self.pipeline_runs.record(run_id)

    def bookmarks(self, step: str, pipeline: str | None = None) -> BookmarkReport:
        """The bookmarks of ``step`` (of ``pipeline``, default the first pipeline) or of a table."""
        return self.pipeline_runs.bookmarks(step, pipeline)

    def reset_bookmarks(self, step: str, pipeline: str | None = None) -> BookmarkReport:
        """Forget ``step``'s bookmarks: its next run of any day processes that day again."""
        return self.pipeline_runs.reset_bookmarks(step, pipeline)

    def rewind_bookmarks(self, step: str, run_id: str, pipeline: str | None = None) -> BookmarkReport:
        """Make ``step``'s bookmarks what they were right after run ``run_id``."""
        return self.pipeline_runs.rewind_bookmarks(step, run_id, pipeline)

    # -- data quality --------------------------------------------------------------------------
    def dq_check(
        self,
        table: str,
        ruleset: str | os.PathLike[str],
        *,
        ds: dt.date | None = None,
        snapshot_id: int | None = None,
        references: dict[str, str] | None = None,
        now: dt.datetime | None = None,
        record: bool = True,
        only_ds: bool = False,
        series: str | None = None,
    ) -> list[dict[str, Any]]:
        """Evaluate the DQDL ruleset file ``ruleset`` on ``table``: one dict per rule, in order
        (see :meth:`lakeplane.quality.service.QualityChecks.check` for the arguments)."""
        return self.quality.check(
            table,
            ruleset,
            ds=ds,
            snapshot_id=snapshot_id,
            references=references,
            now=now,
            record=record,
            only_ds=only_ds,
            series=series,
        )

    # -- reading -------------------------------------------------------------------------------
    def resolve_table(self, name: str) -> str:
        """The full name of a table as written in SQL or on the command line: ``domain.zone.table``,
        or ``zone.table`` / ``table`` when it names one table (the project's domain first)."""
        full = str(self.catalog.resolve(name, self.config.name))
        self.catalog.load(full)
        return full

    def query(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        *,
        principal: str | None = None,
        dialect: str = DEFAULT_DIALECT,
        reuse: bool | ReusePolicy | None = None,
    ) -> pa.Table:
        """Run a read-only query (Trino/Athena SQL by default) and return its (small) result.

        In a governed lake (one with a policy file) ``principal`` is required: the query is compiled
        for it (grants, masks, row filters), run in a sandboxed session and audited. ``SHOW``,
        ``DESCRIBE``, ``EXPLAIN`` and the catalog views answer from what ``principal`` may see
        (:func:`lakeplane.query.introspection.answer_metadata`). ``reuse``: see
        :meth:`lakeplane.query.service.Queries.run`; ``lakeplane.query.reuse.cache_hit(result)``
        says whether the result was reused.
        """
        if principal is not None and self.governance.enabled:
            answer = answer_metadata(self, sql, principal)
            if answer is not None:
                return answer
        return self.queries.run(sql, params, principal=principal, dialect=dialect, reuse=reuse).read_all()

    def tables(self) -> list[TableRef]:
        return self.catalog.list_tables()

    def describe(self, table: str) -> dict[str, Any]:
        """Schema, partitions, snapshots and live ``files`` of ``table``, and under ``maintenance``
        its most recent housekeeping actions, newest first."""
        ref = self.resolve_table(table)
        return {**self.catalog.describe(ref), "maintenance": self.maintenance_log.for_table(ref)}

    @cached_property
    def registrations(self) -> Registrations:
        return Registrations(self.catalog, self.governance, self.config.name)

    def register(
        self,
        table: str,
        sources: Sequence[str],
        *,
        partition_by: Sequence[str] = (),
        mode: Mode = "auto",
        principal: str | None = None,
        dry_run: bool = False,
        progress: RegisterProgress | None = None,
    ) -> RegisterResult:
        """Bring existing Parquet files (in place when inside the lake, else copied) or an Iceberg
        table's metadata file into ``table``, in one commit; see :mod:`lakeplane.catalog.register`."""
        return self.registrations.register(
            table,
            sources,
            partition_by=partition_by,
            mode=mode,
            principal=principal,
            dry_run=dry_run,
            progress=progress,
        )

    def alter(
        self, table: str, change: SchemaChange, *, principal: str | None = None, dry_run: bool = False
    ) -> AlterResult:
        """Change ``table``'s schema or partitioning in one commit (none with ``dry_run``); in a
        governed lake as ``principal``, who needs ALTER on it, and audited."""
        return alter_table(
            self.catalog,
            self.resolve_table(table),
            change,
            AlterPolicy(self.governance),
            principal=principal,
            dry_run=dry_run,
        )

    def upgrade(self) -> list[TableUpgrade]:
        """Give every table what other Iceberg readers need (its name mapping); rewrites no file."""
        return upgrade_tables(self.catalog)

    # -- governance answers --------------------------------------------------------------------
    def who_can_see(self, table_column: str) -> list[Visibility]:
        """For every principal: unmasked, masked (how) or denied on ``table.column``, and why."""
        self.governance.require_enabled()
        table_name, _, column = table_column.rpartition(".")
        return self.governance.who_can_see(self.resolve_table(table_name), column)

    def explain(self, sql: str, principal: str, dialect: str = DEFAULT_DIALECT) -> dict[str, Any]:
        """The secured SQL that would run for ``principal``, and every decision behind it."""
        return self.governance.explain(
            sql, principal, self.resolve_table, read=dialect, write=self.compute.engine().dialect
        )

    def policy_diff(self, new_policy: str | os.PathLike[str]) -> list[Change]:
        """Who gains or loses what on which columns if ``new_policy`` replaced the current one."""
        return self.governance.policy_diff(Path(new_policy))

    # -- lineage -------------------------------------------------------------------------------
    def lineage(
        self,
        table: str,
        column: str | None = None,
        direction: Direction = "both",
        depth: int | None = None,
        *,
        snapshot_id: int | None = None,
        visible: Visible | None = None,
    ) -> LineageGraph:
        """The lineage graph around ``table`` (or ``table.column``); see
        :func:`lakeplane.lineage.lineage_graph`."""
        return lineage_graph(self, table, column, direction, depth, snapshot_id=snapshot_id, visible=visible)

    def refresh_lineage(self) -> list[LineageCommit]:
        """Rebuild the lineage of every existing table from its model (compiled now) or dataset."""
        return self.model_jobs.rebuild_lineage()

    def table_columns(self, table: str) -> list[str]:
        """The column names of ``table`` now."""
        return [f.name for f in self.catalog.load(self.resolve_table(table)).schema().fields]

    # -- SLOs, alerts and metrics --------------------------------------------------------------
    def slos(self, names: Sequence[str] | None = None, now: dt.datetime | None = None) -> list[SloResult]:
        """Judge the SLOs of ``slos:`` (or those named): observed value, ok, error budget, burn rate."""
        from lakeplane.observe.slo import evaluate_slos

        return evaluate_slos(self, names, now)

    def metrics_text(self) -> str:
        """Runs, steps, quality gates, queries and SLOs in the Prometheus text format."""
        from lakeplane.observe.metrics import metrics_text  # prometheus_client: only when asked

        return metrics_text(self)

    def _observe_run(self, run: RunRecord) -> None:
        """After each pipeline run: alert if it failed, judge the SLOs, alert on new breaches."""
        from lakeplane.observe.alerts import after_run

        after_run(self, run)


def open_lake(project: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None) -> Lake:
    """Open the lake project in ``project`` (default ``$LAKEPLANE_LAKE`` or the current folder)."""
    return Lake(project or os.environ.get("LAKEPLANE_LAKE") or ".", overrides)


def init_project(path: Path, name: str | None = None) -> Path:
    """Write a commented default ``lakeplane.yaml`` (and ``models/``) in ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    config = path / CONFIG_FILE
    if config.exists():
        raise ConfigError(f"{config} already exists", file=str(config))
    config.write_text(DEFAULT_CONFIG.format(name=name or _domain_name(path.resolve().name)))
    for zone in ("processed", "curated"):
        (path / "models" / zone).mkdir(parents=True, exist_ok=True)
    return config


def _domain_name(folder: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in folder.lower()).strip("_")
    return cleaned or "lake"

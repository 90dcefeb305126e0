"""Recording lineage when a model or an ingest step commits, and rebuilding it for existing tables.

:class:`LineageRecorder` is what the run paths call: ``with recorder.run(job, inputs) as run:``
sends START, and COMPLETE (or FAIL, when the block raises) with what ``run.committed(...)`` was
told; a commit's edges are kept in the lineage store with the snapshot it made. Lineage is
bookkeeping about a run, never part of it: a failure to record edges or to send an event is
logged, and the run's outcome stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeplane.catalog import LakeCatalog
from lakeplane.config import LakeConfig
from lakeplane.errors import LakeplaneError, QualityGateFailed
from lakeplane.lineage.edges import RAW_PREFIX, Edge, ingest_edges, model_edges
from lakeplane.lineage.reports import DatasetInfo, RunReport, new_run_id
from lakeplane.lineage.store import LineageCommit, LineageStore
from lakeplane.query.compiler import CompiledQuery

if TYPE_CHECKING:
    from lakeplane.lineage.events import RunEvents

log = logging.getLogger("lakeplane.lineage")


@dataclass
class ObservedRun:
    """One run being observed: what it committed, filled in by the run path."""

    job: str
    run_id: str
    report: RunReport = field(default_factory=RunReport)


class LineageRecorder:
    """Keeps each commit's lineage and sends the runs' OpenLineage events.

    Args:
        config: the lake's configuration (``lineage`` and the project's name).
        project_dir: the project folder (an event file's relative path is below it).
        catalog: the lake's catalog (its database holds the lineage; its tables' schemas).
    """

    def __init__(self, config: LakeConfig, project_dir: Path, catalog: LakeCatalog) -> None:
        self.config = config
        self.project_dir = project_dir
        self.catalog = catalog

    @cached_property
    def store(self) -> LineageStore:
        return LineageStore(self.catalog.state_engine)

    @cached_property
    def events(self) -> RunEvents | None:
        settings = self.config.lineage.openlineage
        if settings is None:
            return None
        from lakeplane.lineage.events import RunEvents  # openlineage-python, only when events are sent

        return RunEvents(settings, self.project_dir, f"lakeplane:{self.config.name}", self.store)

    def columns(self, table: str) -> list[tuple[str, str]]:
        """``table``'s columns and their Iceberg types, now."""
        return [(f.name, str(f.field_type)) for f in self.catalog.load(table).schema().fields]

    @contextmanager
    def run(self, job: str, inputs: Callable[[], Iterable[str]]) -> Iterator[ObservedRun]:
        """Observe one run of ``job`` reading ``inputs()``: START now, COMPLETE or FAIL after
        (the inputs are looked up only when events are sent)."""
        observed = ObservedRun(job, new_run_id())
        if self.events is not None:
            observed.report.inputs = [self._dataset(name) for name in inputs()]
            self.events.start(observed.run_id, job, observed.report.inputs)
        try:
            yield observed
        except BaseException as exc:
            if self.events is not None:
                if isinstance(exc, QualityGateFailed):
                    observed.report.quality = exc.rules
                    observed.report.output = observed.report.output or (
                        DatasetInfo(exc.table) if exc.table else None
                    )
                self.events.fail(observed.run_id, job, observed.report, exc)
            raise
        if self.events is not None:
            self.events.complete(observed.run_id, job, observed.report)

    def _dataset(self, name: str) -> DatasetInfo:
        if name.startswith(RAW_PREFIX):
            return DatasetInfo(name)
        try:
            return DatasetInfo(name, self.columns(name))
        except LakeplaneError:
            return DatasetInfo(name)

    def model_committed(
        self,
        run: ObservedRun,
        table: str,
        snapshot_id: int | None,
        compile_query: Callable[[], CompiledQuery],
        quality: list[dict[str, Any]],
        *,
        skipped: bool = False,
    ) -> None:
        """Model ``run.job`` wrote ``snapshot_id`` of ``table`` (nothing new when ``skipped``)."""
        if self.events is not None:
            run.report.output = self._dataset(table)
        run.report.quality, run.report.snapshot_id = quality, snapshot_id
        if skipped or snapshot_id is None:
            return
        try:
            edges = model_edges(compile_query(), table, self._names_of, run.job)
            self.store.record(table, snapshot_id, edges, model=run.job, kind="model")
        except Exception as exc:  # the commit stands: lineage must not turn it into a failure
            log.warning("lineage of %s at snapshot %s not recorded: %s", table, snapshot_id, exc)
            return
        run.report.edges = edges

    def ingest_committed(
        self, run: ObservedRun, dataset: str, table: str, fields: Iterable[str], snapshot_id: int | None
    ) -> None:
        """The ingest step of ``dataset`` wrote ``snapshot_id`` of ``table``."""
        if self.events is not None:
            run.report.output = self._dataset(table)
        run.report.snapshot_id = snapshot_id
        edges = ingest_edges(dataset, table, fields)
        run.report.edges = edges
        if snapshot_id is None:
            return
        try:
            self.store.record(table, snapshot_id, edges, model=f"ingest:{dataset}", kind="ingest")
        except Exception as exc:  # the commit stands: lineage must not turn it into a failure
            log.warning("lineage of %s at snapshot %s not recorded: %s", table, snapshot_id, exc)

    def _names_of(self, table: str) -> list[str]:
        return [name for name, _ in self.columns(table)]

    def refresh(
        self,
        models: Iterable[tuple[str, Callable[[], CompiledQuery]]],
        datasets: Mapping[str, tuple[str, list[str]]],
    ) -> list[LineageCommit]:
        """Record the lineage of every existing table as its model (compiled now) or its ingest step
        would write it, at the table's current snapshot.

        Args:
            models: each model's table and how to compile its query.
            datasets: each dataset's table and fields, by dataset name.
        """
        recorded: list[LineageCommit] = []
        existing = {str(ref) for ref in self.catalog.table_names()}
        for dataset, (table, fields) in datasets.items():
            if table in existing:
                recorded.append(
                    self._keep(table, ingest_edges(dataset, table, fields), f"ingest:{dataset}", "ingest")
                )
        for table, compile_query in models:
            if table not in existing:
                continue
            try:
                edges = model_edges(compile_query(), table, self._names_of, table)
            except LakeplaneError as exc:
                log.warning("lineage of %s not rebuilt: %s", table, exc)
                continue
            recorded.append(self._keep(table, edges, table, "model"))
        return recorded

    def _keep(self, table: str, edges: list[Edge], model: str, kind: str) -> LineageCommit:
        head = self.catalog.load(table).current_snapshot()
        snapshot_id = head.snapshot_id if head else None
        self.store.record(table, snapshot_id, edges, model=model, kind=kind, origin="refresh")
        return LineageCommit(table, snapshot_id, model, kind, "", "refresh", edges)

"""OpenLineage run events for model runs and ingest steps, through openlineage-python.

Each run sends START, then COMPLETE or FAIL, to the transport of ``lineage.openlineage`` (a file,
one event per line, or an HTTP receiver). COMPLETE carries the output's schema facet and its column
lineage facet; FAIL carries an error message facet. A gated model's gate is reported as a run of
its own job, ``<model>.quality_gate``, a child of the model's run (the ``parent`` run facet): the
table it audited is its input, carrying the ``dataQualityAssertions`` input facet (one assertion
per rule), as the spec defines that facet; the gate's run is COMPLETE when every blocking rule
passed, FAIL otherwise. Every event is checked against the OpenLineage classes before it is sent
(:mod:`lakeplane.lineage.validate`). A transport that fails (a receiver that is down, a file that
cannot be written) never fails the run: the failure is logged and counted in the lineage store.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    error_message_run,
    parent_run,
    schema_dataset,
)
from openlineage.client.generated.base import DatasetFacet
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport

from lakeplane.config_lineage import OpenLineageConfig
from lakeplane.lineage.edges import Edge
from lakeplane.lineage.reports import DatasetInfo, RunReport, new_run_id
from lakeplane.lineage.store import LineageStore
from lakeplane.lineage.validate import validate_event

log = logging.getLogger("lakeplane.lineage")

PRODUCER = "https://pypi.org/project/lakeplane/"
#: The job of a model's quality gate is the model's job name with this suffix.
GATE_JOB = ".quality_gate"


class RunEvents:
    """Sends the OpenLineage events of runs to one transport.

    Args:
        config: ``lineage.openlineage``.
        project_dir: the project folder (a relative file path is below it).
        default_namespace: the namespace when the config names none.
        store: where each send is logged (sent or failed).
    """

    def __init__(
        self, config: OpenLineageConfig, project_dir: Path, default_namespace: str, store: LineageStore
    ) -> None:
        self.config = config
        self.project_dir = project_dir
        self.namespace = config.namespace or default_namespace
        self.store = store
        #: Events that could not be sent by this process.
        self.failures = 0

    @cached_property
    def client(self) -> OpenLineageClient:
        return OpenLineageClient(transport=self._transport(), config={"transport": {"type": "noop"}})

    def _transport(self) -> Transport:
        if self.config.transport == "file":
            path = Path(self.config.path or "")
            path = path if path.is_absolute() else self.project_dir / path
            path.parent.mkdir(parents=True, exist_ok=True)
            return FileTransport(FileConfig(log_file_path=str(path), append=True))
        retry = {"total": self.config.retries, "connect": self.config.retries, "read": self.config.retries}
        return HttpTransport(
            HttpConfig(
                url=self.config.url or "",
                endpoint=self.config.endpoint,
                timeout=self.config.timeout,
                retry={"backoff_factor": 0.2, "status_forcelist": [500, 502, 503, 504], **retry},
            )
        )

    def start(self, run_id: str, job: str, inputs: Sequence[DatasetInfo]) -> None:
        self.send(self.event(RunState.START, run_id, job, RunReport(inputs=list(inputs))))

    def complete(self, run_id: str, job: str, report: RunReport) -> None:
        self.send(self.event(RunState.COMPLETE, run_id, job, report))
        self._gate(run_id, job, report)

    def fail(self, run_id: str, job: str, report: RunReport, error: BaseException) -> None:
        self.send(self.event(RunState.FAIL, run_id, job, report, error))
        self._gate(run_id, job, report)

    def _gate(self, parent_run_id: str, job: str, report: RunReport) -> None:
        """The gate of model run ``parent_run_id`` (if it had one) as a run of ``<job>.quality_gate``."""
        if not report.quality or report.output is None:
            return
        failed = any(not rule.get("passed") and rule.get("blocking", True) for rule in report.quality)
        assertions = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=[_assertion(rule) for rule in report.quality]
        )
        audited = InputDataset(
            namespace=self.namespace,
            name=report.output.name,
            facets=_schema_facets(report.output.fields),
            inputFacets={"dataQualityAssertions": assertions},
        )
        parent = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent_run_id), job=parent_run.Job(namespace=self.namespace, name=job)
        )
        self.send(
            RunEvent(
                eventType=RunState.FAIL if failed else RunState.COMPLETE,
                eventTime=dt.datetime.now(dt.UTC).isoformat(),
                run=Run(runId=new_run_id(), facets={"parent": parent}),
                job=Job(namespace=self.namespace, name=job + GATE_JOB),
                inputs=[audited],
                outputs=[],
                producer=PRODUCER,
            )
        )

    def event(
        self,
        state: RunState,
        run_id: str,
        job: str,
        report: RunReport,
        error: BaseException | None = None,
    ) -> RunEvent:
        """The event of ``state`` for run ``run_id`` of ``job``."""
        run_facets: dict[str, Any] = {}
        if error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"{type(error).__name__}: {error}", programmingLanguage="PYTHON"
            )
        outputs = [self._output(report)] if report.output is not None else []
        return RunEvent(
            eventType=state,
            eventTime=dt.datetime.now(dt.UTC).isoformat(),
            run=Run(runId=run_id, facets=run_facets),
            job=Job(namespace=self.namespace, name=job),
            inputs=[
                InputDataset(namespace=self.namespace, name=i.name, facets=_schema_facets(i.fields))
                for i in report.inputs
            ],
            outputs=outputs,
            producer=PRODUCER,
        )

    def _output(self, report: RunReport) -> OutputDataset:
        assert report.output is not None
        facets: dict[str, DatasetFacet] = dict(_schema_facets(report.output.fields))
        lineage = self._column_lineage(report.edges)
        if lineage is not None:
            facets["columnLineage"] = lineage
        return OutputDataset(namespace=self.namespace, name=report.output.name, facets=facets)

    def _column_lineage(
        self, edges: Sequence[Edge]
    ) -> column_lineage_dataset.ColumnLineageDatasetFacet | None:
        by_column: dict[str, list[column_lineage_dataset.InputField]] = {}
        transforms: dict[str, str | None] = {}
        for edge in edges:
            if edge.target_column is None:
                continue
            subtype = "IDENTITY" if edge.transform is None else "TRANSFORMATION"
            by_column.setdefault(edge.target_column, []).append(
                column_lineage_dataset.InputField(
                    namespace=self.namespace,
                    name=edge.source_table,
                    field=edge.source_column or "*",  # "*": the rows of the table (count(*))
                    transformations=[
                        column_lineage_dataset.Transformation(
                            type="DIRECT", subtype=subtype, description=edge.transform
                        )
                    ],
                )
            )
            transforms[edge.target_column] = edge.transform
        if not by_column:
            return None
        return column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={
                column: column_lineage_dataset.Fields(
                    inputFields=inputs,
                    transformationDescription=transforms[column],
                    transformationType="IDENTITY" if transforms[column] is None else "TRANSFORMATION",
                )
                for column, inputs in by_column.items()
            }
        )

    def send(self, event: RunEvent) -> bool:
        """Validate and send ``event``; False (logged, counted) when that failed."""
        job, run_id, state = event.job.name, str(event.run.runId), _state(event)
        try:
            validate_event(Serde.to_dict(event))
            self.client.emit(event)
        except Exception as exc:  # an emitter failure never fails the run it reports on
            self.failures += 1
            log.warning("OpenLineage %s event of %s not sent: %s", state, job, exc)
            self._log(job, run_id, state, f"{type(exc).__name__}: {exc}")
            return False
        self._log(job, run_id, state, None)
        return True

    def _log(self, job: str, run_id: str, state: str, error: str | None) -> None:
        try:
            self.store.log_event(job, run_id, state, self.config.transport, error)
        except Exception as exc:  # the count is a convenience: losing it must not fail the run either
            log.warning("OpenLineage event of %s not logged: %s", job, exc)


def _state(event: RunEvent) -> str:
    return event.eventType.value if event.eventType is not None else "OTHER"


def _schema_facets(fields: Sequence[tuple[str, str]]) -> dict[str, DatasetFacet]:
    if not fields:
        return {}
    return {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in fields]
        )
    }


def _assertion(rule: Mapping[str, Any]) -> data_quality_assertions_dataset.Assertion:
    return data_quality_assertions_dataset.Assertion(
        assertion=str(rule.get("rule", "")),
        success=bool(rule.get("passed")),
        severity="error" if rule.get("blocking", True) else "warn",
        name=str(rule.get("ruleset")) if rule.get("ruleset") else None,
        actual=None if rule.get("observed") is None else str(rule.get("observed")),
    )

"""SLOs of pipelines and tables, evaluated from the run store, the catalog and the cost model.

``evaluate_slos(lake)`` judges every SLO of ``lakeplane.yaml``'s ``slos:`` (see
:mod:`lakeplane.config_observe`) and :mod:`lakeplane.observe.measures` for how each kind is measured,
its error budget and its burn rate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from pyiceberg.table.snapshots import ancestors_of

from lakeplane.catalog import LakeCatalog
from lakeplane.compute.history import read_runs
from lakeplane.compute.report import price_run
from lakeplane.config import DatasetConfig, LakeConfig
from lakeplane.config_observe import SloConfig
from lakeplane.errors import LakeplaneError, SloNotFound, TableNotFoundError, did_you_mean
from lakeplane.observe import measures
from lakeplane.observe.events import Scope, gate_outcomes, stamp, step_counts
from lakeplane.pipelines.definition import Pipeline
from lakeplane.pipelines.models import Model
from lakeplane.pipelines.runs import PipelineRuns
from lakeplane.pipelines.store import RUNS, RunStore

if TYPE_CHECKING:
    from lakeplane.compute.lake_costs import LakeCosts


class ObservedLake(Protocol):
    """The lake as SLOs, alerts and metrics read it."""

    @property
    def config(self) -> LakeConfig: ...

    @property
    def catalog(self) -> LakeCatalog: ...

    @property
    def pipeline_runs(self) -> PipelineRuns: ...

    @property
    def costs(self) -> LakeCosts: ...

    def pipelines(self) -> list[Pipeline]: ...

    def dataset(self, name: str) -> DatasetConfig: ...

    def model(self, name: str) -> Model: ...

    def resolve_table(self, name: str) -> str: ...


@dataclass(frozen=True)
class SloResult:
    """One SLO judged at ``evaluated_at``."""

    name: str
    kind: str
    target: str
    target_type: str  # pipeline or table
    objective: float
    observed: float | None
    ok: bool
    error_budget_remaining: float
    burn_rate: float
    window: str
    burn_window: str
    unit: str
    events: int
    detail: str
    evaluated_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "target_type": self.target_type,
            "kind": self.kind,
            "objective": self.objective,
            "observed": None if self.observed is None else round(self.observed, 6),
            "ok": self.ok,
            "error_budget_remaining": round(self.error_budget_remaining, 6),
            "burn_rate": round(self.burn_rate, 6),
            "window": self.window,
            "burn_window": self.burn_window,
            "unit": self.unit,
            "events": self.events,
            "detail": self.detail,
            "evaluated_at": self.evaluated_at,
        }


UNITS = {
    "freshness": "seconds",
    "cost_per_day": "usd",
    "dq_pass_rate": "ratio",
    "retry_rate": "ratio",
    "worker_loss_rate": "ratio",
}


def evaluate_slos(
    lake: ObservedLake, names: Sequence[str] | None = None, now: dt.datetime | None = None
) -> list[SloResult]:
    """Judge the SLOs named ``names`` (default: all) at ``now`` (default: this moment).

    Raises:
        SloNotFound: a name is not an SLO of ``slos:``.
    """
    declared = lake.config.slos
    for name in names or ():
        if name not in declared:
            raise SloNotFound(
                f"no SLO '{name}' in slos: of lakeplane.yaml{did_you_mean(name, declared)}",
                slo=name,
                known=sorted(declared),
            )
    moment = now or dt.datetime.now(dt.UTC)
    lake.pipeline_runs.store().reap()  # runs whose runner died count as failed
    chosen = [n for n in declared if not names or n in names]
    return [evaluate_slo(lake, name, declared[name], moment) for name in chosen]


def evaluate_slo(lake: ObservedLake, name: str, slo: SloConfig, now: dt.datetime) -> SloResult:
    """Judge one SLO at ``now``."""
    measured = _measure(lake, slo, now)
    return SloResult(
        name=name,
        kind=slo.kind,
        target=slo.target_name,
        target_type="pipeline" if slo.pipeline else "table",
        objective=slo.objective,
        observed=measured.observed,
        ok=measured.ok,
        error_budget_remaining=measured.error_budget_remaining,
        burn_rate=measured.burn_rate,
        window=duration_text(slo.window),
        burn_window=duration_text(slo.burn_window),
        unit=UNITS[slo.kind],
        events=measured.events,
        detail=measured.detail,
        evaluated_at=stamp(now),
    )


def _measure(lake: ObservedLake, slo: SloConfig, now: dt.datetime) -> measures.Measure:
    start = now - dt.timedelta(seconds=slo.window)
    burn_from = stamp(now - dt.timedelta(seconds=slo.burn_window))
    if slo.kind == "freshness":
        publishes = (
            _table_publishes(lake, slo.table) if slo.table else _pipeline_publishes(lake, slo.pipeline)
        )
        return measures.freshness_measure(
            publishes, slo.objective, slo.target, slo.window, slo.burn_window, now
        )
    if slo.kind == "cost_per_day":
        return measures.cost_measure(
            _spend(lake, slo.pipeline or "", start, now),
            slo.objective,
            slo.window,
            slo.burn_window,
            burn_from,
        )
    store = lake.pipeline_runs.store()
    scope = _scope(lake, slo, start, now)
    recent = dataclasses.replace(scope, since=now - dt.timedelta(seconds=slo.burn_window))
    if slo.kind == "dq_pass_rate":
        window, last = _gate_counts(store, scope), _gate_counts(store, recent)
        return measures.rate_measure(window, last, 1 - slo.objective, good_share=True)
    counts, recent_counts = step_counts(store, scope), step_counts(store, recent)
    if slo.kind == "retry_rate":
        window = measures.Counts(counts.steps, counts.retries)
        last = measures.Counts(recent_counts.steps, recent_counts.retries)
    else:
        window = measures.Counts(counts.attempts, counts.lost)
        last = measures.Counts(recent_counts.attempts, recent_counts.lost)
    return measures.rate_measure(window, last, slo.objective, good_share=False)


def _gate_counts(store: RunStore, scope: Scope) -> measures.Counts:
    gates = gate_outcomes(store, scope)
    return measures.Counts(len(gates), sum(1 for *_, (_, failed) in gates if failed))


def _scope(lake: ObservedLake, slo: SloConfig, start: dt.datetime, now: dt.datetime) -> Scope:
    """The attempts an SLO counts: its pipeline's, or those of the steps writing its table."""
    if slo.pipeline:
        return Scope(pipelines=(slo.pipeline,), since=start, until=now)
    try:
        table = lake.resolve_table(slo.table or "")
    except TableNotFoundError:
        return Scope(steps=frozenset(), since=start, until=now)  # not written yet: nothing to judge
    return Scope(steps=frozenset(steps_writing(lake, table)), since=start, until=now)


def steps_writing(lake: ObservedLake, table: str) -> set[tuple[str, str]]:
    """(pipeline, step) of every step that writes or checks ``table`` (a full name)."""
    found = set()
    for pipeline in lake.pipelines():
        for step, spec in pipeline.steps.items():
            if step_table(lake, spec.ingest, spec.model, spec.table) == table:
                found.add((pipeline.name, step))
    return found


def step_table(lake: ObservedLake, ingest: str | None, model: str | None, table: str | None) -> str | None:
    """The full name of the table a step writes (ingest, model) or checks (quality); None for a
    Python step or a name that no longer resolves."""
    try:
        if ingest:
            return lake.resolve_table(lake.dataset(ingest).table)
        if model:
            return str(lake.model(model).ref)
        if table:
            return lake.resolve_table(table)
    except LakeplaneError:
        return None
    return None


def _table_publishes(lake: ObservedLake, table: str) -> list[dt.datetime]:
    """When each snapshot of ``table``'s main was committed (none: the table does not exist yet)."""
    try:
        loaded = lake.catalog.load(lake.resolve_table(table))
    except TableNotFoundError:
        return []
    head = loaded.current_snapshot()
    if head is None:
        return []
    return [
        dt.datetime.fromtimestamp(s.timestamp_ms / 1000, dt.UTC) for s in ancestors_of(head, loaded.metadata)
    ]


def _pipeline_publishes(lake: ObservedLake, pipeline: str | None) -> list[dt.datetime]:
    """When each succeeded run of ``pipeline`` ended."""
    store = lake.pipeline_runs.store()
    query = sa.select(RUNS.c.ended_at).where(
        (RUNS.c.pipeline == pipeline) & (RUNS.c.state == "succeeded") & RUNS.c.ended_at.is_not(None)
    )
    with store.engine.connect() as conn:
        return [dt.datetime.fromisoformat(v) for v in conn.execute(query).scalars()]


def _spend(
    lake: ObservedLake, pipeline: str, start: dt.datetime, now: dt.datetime
) -> list[tuple[str, float]]:
    """(start, US dollars here) of each ended run of ``pipeline`` started in ``[start, now]``."""
    costs = lake.costs
    runs = [r for r in read_runs(costs.store, [pipeline], start) if r.started_at <= stamp(now)]
    return [(r.started_at, price_run(r, costs.prices, costs.here.price)[0].here_usd) for r in runs]


def duration_text(seconds: float) -> str:
    """``2592000`` → ``30d``; ``5400`` → ``90m``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"

"""``/metrics``: the run store, the query history and the SLOs in the Prometheus text format (0.0.4).

Every number is computed from the catalog's database when asked, so any process (the console, a
``lakeplane metrics`` in a cron job feeding a Pushgateway or a textfile collector) gives the same
answer. Counters count everything the stores hold; gauges describe the SLOs at this moment.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric

from lakeplane.errors import LakeplaneError
from lakeplane.observe.events import (
    Scope,
    attempts_by_state,
    gate_outcomes,
    lost_attempts,
    step_sums,
)
from lakeplane.observe.slo import ObservedLake, SloResult, evaluate_slo
from lakeplane.pipelines.store import RUNS, RunStore
from lakeplane.query.history import HISTORY

_log = logging.getLogger(__name__)

#: Byte and record counts summed per step: (metric name, step metrics key, help).
STEP_TOTALS = (
    ("lakeplane_step_bytes_read", "bytes_read", "Bytes the step attempts read."),
    ("lakeplane_step_bytes_written", "bytes_written", "Bytes the step attempts wrote."),
    ("lakeplane_step_bytes_scanned", "bytes_scanned", "Bytes the step attempts' quality checks scanned."),
    ("lakeplane_step_rows_written", "rows_out", "Rows the step attempts wrote."),
    ("lakeplane_quarantined_records", "quarantined", "Malformed records the ingest steps quarantined."),
)


def metrics_text(lake: ObservedLake) -> str:
    """The lake's metrics in the Prometheus text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(_families(lake)))
    return generate_latest(registry).decode()


class _Families:
    """A collector giving metric families computed beforehand (one registry per call)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _families(lake: ObservedLake) -> list[Metric]:
    engine = lake.catalog.state_engine
    store = lake.pipeline_runs.store()
    store.reap()  # runs whose runner died count as failed
    return [*_run_families(engine), *_step_families(store), *_query_families(engine), *_slo_families(lake)]


def _run_families(engine: sa.Engine) -> list[Metric]:
    runs = CounterMetricFamily("lakeplane_runs", "Pipeline runs by state.", labels=["pipeline", "state"])
    query = sa.select(RUNS.c.pipeline, RUNS.c.state, sa.func.count()).group_by(RUNS.c.pipeline, RUNS.c.state)
    with engine.connect() as conn:
        for pipeline, state, count in conn.execute(query.order_by(RUNS.c.pipeline, RUNS.c.state)):
            runs.add_metric([pipeline, state], count)
    return [runs]


def _step_families(store: RunStore) -> list[Metric]:
    step_labels = ["pipeline", "step"]
    lost: dict[tuple[str, ...], int] = defaultdict(int)
    for pipeline, step, reason in lost_attempts(store, Scope()):
        lost[(pipeline, step, reason)] += 1
    gates: dict[tuple[str, ...], int] = defaultdict(int)
    rules: dict[tuple[str, ...], int] = defaultdict(int)
    for pipeline, step, _, (passed, failed) in gate_outcomes(store, Scope()):
        gates[(pipeline, step, "failed" if failed else "passed")] += 1
        rules[(pipeline, step, "passed")] += passed
        rules[(pipeline, step, "failed")] += failed
    sums = step_sums(store, ["seconds", *(key for _, key, _ in STEP_TOTALS)])
    states: dict[tuple[str, ...], int] = {key: n for key, n in attempts_by_state(store).items()}
    families: list[Metric] = [
        _counter("lakeplane_step_attempts", "Step attempts by state.", [*step_labels, "state"], states),
        _counter(
            "lakeplane_step_lost_attempts",
            "Step attempts whose worker was lost (process died, runner lost, Spark executor lost).",
            [*step_labels, "reason"],
            lost,
        ),
    ]
    summary = SummaryMetricFamily(
        "lakeplane_step_duration_seconds", "Wall time of the step attempts run.", labels=step_labels
    )
    for timed, values in sorted(sums.items()):
        summary.add_metric(list(timed), count_value=int(values["count"]), sum_value=values["seconds"])
    families.append(summary)
    for name, key, text in STEP_TOTALS:
        families.append(_counter(name, text, step_labels, {pair: v[key] for pair, v in sums.items()}))
    families.append(
        _counter(
            "lakeplane_quality_gates", "Quality gates run, by outcome.", [*step_labels, "outcome"], gates
        )
    )
    families.append(
        _counter(
            "lakeplane_quality_rules",
            "Quality rule outcomes (a failed gate records only its failing rules).",
            [*step_labels, "outcome"],
            rules,
        )
    )
    return families


def _query_families(engine: sa.Engine) -> list[Metric]:
    queries = CounterMetricFamily(
        "lakeplane_queries", "Queries by workgroup and outcome.", labels=["workgroup", "outcome"]
    )
    scanned = CounterMetricFamily(
        "lakeplane_query_bytes_scanned",
        "Bytes queries scanned (0 for a refused query or a reused result).",
        labels=["workgroup"],
    )
    read = sa.case(
        (HISTORY.c.cache_hit.is_(True) | (HISTORY.c.outcome == "refused"), 0),
        else_=sa.func.coalesce(HISTORY.c.bytes_actual, HISTORY.c.bytes_estimated, 0),
    )
    group = sa.func.coalesce(HISTORY.c.workgroup, "")
    by_outcome = sa.select(group, HISTORY.c.outcome, sa.func.count()).group_by(group, HISTORY.c.outcome)
    by_workgroup = sa.select(group, sa.func.coalesce(sa.func.sum(read), 0)).group_by(group)
    if not sa.inspect(engine).has_table(HISTORY.name):
        return [queries, scanned]
    with engine.connect() as conn:
        for workgroup, outcome, count in conn.execute(by_outcome.order_by(group, HISTORY.c.outcome)):
            queries.add_metric([workgroup, outcome], count)
        for workgroup, total in conn.execute(by_workgroup.order_by(group)):
            scanned.add_metric([workgroup], int(total))
    return [queries, scanned]


def _slo_families(lake: ObservedLake) -> list[Metric]:
    labels = ["slo", "kind", "target"]
    gauges = {
        "ok": GaugeMetricFamily("lakeplane_slo_ok", "1 while the SLO is met, else 0.", labels=labels),
        "objective": GaugeMetricFamily("lakeplane_slo_objective", "The SLO's objective.", labels=labels),
        "observed": GaugeMetricFamily("lakeplane_slo_observed", "The SLO's observed value.", labels=labels),
        "budget": GaugeMetricFamily(
            "lakeplane_slo_error_budget_remaining", "Share of the error budget left.", labels=labels
        ),
        "burn": GaugeMetricFamily("lakeplane_slo_burn_rate", "Error budget burn rate.", labels=labels),
    }
    for result in _judged(lake):
        key = [result.name, result.kind, result.target]
        gauges["ok"].add_metric(key, 1.0 if result.ok else 0.0)
        gauges["objective"].add_metric(key, result.objective)
        if result.observed is not None:
            gauges["observed"].add_metric(key, result.observed)
        gauges["budget"].add_metric(key, result.error_budget_remaining)
        gauges["burn"].add_metric(key, result.burn_rate)
    return list(gauges.values())


def _judged(lake: ObservedLake) -> Iterator[SloResult]:
    """Each SLO that can be judged (one that cannot is logged and left out, not the whole page)."""
    now = dt.datetime.now(dt.UTC)
    for name, slo in lake.config.slos.items():
        try:
            yield evaluate_slo(lake, name, slo, now)
        except LakeplaneError as exc:
            _log.warning("SLO %s: %s", name, exc)


def _counter(
    name: str, text: str, labels: list[str], values: dict[tuple[str, ...], Any]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family

"""``lakeplane cost report``: what the runs of a period cost here and would cost on each AWS shape,
and a standing cluster against transient compute.

Each run is priced as one job (its steps' usage summed, its wall time, the most cores and memory
any step held), failed attempts included: they used compute too. Transient compute is billed per
run: each run on its cheapest feasible transient shape. The standing alternative is an EMR cluster
kept up all period, sized for the period's peak run (enough nodes for its vCPUs and its memory),
billed On-Demand with the EMR uplift around the clock: its cost per day times the days.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lakeplane.compute.costs import HereMachine, ShapeCost, Usage, price_usage
from lakeplane.compute.history import RunHistory, usage_metrics
from lakeplane.compute.prices import HerePrice, PriceTable
from lakeplane.errors import ConfigError

#: Shapes started for a run and gone after it.
TRANSIENT = ("emr-transient-spot", "emr-transient", "emr-serverless", "glue", "glue-flex", "athena")


@dataclass(frozen=True)
class RunCost:
    """One run priced here and on every shape (``None``: that shape cannot run it)."""

    run_id: str
    pipeline: str
    ds: str
    state: str
    seconds: float
    here_usd: float
    shapes: dict[str, float | None]
    cheapest_transient: str | None

    @property
    def transient_usd(self) -> float | None:
        return self.shapes[self.cheapest_transient] if self.cheapest_transient else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "ds": self.ds,
            "state": self.state,
            "seconds": round(self.seconds, 3),
            "here_usd": _usd(self.here_usd),
            "shapes": {k: _usd(v) for k, v in self.shapes.items()},
            "cheapest_transient": self.cheapest_transient,
            "transient_usd": _usd(self.transient_usd),
        }


@dataclass(frozen=True)
class StandingCluster:
    """An EMR cluster up around the clock, sized for the peak run."""

    peak_vcpu: float
    peak_memory_gb: float
    primary: str
    node: str
    nodes: int
    usd_per_hour: float
    days: float

    @property
    def usd_per_day(self) -> float:
        return self.usd_per_hour * 24

    @property
    def usd(self) -> float:
        return self.usd_per_day * self.days

    def to_dict(self) -> dict[str, Any]:
        return {
            "peak_vcpu": self.peak_vcpu,
            "peak_memory_gb": round(self.peak_memory_gb, 3),
            "primary": self.primary,
            "node": self.node,
            "nodes": self.nodes,
            "usd_per_hour": _usd(self.usd_per_hour),
            "usd_per_day": _usd(self.usd_per_day),
            "days": round(self.days, 3),
            "usd": _usd(self.usd),
        }


@dataclass(frozen=True)
class Comparison:
    """Runs of one pipeline (or all) over the period: here, per shape, standing and transient."""

    name: str
    runs: int
    here_usd: float
    shapes: dict[str, float | None]
    transient_usd: float
    standing: StandingCluster

    @property
    def savings(self) -> float:
        """The fraction of the standing cluster's cost that transient compute saves."""
        return 1 - self.transient_usd / self.standing.usd if self.standing.usd else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runs": self.runs,
            "here_usd": _usd(self.here_usd),
            "shapes": {k: _usd(v) for k, v in self.shapes.items()},
            "transient_usd": _usd(self.transient_usd),
            "standing": self.standing.to_dict(),
            "standing_usd": _usd(self.standing.usd),
            "savings": round(self.savings, 4),
        }


@dataclass(frozen=True)
class CostReport:
    since: str
    until: str
    days: float
    runs: list[RunCost]
    pipelines: list[Comparison]
    total: Comparison | None
    assumptions: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "days": round(self.days, 3),
            "pipelines": [p.to_dict() for p in self.pipelines],
            "total": self.total.to_dict() if self.total else None,
            "runs": [r.to_dict() for r in self.runs],
            "assumptions": list(self.assumptions),
        }


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """``7d``/``12h`` before ``now``, or a date (``2026-11-01``) at 00:00 UTC.

    Raises:
        ConfigError: neither.
    """
    from lakeplane.units import parse_duration

    try:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)
    except ValueError:
        pass
    try:
        return now - dt.timedelta(seconds=parse_duration(text))
    except ValueError:
        raise ConfigError(
            f"--since {text}: expected a duration (7d, 12h) or a date (2026-11-01)", key="since"
        ) from None


def run_usage(run: RunHistory) -> Usage:
    """A run's usage as one job: every ended attempt's usage summed, over the run's wall time."""
    return Usage.from_metrics(usage_metrics(run.attempts, run.wall_seconds))


def price_run(
    run: RunHistory, prices: PriceTable, here: HereMachine | HerePrice | float
) -> tuple[RunCost, list[ShapeCost]]:
    """``run`` priced here and on each shape, as one batch job."""
    costs = price_usage(run_usage(run), prices, here, kind="batch")
    by_shape = {c.shape: c for c in costs}
    feasible = [by_shape[s] for s in TRANSIENT if s in by_shape and by_shape[s].feasible]
    cheapest = min(feasible, key=lambda c: c.usd).shape if feasible else None
    here = by_shape["here"].usd if "here" in by_shape else 0.0
    # A standing cluster is the report's own comparison (sized for the peak run, kept up all period),
    # not one run's share of one.
    shapes = {
        c.shape: (c.usd if c.feasible else None) for c in costs if c.shape not in ("here", "emr-standing")
    }
    return RunCost(
        run.run_id, run.pipeline, run.ds, run.state, run.wall_seconds, here, shapes, cheapest
    ), costs


def standing_cluster(runs: Sequence[RunHistory], prices: PriceTable, days: float) -> StandingCluster:
    """The EMR cluster (the price table's primary and node types) that holds the peak run's vCPUs
    and memory, kept up ``days``."""
    emr = prices.shapes.emr
    node, primary = prices.instance(emr.node), prices.instance(emr.primary)
    usages = [run_usage(r) for r in runs]
    peak_vcpu = max((u.cores for u in usages), default=0.0)
    peak_gb = max((u.peak_memory_gb for u in usages), default=0.0)
    nodes = max(
        emr.min_core,
        math.ceil(peak_vcpu / node.vcpu),
        math.ceil(peak_gb / (node.memory_gb * emr.usable_memory_fraction)),
    )
    hourly = primary.on_demand + primary.emr + nodes * (node.on_demand + node.emr)
    return StandingCluster(peak_vcpu, peak_gb, primary.name, node.name, nodes, hourly, days)


def compare(
    name: str, runs: Sequence[RunHistory], costs: Sequence[RunCost], prices: PriceTable, days: float
) -> Comparison:
    shapes: dict[str, float | None] = {}
    for cost in costs:
        for shape, usd in cost.shapes.items():
            total = shapes.get(shape, 0.0)
            shapes[shape] = (
                None if usd is None or (shape in shapes and total is None) else (total or 0.0) + usd
            )
    transient = sum(c.transient_usd or 0.0 for c in costs)
    return Comparison(
        name,
        len(costs),
        sum(c.here_usd for c in costs),
        shapes,
        transient,
        standing_cluster(runs, prices, days),
    )


def cost_report(
    runs: Sequence[RunHistory],
    prices: PriceTable,
    here: HerePrice,
    since: dt.datetime | None,
    now: dt.datetime,
) -> CostReport:
    """What ``runs`` cost from ``since`` (default: the first run's start) to ``now``."""
    start = since or (dt.datetime.fromisoformat(runs[0].started_at) if runs else now)
    days = max((now - start).total_seconds() / 86400, 1 / 24)
    priced = [price_run(r, prices, here) for r in runs]
    run_costs = [cost for cost, _ in priced]
    pipelines = []
    for name in sorted({r.pipeline for r in runs}):
        mine = [i for i, r in enumerate(runs) if r.pipeline == name]
        pipelines.append(compare(name, [runs[i] for i in mine], [run_costs[i] for i in mine], prices, days))
    total = compare("total", runs, run_costs, prices, days) if runs else None
    emr = prices.shapes.emr
    assumptions = (
        here.assumption,
        f"prices: {prices.path}, {prices.region}, as of {prices.as_of}",
        "each run is priced as one job: its attempts' usage summed (failed attempts included), its "
        "wall time, the most cores and memory any step held",
        "transient: each run on its cheapest feasible transient shape, billed per run",
        f"standing: one {emr.primary} primary and enough {emr.node} nodes (at least {emr.min_core}) for "
        f"the peak run's vCPUs and memory ({emr.usable_memory_fraction:.0%} of a node's memory usable), "
        "On-Demand with the EMR uplift, 24 hours a day for the period; runs at the same time are not "
        "stacked (the cluster holds the largest run, not the sum of concurrent ones)",
    )
    return CostReport(
        start.isoformat(timespec="seconds"),
        now.isoformat(timespec="seconds"),
        days,
        run_costs,
        pipelines,
        total,
        assumptions,
    )


def _usd(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(frozen=True)
class StepCost:
    """One step attempt's usage, and what it cost here and would cost on each shape."""

    step: str
    attempt: int
    state: str
    usage: Usage
    costs: tuple[ShapeCost, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "attempt": self.attempt,
            "state": self.state,
            "usage": self.usage.to_dict(),
            **_priced(self.costs),
        }


@dataclass(frozen=True)
class RunCostDetail:
    """``run-show``'s cost section: per step attempt, and the run as one job."""

    run_id: str
    steps: tuple[StepCost, ...]
    total_usage: Usage
    total: tuple[ShapeCost, ...]
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "steps": [s.to_dict() for s in self.steps],
            "total": {"usage": self.total_usage.to_dict(), **_priced(self.total)},
            "assumptions": list(self.assumptions),
        }


def run_detail(run: RunHistory, prices: PriceTable, here: HereMachine | HerePrice | float) -> RunCostDetail:
    """What each attempt of ``run`` cost here and would cost on each shape, and the run as one batch
    job (its attempts' usage summed over its wall time)."""
    steps = tuple(
        StepCost(a.step, a.attempt, a.state, usage, tuple(price_usage(usage, prices, here)))
        for a in run.attempts
        for usage in [Usage.from_metrics(a.metrics)]
    )
    total_usage = run_usage(run)
    total = tuple(price_usage(total_usage, prices, here, kind="batch"))
    assumptions = (
        f"prices: {prices.path}, {prices.region}, as of {prices.as_of}",
        "each step is priced alone, as the run store measured it (a step that recorded no usage "
        "costs nothing); the total prices the run as one batch job: its attempts' usage summed "
        "over the run's wall time, the most cores and memory any step held",
    )
    return RunCostDetail(run.run_id, steps, total_usage, total, assumptions)


def _priced(costs: Sequence[ShapeCost]) -> dict[str, Any]:
    here = next((c for c in costs if c.shape == "here"), None)
    return {
        "here_usd": None if here is None else _usd(here.usd),
        "shapes": {c.shape: c.to_dict() for c in costs if c.shape != "here"},
    }

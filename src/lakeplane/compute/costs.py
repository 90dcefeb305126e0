"""The cost model: what a measured run cost here and would cost on each AWS shape, and what a
described job costs on each shape at the size that meets its deadline.

Sizing rules (each priced shape states the figures it used):

- a measured run (:func:`price_usage`) gets on each shape the vCPUs the run held and the memory it
  peaked at, rounded up to the shape's units (EMR nodes, Serverless executors, Glue workers, with
  each shape's minimum), and the same work: its run time follows the measured seconds through
  near-linear scaling with a 5 % serial fraction;
- a described job (:func:`price_job`) gets the smallest size that holds its memory and meets its
  deadline (cost grows with size when part of the work is serial, so the smallest is cheapest), or,
  without a deadline, its reference cores;
- start-up is billed where the shape bills it (EMR bootstrap, part of a Serverless start) and
  counts toward a deadline only for work that arrives unpredictably: a scheduled job's start-up is
  begun ahead of its planned start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from lakeplane.compute.jobs import AmdahlScaling, JobProfile
from lakeplane.compute.prices import HerePrice, PriceTable
from lakeplane.compute.shapes import (
    SHAPES,
    ShapeCost,
    Work,
    emr_units,
    glue_units,
    quote_athena,
    quote_emr,
    quote_glue,
    quote_here,
    quote_serverless,
    quote_standing,
    serverless_units,
)

__all__ = ["SHAPES", "HereMachine", "ShapeCost", "Usage", "price_job", "price_usage"]


def _number(metrics: Mapping[str, Any], key: str) -> float:
    value = metrics.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


@dataclass(frozen=True)
class Usage:
    """What one step or query used: the figures a bill is computed from."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    vcpu_seconds: float = 0.0
    memory_gb_seconds: float = 0.0
    cores: float = 0.0
    peak_memory_gb: float = 0.0
    bytes_read: float = 0.0
    bytes_written: float = 0.0
    bytes_scanned: float = 0.0

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any]) -> Usage:
        """A step attempt's metrics dict (run store keys; a missing key is 0)."""
        return cls(
            seconds=_number(metrics, "seconds"),
            cpu_seconds=_number(metrics, "cpu_seconds"),
            vcpu_seconds=_number(metrics, "vcpu_seconds"),
            memory_gb_seconds=_number(metrics, "memory_gb_seconds"),
            cores=_number(metrics, "cores"),
            peak_memory_gb=_number(metrics, "peak_memory_mb") / 1024,
            bytes_read=_number(metrics, "bytes_read"),
            bytes_written=_number(metrics, "bytes_written"),
            bytes_scanned=_number(metrics, "bytes_scanned"),
        )

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class HereMachine:
    """This machine: its price and size."""

    price: HerePrice
    cores: float
    memory_gb: float | None = None


def _here_of(here: HerePrice | HereMachine | float | None, cores: float) -> HereMachine | None:
    if here is None:
        return None
    if isinstance(here, HereMachine):
        return here
    if isinstance(here, HerePrice):
        return HereMachine(here, cores)
    return HereMachine(HerePrice(float(here), f"this machine costs ${float(here):.4f}/h"), cores)


def price_usage(
    usage: Usage,
    prices: PriceTable,
    here_per_hour: HerePrice | HereMachine | float | None,
    shapes: Iterable[str] | None = None,
    *,
    runs_per_month: float = 30.0,
    kind: str | None = None,
) -> list[ShapeCost]:
    """What this measured run cost here and would cost on each AWS shape.

    Each shape gets the vCPUs the run held (``cores``, at least 1) and its peak memory, rounded up
    to the shape's units, and the same work (see the module docstring). Athena is priced only for
    queries (``bytes_scanned`` measured, or ``kind="query"``); a standing cluster carries
    1/``runs_per_month`` of its month.
    """
    cores = max(1.0, usage.cores)
    scaling = AmdahlScaling(usage.seconds, cores)
    work = Work(
        run_seconds=scaling,
        memory_gb=usage.peak_memory_gb,
        bytes_scanned=usage.bytes_scanned,
        kind=kind or ("query" if usage.bytes_scanned > 0 else "batch"),
        scaling_note="measured " + scaling.describe(),
    )
    machine = _here_of(here_per_hour, cores)
    wanted = _wanted(shapes)
    costs: list[ShapeCost] = []
    for shape in wanted:
        if shape == "here":
            if machine is not None:
                # This machine's run is measured, not scaled: the same seconds.
                measured = Work(
                    run_seconds=lambda _c: (usage.seconds, usage.seconds, usage.seconds),
                    memory_gb=0.0,
                    kind=work.kind,
                    scaling_note="as measured",
                )
                costs.append(
                    quote_here(measured, machine.price.usd_per_hour, machine.price.assumption, cores, None)
                )
            continue
        cost = _quote(shape, prices, work, _units(shape, prices, cores, work.memory_gb), runs_per_month, 1)
        costs.append(_monthly(cost, runs_per_month))
    return costs


def _wanted(shapes: Iterable[str] | None) -> list[str]:
    wanted = list(SHAPES if shapes is None else shapes)
    unknown = [s for s in wanted if s not in SHAPES]
    if unknown:
        raise ValueError(f"unknown shape(s) {unknown}; known: {', '.join(SHAPES)}")
    return wanted


def _units(shape: str, prices: PriceTable, vcpu: float, memory_gb: float) -> int:
    if shape.startswith("emr-") and shape != "emr-serverless":
        return emr_units(prices, vcpu, memory_gb)
    if shape == "emr-serverless":
        return serverless_units(prices, vcpu, memory_gb)
    if shape.startswith("glue"):
        return glue_units(prices, vcpu, memory_gb)
    return 0


def _quote(
    shape: str, prices: PriceTable, work: Work, units: int, runs_per_month: float, concurrency: int
) -> ShapeCost:
    if shape == "emr-transient-spot":
        return quote_emr(prices, work, units, spot=True)
    if shape == "emr-transient":
        return quote_emr(prices, work, units, spot=False)
    if shape == "emr-standing":
        return quote_standing(prices, work, units, runs_per_month=runs_per_month, concurrency=concurrency)
    if shape == "emr-serverless":
        return quote_serverless(prices, work, units)
    if shape == "glue":
        return quote_glue(prices, work, units, flex=False)
    if shape == "glue-flex":
        return quote_glue(prices, work, units, flex=True)
    if shape == "athena":
        return quote_athena(prices, work)
    raise ValueError(f"no quote for shape {shape!r}")


def _monthly(cost: ShapeCost, runs_per_month: float) -> ShapeCost:
    if cost.usd_per_month is not None:
        return cost
    return replace(cost, usd_per_month=cost.usd * runs_per_month)


def _max_units(shape: str, prices: PriceTable) -> int:
    if shape == "emr-serverless":
        s = prices.shapes.serverless
        return max(1, (s.max_vcpu - s.driver_vcpu) // s.executor_vcpu)
    if shape.startswith("glue"):
        return prices.shapes.glue.max_workers
    return prices.shapes.emr.max_nodes


def _counted(cost: ShapeCost, job: JobProfile) -> float:
    """Seconds that count toward the deadline: start-up only when the job arrives unpredictably."""
    return cost.seconds if job.arrival == "unpredictable" else cost.run_seconds


def _smallest_meeting(quote: Callable[[int], ShapeCost], low: int, high: int, job: JobProfile) -> ShapeCost:
    """The smallest size in ``low..high`` whose counted seconds meet the deadline (run time falls
    as size grows), or the largest size, rejected, when none does."""
    deadline = job.deadline
    assert deadline is not None
    largest = quote(high)
    if _counted(largest, job) > deadline:
        return largest.rejected(
            f"misses the {deadline:,.0f} s deadline even at its largest ({largest.size}: "
            f"{_counted(largest, job):,.0f} s)"
        )
    while low < high:
        middle = (low + high) // 2
        if _counted(quote(middle), job) <= deadline:
            high = middle
        else:
            low = middle + 1
    return quote(low)


def price_job(
    job: JobProfile,
    prices: PriceTable,
    here: HereMachine | None = None,
    shapes: Iterable[str] | None = None,
) -> list[ShapeCost]:
    """What one run of ``job`` costs on each shape, each at the smallest size that holds its memory
    and meets its deadline (without a deadline: its reference cores), with every limit checked:
    deadline, start latency, capacity, memory, Flex only when not urgent, Athena only for queries,
    and the budget per run. ``here`` is priced only when given."""
    work = Work(
        run_seconds=job.run_seconds,
        memory_gb=job.peak_memory_gb,
        bytes_scanned=job.bytes_scanned,
        kind=job.kind,
        scaling_note=job.describe_scaling(),
    )
    costs = []
    for shape in _wanted(shapes):
        if shape == "here":
            if here is not None:
                cost = quote_here(
                    work, here.price.usd_per_hour, here.price.assumption, here.cores, here.memory_gb
                )
                costs.append(_limits(_deadline(cost, job), job))
            continue
        if shape == "athena":
            athena = _monthly(quote_athena(prices, work), job.runs_per_month)
            costs.append(_limits(_deadline(athena, job), job))
            continue

        def quote(units: int, shape: str = shape) -> ShapeCost:
            cost = _quote(shape, prices, work, units, job.runs_per_month, job.concurrency)
            return _monthly(cost, job.runs_per_month)

        floor = _units(shape, prices, 0.0, job.peak_memory_gb)
        ceiling = max(floor, _max_units(shape, prices))
        if job.deadline is None:
            cost = quote(max(floor, _units(shape, prices, job.cores, job.peak_memory_gb)))
        else:
            cost = _smallest_meeting(quote, floor, ceiling, job)
        costs.append(_limits(cost, job))
    return costs


def _deadline(cost: ShapeCost, job: JobProfile) -> ShapeCost:
    if job.deadline is not None and _counted(cost, job) > job.deadline:
        return cost.rejected(f"takes {_counted(cost, job):,.0f} s; the deadline is {job.deadline:,.0f} s")
    return cost


def _limits(cost: ShapeCost, job: JobProfile) -> ShapeCost:
    if cost.shape == "glue-flex" and job.urgent:
        cost = cost.rejected("the job is urgent; Flex capacity and start are not guaranteed")
    waits = job.start_latency is not None and job.arrival == "unpredictable"
    if waits and job.start_latency is not None and cost.start_seconds > job.start_latency:
        cost = cost.rejected(
            f"starts in {cost.start_seconds:,.0f} s; the job must start within {job.start_latency:,.0f} s"
        )
    if job.budget is not None and cost.usd > job.budget:
        cost = cost.rejected(f"costs ${cost.usd:,.4f} a run; the budget is ${job.budget:,.4f}")
    return cost


def cheapest(costs: Iterable[ShapeCost]) -> ShapeCost | None:
    """The feasible cost with the lowest monthly (else per-run) figure."""
    feasible = [c for c in costs if c.feasible]
    if not feasible:
        return None
    return min(feasible, key=lambda c: (c.usd_per_month if c.usd_per_month is not None else c.usd, c.usd))

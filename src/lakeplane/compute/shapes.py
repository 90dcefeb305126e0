"""What one run costs on each shape, at a given size: the arithmetic of each AWS bill.

Each ``quote_*`` function prices a piece of work on one shape with a given number of units (EMR
worker nodes, EMR Serverless executors, Glue workers) and states every figure it used. Sizing (how
many units) is the caller's: :mod:`lakeplane.compute.costs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from lakeplane.compute.jobs import SecondsAt
from lakeplane.compute.prices import GB, PriceTable

#: Every shape a run is priced on, in the order reports list them.
SHAPES = (
    "here",
    "emr-transient-spot",
    "emr-transient",
    "emr-standing",
    "emr-serverless",
    "glue",
    "glue-flex",
    "athena",
)


@dataclass(frozen=True)
class ShapeCost:
    """What one run costs on one shape, and why.

    Attributes:
        shape: one of :data:`SHAPES`.
        usd: US dollars per run.
        seconds: wall seconds on that shape, start-up included.
        assumptions: each figure used, stated in words.
        feasible: whether the shape can run it within the job's limits.
        why_not: the limit it breaks, when not feasible.
        start_seconds: the start-up part of ``seconds``.
        usd_per_month: the monthly cost at the job's runs per month (a standing cluster: its month).
        size: the capacity priced, in words (``1 m6g.xlarge + 3 r6g.2xlarge core + 9 task``).
        vcpu: worker vCPUs the run gets.
        seconds_low: the low end of the run-time estimate (start-up included).
        seconds_high: the high end.
    """

    shape: str
    usd: float
    seconds: float
    assumptions: tuple[str, ...] = ()
    feasible: bool = True
    why_not: str | None = None
    start_seconds: float = 0.0
    usd_per_month: float | None = None
    size: str = ""
    vcpu: float = 0.0
    seconds_low: float = 0.0
    seconds_high: float = 0.0
    units: int = field(default=0, compare=False)

    @property
    def run_seconds(self) -> float:
        return self.seconds - self.start_seconds

    def rejected(self, why: str) -> ShapeCost:
        """This cost, marked infeasible because of ``why`` (the first reason found is kept)."""
        return self if not self.feasible else replace(self, feasible=False, why_not=why)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "usd": round(self.usd, 6),
            "usd_per_month": None if self.usd_per_month is None else round(self.usd_per_month, 2),
            "seconds": round(self.seconds, 1),
            "seconds_low": round(self.seconds_low, 1),
            "seconds_high": round(self.seconds_high, 1),
            "start_seconds": round(self.start_seconds, 1),
            "size": self.size,
            "vcpu": self.vcpu,
            "feasible": self.feasible,
            "why_not": self.why_not,
            "assumptions": list(self.assumptions),
        }


@dataclass(frozen=True)
class Work:
    """The work being priced: run time by vCPUs, the memory it holds, what a query scans."""

    run_seconds: SecondsAt
    memory_gb: float
    bytes_scanned: float = 0.0
    kind: str = "batch"
    scaling_note: str = ""


def _timed(work: Work, vcpu: float, stretch: float = 1.0) -> tuple[float, float, float]:
    estimate, low, high = work.run_seconds(vcpu)
    return estimate * stretch, low * stretch, high * stretch


def _run_note(work: Work, vcpu: float, run: float) -> str:
    return f"runs {run:,.0f} s on {vcpu:g} worker vCPUs ({work.scaling_note})"


def emr_units(prices: PriceTable, vcpu: float, memory_gb: float) -> int:
    """Worker nodes holding ``vcpu`` vCPUs and ``memory_gb`` of executor memory."""
    c = prices.shapes.emr
    node = prices.instance(c.node)
    by_memory = math.ceil(memory_gb / (node.memory_gb * c.usable_memory_fraction))
    return max(1, math.ceil(vcpu / node.vcpu), by_memory)


def quote_emr(prices: PriceTable, work: Work, workers: int, *, spot: bool) -> ShapeCost:
    """A transient EMR on EC2 cluster: one primary, core nodes On-Demand, task nodes Spot
    (``spot``) or On-Demand, each billed per second with the EMR uplift from bootstrap to end."""
    c = prices.shapes.emr
    node, primary = prices.instance(c.node), prices.instance(c.primary)
    core = min(workers, max(c.min_core, math.ceil(workers * c.core_fraction)))
    task = workers - core
    vcpu = workers * node.vcpu
    stretch = 1 + c.spot_rework_fraction if spot and task else 1.0
    run, low, high = _timed(work, vcpu, stretch)
    primary_hour = primary.on_demand + primary.emr
    core_hour = node.on_demand + node.emr
    task_ec2 = prices.spot_hourly(node.name) if spot else node.on_demand
    task_hour = task_ec2 + node.emr
    hourly = primary_hour + core * core_hour + task * task_hour
    billed = max(c.billing_minimum_seconds, c.bootstrap_seconds + run)
    usd = hourly * billed / 3600
    market = "Spot" if spot else "On-Demand"
    assumptions = [
        f"cluster: 1 {primary.name} primary + {core} {node.name} core On-Demand + {task} {node.name} "
        f"task {market} ({vcpu} worker vCPUs, {workers * node.memory_gb:,.0f} GB)",
        f"primary ${primary.on_demand:.4f} + ${primary.emr:.4f} EMR per hour; core "
        f"${node.on_demand:.4f} + ${node.emr:.4f} EMR per hour",
        _run_note(work, vcpu, run / stretch),
        f"billed per second with a {c.billing_minimum_seconds:.0f} s minimum: "
        f"{c.bootstrap_seconds:.0f} s bootstrap + {run:,.0f} s run = {billed:,.0f} s at "
        f"${hourly:.4f}/h = ${usd:.4f}",
    ]
    if spot and task:
        discount = prices.spot_discount.get(node.family, 0.0)
        assumptions.insert(
            2,
            f"task ${task_ec2:.4f} Spot (On-Demand ${node.on_demand:.4f} less the typical "
            f"{discount:.0%} {node.family} Spot saving) + ${node.emr:.4f} EMR per hour; Spot "
            f"interruptions rerun tasks: +{c.spot_rework_fraction:.0%} run time",
        )
    elif task:
        assumptions.insert(2, f"task ${node.on_demand:.4f} + ${node.emr:.4f} EMR per hour")
    cost = ShapeCost(
        shape="emr-transient-spot" if spot else "emr-transient",
        usd=usd,
        seconds=c.bootstrap_seconds + run,
        seconds_low=c.bootstrap_seconds + low,
        seconds_high=c.bootstrap_seconds + high,
        start_seconds=c.bootstrap_seconds,
        assumptions=tuple(assumptions),
        size=f"1 {primary.name} + {core} {node.name} core + {task} {node.name} task {market}",
        vcpu=vcpu,
        units=workers,
    )
    if workers > c.max_nodes:
        cost = cost.rejected(f"needs {workers} nodes; the fleet is capped at {c.max_nodes}")
    return cost


def quote_standing(
    prices: PriceTable, work: Work, workers: int, *, runs_per_month: float, concurrency: int = 1
) -> ShapeCost:
    """A standing EMR cluster, all On-Demand, paid every hour of the month; each run carries its
    share of the month."""
    c = prices.shapes.emr
    node, primary = prices.instance(c.node), prices.instance(c.primary)
    vcpu = workers * node.vcpu
    run, low, high = _timed(work, vcpu)
    # The runs of a month must fit in the cluster's month: one run's size per run going at once.
    busy = runs_per_month * run / (prices.shapes.hours_per_month * 3600)
    concurrency = max(concurrency, math.ceil(busy))
    nodes = workers * concurrency
    hourly = primary.on_demand + primary.emr + nodes * (node.on_demand + node.emr)
    month = hourly * prices.shapes.hours_per_month
    usd = month / max(runs_per_month, 1e-9)
    return ShapeCost(
        shape="emr-standing",
        usd=usd,
        usd_per_month=month,
        seconds=run,
        seconds_low=low,
        seconds_high=high,
        assumptions=(
            f"a standing cluster of 1 {primary.name} + {nodes} {node.name} On-Demand"
            + (f" ({workers} per run x {concurrency} runs at once)" if concurrency > 1 else "")
            + f"; the month's runs keep {busy:,.2f} runs' worth of it busy on average",
            f"${hourly:.4f}/h (EC2 + EMR uplift) x {prices.shapes.hours_per_month:g} h a month = "
            f"${month:,.2f} a month, paid whether busy or idle",
            f"each of {runs_per_month:g} runs a month carries 1/{runs_per_month:g} of it: ${usd:.4f}",
            _run_note(work, vcpu, run),
        ),
        size=f"1 {primary.name} + {nodes} {node.name} On-Demand, always on",
        vcpu=vcpu,
        units=workers,
    )


def serverless_units(prices: PriceTable, vcpu: float, memory_gb: float) -> int:
    """Executors holding ``vcpu`` vCPUs and ``memory_gb``, at least the minimum that starts."""
    c = prices.shapes.serverless
    by_memory = math.ceil(memory_gb / c.executor_max_memory_gb)
    return max(c.min_executors, math.ceil(vcpu / c.executor_vcpu), by_memory, 1)


def quote_serverless(prices: PriceTable, work: Work, executors: int) -> ShapeCost:
    """EMR Serverless: a driver and ``executors`` workers, per vCPU-hour and GB-hour from worker
    start to end, per second with a 1-minute minimum."""
    c = prices.shapes.serverless
    rate = prices.serverless_rate()
    per_executor_gb = work.memory_gb / executors if executors else 0.0
    executor_gb = min(c.executor_max_memory_gb, max(c.executor_min_memory_gb, math.ceil(per_executor_gb)))
    executor_vcpu = executors * c.executor_vcpu
    vcpu = c.driver_vcpu + executor_vcpu
    memory = c.driver_memory_gb + executors * executor_gb
    run, low, high = _timed(work, executor_vcpu)
    billed = max(c.billing_minimum_seconds, c.billed_start_seconds + run)
    hourly = vcpu * rate.vcpu_hour + memory * rate.gb_hour
    usd = hourly * billed / 3600
    cost = ShapeCost(
        shape="emr-serverless",
        usd=usd,
        seconds=c.start_seconds + run,
        seconds_low=c.start_seconds + low,
        seconds_high=c.start_seconds + high,
        start_seconds=c.start_seconds,
        assumptions=(
            f"{c.architecture}: driver {c.driver_vcpu} vCPU/{c.driver_memory_gb:g} GB + {executors} "
            f"executors of {c.executor_vcpu} vCPU/{executor_gb:g} GB = {vcpu} vCPU, {memory:,.0f} GB "
            f"(at least {c.min_executors} executors start; each within the free ephemeral storage)",
            f"{vcpu} x ${rate.vcpu_hour} + {memory:,.0f} GB x ${rate.gb_hour} = ${hourly:.4f}/h",
            _run_note(work, executor_vcpu, run),
            f"{c.start_seconds:.0f} s to start, of which {c.billed_start_seconds:.0f} s billed; "
            f"{billed:,.0f} s billed (1-minute minimum) = ${usd:.4f}",
        ),
        size=f"{executors} executors x {c.executor_vcpu} vCPU/{executor_gb:g} GB + driver",
        vcpu=executor_vcpu,
        units=executors,
    )
    if vcpu > c.max_vcpu:
        cost = cost.rejected(f"needs {vcpu} vCPUs; the account's quota is {c.max_vcpu}")
    return cost


def glue_units(prices: PriceTable, vcpu: float, memory_gb: float) -> int:
    """Workers (one of them the driver) holding ``vcpu`` executor vCPUs and ``memory_gb``."""
    g = prices.glue
    executors = max(math.ceil(vcpu / g.dpu_vcpu), math.ceil(memory_gb / g.dpu_memory_gb), 1)
    return max(g.minimum_workers, 1 + executors)


def quote_glue(prices: PriceTable, work: Work, workers: int, *, flex: bool) -> ShapeCost:
    """An AWS Glue Spark job on G.1X workers (1 DPU each, one is the driver), per DPU-hour,
    per second with the 1-minute minimum."""
    g, c = prices.glue, prices.shapes.glue
    workers = max(g.minimum_workers, workers)
    executor_vcpu = (workers - 1) * g.dpu_vcpu
    run, low, high = _timed(work, executor_vcpu)
    billed = max(g.minimum_seconds, run)
    rate = g.flex_dpu_hour if flex else g.dpu_hour
    usd = workers * rate * billed / 3600
    start = c.flex_start_seconds if flex else c.start_seconds
    cost = ShapeCost(
        shape="glue-flex" if flex else "glue",
        usd=usd,
        seconds=start + run,
        seconds_low=start + low,
        seconds_high=start + high,
        start_seconds=start,
        assumptions=(
            f"{workers} {c.worker} workers (1 DPU = {g.dpu_vcpu} vCPU, {g.dpu_memory_gb:g} GB; one is "
            f"the driver; at least {g.minimum_workers})",
            _run_note(work, executor_vcpu, run),
            f"{workers} DPU x ${rate}/DPU-hour{' (Flex)' if flex else ''} x {billed:,.0f} s billed "
            f"(1-minute minimum) = ${usd:.4f}",
            f"{start:.0f} s to start"
            + (" (Flex waits for spare capacity; its start is not guaranteed)" if flex else ""),
        ),
        size=f"{workers} x {c.worker}" + (" Flex" if flex else ""),
        vcpu=executor_vcpu,
        units=workers,
    )
    if workers > c.max_workers:
        cost = cost.rejected(f"needs {workers} workers; a job may hold {c.max_workers}")
    return cost


def quote_athena(prices: PriceTable, work: Work) -> ShapeCost:
    """Amazon Athena: per TB scanned (rounded up to the MB, 10 MB minimum per query)."""
    a, c = prices.athena, prices.shapes.athena
    run = work.bytes_scanned / c.scan_bytes_per_second
    usd = a.query_usd(work.bytes_scanned)
    cost = ShapeCost(
        shape="athena",
        usd=usd,
        seconds=c.start_seconds + run,
        seconds_low=c.start_seconds + run,
        seconds_high=c.start_seconds + run,
        start_seconds=c.start_seconds,
        assumptions=(
            f"{work.bytes_scanned / GB:,.3f} GB scanned, billed at least {a.minimum_mb:g} MB, at "
            f"${a.per_tb}/TB = ${usd:.6f}",
            f"reads {c.scan_bytes_per_second / GB:,.2f} GB/s once running: {run:,.1f} s, after "
            f"{c.start_seconds:g} s of queueing and planning",
        ),
        size="serverless SQL",
    )
    if work.kind != "query":
        return cost.rejected("Athena runs SQL queries; this is a batch job")
    if work.bytes_scanned <= 0:
        return cost.rejected("no bytes scanned were measured")
    if run > c.max_seconds:
        return cost.rejected(f"would run {run:,.0f} s; Athena's query timeout is {c.max_seconds:.0f} s")
    return cost


def quote_here(
    work: Work, per_hour: float, assumption: str, cores: float, memory_gb: float | None
) -> ShapeCost:
    """This machine for the run's wall time at its hourly price."""
    run, low, high = _timed(work, cores)
    usd = per_hour * run / 3600
    cost = ShapeCost(
        shape="here",
        usd=usd,
        seconds=run,
        seconds_low=low,
        seconds_high=high,
        assumptions=(
            assumption,
            _run_note(work, cores, run),
            f"the whole machine for the run: {run:,.0f} s x ${per_hour:.4f}/h = ${usd:.6f}",
        ),
        size=f"this machine, {cores:g} cores",
        vcpu=cores,
    )
    if memory_gb is not None and work.memory_gb > memory_gb:
        cost = cost.rejected(f"needs {work.memory_gb:,.0f} GB; this machine has {memory_gb:,.0f} GB")
    return cost

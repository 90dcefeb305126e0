"""Which engine and shape runs a job: chosen in config, per run (``--engine``), or by input size.

With ``engine.type: auto`` a job whose input (the bytes of the data files pyiceberg planned for it,
from the catalog's file statistics) is below ``placement.spark_above`` runs on embedded DuckDB;
above it on Spark ``local[N]``; above ``placement.cluster_above`` on the configured cluster (or a
transient one). Every choice carries the reason ``lakeplane run`` prints.

With ``placement.by_cost: true`` the choice among the shapes lakeplane can run here (embedded
DuckDB, Spark ``local[N]``, the Spark cluster) is the advisor's: each shape's time is estimated from
the job's input and the shape's cores at a stated throughput per core, its cost from what this
machine's cores cost an hour (``cost.here``, or the price table's instance like it), and the
cheapest shape that meets ``placement.deadline`` and ``placement.budget`` is chosen. Where the job
has run on an engine often enough for a scaling model (:mod:`lakeplane.compute.scaling`, fitted
from the run store), that engine's time is the model's prediction instead, and the deadline is
checked against the high end of its 90 % interval. The size
thresholds still bound what one machine is trusted with (nothing above ``cluster_above`` runs on
DuckDB or ``local[N]``), and the reason names what the thresholds alone would have chosen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeplane.compute.here import lake_prices, machine_cores, this_machine
from lakeplane.config import SPARK_MASTER, LakeConfig
from lakeplane.errors import ConfigError
from lakeplane.units import human_bytes, parse_size

if TYPE_CHECKING:
    from lakeplane.compute.scaling import ScalingModel

ENGINE_CHOICES = "duckdb, spark, spark-cluster, local[N], spark://host:port or auto"


@dataclass(frozen=True)
class Placement:
    """Where one job runs, and why."""

    engine: str
    shape: str
    reason: str
    input_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def engine_overrides(choice: str) -> dict[str, Any]:
    """The config overrides that ``--engine CHOICE`` stands for.

    Raises:
        ConfigError: not an engine or Spark master lakeplane knows.
    """
    if choice in ("duckdb", "spark", "auto"):
        return {"engine": {"type": choice}}
    if SPARK_MASTER.match(choice):
        return {"engine": {"type": "spark"}, "spark": {"master": choice}}
    raise ConfigError(f"--engine {choice}: expected {ENGINE_CHOICES}", key="engine")


def size_bytes(text: str) -> int:
    """A ``placement`` threshold in bytes.

    Raises:
        ConfigError: it is not a size.
    """
    try:
        return parse_size(text)
    except ValueError:
        raise ConfigError(f"'{text}' is not a size (e.g. 8GB, 512MB)", key="placement") from None


def place(
    config: LakeConfig,
    input_bytes: int | None,
    project_dir: Path | None = None,
    fits: Mapping[str, ScalingModel] | None = None,
) -> Placement:
    """The engine for a job reading ``input_bytes`` under ``config`` (a relative ``cost.prices``
    is below ``project_dir``); ``fits`` are the job's scaling models by engine, for placing by cost."""
    engine = config.engine.type
    spark = config.spark
    if engine == "duckdb":
        return Placement("duckdb", "duckdb", "engine.type is duckdb", input_bytes)
    if engine == "spark":
        return Placement("spark", spark.master, "engine.type is spark", input_bytes)
    by_size = _place_by_size(config, input_bytes)
    if config.placement.by_cost and input_bytes is not None:
        return place_by_cost(config, input_bytes, by_size, project_dir, fits)
    return by_size


def _place_by_size(config: LakeConfig, input_bytes: int | None) -> Placement:
    spark = config.spark
    size = input_bytes or 0
    shown = human_bytes(size)
    spark_above, cluster_above = (
        size_bytes(config.placement.spark_above),
        size_bytes(config.placement.cluster_above),
    )
    if size < spark_above:
        return Placement(
            "duckdb",
            "duckdb",
            f"input {shown} < placement.spark_above {config.placement.spark_above}: fits one machine",
            input_bytes,
        )
    if size < cluster_above:
        cores = os.cpu_count() or 1
        return Placement(
            "spark",
            f"local[{cores}]",
            f"input {shown} >= placement.spark_above {config.placement.spark_above}",
            input_bytes,
        )
    master = spark.master if not spark.master.startswith("local") else "spark-cluster"
    return Placement(
        "spark",
        master,
        f"input {shown} >= placement.cluster_above {config.placement.cluster_above}",
        input_bytes,
    )


# -- placement by cost ---------------------------------------------------------------------------
#: Bytes per second per core each engine processes, from the reference workload measured on this
#: project's machine (DESIGN.md: 1.08 GB of NDJSON deduplicated and aggregated on 2 cores):
#: DuckDB in 5.4 s, PySpark ``local[2]`` in 44 s.
DUCKDB_BYTES_PER_CORE_S = 1.08 * 1024**3 / 5.4 / 2
SPARK_BYTES_PER_CORE_S = 1.08 * 1024**3 / 44 / 2
#: Seconds before Spark does any work: the JVM of ``local[N]`` (6-8 s measured), and a transient
#: standalone cluster's master and workers (a stated estimate).
SPARK_START_S = 8.0
CLUSTER_START_S = 20.0
REFERENCE = "reference throughput"


@dataclass(frozen=True)
class ShapeEstimate:
    """One local shape's estimated time and cost for a job."""

    engine: str
    shape: str
    cores: int
    seconds: float
    usd: float
    meets_deadline: bool
    within_budget: bool
    #: Where the time comes from: the job's own scaling model, or the reference throughput.
    basis: str = REFERENCE
    #: The high end of the time's interval (the time itself for a reference estimate).
    high: float = 0.0

    def describe(self) -> str:
        shown = f"{self.seconds:.1f}" if self.seconds < 10 else f"{self.seconds:.0f}"
        up_to = f" (up to {self.high:.0f} s)" if self.high > self.seconds * 1.05 else ""
        by = f", by {self.basis}" if self.basis != REFERENCE else ""
        return f"{self.shape} ~{shown} s{up_to} on {self.cores} cores, {usd(self.usd)}{by}"


def usd(amount: float) -> str:
    """Dollars to four places, or six below a cent (a small job's cost is a fraction of one)."""
    return f"${amount:.6f}" if 0 < amount < 0.01 else f"${amount:.4f}"


def local_estimates(
    config: LakeConfig,
    input_bytes: int,
    usd_per_core_hour: float,
    fits: Mapping[str, ScalingModel] | None = None,
) -> list[ShapeEstimate]:
    """The time and cost of a job reading ``input_bytes`` on each shape lakeplane can run here: by
    the job's scaling model on an engine in ``fits``, else at the reference throughput.

    DuckDB and ``local[N]`` run on this machine, so they are offered only below
    ``placement.cluster_above``; the cluster's workers are priced at this machine's price per core.
    """
    machine = machine_cores()
    cluster_cores = config.spark.workers * config.spark.worker_cores
    cluster = config.spark.master if not config.spark.master.startswith("local") else "spark-cluster"
    shapes = [("spark", cluster, cluster_cores, CLUSTER_START_S, SPARK_BYTES_PER_CORE_S)]
    if input_bytes < size_bytes(config.placement.cluster_above):
        duckdb_cores = min(config.engine.threads or machine, machine)
        shapes[:0] = [
            ("duckdb", "duckdb", duckdb_cores, 0.0, DUCKDB_BYTES_PER_CORE_S),
            ("spark", f"local[{machine}]", machine, SPARK_START_S, SPARK_BYTES_PER_CORE_S),
        ]
    deadline, budget = config.placement.deadline, config.placement.budget
    found = []
    for engine, shape, cores, start_s, rate in shapes:
        model = (fits or {}).get(engine)
        if model is not None:
            predicted = model.predict(input_bytes, cores)
            seconds, high = predicted.seconds, predicted.high
            basis = f"its scaling model from {model.runs} runs on {engine}" + (
                ", extrapolated" if predicted.extrapolated else ""
            )
        else:
            seconds = high = start_s + input_bytes / (rate * cores)
            basis = REFERENCE
        usd = usd_per_core_hour * cores * seconds / 3600
        found.append(
            ShapeEstimate(
                engine,
                shape,
                cores,
                seconds,
                usd,
                deadline is None or high <= deadline,
                budget is None or usd <= budget,
                basis,
                high,
            )
        )
    return found


def place_by_cost(
    config: LakeConfig,
    input_bytes: int,
    by_size: Placement,
    project_dir: Path | None = None,
    fits: Mapping[str, ScalingModel] | None = None,
) -> Placement:
    """The cheapest local shape for ``input_bytes`` that meets ``placement.deadline`` and
    ``placement.budget``; with none, the fastest within the budget, else the fastest. The reason
    gives every shape's estimate, the runner-up, and the size thresholds' choice."""
    here = this_machine(config.cost, lake_prices(config.cost, project_dir))
    per_core = here.usd_per_hour / machine_cores()
    estimates = local_estimates(config, input_bytes, per_core, fits)
    meeting = sorted(
        (e for e in estimates if e.meets_deadline and e.within_budget), key=lambda e: (e.usd, e.seconds)
    )
    limits = _limits(config)
    if meeting:
        chosen = meeting[0]
        why = f"the cheapest shape that meets {limits}" if limits else "the cheapest shape"
    else:
        affordable = [e for e in estimates if e.within_budget]
        chosen = min(affordable or estimates, key=lambda e: e.seconds)
        why = f"no shape meets {limits}: the fastest {'within the budget' if affordable else 'of all'}"
    others = sorted((e for e in estimates if e is not chosen), key=lambda e: (e.usd, e.seconds))
    lost = [f"{e.describe()}{_shortfall(e, config)}" for e in others]
    reason = (
        f"by cost: {chosen.describe()}: {why} (input {human_bytes(input_bytes)}; "
        f"{here.assumption}; ${per_core:.4f} per core-hour; times at the {REFERENCE} unless a shape "
        "names its scaling model)"
        + (f"; runner-up {lost[0]}" if lost else "")
        + (f"; also {'; '.join(lost[1:])}" if len(lost) > 1 else "")
        + f"; the size thresholds alone would choose {by_size.shape}"
    )
    return Placement(chosen.engine, chosen.shape, reason, input_bytes)


def _limits(config: LakeConfig) -> str:
    deadline, budget = config.placement.deadline, config.placement.budget
    parts = ([f"the deadline {deadline:.0f} s"] if deadline is not None else []) + (
        [f"the budget {usd(budget)}"] if budget is not None else []
    )
    return " and ".join(parts)


def _shortfall(estimate: ShapeEstimate, config: LakeConfig) -> str:
    missed = (
        [] if estimate.meets_deadline else [f"misses the deadline {config.placement.deadline:.0f} s"]
    ) + ([] if estimate.within_budget else [f"over the budget {usd(config.placement.budget or 0.0)}"])
    return f" ({', '.join(missed)})" if missed else ""

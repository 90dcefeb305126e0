"""Which engine and shape runs a job: chosen in config, per run (``--engine``), or by input size.

With ``engine.type: auto`` a job whose input (the bytes of the data files pyiceberg planned for it,
from the catalog's file statistics) is below ``placement.spark_above`` runs on embedded DuckDB;
above it on Spark ``local[N]``; above ``placement.cluster_above`` on the configured cluster (or a
transient one). Every choice carries the reason ``lakeplane run`` prints.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from lakeplane.config import SPARK_MASTER, LakeConfig
from lakeplane.errors import ConfigError

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
    """``8GB`` → bytes (binary units)."""
    value = text.strip().upper().replace("IB", "B")
    for unit, power in (("TB", 4), ("GB", 3), ("MB", 2), ("KB", 1), ("B", 0)):
        if value.endswith(unit):
            try:
                return int(float(value[: -len(unit)]) * 1024**power)
            except ValueError:
                break
    raise ConfigError(f"'{text}' is not a size (e.g. 8GB, 512MB)", key="placement")


def place(config: LakeConfig, input_bytes: int | None) -> Placement:
    """The engine for a job reading ``input_bytes`` under ``config``."""
    engine = config.engine.type
    spark = config.spark
    if engine == "duckdb":
        return Placement("duckdb", "duckdb", "engine.type is duckdb", input_bytes)
    if engine == "spark":
        return Placement("spark", spark.master, "engine.type is spark", input_bytes)
    size = input_bytes or 0
    shown = human(size)
    spark_above, cluster_above = size_bytes(config.placement.spark_above), size_bytes(
        config.placement.cluster_above)
    if size < spark_above:
        return Placement("duckdb", "duckdb", f"input {shown} < placement.spark_above "
                         f"{config.placement.spark_above}: fits one machine", input_bytes)
    if size < cluster_above:
        cores = os.cpu_count() or 1
        return Placement("spark", f"local[{cores}]", f"input {shown} >= placement.spark_above "
                         f"{config.placement.spark_above}", input_bytes)
    master = spark.master if not spark.master.startswith("local") else "spark-cluster"
    return Placement("spark", master, f"input {shown} >= placement.cluster_above "
                     f"{config.placement.cluster_above}", input_bytes)


def human(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1024 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"

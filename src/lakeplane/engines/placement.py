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
from lakeplane.units import human_bytes, parse_size

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


def place(config: LakeConfig, input_bytes: int | None) -> Placement:
    """The engine for a job reading ``input_bytes`` under ``config``."""
    engine = config.engine.type
    spark = config.spark
    if engine == "duckdb":
        return Placement("duckdb", "duckdb", "engine.type is duckdb", input_bytes)
    if engine == "spark":
        return Placement("spark", spark.master, "engine.type is spark", input_bytes)
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

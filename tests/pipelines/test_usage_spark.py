"""A Spark step's usage: the driver's JVM counted with the step's Python process, its executors
reported, and nothing counted twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakeplane.demo.generator import DayDrop
from lakeplane.engines.spark.cluster import TransientCluster
from lakeplane.lake import Lake
from lakeplane.pipelines.runner import RunOptions
from tests.conftest import DAY1, land_drop
from tests.pipelines.test_usage import CPU_TOLERANCE_S, assert_consistent

PIPELINE = "steps:\n  stats: {python: 'tests.pipelines.usage_steps:model_on_this_engine'}\n"
ON_LOCAL_2 = {"engine": {"type": "spark"}, "spark": {"master": "local[2]"}}


@pytest.mark.slow
def test_a_spark_step_counts_its_jvm_once(demo_lake: Lake, drops: dict[dt.date, DayDrop]) -> None:
    land_drop(demo_lake, drops[DAY1])
    for dataset in ("partner/impressions", "partner/clicks", "crm/campaigns"):
        demo_lake.ingest(dataset, DAY1)
    (demo_lake.project_dir / "pipelines" / "spark.yaml").write_text(PIPELINE)
    run = demo_lake.run_pipeline("spark", DAY1, RunOptions(overrides=ON_LOCAL_2))
    [stats] = demo_lake.run_record(run.run_id).attempts
    metrics = stats.metrics
    assert stats.state == "succeeded", stats.error
    assert metrics["engine"] == "local[2]" and metrics["cores"] == 2
    assert_consistent(metrics)
    # The driver's JVM (started, run, stopped within the step) is counted with the Python process.
    assert metrics["cpu_seconds"] > metrics["python_cpu_seconds"] + 1.0, metrics
    assert metrics["cpu_seconds"] <= 2 * metrics["seconds"] + CPU_TOLERANCE_S
    executors = metrics["spark_executors"]
    assert executors["count"] == 1 and executors["cores"] == 2 and executors["outside"] is False
    assert executors["memory_mb"] > 0 and executors["memory_gb_seconds"] > 0
    # The tasks' CPU ran in the JVM: part of the step's, not added to it.
    assert 0 < executors["cpu_seconds"] < metrics["cpu_seconds"] - metrics["python_cpu_seconds"]


@pytest.mark.slow
def test_executors_of_a_given_cluster_add_to_the_step(
    demo_lake: Lake, drops: dict[dt.date, DayDrop], tmp_path: Path
) -> None:
    """A cluster the step did not start (``spark.master: spark://...``): its executors are not
    processes of the step, so their CPU time and memory are read from the driver and added."""
    land_drop(demo_lake, drops[DAY1])
    for dataset in ("partner/impressions", "partner/clicks", "crm/campaigns"):
        demo_lake.ingest(dataset, DAY1)
    (demo_lake.project_dir / "pipelines" / "spark.yaml").write_text(PIPELINE)
    with TransientCluster(1, 1, "1g", tmp_path / "cluster") as cluster:
        spark = {"master": cluster.master_url, "worker_cores": 1, "worker_memory": "1g"}
        options = RunOptions(overrides={"engine": {"type": "spark"}, "spark": spark})
        run = demo_lake.run_pipeline("spark", DAY1, options)
    [stats] = demo_lake.run_record(run.run_id).attempts
    metrics = stats.metrics
    assert stats.state == "succeeded", stats.error
    executors = metrics["spark_executors"]
    assert executors["outside"] is True and executors["count"] == 1 and executors["cores"] == 1
    assert executors["memory_mb"] == 1024 + 384  # the heap and Spark's least overhead
    assert executors["cpu_seconds"] > 0 and executors["memory_gb_seconds"] > 0
    assert metrics["cores"] == 2, "one executor core and the driver's"
    assert_consistent(metrics)
    # The step's own processes (Python, the driver's JVM) plus the executors' tasks.
    assert metrics["cpu_seconds"] > metrics["python_cpu_seconds"] + executors["cpu_seconds"] + 0.5
    # An executor holds its memory for the whole job, far more than the driver's tree alone would add.
    assert metrics["memory_gb_seconds"] >= executors["memory_gb_seconds"]

"""A Spark step's usage: the driver's JVM counted with the step's Python process, its executors
reported, and nothing counted twice."""

from __future__ import annotations

import datetime as dt

import pytest

from lakeplane.demo.generator import DayDrop
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

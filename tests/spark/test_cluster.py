"""Transient clusters: born for a job, gone after it (success or failure), and a lost worker is routine."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from lakeplane.engines.spark import runtime
from lakeplane.engines.spark.cluster import TransientCluster
from lakeplane.errors import EngineError
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.runner import RunOptions
from tests.spark.conftest import DAY, processes_under

SPARK_CLUSTER = {
    "engine": {"type": "spark"},
    "spark": {"master": "spark-cluster", "workers": 2, "worker_memory": "1g"},
}


def table_rows(lake: Lake, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``, read by the embedded engine, in a stable order."""
    embedded = open_lake(lake.project_dir, {"engine": {"type": "duckdb"}})
    return sorted(tuple(r.values()) for r in embedded.query(f"SELECT * FROM {table}").to_pylist())


def test_a_job_on_spark_cluster_leaves_no_process_after_success(heavy_lake: Lake) -> None:
    lake = open_lake(heavy_lake.project_dir, SPARK_CLUSTER)
    tmp = lake.compute.job("x").temp_dir
    result = lake.run_model(lake.model("curated.per_campaign"), DAY, force=True)
    assert result.rows > 0 and result.engine == "spark-cluster"
    assert processes_under(tmp) == [], "daemons or executors outlived the job"
    assert runtime._active is None, "the job's driver was stopped with its cluster"


def test_a_failing_job_on_spark_cluster_leaves_no_process(heavy_lake: Lake) -> None:
    lake = open_lake(heavy_lake.project_dir, SPARK_CLUSTER)
    model = lake.project_dir / "models" / "curated" / "broken.sql"
    # Valid SQL that fails while running: ANSI mode refuses the cast on the executors.
    model.write_text("SELECT CAST(event_id AS INTEGER) AS n FROM processed.impressions")
    try:
        with pytest.raises(EngineError, match="on Spark"):
            lake.run_model(lake.model("curated.broken"), DAY)
    finally:
        model.unlink()
    assert processes_under(lake.compute.job("x").temp_dir) == []


def test_losing_a_worker_mid_job_gives_the_undisturbed_output(heavy_lake: Lake, tmp_path: Path) -> None:
    """Kill one of two workers (and its executor) while the job's tasks run, as a Spot reclaim would."""
    with TransientCluster(workers=2, cores=1, memory="1g", work_dir=tmp_path / "cluster") as cluster:
        lake = open_lake(
            heavy_lake.project_dir,
            {"engine": {"type": "spark"}, "spark": {"master": cluster.master_url, "worker_memory": "1g"}},
        )
        model = lake.model("curated.heavy")
        undisturbed = lake.run_model(model, DAY, force=True)
        expected = table_rows(lake, "curated.heavy")
        killed: list[float] = []

        def kill_when_tasks_run() -> None:
            """Kill worker 0 once a multi-task stage has had tasks running for a second."""
            deadline = time.monotonic() + 120
            busy_since: dict[int, float] = {}
            while time.monotonic() < deadline:
                session = runtime._active[1] if runtime._active else None
                tracker: Any = session.sparkContext.statusTracker() if session is not None else None
                for stage_id in tracker.getActiveStageIds() if tracker else []:
                    info = tracker.getStageInfo(stage_id)
                    if info and info.numTasks >= 2 and info.numActiveTasks >= 1:
                        first = busy_since.setdefault(stage_id, time.monotonic())
                        if time.monotonic() - first >= 1.0:
                            cluster.kill_worker(0)
                            killed.append(time.monotonic())
                            return
                time.sleep(0.1)

        killer = threading.Thread(target=kill_when_tasks_run)
        killer.start()
        disturbed = lake.run_model(model, DAY, force=True)
        killer.join()
        assert killed, "the worker was never killed: the job finished before tasks ran on both"
        assert cluster.alive_workers() <= 1 or cluster.worker_processes[0].poll() is not None
        assert disturbed.rows == undisturbed.rows
        assert table_rows(lake, "curated.heavy") == expected
        runtime.stop_driver()
    assert cluster.process_ids() == []


def test_a_pipeline_run_shares_one_transient_cluster_and_stops_it(heavy_lake: Lake) -> None:
    lake = open_lake(heavy_lake.project_dir, SPARK_CLUSTER)
    for name, column in (("by_country", "country"), ("by_device", "device")):
        (lake.project_dir / "models" / "curated" / f"{name}.sql").write_text(
            f"SELECT {column}, count(*) AS n FROM processed.impressions GROUP BY {column}"
        )
    (lake.project_dir / "pipelines" / "on_cluster.yaml").write_text(
        "steps:\n  by_country: {model: curated.by_country}\n  by_device: {model: curated.by_device}\n"
    )
    said: list[str] = []
    run = lake.run_pipeline("on_cluster", DAY, RunOptions(progress=said.append))
    record = lake.run_record(run.run_id)
    assert record.state == "succeeded", [(a.step, a.error) for a in record.attempts]
    masters = {a.metrics["engine"] for a in record.attempts}
    assert len(masters) == 1 and masters.pop().startswith("spark://127.0.0.1:"), "both steps on one cluster"
    assert any(line.startswith("spark-cluster: 2 workers at spark://") for line in said)
    assert said[-1] == "spark-cluster: stopped (0 processes left)"
    left = processes_under(lake.compute.job("x").temp_dir)
    assert left == [], [" ".join(psutil.Process(pid).cmdline())[:300] for pid in left]

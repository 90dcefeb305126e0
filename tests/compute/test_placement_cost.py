"""``engine.type: auto`` with ``placement.by_cost``: DuckDB or Spark by deadline and budget, and why."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from lakeplane.config import LakeConfig, load_config
from lakeplane.demo import telco
from lakeplane.engines.placement import (
    DUCKDB_BYTES_PER_CORE_S,
    SPARK_BYTES_PER_CORE_S,
    SPARK_START_S,
    local_estimates,
    place,
)
from lakeplane.lake import Lake, open_lake
from tests.conftest import DAY1, land_drop

GB = 1024**3
#: This machine at $0.20 an hour, 2 cores: $0.10 per core-hour.
PER_HOUR = 0.20


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Estimates are for a 2-core machine wherever the test runs."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


def config(tmp_path: Path, **placement: Any) -> LakeConfig:
    return load_config(
        tmp_path,
        {
            "engine": {"type": "auto", "threads": 1},
            "spark": {"master": "local[2]", "workers": 16, "worker_cores": 4},
            "placement": {"by_cost": True, **placement},
            "cost": {"here": {"per_hour": PER_HOUR}},
        },
    )


def test_estimates_by_hand(tmp_path: Path) -> None:
    """20 GB: DuckDB on 1 thread, Spark local[2] after its JVM start, a 64-core cluster after 20 s."""
    found = {e.shape: e for e in local_estimates(config(tmp_path), 20 * GB, PER_HOUR / 2)}
    duck = 20 * GB / DUCKDB_BYTES_PER_CORE_S  # 1.08 GB in 5.4 s on 2 cores: 100 MiB/s-ish per core
    assert found["duckdb"].seconds == pytest.approx(duck) == pytest.approx(20 * 5.4 * 2 / 1.08)
    assert found["duckdb"].usd == pytest.approx(0.10 * 1 * duck / 3600)
    local = SPARK_START_S + 20 * GB / (SPARK_BYTES_PER_CORE_S * 2)
    assert found["local[2]"].seconds == pytest.approx(local) == pytest.approx(8 + 20 * 44 / 1.08)
    assert found["spark-cluster"].seconds == pytest.approx(20 + 20 * 44 * 2 / 1.08 / 64)
    assert found["spark-cluster"].usd == pytest.approx(0.10 * 64 * found["spark-cluster"].seconds / 3600)


def test_no_deadline_cheapest_is_duckdb(tmp_path: Path) -> None:
    placed = place(config(tmp_path), 20 * GB)
    assert (placed.engine, placed.shape) == ("duckdb", "duckdb")
    assert placed.reason.startswith(
        "by cost: duckdb ~200 s on 1 cores, $0.005556: the cheapest shape (input 20.0 GB;"
    )
    assert "this machine costs $0.2000/h, as set in cost.here.per_hour" in placed.reason
    assert "runner-up local[2]" in placed.reason
    assert "the size thresholds alone would choose local[2]" in placed.reason  # 20 GB > spark_above 8GB


def test_a_tight_deadline_moves_the_job_to_the_cluster(tmp_path: Path) -> None:
    placed = place(config(tmp_path, deadline="2m"), 20 * GB)
    assert (placed.engine, placed.shape) == ("spark", "spark-cluster")
    assert placed.reason.startswith(
        "by cost: spark-cluster ~45 s on 64 cores, $0.0808: the cheapest shape that meets the deadline 120 s"
    )
    assert "runner-up duckdb ~200 s on 1 cores, $0.005556 (misses the deadline 120 s)" in placed.reason


def test_a_budget_below_the_cluster_keeps_duckdb_and_says_the_deadline_is_missed(tmp_path: Path) -> None:
    placed = place(config(tmp_path, deadline="2m", budget=0.01), 20 * GB)
    assert placed.engine == "duckdb"
    assert (
        "no shape meets the deadline 120 s and the budget $0.0100: the fastest within the budget"
        in placed.reason
    )
    assert "spark-cluster ~45 s on 64 cores, $0.0808 (over the budget $0.0100)" in placed.reason
    assert (
        "local[2] ~823 s on 2 cores, $0.0457 (misses the deadline 120 s, over the budget $0.0100)"
        in placed.reason
    )


def test_above_cluster_above_only_the_cluster_is_offered(tmp_path: Path) -> None:
    placed = place(config(tmp_path, cluster_above="10GB"), 20 * GB)
    assert placed.shape == "spark-cluster" and "runner-up" not in placed.reason


def test_without_by_cost_the_size_thresholds_decide(tmp_path: Path) -> None:
    plain = load_config(tmp_path, {"engine": {"type": "auto"}, "placement": {"deadline": "1m", "budget": 0}})
    placed = place(plain, 20 * GB)
    assert placed.shape == "local[2]" and placed.reason == "input 20.0 GB >= placement.spark_above 8GB"
    assert place(config(tmp_path), None).reason.startswith("input 0 B < placement.spark_above")


@pytest.mark.slow
def test_a_pipeline_run_records_why_in_its_step_metrics(
    demo_lake: Lake, drops: dict[dt.date, Any], tmp_path: Path
) -> None:
    """A real nightly run placed by cost: each model step ran on DuckDB, its metrics say why."""
    land_drop(demo_lake, drops[DAY1])
    for dataset, files in telco.generate_day(tmp_path / "telco", DAY1, 500).items():
        demo_lake.land(dataset, files, DAY1)
    lake = open_lake(
        demo_lake.project_dir,
        {
            "engine": {"type": "auto"},
            "placement": {"by_cost": True, "deadline": "1h", "budget": 1.0},
            "cost": {"here": {"per_hour": PER_HOUR}},
        },
    )
    run = lake.run_record(lake.run_pipeline("nightly", DAY1).run_id)
    assert run.state == "succeeded"
    models = [a for a in run.attempts if a.step in ("daily_campaign_stats", "campaign_totals", "cell_daily")]
    assert len(models) == 3 and all(a.metrics["engine"] == "duckdb" for a in models)
    for attempt in models:
        assert attempt.metrics["placement"].startswith("by cost: duckdb")
        assert "meets the deadline 3600 s and the budget $1.0000" in attempt.metrics["placement"]

"""What each pipeline step costs: CPU time, vCPU-seconds, memory GB-seconds, bytes, measured on the
step's real process tree (a child that ended included, nothing counted twice)."""

from __future__ import annotations

import datetime as dt
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lakeplane.demo.generator import DayDrop
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.process_tree import MemoryWatchdog
from lakeplane.pipelines.store import Attempt
from lakeplane.pipelines.usage import BYTE_KEYS
from tests.conftest import DAY1, land_drop
from tests.pipelines.usage_steps import BURN_S, HOLD_MB, HOLD_S

USAGE_KEYS = (
    "seconds",
    "cpu_seconds",
    "vcpu_seconds",
    "memory_gb_seconds",
    "peak_memory_mb",
    "cores",
    *BYTE_KEYS,
)
#: CPU-time clock ticks and a sample's lag: what the figures may be off by.
CPU_TOLERANCE_S = 0.3


def project(tmp_path: Path, pipeline: str) -> Lake:
    root = tmp_path / "proj"
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "lakeplane.yaml").write_text("name: t\n")
    (root / "pipelines" / "p.yaml").write_text(pipeline)
    return open_lake(root)


def attempts(lake: Lake, pipeline: str, ds: dt.date = DAY1) -> dict[str, Attempt]:
    run = lake.run_record(lake.run_pipeline(pipeline, ds).run_id)
    return {a.step: a for a in run.attempts}


def assert_consistent(metrics: dict[str, Any]) -> None:
    """Every usage key present, and the figures bound by each other."""
    missing = [key for key in USAGE_KEYS if key not in metrics]
    assert not missing, f"missing {missing} in {metrics}"
    seconds, cores = metrics["seconds"], metrics["cores"]
    assert seconds > 0 and cores >= 1
    assert metrics["vcpu_seconds"] == pytest.approx(cores * seconds, abs=0.01)
    assert 0 <= metrics["cpu_seconds"] <= cores * seconds + CPU_TOLERANCE_S, metrics
    # Executors outside the step's processes hold memory of their own, not in its peak.
    executors = metrics.get("spark_executors") or {}
    elsewhere = executors["memory_gb_seconds"] if executors.get("outside") else 0.0
    peak_gb_seconds = metrics["peak_memory_mb"] / 1024 * seconds
    assert 0 < metrics["memory_gb_seconds"] - elsewhere <= peak_gb_seconds * 1.02 + 0.01, metrics


@pytest.mark.slow
def test_duckdb_steps_record_what_they_used(demo_lake: Lake, drops: dict[dt.date, DayDrop]) -> None:
    land_drop(demo_lake, drops[DAY1])
    (demo_lake.project_dir / "pipelines" / "checks.yaml").write_text(
        "steps:\n  stats: {quality: quality/daily_campaign_stats.dqdl, table: curated.daily_campaign_stats}\n"
    )
    steps = attempts(demo_lake, "nightly")
    ran = {name: a for name, a in steps.items() if a.state == "succeeded" and "skipped" not in a.metrics}
    assert {"impressions", "clicks", "daily_campaign_stats", "campaign_totals"} <= set(ran), steps
    for name, attempt in ran.items():
        metrics = attempt.metrics
        assert_consistent(metrics)
        assert metrics["engine"] == "duckdb" and metrics["cores"] >= 1, name
        assert metrics["cpu_seconds"] > 0, name
        # The DuckDB statements are part of the step, never all of it (commits, planning).
        assert 0 < metrics["engine_seconds"] < metrics["seconds"], name
        assert metrics["spill_bytes"] >= 0, name  # DuckDB's profile says what each statement spilled
        # A step process holds lakeplane, DuckDB and pyarrow: never under 50 MB while it runs.
        assert metrics["memory_gb_seconds"] >= 50 / 1024 * metrics["seconds"] * 0.5, name
    for dataset, step in (("partner/impressions", "impressions"), ("partner/clicks", "clicks")):
        metrics = ran[step].metrics
        assert metrics["bytes_read"] == sum(b.bytes for b in demo_lake.raw.batches(dataset, DAY1)) > 0
        table = demo_lake.catalog.load(demo_lake.dataset(dataset).table)
        snapshot = table.snapshot_by_id(metrics["snapshot_id"])
        assert snapshot is not None and snapshot.summary is not None
        assert metrics["bytes_written"] == int(str(snapshot.summary["added-files-size"])) > 0
    # The model's gate scanned the audit snapshot it wrote.
    assert ran["daily_campaign_stats"].metrics["bytes_scanned"] > 0
    [check] = attempts(demo_lake, "checks").values()
    assert check.state == "succeeded", check.error
    assert_consistent(check.metrics)
    stats = demo_lake.catalog.load("adtech.curated.daily_campaign_stats")
    whole = sum(task.file.file_size_in_bytes for task in stats.scan().plan_files())
    assert check.metrics["bytes_scanned"] == whole > 0


@pytest.mark.slow
def test_a_child_that_ended_still_counts(tmp_path: Path) -> None:
    lake = project(tmp_path, "steps:\n  burn: {python: 'tests.pipelines.usage_steps:burn_in_child'}\n")
    burn = attempts(lake, "p")["burn"]
    assert burn.state == "succeeded", burn.error
    assert_consistent(burn.metrics)
    assert burn.metrics["cpu_seconds"] >= BURN_S * 0.9, burn.metrics
    # The step's own work is small: the child's CPU is counted once, not once more in its parent's.
    assert burn.metrics["cpu_seconds"] <= BURN_S + 1.0, burn.metrics


@pytest.mark.slow
def test_a_child_holding_memory_raises_the_gb_seconds(tmp_path: Path) -> None:
    lake = project(
        tmp_path,
        """
concurrency: 1
steps:
  hold: {python: 'tests.pipelines.usage_steps:hold_in_child'}
  baseline: {python: 'tests.pipelines.usage_steps:hold_nothing', depends_on: [hold]}
""",
    )
    steps = attempts(lake, "p")
    hold, baseline = steps["hold"].metrics, steps["baseline"].metrics
    for metrics in (hold, baseline):
        assert_consistent(metrics)
    expected = HOLD_MB / 1024 * HOLD_S  # about 0.59
    # The step processes themselves hold ~200 MB for as long as each runs, and on a busy machine the
    # two steps run for different times: take the baseline's rate over the holding step's duration.
    base_rate = baseline["memory_gb_seconds"] / baseline["seconds"]
    extra = hold["memory_gb_seconds"] - base_rate * hold["seconds"]
    assert extra == pytest.approx(expected, abs=0.15)
    assert hold["peak_memory_mb"] - baseline["peak_memory_mb"] >= HOLD_MB * 0.9


@pytest.mark.slow
def test_steps_killed_for_memory_or_time_leave_a_consistent_record(tmp_path: Path) -> None:
    lake = project(
        tmp_path,
        """
concurrency: 2
steps:
  hog: {python: "tests.pipelines.steps:hog", memory_limit: 100MB, retries: {attempts: 1}}
  slow: {python: "tests.pipelines.usage_steps:sleep_long", timeout_s: 2, retries: {attempts: 1}}
""",
    )
    steps = attempts(lake, "p")
    hog, slow = steps["hog"], steps["slow"]
    assert hog.state == "failed" and "memory limit" in (hog.error or "")
    assert slow.state == "failed" and "timed out" in (slow.error or "")
    for attempt in (hog, slow):
        assert_consistent(attempt.metrics)
        assert attempt.metrics["bytes_read"] == attempt.metrics["bytes_written"] == 0
    assert hog.metrics["peak_memory_mb"] > 100 + 400, "killed past its limit plus the overhead"
    assert slow.metrics["seconds"] >= 2


#: A parent that runs one child burning CPU for a second, then many too short to be sampled.
PARENT = """
import subprocess, sys, time
subprocess.run([sys.executable, "-c", "import time\\nwhile time.process_time() < 1.0: pass"], check=True)
for _ in range(8):
    subprocess.run([sys.executable, "-c", "pass"], check=True)
time.sleep(0.3)
"""


def test_the_tree_counts_each_process_once() -> None:
    """The tree's CPU time equals what the kernel charged the parent and its waited-for children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    watchdog = MemoryWatchdog(parent.pid, None)
    watchdog.start()
    parent.wait()
    time.sleep(0.1)
    watchdog.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    charged = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    used = watchdog.usage()
    assert charged > 1.0
    # The parent's own last moments (after its last sample) may be missed; nothing is counted twice.
    assert charged - 0.15 <= used.cpu_seconds <= charged + 0.02, (used, charged)
    assert used.memory_gb_seconds > 0 and used.peak_mb > 5


@pytest.mark.slow
def test_the_nightly_run_in_process_records_the_same_keys(
    demo_lake: Lake, drops: dict[dt.date, DayDrop]
) -> None:
    land_drop(demo_lake, drops[DAY1])
    summary = demo_lake.run(DAY1)
    ran = {f"model {m.model}" for m in summary.models if not m.skipped}
    assert ran and set(summary.usage) == {f"ingest {i.dataset}" for i in summary.ingests} | ran
    for step, metrics in summary.usage.items():
        assert_consistent(metrics)
        assert metrics["cpu_seconds"] > 0, step
    for ingested in summary.ingests:
        metrics = summary.usage[f"ingest {ingested.dataset}"]
        assert (metrics["bytes_read"], metrics["bytes_written"]) == (
            ingested.bytes_read,
            ingested.bytes_written,
        )
    assert summary.to_dict()["usage"] == summary.usage

"""The pipeline runner: retries, redrive, backfill, isolation, history."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from lakeplane.errors import ConfigError
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.definition import RetryPolicy, load_pipeline

DAY = dt.date(2026, 11, 1)


def project(tmp_path: Path, pipeline: str, name: str = "p") -> Lake:
    root = tmp_path / "proj"
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "lakeplane.yaml").write_text("name: t\n")
    (root / "pipelines" / f"{name}.yaml").write_text(pipeline)
    return open_lake(root)


def states(run) -> list[tuple[str, int, str]]:
    return [(a.step, a.attempt, a.state) for a in run.attempts]


def test_transient_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    lake = project(
        tmp_path,
        """
steps:
  flaky:
    python: tests.pipelines.steps:flaky
    retries: {attempts: 3, interval_s: 0.4, backoff_rate: 2, jitter: false}
""",
    )
    run = lake.run_record(lake.run_pipeline("p", DAY).run_id)
    assert run.state == "succeeded"
    assert states(run) == [("flaky", 1, "failed"), ("flaky", 2, "failed"), ("flaky", 3, "succeeded")]
    assert all(a.retryable for a in run.attempts[:2]) and "timed out" in (run.attempts[0].error or "")
    gaps = [
        dt.datetime.fromisoformat(b.started_at) - dt.datetime.fromisoformat(a.ended_at or "")
        for a, b in zip(run.attempts, run.attempts[1:], strict=False)
    ]
    assert gaps[0].total_seconds() >= 0.4 and gaps[1].total_seconds() >= 0.8, gaps


def test_errors_a_retry_cannot_fix_are_not_retried_and_stop_downstream(tmp_path: Path) -> None:
    lake = project(
        tmp_path,
        """
steps:
  first: {python: "tests.pipelines.steps:marker"}
  broken: {python: "tests.pipelines.steps:broken_until_fixed", depends_on: [first]}
  after: {python: "tests.pipelines.steps:marker", depends_on: [broken]}
""",
    )
    run = lake.run_record(lake.run_pipeline("p", DAY).run_id)
    assert run.state == "failed"
    assert states(run) == [("first", 1, "succeeded"), ("broken", 1, "failed"), ("after", 0, "skipped")]
    assert "ModelError: the model is wrong" in (run.attempts[1].error or "")

    (lake.project_dir / "fixed").write_text("yes")
    again = lake.run_record(lake.redrive(run.run_id).run_id)
    assert again.state == "succeeded" and again.redrive_of == run.run_id
    assert states(again) == [("first", 0, "kept"), ("broken", 1, "succeeded"), ("after", 1, "succeeded")]
    assert (lake.project_dir / "marker.count").read_text() == "2", "first ran once, after once"


def test_backfill_runs_each_day_and_dry_run_lists_them(tmp_path: Path) -> None:
    lake = project(tmp_path, "concurrency: 1\nsteps:\n  m: {python: 'tests.pipelines.steps:marker'}\n")
    plan = lake.backfill_plan("p", DAY, DAY + dt.timedelta(days=2))
    assert [p["ds"] for p in plan] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert not (lake.project_dir / "marker.count").exists()
    runs = lake.backfill("p", DAY, DAY + dt.timedelta(days=2), parallel=2)
    assert sorted(r.ds for r in runs) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert all(r.state == "succeeded" for r in runs)
    assert (lake.project_dir / "marker.count").read_text() == "3"
    assert {r.run_id for r in lake.runs("p")} == {r.run_id for r in runs}


def test_a_runaway_step_is_killed_alone(tmp_path: Path) -> None:
    lake = project(
        tmp_path,
        """
concurrency: 2
steps:
  hog: {python: "tests.pipelines.steps:hog", memory_limit: 100MB, retries: {attempts: 1}}
  fine: {python: "tests.pipelines.steps:marker"}
  slow: {python: "tests.pipelines.steps:sleepy", timeout_s: 3, retries: {attempts: 1}}
""",
    )
    run = lake.run_record(lake.run_pipeline("p", DAY).run_id)
    by_step = {a.step: a for a in run.attempts}
    assert run.state == "failed"
    assert by_step["fine"].state == "succeeded"
    assert by_step["hog"].state == "failed" and "over its memory limit of 100 MB" in (
        by_step["hog"].error or ""
    )
    assert by_step["slow"].state == "failed" and "timed out after 3 s" in (by_step["slow"].error or "")


#: A program a step runs: it allocates up to 3 GB, 50 MB at a time, touching every page so it is resident.
CHILD_HOG = """
import time
chunks = []
for _ in range(60):
    chunks.append(bytearray(50 << 20))
    chunks[-1][::4096] = b"x" * len(chunks[-1][::4096])
    time.sleep(0.02)
time.sleep(60)
"""


def child_hog(lake: Any, ds: dt.date) -> None:
    """A step (run as ``tests.pipelines.test_runner:child_hog``) that stays small itself while the
    program it starts grows; it writes the program's pid to ``hog.pid``."""
    child = subprocess.Popen([sys.executable, "-c", CHILD_HOG])
    (lake.project_dir / "hog.pid").write_text(str(child.pid))
    child.wait()


def test_a_step_whose_child_process_runs_away_is_stopped_with_its_children(tmp_path: Path) -> None:
    lake = project(
        tmp_path,
        """
steps:
  hog: {python: "tests.pipelines.test_runner:child_hog", memory_limit: 100MB, timeout_s: 120,
        retries: {attempts: 3}}
""",
    )
    started = time.monotonic()
    run = lake.run_record(lake.run_pipeline("p", DAY).run_id)
    assert time.monotonic() - started < 60, "stopped when it passed the limit, not at its timeout"
    assert run.state == "failed"
    assert states(run) == [("hog", 1, "failed")], "a memory limit is not retried"
    [attempt] = run.attempts
    error = attempt.error or ""
    assert "over its memory limit of 100 MB (+400 MB overhead)" in error
    assert "and the processes it started used" in error and not attempt.retryable
    peak = float(error.split(" used ")[1].split(" MB")[0])
    assert peak > 500, error
    assert attempt.metrics["peak_memory_mb"] >= peak - 0.5, "the error shows the peak rounded to 1 MB"
    child = int((lake.project_dir / "hog.pid").read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE, (
        "the step's child was killed with it"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("steps:\n  a: {python: x:y, depends_on: [b]}\n", "step 'a' depends on unknown step 'b'"),
        ("steps:\n  a: {python: x:y, depends_on: [b]}\n  b: {python: x:y, depends_on: [a]}\n", "cycle"),
        ("steps:\n  a: {python: x:y, retrys: {}}\n", "steps.a.retrys: unknown key"),
        ("steps:\n  a: {ingest: x/y, model: z}\n", "exactly one of"),
        ("steps:\n  a: {quality: rules.dqdl}\n", "exactly one of"),  # which table would it check?
        ("steps:\n  a: {model: curated.m, table: curated.m}\n", "exactly one of"),
    ],
)
def test_bad_pipeline_files_are_clear(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_pipeline(path)
    assert str(path) in str(caught.value)


def test_retry_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(attempts=6, interval_s=1, backoff_rate=3, max_delay_s=10, jitter=False)
    assert [policy.delay(n, 0.0) for n in range(1, 5)] == [1, 3, 9, 10]
    jittered = RetryPolicy(interval_s=4, backoff_rate=1, jitter=True)
    assert jittered.delay(1, 0.0) == 2 and jittered.delay(1, 0.999) < 4

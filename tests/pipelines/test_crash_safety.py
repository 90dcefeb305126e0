"""Killing the runner (SIGKILL) at any moment, then redriving, gives the tables of an undisturbed run.

The killed run is recorded as failed, with the reason, once its heartbeat expires; the redrive
keeps the steps that succeeded and reruns the others.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lakeplane.demo import telco
from lakeplane.demo.generator import DayDrop
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.store import LIVE, RunRecord
from tests.conftest import DAY1
from tests.pipelines.runners import RunnerProcess, Seen, wait_for

#: The demo's nightly pipeline, but both rollups wait for every ingest step: they start together, in
#: one pass of the runner, as two model steps did when a redrive failed on their shared first policy
#: version.
PIPELINE = """
concurrency: 2
defaults:
  retries: {attempts: 3, interval_s: 0.5, backoff_rate: 2.0, jitter: false}
  timeout_s: 300
  memory_limit: 2GB
steps:
  impressions: {ingest: partner/impressions}
  clicks: {ingest: partner/clicks}
  campaigns: {ingest: crm/campaigns, if_missing: skip}
  cdr: {ingest: telco/cdr}
  subscribers: {ingest: telco/subscribers, if_missing: skip}
  daily_campaign_stats:
    model: curated.daily_campaign_stats
    depends_on: [impressions, clicks, campaigns, cdr, subscribers]
    quality: quality/daily_campaign_stats.dqdl
  cell_daily:
    model: telco.curated.cell_daily
    depends_on: [impressions, clicks, campaigns, cdr, subscribers]
    quality: quality/cell_daily.dqdl
  campaign_totals:
    model: curated.campaign_totals
    depends_on: [daily_campaign_stats]
"""
INGESTS = ("impressions", "clicks", "campaigns", "cdr", "subscribers")
ROLLUPS = ("daily_campaign_stats", "cell_daily")
STEPS = (*INGESTS, *ROLLUPS, "campaign_totals")


@dataclass(frozen=True)
class KillPoint:
    """A moment to kill the runner: once ``reached(seconds since it started, what it recorded)``,
    and ``then_s`` seconds later."""

    name: str
    reached: Callable[[float, Seen | None], bool]
    then_s: float = 0.0


def started(*steps: str) -> Callable[[float, Seen | None], bool]:
    return lambda _, seen: seen is not None and all(seen.step(step) is not None for step in steps)


def succeeded(step: str) -> Callable[[float, Seen | None], bool]:
    return lambda _, seen: seen is not None and seen.step(step) == "succeeded"


#: Before the run is recorded, before its first step, as each step starts, inside each step, as each
#: step commits, right after the two rollups start together, and once every step is done.
KILL_POINTS = (
    KillPoint("while the runner starts", lambda elapsed, _: elapsed >= 0.3),
    KillPoint("run recorded", lambda _, seen: seen is not None),
    *(KillPoint(f"{step} started", started(step)) for step in (*INGESTS, "campaign_totals")),
    KillPoint("both rollups started together", started(*ROLLUPS)),
    *(KillPoint(f"inside {step}", started(step), then_s=0.15) for step in STEPS),
    *(KillPoint(f"{step} succeeded", succeeded(step)) for step in STEPS),
    KillPoint("run succeeded", lambda _, seen: seen is not None and seen.state == "succeeded"),
)


def prepared(root: Path, drop: DayDrop) -> Lake:
    # Governed: the two rollups that start together both record the policy's first version.
    lake = build_project(root, governed=True)
    (lake.project_dir / "pipelines" / "nightly.yaml").write_text(PIPELINE)
    files = {**drop.files, **telco.generate_day(root.parent / f"{root.name}-telco", DAY1, 500)}
    for dataset, paths in files.items():
        lake.land(dataset, paths, DAY1)
    return open_lake(lake.project_dir)


def tables(lake: Lake) -> dict[str, list[tuple[object, ...]]]:
    found = {}
    # Every row and column, whatever the policy says: the same lake opened without its policy.
    whole = open_lake(lake.project_dir, {"governance": {"policy": "no-policy-here.yaml"}})
    for ref in whole.tables():
        rows = whole.query(
            f"SELECT * EXCLUDE (quarantined_at, source_file) FROM {ref}"
            if ref.name.endswith("_quarantine")
            else f"SELECT * FROM {ref}",
            dialect="duckdb",
        ).to_pylist()
        found[str(ref)] = sorted((tuple(r.values()) for r in rows), key=repr)
    return found


def kill_at(point: KillPoint, runner: RunnerProcess, group: bool) -> Seen | None:
    """Kill ``runner`` at ``point`` (or once it has ended, if it ends first); what it had recorded."""
    while not runner.exited():
        seen = runner.seen()
        if point.reached(time.monotonic() - runner.started, seen):
            time.sleep(point.then_s)
            break
        if time.monotonic() - runner.started > 120:
            raise AssertionError(f"{point.name}: not reached in 120 s; last seen {seen}\n{runner.log()}")
        time.sleep(0.01)
    runner.kill(group)
    return runner.seen()


def ended(lake: Lake, run_id: str) -> Callable[[], RunRecord | None]:
    """A probe: run ``run_id`` once it is no longer live (a killed run: once taken for dead)."""

    def probe() -> RunRecord | None:
        run = lake.run_record(run_id)
        return run if run.state not in LIVE else None

    return probe


def no_survivors(runner: RunnerProcess) -> Callable[[], bool]:
    return lambda: not runner.survivors()


@pytest.mark.slow
def test_sigkill_at_any_moment_then_redrive(tmp_path: Path, drops: dict[dt.date, DayDrop]) -> None:
    reference = prepared(tmp_path / "reference", drops[DAY1])
    done = reference.run_pipeline("nightly", DAY1)
    assert done.state == "succeeded", [
        (a.step, a.error) for a in reference.run_record(done.run_id).attempts if a.error
    ]
    expected = tables(reference)
    assert "adtech.curated.campaign_totals" in expected and "telco.curated.cell_daily" in expected
    assert len(KILL_POINTS) >= 25

    host = socket.gethostname()
    for n, point in enumerate(KILL_POINTS):
        lake = prepared(tmp_path / f"killed-{n}", drops[DAY1])
        runner = RunnerProcess(lake, "nightly", DAY1)
        # Mostly the whole process group, as a machine going down; every third time the runner
        # alone, whose fork server and steps must then die with it.
        group = n % 3 != 2
        seen = kill_at(point, runner, group)
        wait_for(f"{point.name}: no step process outlives its runner", no_survivors(runner), 10)
        if seen is None:
            final = lake.run_pipeline("nightly", DAY1)
        else:
            if seen.state != "succeeded":
                dead = wait_for(
                    f"{point.name}: the killed run taken for dead", ended(lake, seen.run_id), timeout_s=30
                )
                assert (dead.state, dead.reason) == (
                    "failed",
                    f"runner stopped heart-beating at {dead.heartbeat_at} ({host}:{runner.pid})",
                ), point.name
                assert "running" not in [a.state for a in dead.attempts], point.name
            final = lake.redrive(seen.run_id)
        assert final.state == "succeeded", (
            point.name,
            [(a.step, a.error) for a in lake.run_record(final.run_id).attempts if a.error],
        )
        assert tables(lake) == expected, f"tables differ after a kill at {point.name}"

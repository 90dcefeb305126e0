"""Killing the runner (SIGKILL) at any moment, then redriving, gives the tables of an undisturbed run."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakeplane.demo import telco
from lakeplane.demo.generator import DayDrop
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, open_lake
from tests.conftest import DAY1

#: Seconds after the runner starts at which it is killed: before, between and inside steps.
KILL_POINTS = (0.5, 1.2, 2.0, 3.0, 4.5, 6.5)


def prepared(root: Path, drop: DayDrop) -> Lake:
    lake = build_project(root, governed=False)
    files = {**drop.files, **telco.generate_day(root.parent / f"{root.name}-telco", DAY1, 500)}
    for dataset, paths in files.items():
        lake.land(dataset, paths, DAY1)
    return lake


def tables(lake: Lake) -> dict[str, list[tuple[object, ...]]]:
    found = {}
    for ref in lake.tables():
        rows = lake.query(
            f"SELECT * EXCLUDE (quarantined_at, source_file) FROM {ref}"
            if ref.name.endswith("_quarantine")
            else f"SELECT * FROM {ref}"
        ).to_pylist()
        found[str(ref)] = sorted((tuple(r.values()) for r in rows), key=repr)
    return found


def step_processes(project: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "multiprocessing" in line and str(project) in line]


@pytest.mark.slow
def test_sigkill_at_any_moment_then_redrive(tmp_path: Path, drops: dict[dt.date, DayDrop]) -> None:
    reference = prepared(tmp_path / "reference", drops[DAY1])
    done = reference.run_pipeline("nightly", DAY1)
    assert done.state == "succeeded", [
        (a.step, a.error) for a in reference.run_record(done.run_id).attempts if a.error
    ]
    expected = tables(reference)
    assert "adtech.curated.campaign_totals" in expected and "telco.curated.cell_daily" in expected

    for point in KILL_POINTS:
        lake = prepared(tmp_path / f"killed-{point}", drops[DAY1])
        runner = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lakeplane.cli.main",
                "--lake",
                str(lake.project_dir),
                "--output",
                "json",
                "run",
                "nightly",
                "--ds",
                DAY1.isoformat(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(point)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        time.sleep(0.3)
        assert step_processes(lake.project_dir) == [], "step processes die with their runner"
        lake = open_lake(lake.project_dir)
        runs = lake.runs("nightly")
        final = lake.redrive(runs[0].run_id) if runs else lake.run_pipeline("nightly", DAY1)
        assert final.state == "succeeded", (
            point,
            [(a.step, a.error) for a in lake.run_record(final.run_id).attempts if a.error],
        )
        assert tables(lake) == expected, f"tables differ after a kill at {point} s"

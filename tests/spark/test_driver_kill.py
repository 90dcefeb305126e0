"""Killing the Spark driver in the middle of a write leaves nothing partial visible; a rerun heals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lakeplane.engines.spark.cluster import process_groups
from lakeplane.lake import Lake, open_lake
from tests.conftest import head_id
from tests.spark.conftest import DAY
from tests.spark.test_cluster import table_rows

JOB = """
import datetime as dt, sys
from lakeplane.lake import open_lake
lake = open_lake(sys.argv[1], {"engine": {"type": "spark"}, "spark": {"master": "local[2]"}})
lake.run_model(lake.model("curated.heavy"), dt.date.fromisoformat(sys.argv[2]), force=True)
"""


def write_dirs(data: Path) -> set[Path]:
    return {p for p in data.iterdir() if p.is_dir()} if data.exists() else set()


def test_driver_killed_mid_write_leaves_the_table_as_it_was(heavy_lake: Lake) -> None:
    lake = open_lake(heavy_lake.project_dir, {"engine": {"type": "spark"}, "spark": {"master": "local[2]"}})
    model = lake.model("curated.heavy")
    lake.run_model(model, DAY, force=True)
    table = "adtech.curated.heavy"
    before_snapshot = head_id(lake.catalog.load(table))
    expected = table_rows(lake, table)
    data = Path(lake.catalog.load(table).location().removeprefix("file://")) / "data"
    existing = write_dirs(data)

    job = subprocess.Popen(
        [sys.executable, "-c", JOB, str(lake.project_dir), DAY.isoformat()],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    new: set[Path] = set()
    while time.monotonic() < deadline and job.poll() is None:
        new = write_dirs(data) - existing
        if any((d / "_temporary").exists() for d in new):  # Spark's tasks are writing
            break
        time.sleep(0.05)
    assert job.stderr is not None
    assert job.poll() is None, f"the job ended before its write began: {job.stderr.read().decode()[-2000:]}"
    os.killpg(job.pid, signal.SIGKILL)  # the driver: Python and its JVM
    job.wait(timeout=30)
    job.stderr.close()

    assert new, "the killed job had started writing files"
    after = lake.catalog.load(table)
    assert head_id(after) == before_snapshot, "no commit happened"
    assert table_rows(lake, table) == expected, "readers see exactly the table as it was"
    referenced = {task.file.file_path for task in after.scan().plan_files()}
    assert not any(str(d) in path for d in new for path in referenced), "no partial file is referenced"
    assert [pid for pid, group in process_groups() if group == job.pid] == [], "the driver's JVM died with it"

    rerun = lake.run_model(model, DAY, force=True)
    assert rerun.snapshot_id != before_snapshot
    assert table_rows(lake, table) == expected, "re-running the day gives the same table"

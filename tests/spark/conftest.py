"""Spark fixtures: a lake with one ingested day large enough for jobs that take a while, and a
model whose run lasts long enough to lose a worker or a driver in the middle of it."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import psutil
import pytest

from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake

DAY = dt.date(2026, 11, 1)
IMPRESSIONS = 200_000
#: Each impression fanned out REPEAT times, then aggregated through a shuffle: tens of seconds of
#: tasks on two one-core workers, so a worker or the driver can be lost mid-job.
REPEAT = 30
HEAVY_MODEL = f"""-- partition_by: [ds]
SELECT i.ds, i.campaign_id, r.n % 7 AS shard, count(*) AS pairs,
       sum(length(i.event_id || CAST(r.n AS VARCHAR) || i.user_id)) AS chars
FROM processed.impressions AS i
CROSS JOIN (SELECT n FROM (VALUES {", ".join(f"({n})" for n in range(REPEAT))}) AS t(n)) AS r
WHERE i.ds = :ds
GROUP BY i.ds, i.campaign_id, r.n % 7
"""


@pytest.fixture(scope="session")
def heavy_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The demo project with one ingested day and the heavy model under models/curated/."""
    root = tmp_path_factory.mktemp("spark-heavy")
    lake = build_project(root / "project", governed=False)
    for dataset, files in generate_day(root / "drops", DAY, IMPRESSIONS).files.items():
        lake.land(dataset, files, DAY)
    for dataset in lake.config.datasets:
        if lake.raw.batches(dataset, DAY):
            lake.ingest(dataset, DAY)
    (lake.project_dir / "models" / "curated" / "heavy.sql").write_text(HEAVY_MODEL)
    (lake.project_dir / "models" / "curated" / "per_campaign.sql").write_text(
        "SELECT campaign_id, count(*) AS impressions FROM processed.impressions GROUP BY campaign_id"
    )
    return lake


def processes_under(folder: Path) -> list[int]:
    """Processes whose command line or working folder lies under ``folder``."""
    text = str(folder)
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        if process.pid == os.getpid():
            continue
        cmdline, cwd = " ".join(process.info["cmdline"] or []), process.info["cwd"] or ""
        if "multiprocessing.forkserver" in cmdline:  # the runner's fork server outlives runs by design
            continue
        if text in cmdline or cwd.startswith(text):
            found.append(process.pid)
    return found

"""Eight ``lakeplane run`` processes at once on one catalog give the tables sequential runs give.

Three days of demo drops are landed in two copies of the demo project; one copy is run day after
day, the other by eight CLI processes started together, two or three of them for the same day.
Every table must then hold the same rows in both, with no key twice, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, open_lake
from tests.backends.conftest import _create_database

DAYS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]
#: The days of the eight concurrent runs: each day two or three times.
RUN_DAYS = [DAYS[0], DAYS[1], DAYS[2], DAYS[0], DAYS[1], DAYS[2], DAYS[0], DAYS[1]]
#: The pipeline's runs start a process per step, two steps at a time: four runs of two days (each
#: day twice) keep the test near a minute on two cores; eight take three.
PIPELINE_RUN_DAYS = [DAYS[0], DAYS[1], DAYS[0], DAYS[1]]
IMPRESSIONS = 2_000
RUN_TIMEOUT_S = 600
#: The columns no two rows of a table may share.
KEYS = {
    "adtech.processed.impressions": ["event_id"],
    "adtech.processed.clicks": ["click_id"],
    "adtech.processed.campaigns": ["ds", "campaign_id"],
    "telco.processed.cdr": ["call_id"],
    "telco.processed.subscribers": ["ds", "msisdn"],
    "adtech.curated.daily_campaign_stats": ["ds", "campaign_id", "country", "device"],
    "adtech.curated.campaign_totals": ["campaign_id"],
    "telco.curated.cell_daily": ["ds", "cell_id", "region", "call_type"],
}
#: Models that read other days than their own (the newest CRM extract on or before the day, every
#: day's stats): run for several days at once, each sees whichever days were published when it read.
ACROSS_DAYS = ("adtech.curated.daily_campaign_stats", "adtech.curated.campaign_totals")
#: Datasets whose (unchanged) file is landed on the first day only.
ONCE_LANDED = ("crm/campaigns", "telco/subscribers")
#: Quarantine columns that differ between two projects whatever the runs do.
PER_PROJECT_COLUMNS = {"source_file", "quarantined_at"}


@pytest.fixture(scope="module")
def day_drops(tmp_path_factory: pytest.TempPathFactory) -> dict[dt.date, dict[str, list[Path]]]:
    out = tmp_path_factory.mktemp("concurrent-drops")
    return {
        day: {**generate_day(out, day, IMPRESSIONS).files, **telco.generate_day(out, day, IMPRESSIONS // 10)}
        for day in DAYS
    }


def _project(
    path: Path,
    catalog_uri: str | None,
    drops: dict[dt.date, dict[str, list[Path]]],
    published: tuple[str, ...] = (),
) -> Lake:
    build_project(path, governed=False)
    if catalog_uri:
        with open(path / "lakeplane.yaml", "a") as config:
            config.write(f"\ncatalog:\n  uri: {catalog_uri}\n")
    lake = open_lake(path)
    for day, files in drops.items():
        for dataset, paths in files.items():
            lake.land(dataset, paths, day)
    for dataset in published:
        lake.ingest(dataset, DAYS[0])
    return lake


def _cli(project: Path, pipeline: str | None, day: dt.date) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from lakeplane.cli.main import main; main()"]
    command += ["--lake", str(project), "--output", "json"]
    command += ["run", *([pipeline] if pipeline else []), "--ds", day.isoformat()]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _failure(rc: int, out: str, err: str) -> dict[str, Any] | None:
    """None for a run that succeeded, else what it printed about its error."""
    if rc == 0:
        return None
    for text in (out, err):
        try:
            found = json.loads(text)
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    return {"error": "unknown", "retryable": False, "message": err[-3000:] or out[-3000:]}


def _run_concurrently(project: Path, pipeline: str | None, run_days: list[dt.date]) -> list[dict[str, Any]]:
    """Start a run per entry of ``run_days`` at once; rerun (as a scheduler would) a run that failed
    retryably. Returns the failures seen."""
    failures = []
    pending = list(run_days)
    for _round in range(3):
        runs = [(day, _cli(project, pipeline, day)) for day in pending]
        pending = []
        for day, process in runs:
            out, err = process.communicate(timeout=RUN_TIMEOUT_S)
            failure = _failure(process.returncode, out, err)
            if failure is not None:
                failures.append(failure)
                assert failure.get("retryable") is True, f"run for {day} failed for good: {failure}"
                pending.append(day)
        if not pending:
            return failures
    pytest.fail(f"runs still failing after reruns: {failures}")


def _duplicates(lake: Lake, table: str) -> int:
    keys = ", ".join(f'"{k}"' for k in KEYS[table])
    result = lake.query(
        f"SELECT count(*) AS n FROM (SELECT {keys} FROM {table} GROUP BY {keys} HAVING count(*) > 1)"
    )
    return int(result.column("n").to_pylist()[0])


def _check_same_as_sequential(
    tmp_path: Path,
    drops: dict[dt.date, dict[str, list[Path]]],
    catalog_uris: tuple[str | None, str | None],
    pipeline: str | None,
    run_sequentially: Callable[[Lake, dt.date], None],
) -> None:
    # A pipeline's model step fails for good on a table no run has created yet (the CRM extract
    # and the subscribers are landed once, on the first day): those are published beforehand.
    published = ONCE_LANDED if pipeline else ()
    concurrent = _project(tmp_path / "concurrent", catalog_uris[0], drops, published)
    sequential = _project(tmp_path / "sequential", catalog_uris[1], drops, published)
    run_days = PIPELINE_RUN_DAYS if pipeline else RUN_DAYS
    days = sorted(set(run_days))
    for day in days:
        run_sequentially(sequential, day)

    _run_concurrently(concurrent.project_dir, pipeline, run_days)

    concurrent = open_lake(concurrent.project_dir)
    tables = [str(t) for t in sequential.catalog.list_tables()]
    assert sorted(tables) == sorted(str(t) for t in concurrent.catalog.list_tables())
    assert set(KEYS) <= set(tables)
    for table in KEYS:
        assert _duplicates(concurrent, table) == 0, f"{table} has duplicate keys"
    differ = [t for t in tables if t not in ACROSS_DAYS and _rows(concurrent, t) != _rows(sequential, t)]
    assert differ == [], f"tables differing from sequential runs: {differ}"
    # What a model reading other days built depends on which of them were published when it read;
    # its bookmark records the input snapshots, so running the days once more (as the next schedule
    # would) builds the models whose inputs moved since, and no ingest runs again: every day's
    # batches were published exactly once.
    heads = {t: _head(concurrent, t) for t in tables if ".processed." in t}
    for day in days:
        run_sequentially(concurrent, day)
    concurrent = open_lake(concurrent.project_dir)
    assert {t: _head(concurrent, t) for t in heads} == heads
    for table in ACROSS_DAYS:
        assert _rows(concurrent, table) == _rows(sequential, table), table


def _head(lake: Lake, table: str) -> int | None:
    snapshot = lake.catalog.load(table).current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def _rows(lake: Lake, table: str) -> list[tuple[object, ...]]:
    """Every row of ``table`` in a stable order, without the columns that name the project's own
    files or the moment of the run."""
    columns = [
        f'"{c}"' for c in lake.catalog.load(table).schema().column_names if c not in PER_PROJECT_COLUMNS
    ]
    result = lake.query(f"SELECT {', '.join(columns)} FROM {table}")
    return sorted((tuple(r.values()) for r in result.to_pylist()), key=repr)


def _lake_run(lake: Lake, day: dt.date) -> None:
    lake.run(day)


def _pipeline_run(lake: Lake, day: dt.date) -> None:
    process = _cli(lake.project_dir, "nightly", day)
    out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 0, out + err


def _second_database(uri: str) -> str:
    server, name = uri.rsplit("/", 1)
    _create_database(uri, f"{name}_seq")
    return f"{server}/{name}_seq"


@pytest.mark.slow
def test_eight_runs_at_once_on_sqlite(
    tmp_path: Path, day_drops: dict[dt.date, dict[str, list[Path]]]
) -> None:
    _check_same_as_sequential(tmp_path, day_drops, (None, None), None, _lake_run)


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_runs_at_once_on_postgres(
    tmp_path: Path, day_drops: dict[dt.date, dict[str, list[Path]]], pg_catalog_uri: str
) -> None:
    uris = (pg_catalog_uri, _second_database(pg_catalog_uri))
    _check_same_as_sequential(tmp_path, day_drops, uris, None, _lake_run)


@pytest.mark.slow
def test_eight_nightly_pipeline_runs_at_once_on_sqlite(
    tmp_path: Path, day_drops: dict[dt.date, dict[str, list[Path]]]
) -> None:
    _check_same_as_sequential(tmp_path, day_drops, (None, None), "nightly", _pipeline_run)


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_nightly_pipeline_runs_at_once_on_postgres(
    tmp_path: Path, day_drops: dict[dt.date, dict[str, list[Path]]], pg_catalog_uri: str
) -> None:
    uris = (pg_catalog_uri, _second_database(pg_catalog_uri))
    _check_same_as_sequential(tmp_path, day_drops, uris, "nightly", _pipeline_run)

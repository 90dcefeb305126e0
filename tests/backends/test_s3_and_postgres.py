"""The demo pipeline with its lake on S3 (moto server) and its catalog on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

from lakeplane.demo.generator import DayDrop, malformed_count
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, RunSummary, open_lake
from tests.backends.conftest import DAY1, DAY2, S3Endpoint

STATS = "curated.daily_campaign_stats"
#: Tables the demo run registers, as pyiceberg's SQL catalog stores them (namespace, name).
DEMO_TABLES = {
    ("adtech.processed", "impressions"),
    ("adtech.processed", "impressions_quarantine"),
    ("adtech.processed", "clicks"),
    ("adtech.processed", "campaigns"),
    ("adtech.curated", "daily_campaign_stats"),
    ("adtech.curated", "campaign_totals"),
}


def demo_lake(path: Path, overrides: dict[str, Any]) -> Lake:
    build_project(path, governed=False)
    return open_lake(path, overrides)


def land_and_run(lake: Lake, drop: DayDrop, force: bool = False) -> RunSummary:
    for dataset, files in drop.files.items():
        lake.land(dataset, files, drop.day)
    return lake.run(drop.day, force=force)


def rows(lake: Lake, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` in a stable order, for comparing results."""
    return sorted((tuple(r.values()) for r in lake.query(sql).to_pylist()), key=repr)


def assert_same_rows(actual: list[tuple[object, ...]], expected: list[tuple[object, ...]], what: str) -> None:
    """Equal row for row, every value exactly (the demo's money columns are decimals)."""
    assert len(actual) == len(expected), f"{what}: {len(actual)} rows, expected {len(expected)}"
    for got, want in zip(actual, expected, strict=True):
        assert got == want, f"{what}: {got} != {want}"


def impressions_quarantined(summary: RunSummary) -> int:
    (ingest,) = [i for i in summary.ingests if i.dataset == "partner/impressions"]
    return ingest.quarantined


def assert_no_duplicates(lake: Lake) -> None:
    (events,) = rows(lake, "SELECT count(*), count(DISTINCT event_id) FROM processed.impressions")
    assert events[0] == events[1] > 0
    (grain,) = rows(lake, f"SELECT count(*), count(DISTINCT (ds, campaign_id, country, device)) FROM {STATS}")
    assert grain[0] == grain[1] > 0


def assert_day_totals_reconcile(lake: Lake, days: list[dt.date]) -> None:
    """Each day's curated impressions add up to that day's processed impressions."""
    curated = dict(rows(lake, f"SELECT ds, sum(impressions) FROM {STATS} GROUP BY ds"))
    processed = dict(rows(lake, "SELECT ds, count(*) FROM processed.impressions GROUP BY ds"))
    assert sorted(curated) == days
    assert curated == processed
    assert all(count > 0 for count in curated.values())


def assert_rerun_is_idempotent(lake: Lake, drop: DayDrop) -> None:
    tables = [STATS, "curated.campaign_totals", "processed.impressions", "processed.clicks"]
    before = {t: rows(lake, f"SELECT * FROM {t}") for t in tables}
    summary = land_and_run(lake, drop, force=True)  # landing again finds every batch already there
    assert impressions_quarantined(summary) == malformed_count()
    after = {t: rows(lake, f"SELECT * FROM {t}") for t in tables}
    for table in tables:
        assert_same_rows(after[table], before[table], f"{table} after re-running {drop.day}")
    assert_no_duplicates(lake)


def catalog_rows(catalog_uri: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    """``(namespace, table) -> (metadata_location, previous_metadata_location)`` straight from PostgreSQL."""
    import psycopg

    with psycopg.connect(catalog_uri) as connection:
        found = connection.execute(
            "SELECT table_namespace, table_name, metadata_location, "
            "previous_metadata_location FROM iceberg_tables WHERE catalog_name = %s",
            ("lakeplane",),
        ).fetchall()
    return {(ns, name): (meta, prev) for ns, name, meta, prev in found}


@pytest.mark.s3
def test_lake_on_s3(
    tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str, backend_drops: dict[dt.date, DayDrop]
) -> None:
    lake = demo_lake(tmp_path / "project", moto_s3.storage_overrides(f"s3://{s3_bucket}/lake"))
    assert lake.storage.root_uri == f"s3://{s3_bucket}/lake"

    summaries = [land_and_run(lake, backend_drops[day]) for day in (DAY1, DAY2)]

    assert_day_totals_reconcile(lake, [DAY1, DAY2])
    assert [impressions_quarantined(s) for s in summaries] == [malformed_count()] * 2
    assert dict(rows(lake, "SELECT ds, count(*) FROM processed.impressions_quarantine GROUP BY ds")) == {
        DAY1: malformed_count(),
        DAY2: malformed_count(),
    }

    keys = moto_s3.keys(s3_bucket)
    for day in (DAY1, DAY2):
        raw = [
            k for k in keys if k.startswith(f"lake/raw/partner/impressions/ingest_date={day.isoformat()}/")
        ]
        assert len(raw) == len(backend_drops[day].files["partner/impressions"])
    data_files = {
        k
        for k in keys
        if k.startswith("lake/curated/adtech/daily_campaign_stats/data/") and k.endswith(".parquet")
    }
    assert data_files
    assert any(
        k.startswith("lake/curated/adtech/daily_campaign_stats/metadata/") and k.endswith(".metadata.json")
        for k in keys
    )
    live = [f["path"] for f in lake.describe(STATS)["files"]]
    assert live and all(p.startswith(f"s3://{s3_bucket}/lake/") for p in live)
    assert {p.removeprefix(f"s3://{s3_bucket}/") for p in live} <= data_files
    assert not list(lake.project_dir.rglob("*.parquet")), "lake files leaked to the local disk"

    assert_no_duplicates(lake)
    assert_rerun_is_idempotent(lake, backend_drops[DAY1])


@pytest.fixture
def without_psycopg2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import psycopg2`` fail, as where only the ``postgres`` extra (psycopg 3) is installed."""
    monkeypatch.setitem(sys.modules, "psycopg2", None)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "scheme",
    ["postgresql://", "postgres://", "postgresql+psycopg://"],
    ids=["postgresql", "postgres", "explicit"],
)
def test_pg_catalog_uris_use_psycopg_3(
    tmp_path: Path, pg_catalog_uri: str, scheme: str, without_psycopg2: None
) -> None:
    given = scheme + pg_catalog_uri.removeprefix("postgresql://")
    lake = demo_lake(tmp_path / "project", {"catalog": {"uri": given}})
    assert lake.catalog.uri == "postgresql+psycopg://" + pg_catalog_uri.removeprefix("postgresql://")
    assert lake.tables() == []


@pytest.mark.postgres
def test_catalog_on_postgres(
    tmp_path: Path, pg_catalog_uri: str, backend_drops: dict[dt.date, DayDrop], without_psycopg2: None
) -> None:
    lake = demo_lake(tmp_path / "project", {"catalog": {"uri": pg_catalog_uri}})
    assert lake.catalog.uri.startswith("postgresql+psycopg://")

    summaries = [land_and_run(lake, backend_drops[day]) for day in (DAY1, DAY2)]

    assert_day_totals_reconcile(lake, [DAY1, DAY2])
    assert [impressions_quarantined(s) for s in summaries] == [malformed_count()] * 2
    registered = catalog_rows(pg_catalog_uri)
    assert set(registered) >= DEMO_TABLES
    lake_root = Path(lake.storage.base)
    for metadata, _ in registered.values():
        assert Path(lake.storage.fs_path(metadata)).is_file()
        assert Path(lake.storage.fs_path(metadata)).is_relative_to(lake_root)
    assert not list(lake.project_dir.rglob("catalog.db")), "the SQLite catalog was used"

    assert_no_duplicates(lake)
    assert_rerun_is_idempotent(lake, backend_drops[DAY1])
    rerun = catalog_rows(pg_catalog_uri)
    stats = ("adtech.curated", "daily_campaign_stats")  # gated: branch, write, publish
    assert rerun[stats][0] != registered[stats][0], "the re-run committed nothing to PostgreSQL"
    totals = ("adtech.curated", "campaign_totals")  # ungated: its re-run is one commit
    assert rerun[totals][1] == registered[totals][0]


@pytest.mark.s3
@pytest.mark.postgres
def test_s3_lake_with_postgres_catalog_matches_local(
    tmp_path: Path,
    moto_s3: S3Endpoint,
    s3_bucket: str,
    pg_catalog_uri: str,
    backend_drops: dict[dt.date, DayDrop],
) -> None:
    remote = demo_lake(
        tmp_path / "remote",
        {**moto_s3.storage_overrides(f"s3://{s3_bucket}/lake"), "catalog": {"uri": pg_catalog_uri}},
    )
    local = demo_lake(tmp_path / "local", {})
    drop = backend_drops[DAY1]

    remote_summary = land_and_run(remote, drop)
    local_summary = land_and_run(local, drop)

    assert impressions_quarantined(remote_summary) == malformed_count()
    assert [
        (i.dataset, i.read, i.accepted, i.quarantined, i.duplicates, i.rows_written)
        for i in remote_summary.ingests
    ] == [
        (i.dataset, i.read, i.accepted, i.quarantined, i.duplicates, i.rows_written)
        for i in local_summary.ingests
    ]
    for table in (STATS, "curated.campaign_totals", "processed.impressions", "processed.clicks"):
        remote_rows = rows(remote, f"SELECT * FROM {table}")
        assert remote_rows, f"{table} is empty"
        assert_same_rows(remote_rows, rows(local, f"SELECT * FROM {table}"), table)

    registered = catalog_rows(pg_catalog_uri)
    assert set(registered) >= DEMO_TABLES
    assert all(meta.startswith(f"s3://{s3_bucket}/lake/") for meta, _ in registered.values())
    assert "lake/curated/adtech/daily_campaign_stats/metadata/" in "\n".join(moto_s3.keys(s3_bucket))

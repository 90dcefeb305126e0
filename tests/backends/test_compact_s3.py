"""Compaction and manifest rewrite with the lake on the S3-compatible server (moto): same rows,
fewer files, a dry run that writes nothing, and a lost race that leaves no new object behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyiceberg.table import Table

from lakeplane.errors import CommitConflictError
from lakeplane.lake import open_lake
from lakeplane.maintenance.compact import Compactor, compaction_policy
from tests.backends.conftest import S3Endpoint
from tests.maintenance.test_compact import (
    FULL,
    TABLE,
    batch,
    files_by_partition,
    head,
    lake_data_files,
    rows,
    small_files_lake,
    write_batch,
)

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def test_compaction_on_s3(tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str) -> None:
    overrides = moto_s3.storage_overrides(f"s3://{s3_bucket}/lake")
    lake = small_files_lake(tmp_path / "p", writes=4, overrides=overrides)
    assert lake.storage.scheme == "s3"
    before = rows(lake)
    keys_before = moto_s3.keys(s3_bucket)

    dry = lake.compact(TABLE, dry_run=True)
    assert (dry.files_before, dry.files_after) == (12, 3)
    assert moto_s3.keys(s3_bucket) == keys_before

    action = lake.compact(TABLE, sort_by=["event_id"])
    assert rows(lake) == before
    assert all(len(files) == 1 for files in files_by_partition(lake).values())
    assert all(
        f["path"].startswith(f"s3://{s3_bucket}/lake/")
        for fs in files_by_partition(lake).values()
        for f in fs
    )
    snapshot = head(lake).current_snapshot()
    assert snapshot is not None and snapshot.snapshot_id == action.snapshot_id
    assert snapshot.summary is not None and snapshot.summary.operation.value == "replace"

    manifests = lake.rewrite_manifests(TABLE)
    assert manifests.snapshot_id is not None and manifests.details["manifests_after"] == 1
    assert rows(lake) == before


def test_a_lost_race_on_s3_leaves_no_new_object(tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str) -> None:
    overrides = moto_s3.storage_overrides(f"s3://{s3_bucket}/lake")
    lake = small_files_lake(tmp_path / "p", writes=3, overrides=overrides)
    files_before = lake_data_files(lake)
    other = open_lake(lake.project_dir, overrides)
    written: list[set[str]] = []

    def other_writer_replaces_day_2(_table: Table) -> None:
        written.append(lake_data_files(lake) - files_before)
        write_batch(other, batch([dt.date(2026, 11, 2)], 30, seed=77), "overwrite_partitions")

    compactor = Compactor(lake.catalog, lake.compute.embedded, before_commit=other_writer_replaces_day_2)
    with pytest.raises(CommitConflictError):
        compactor.compact(FULL, compaction_policy(None, FULL, None))

    assert written and len(written[0]) == 3
    assert not lake_data_files(lake) & written[0]
    assert len(lake_data_files(lake) - files_before) == 1  # the other writer's file only
    assert lake.query(f"SELECT count(*) FROM {TABLE} WHERE ds = DATE '2026-11-02'").column(0)[0].as_py() == 30

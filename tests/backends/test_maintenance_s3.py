"""Snapshot expiry and orphan removal on a lake in S3 (the moto server on loopback)."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeplane.lake import Lake
from lakeplane.maintenance.orphans import remove_orphans
from tests.backends.conftest import S3Endpoint
from tests.maintenance.history import History, new_lake, snapshot_paths, snapshot_rows
from tests.maintenance.test_expire_property import OPS, Op, run_history

pytestmark = pytest.mark.s3


def s3_lake(tmp_path: Path, moto_s3: S3Endpoint, bucket: str) -> Lake:
    return new_lake(tmp_path / "project", moto_s3.storage_overrides(f"s3://{bucket}/lake"))


def keys(moto_s3: S3Endpoint, bucket: str) -> set[str]:
    """The table's objects (not the empty folder markers pyarrow leaves when it deletes a file)."""
    found = moto_s3.keys(bucket, "lake/curated/demo/events/")
    return {f"s3://{bucket}/{key}" for key in found if not key.endswith("/")}


def test_expiry_on_s3_deletes_only_what_expired_snapshots_read(
    tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str
) -> None:
    lake = s3_lake(tmp_path, moto_s3, s3_bucket)
    history = History.create(lake)
    first = history.append()
    history.tag("v1", first)
    for _ in range(3):
        history.overwrite()
    table = history.table
    reads = {
        s.snapshot_id: (snapshot_rows(table, s.snapshot_id), snapshot_paths(table, s.snapshot_id))
        for s in table.metadata.snapshots
    }
    objects_before = keys(moto_s3, s3_bucket)

    dry = lake.expire_snapshots(history.name, older_than=0, retain_last=1, dry_run=True)
    assert keys(moto_s3, s3_bucket) == objects_before
    action = lake.expire_snapshots(history.name, older_than=0, retain_last=1)

    table = history.table
    kept = {s.snapshot_id for s in table.metadata.snapshots}
    assert kept == {first, table.metadata.current_snapshot_id}
    objects = keys(moto_s3, s3_bucket)
    live = set().union(*(reads[sid][1] for sid in kept))
    assert live <= objects
    gone = set().union(*(files for sid, (_, files) in reads.items() if sid not in kept)) - live
    assert gone and not gone & objects
    assert len(objects) < len(objects_before) and action.deleted_bytes > 0
    assert sorted(action.deleted) == sorted(dry.deleted)
    for sid in kept:
        assert snapshot_rows(table, sid) == reads[sid][0]


def test_orphans_on_s3_respect_the_grace_period(tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str) -> None:
    lake = s3_lake(tmp_path, moto_s3, s3_bucket)
    history = History.create(lake)
    for _ in range(3):
        history.append()
    client = moto_s3.client()
    prefix = "lake/curated/demo/events/data"
    client.put_object(Bucket=s3_bucket, Key=f"{prefix}/lost-write.parquet", Body=b"x" * 300)
    old = client.head_object(Bucket=s3_bucket, Key=f"{prefix}/lost-write.parquet")["LastModified"].timestamp()
    time.sleep(2.1)  # S3 times have whole seconds: the next write is at least one second newer
    client.put_object(Bucket=s3_bucket, Key=f"{prefix}/in-flight/part-0.parquet", Body=b"y" * 10)
    objects_before = keys(moto_s3, s3_bucket)
    grace = 3600.0
    now = old + grace + 0.5  # the lost write is just past the grace period, the other within it
    table = history.table

    dry = remove_orphans(table, lake.storage, older_than=grace, dry_run=True, now=now)
    assert dry.deleted == [f"s3://{s3_bucket}/{prefix}/lost-write.parquet"] and dry.deleted_bytes == 300
    assert keys(moto_s3, s3_bucket) == objects_before
    action = remove_orphans(table, lake.storage, older_than=grace, now=now)

    assert action.deleted == dry.deleted and action.details["recent"] == 1
    assert keys(moto_s3, s3_bucket) == objects_before - {f"s3://{s3_bucket}/{prefix}/lost-write.parquet"}
    head = table.metadata.current_snapshot_id or 0
    assert snapshot_rows(table, head) == history.read[head]
    # Every committed object is older than the cut-off too: references alone keep them.
    later = remove_orphans(table, lake.storage, older_than=0, now=now + grace)
    assert later.deleted == [f"s3://{s3_bucket}/{prefix}/in-flight/part-0.parquet"]
    assert snapshot_rows(history.table, head) == history.read[head]


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=4, max_size=10), last_retain=st.integers(1, 3))
def test_expiry_on_s3_never_deletes_a_live_file(moto_s3: S3Endpoint, ops: list[Op], last_retain: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = f"s3://lakeplane-tests/history-{uuid.uuid4().hex[:12]}/lake"
        run_history(new_lake(Path(folder) / "project", moto_s3.storage_overrides(root)), ops, last_retain)

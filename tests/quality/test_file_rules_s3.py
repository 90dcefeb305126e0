"""File rules on an S3-compatible endpoint (a moto server on loopback): real objects under
``s3://`` prefixes, reached with the lake's S3 settings, and a raw zone kept on S3."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest

from lakeplane.config import S3Options, StorageConfig
from lakeplane.engines.base import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.quality import RuleOutcome, evaluate
from lakeplane.quality.files_source import LakeFiles
from lakeplane.storage import open_storage
from lakeplane.storage.raw import RawZone
from tests.moto_server import moto_server

KEY = "testing"
BUCKET, OTHER, LAKE_BUCKET = "drops", "archive", "lake-bucket"
OBJECTS = {"in/a.csv": b"id\n1\n", "in/b.csv": b"id\n22\n", "in/sub/c.csv": b"id\n1\n"}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        client = _client(url)
        for bucket in (BUCKET, OTHER, LAKE_BUCKET):
            client.create_bucket(Bucket=bucket)
        for key, body in OBJECTS.items():
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
            client.put_object(Bucket=OTHER, Key=key, Body=body)
        client.put_object(Bucket=OTHER, Key="in/b.csv", Body=b"id\n23\n")  # differs from the original
        client.put_object(Bucket=BUCKET, Key="empty/", Body=b"")  # a folder marker, as consoles make
        yield url


def _client(url: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY, aws_secret_access_key=KEY
    )


def _options(url: str) -> S3Options:
    return S3Options(endpoint=url, access_key_id=KEY, secret_access_key=KEY)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBSession]:
    tmp = tmp_path_factory.mktemp("s3-session")
    storage = open_storage(StorageConfig(root=str(tmp / "lake")), tmp)
    with DuckDBSession(storage, JobSpec("t", "256MB", 1, tmp)) as opened:
        opened.register_arrow("t", pa.table({"x": [1]}))
        yield opened


@pytest.fixture
def files(endpoint: str, tmp_path: Path) -> LakeFiles:
    """A local lake whose rules reach S3 with the lake's S3 settings."""
    storage = open_storage(StorageConfig(root=str(tmp_path / "lake"), s3=_options(endpoint)), tmp_path)
    return LakeFiles(storage, tmp_path, _options(endpoint))


def check(session: DuckDBSession, files: LakeFiles, *rules: str) -> list[RuleOutcome]:
    ruleset = "Rules = [\n    " + ",\n    ".join(rules) + "\n]"
    return evaluate(ruleset, session, "t", now=dt.datetime.now(dt.UTC), files=files)


def test_objects_under_a_prefix_are_measured(session: DuckDBSession, files: LakeFiles) -> None:
    fresh, old, size, unique = check(
        session,
        files,
        'FileFreshness "s3://drops/in/" > (now() - 10 minutes)',
        'FileFreshness "s3://drops/in/" < (now() - 10 minutes)',
        'FileSize "s3://drops/in" < 6 B',
        'FileUniqueness "s3://drops/in/" = 1.0',
    )
    assert fresh.passed and "FileCount 3" in fresh.message
    assert not old.passed and "a.csv modified" in old.message
    assert not size.passed and size.observed == pytest.approx(2 / 3) and "b.csv 6 B" in size.message
    assert not unique.passed and unique.observed == pytest.approx(2 / 3) and "a.csv = c.csv" in unique.message


def test_checksums_of_objects_and_two_buckets_compared(session: DuckDBSession, files: LakeFiles) -> None:
    md5 = hashlib.md5(OBJECTS["in/a.csv"]).hexdigest()
    listed, same_file, folders = check(
        session,
        files,
        f'FileMatch "s3://drops/in/a.csv" in ["{md5}"] with hashAlgorithm = "MD5"',
        'FileMatch "s3://drops/in/a.csv" "s3://archive/in/a.csv"',
        'FileMatch "s3://drops/in/" "s3://archive/in/"',
    )
    assert listed.passed and same_file.passed
    assert (
        not folders.passed and "differ: b.csv" in folders.message and "2 of 3 files match" in folders.message
    )


def test_empty_prefix_fails_and_missing_prefix_or_bucket_is_an_error(
    session: DuckDBSession, files: LakeFiles
) -> None:
    empty, missing, no_bucket = check(
        session,
        files,
        'FileSize "s3://drops/empty/" > 0',
        'FileSize "s3://drops/nothing-here/" > 0',
        'FileSize "s3://no-such-bucket/x/" > 0',
    )
    assert not empty.passed and not empty.error and "FileCount 0" in empty.message
    assert missing.error and "s3://drops/nothing-here" in missing.message
    assert no_bucket.error and "no-such-bucket" in no_bucket.message


def test_raw_zone_of_a_lake_on_s3(session: DuckDBSession, endpoint: str, tmp_path: Path) -> None:
    storage = open_storage(StorageConfig(root=f"s3://{LAKE_BUCKET}/lake", s3=_options(endpoint)), tmp_path)
    drop = tmp_path / "orders.ndjson"
    drop.write_bytes(b'{"order_id": 1}\n')
    landed = RawZone(storage).land("pos/orders", drop, dt.date(2026, 11, 1)).batch
    files = LakeFiles(storage, tmp_path, _options(endpoint), dataset="pos/orders")
    md5 = hashlib.md5(drop.read_bytes()).hexdigest()
    by_sha, by_md5, listed, raw_path = check(
        session,
        files,
        f'FileMatch = "{landed.sha256}"',
        f'FileMatch = "{md5}" with hashAlgorithm = "MD5"',
        f'FileSize "s3://{LAKE_BUCKET}/lake/raw/pos/orders/ingest_date=2026-11-01/" = 16 B',
        'FileFreshness "raw/pos/orders" < (now() - 5 minutes)',
    )
    assert by_sha.passed and by_md5.passed
    assert listed.passed and "FileCount 1" in listed.message
    assert not raw_path.passed and "orders.ndjson landed" in raw_path.message

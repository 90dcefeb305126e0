"""Spark over an S3 lake (moto server): with an S3 connector it reads the planned files by URI and
writes straight to the table's location; without one it works from a local copy. Either way the
tables hold what DuckDB computes from the same inputs, and governed reads stay masked."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, open_lake
from lakeplane.storage import LakeStorage
from tests.backends.conftest import DAY1, S3Endpoint

pytestmark = [pytest.mark.s3, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BUCKET = "spark-direct"
#: The two demo models, one per domain, both partitioned by day (renamed partition folders).
MODELS = ("adtech.curated.daily_campaign_stats", "telco.curated.cell_daily")
SUBSCRIBERS = "SELECT msisdn, card_pan FROM telco.processed.subscribers"


@pytest.fixture(scope="session")
def connector_jars() -> str:
    """The ``spark.jars`` value naming hadoop-aws and the AWS SDK, fetched from PyPI when missing."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "spark_s3_jars.py")], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/spark_s3_jars.py failed:\n{done.stderr}")
    return done.stdout.strip()


@pytest.fixture(scope="module")
def s3_project(tmp_path_factory: pytest.TempPathFactory, moto_s3: S3Endpoint) -> Path:
    """The governed demo project with its lake on S3, one day of both domains landed and run on
    DuckDB."""
    root = tmp_path_factory.mktemp("spark-s3")
    moto_s3.client().create_bucket(Bucket=BUCKET)
    build_project(root / "project")
    lake = open_lake(root / "project", moto_s3.storage_overrides(f"s3://{BUCKET}/lake"))
    files = telco.generate_day(root / "drops", DAY1, 400) | generate_day(root / "drops", DAY1, 1_500).files
    for dataset, paths in files.items():
        lake.land(dataset, paths, DAY1)
    lake.run(DAY1)
    return root / "project"


def on_duckdb(project: Path, endpoint: S3Endpoint) -> Lake:
    return open_lake(project, endpoint.storage_overrides(f"s3://{BUCKET}/lake"))


def on_spark(project: Path, endpoint: S3Endpoint, conf: dict[str, Any]) -> Lake:
    overrides = endpoint.storage_overrides(f"s3://{BUCKET}/lake")
    overrides |= {"engine": {"type": "spark"}, "spark": {"conf": {"spark.ui.enabled": False, **conf}}}
    return open_lake(project, overrides)


#: Each table as the first Spark run of this module wrote it: every later Spark run (another io path)
#: must write exactly the same rows.
SPARK_ROWS: dict[str, list[tuple[Any, ...]]] = {}


def assert_same_as_duckdb(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]], table: str) -> None:
    assert len(got) == len(want) > 0, f"{table}: {len(got)} rows, DuckDB wrote {len(want)}"
    for spark_row, duckdb_row in zip(got, want, strict=True):
        assert spark_row == duckdb_row, f"{table}: {spark_row} != {duckdb_row}"


def table_rows(lake: Lake, table: str) -> list[tuple[Any, ...]]:
    result = lake.query(f"SELECT * FROM {table}", principal="fred" if "telco" in table else "ana")
    return sorted((tuple(r.values()) for r in result.to_pylist()), key=repr)


class Copies:
    """Counts the lake files copied to local disk and the local files uploaded to the lake."""

    def __init__(self) -> None:
        self.downloaded: list[str] = []
        self.uploaded: list[str] = []


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> Iterator[Copies]:
    seen = Copies()
    get_file, put_file = LakeStorage.get_file, LakeStorage.put_file

    def counted_get(storage: LakeStorage, uri: str, local_path: Path) -> None:
        seen.downloaded.append(uri)
        get_file(storage, uri, local_path)

    def counted_put(storage: LakeStorage, local_path: Path, relative: str, *, move: bool = False) -> None:
        seen.uploaded.append(relative)
        put_file(storage, local_path, relative, move=move)

    monkeypatch.setattr(LakeStorage, "get_file", counted_get)
    monkeypatch.setattr(LakeStorage, "put_file", counted_put)
    yield seen


def data_files(lake: Lake, table: str) -> list[str]:
    """The data files of ``table``'s current snapshot, as the catalog names them."""
    return sorted(lake.catalog.load(table).inspect.files().column("file_path").to_pylist())


def created_by(endpoint: S3Endpoint, uri: str) -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = endpoint.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return str(pq.read_metadata(io.BytesIO(body)).created_by)


def run_models_on_spark(
    project: Path, endpoint: S3Endpoint, conf: dict[str, Any], io_path: str, copies: Copies
) -> dict[str, list[str]]:
    """Each model run for the day on DuckDB, then on Spark (with ``io_path``), which writes what
    DuckDB wrote; returns the data files each Spark run committed. ``copies`` keeps only what the
    Spark runs copied."""
    duckdb = on_duckdb(project, endpoint)
    spark = on_spark(project, endpoint, conf)
    written = {}
    spark_copies: tuple[list[str], list[str]] = ([], [])
    for table in MODELS:
        duckdb.run_model(duckdb.model(table), DAY1, force=True)
        by_duckdb = table_rows(duckdb, table)
        old = set(data_files(duckdb, table))
        copies.downloaded.clear()
        copies.uploaded.clear()
        result = spark.run_model(spark.model(table), DAY1, force=True)
        assert result.io == io_path, table
        spark_copies[0].extend(copies.downloaded)
        spark_copies[1].extend(copies.uploaded)
        assert result.rows == len(by_duckdb)
        written[table] = [f for f in data_files(duckdb, table) if f not in old]
        assert written[table], f"{table}: the Spark run committed no new file"
        by_spark = table_rows(duckdb, table)
        assert_same_as_duckdb(by_spark, by_duckdb, table)
        assert by_spark == SPARK_ROWS.setdefault(table, by_spark), f"{table}: differs by io path"
    copies.downloaded[:], copies.uploaded[:] = spark_copies
    return written


def test_with_a_connector_spark_reads_and_writes_s3_directly(
    s3_project: Path, moto_s3: S3Endpoint, connector_jars: str, copies: Copies
) -> None:
    written = run_models_on_spark(s3_project, moto_s3, {"spark.jars": connector_jars}, "direct", copies)
    assert copies.downloaded == [] and copies.uploaded == []  # nothing passed through the driver's disk
    keys = set(moto_s3.keys(BUCKET))
    for table, files in written.items():
        for uri in files:
            assert uri.startswith(f"s3://{BUCKET}/lake/"), uri
            assert uri.removeprefix(f"s3://{BUCKET}/") in keys, f"{uri} is committed but not in S3"
            assert "/ds=2026-11-01/" in uri and "__lakeplane_part" not in uri
            assert "parquet-mr" in created_by(moto_s3, uri), f"{table}: {uri} was not written by Spark"
    assert not [k for k in keys if "_temporary" in k or "__lakeplane_part" in k]


def test_governed_reads_on_spark_over_s3_stay_masked(
    s3_project: Path, moto_s3: S3Endpoint, connector_jars: str, copies: Copies
) -> None:
    spark = on_spark(s3_project, moto_s3, {"spark.jars": connector_jars})
    duckdb = on_duckdb(s3_project, moto_s3)
    raw = dict(tuple(r.values()) for r in spark.query(SUBSCRIBERS, principal="fred").to_pylist())
    masked = spark.query(SUBSCRIBERS, principal="ana").to_pylist()
    assert copies.downloaded == []
    assert len(masked) == len(raw) > 0
    for row in masked:
        assert row["msisdn"] not in raw  # hashed
        assert row["card_pan"] not in raw.values()
    assert sorted(r["card_pan"][-4:] for r in masked) == sorted(pan[-4:] for pan in raw.values())
    assert all(set(r["card_pan"][:-4]) == {"*"} for r in masked)
    by_duckdb = duckdb.query(SUBSCRIBERS, principal="ana").to_pylist()
    assert sorted(masked, key=repr) == sorted(by_duckdb, key=repr)


def test_where_fs_s3_impl_serves_s3_the_uris_are_read_as_they_are(
    s3_project: Path, moto_s3: S3Endpoint, connector_jars: str, copies: Copies
) -> None:
    """As on EMR, where EMRFS serves ``s3://``: the catalog's URIs go to Spark unchanged."""
    conf = {"spark.jars": connector_jars, "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}
    spark = on_spark(s3_project, moto_s3, conf)
    session = spark.compute.session(spark.compute.engine("spark"), "probe")
    try:
        assert (getattr(session, "io", None), getattr(session, "s3_scheme", None)) == ("direct", "s3")
    finally:
        session.close()
    written = run_models_on_spark(s3_project, moto_s3, conf, "direct", copies)
    assert copies.downloaded == [] and copies.uploaded == []
    assert all(uri.startswith(f"s3://{BUCKET}/lake/") for files in written.values() for uri in files)


def test_without_a_connector_spark_works_from_a_local_copy(
    s3_project: Path, moto_s3: S3Endpoint, copies: Copies
) -> None:
    written = run_models_on_spark(s3_project, moto_s3, {}, "local-copy", copies)
    assert copies.downloaded, "no planned file was copied to local disk"
    uploaded = {f"s3://{BUCKET}/lake/{relative}" for relative in copies.uploaded}
    assert all(uri in uploaded for files in written.values() for uri in files)


def test_a_clusters_executors_read_and_write_s3_directly(
    s3_project: Path, moto_s3: S3Endpoint, connector_jars: str, copies: Copies
) -> None:
    """A transient standalone cluster: its executors are other JVMs, which reach the lake only through
    the connector (``spark.jars`` ships the jars to them)."""
    overrides = moto_s3.storage_overrides(f"s3://{BUCKET}/lake") | {
        "engine": {"type": "spark"},
        "spark": {
            "master": "spark-cluster",
            "workers": 1,
            "worker_memory": "1g",
            "conf": {"spark.ui.enabled": False, "spark.jars": connector_jars},
        },
    }
    spark = open_lake(s3_project, overrides)
    duckdb = on_duckdb(s3_project, moto_s3)
    table = MODELS[1]
    duckdb.run_model(duckdb.model(table), DAY1, force=True)
    by_duckdb = table_rows(duckdb, table)
    copies.downloaded.clear()
    copies.uploaded.clear()
    result = spark.run_model(spark.model(table), DAY1, force=True)
    assert (result.io, result.engine) == ("direct", "spark-cluster")
    assert copies.downloaded == [] and copies.uploaded == []
    assert_same_as_duckdb(table_rows(duckdb, table), by_duckdb, table)

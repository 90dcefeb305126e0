"""The S3 connector's settings, the URIs Spark is given, and placing the files Spark wrote to S3
(without starting Spark: the files are written here as Spark lays them out)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeplane.config import S3Options, SparkConfig, StorageConfig
from lakeplane.engines.base import JobSpec
from lakeplane.engines.spark import job_conf, s3
from lakeplane.engines.spark.s3 import SDK_V1_CHAIN, SDK_V2_CHAIN
from lakeplane.pipelines.models import ModelResult
from lakeplane.pipelines.steps import model_metrics
from lakeplane.storage import open_storage
from tests.backends.conftest import S3_KEY, S3_REGION, S3Endpoint


def test_the_connector_reaches_the_endpoint_storage_s3_names() -> None:
    options = S3Options(
        endpoint="http://127.0.0.1:9000", region="eu-west-1", access_key_id="k", secret_access_key="s"
    )
    conf = s3.connector_conf(options)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert (conf["spark.hadoop.fs.s3a.access.key"], conf["spark.hadoop.fs.s3a.secret.key"]) == ("k", "s")
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("SimpleAWSCredentialsProvider")
    # hadoop-aws 3.3 reads these with getLong: a duration such as "60s" would fail it
    assert all(conf[f"spark.hadoop.{name}"].isdigit() for name in s3.DURATIONS)


def test_without_keys_or_endpoint_aws_defaults_apply() -> None:
    conf = s3.connector_conf(S3Options(path_style=False))
    assert not any(k.endswith(("endpoint", "access.key", "secret.key", "provider")) for k in conf)
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "false"
    https = s3.connector_conf(S3Options(endpoint="https://s3.example.test"))
    assert https["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"


def test_the_users_spark_conf_overrides_the_connector_settings(tmp_path: Path) -> None:
    job = JobSpec(name="j", memory_limit="2GB", threads=1, temp_dir=tmp_path)
    config = SparkConfig(conf={"spark.hadoop.fs.s3a.endpoint": "http://elsewhere:1", "spark.jars": "a.jar"})
    conf = job_conf(config, job, "local[1]", S3Options(endpoint="http://127.0.0.1:9000"))
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://elsewhere:1"
    assert conf["spark.jars"] == "a.jar"
    assert not any(k.startswith("spark.hadoop.fs.s3a.") for k in job_conf(SparkConfig(), job, "local[1]"))


@pytest.mark.parametrize(
    ("uri", "scheme", "expected"),
    [
        ("s3://bucket/lake/t/data/a.parquet", "s3a", "s3a://bucket/lake/t/data/a.parquet"),
        ("s3://bucket/lake/t/data/a.parquet", "s3", "s3://bucket/lake/t/data/a.parquet"),
        ("s3a://bucket/k/s3://x.parquet", "s3", "s3://bucket/k/s3://x.parquet"),
        ("s3n://bucket/k.parquet", "s3a", "s3a://bucket/k.parquet"),
    ],
)
def test_spark_gets_each_uri_under_the_connectors_scheme(uri: str, scheme: str, expected: str) -> None:
    assert s3.spark_uri(uri, scheme) == expected


@pytest.mark.parametrize(
    ("keys", "configured", "loadable", "expected"),
    [
        (False, False, {SDK_V1_CHAIN}, SDK_V1_CHAIN),  # hadoop-aws 3.3 under Hadoop 3.4+'s defaults
        (False, False, {SDK_V1_CHAIN, SDK_V2_CHAIN}, None),  # hadoop-aws 3.4+: its default works
        (True, False, {SDK_V1_CHAIN}, None),  # keys: the simple provider is set already
        (False, True, {SDK_V1_CHAIN}, None),  # the user chose one in spark.conf
        (False, False, set(), None),
    ],
)
def test_without_keys_a_v1_connector_gets_the_v1_credentials_chain(
    keys: bool, configured: bool, loadable: set[str], expected: str | None
) -> None:
    options = S3Options(access_key_id="k" if keys else None)
    assert s3.default_provider(options, configured, lambda name: name in loadable) == expected


@pytest.mark.s3
def test_written_files_are_placed_in_iceberg_partition_folders(
    tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str
) -> None:
    """As Spark leaves a partitioned write: staged partition folders, an empty file, a failed
    attempt's leftovers; placed, they are the non-empty files under the column's own name."""
    storage = open_storage(
        StorageConfig(
            root=f"s3://{s3_bucket}/lake",
            s3=S3Options(
                endpoint=moto_s3.url, region=S3_REGION, access_key_id=S3_KEY, secret_access_key=S3_KEY
            ),
        ),
        tmp_path,
    )
    target = "curated/t/data/run1"
    files = {
        "__lakeplane_part_0=2026-11-01/part-00000.zstd.parquet": 3,
        "__lakeplane_part_0=2026-11-02/part-00001.zstd.parquet": 2,
        "__lakeplane_part_0=2026-11-03/part-00002.zstd.parquet": 0,
        "_temporary/0/task_1/__lakeplane_part_0=2026-11-01/part-00009.zstd.parquet": 5,
    }
    for relative, rows in files.items():
        local = tmp_path / "f.parquet"
        pq.write_table(pa.table({"x": pa.array(range(rows), pa.int64())}), local)
        storage.put_file(local, f"{target}/{relative}")
    written = s3.collect_written(storage, target, {"__lakeplane_part_0=": "ds="})
    assert written.paths == [
        f"{target}/ds=2026-11-01/part-00000.zstd.parquet",
        f"{target}/ds=2026-11-02/part-00001.zstd.parquet",
    ]
    assert written.rows == 5
    assert written.bytes == sum(storage.size(p) for p in written.paths)
    keys = moto_s3.keys(s3_bucket, f"lake/{target}/")
    assert not [k for k in keys if "__lakeplane_part" in k and "_temporary" not in k], keys
    assert not [k for k in keys if "2026-11-03" in k and k.endswith(".parquet")]
    assert pq.read_table(pa.BufferReader(storage.read_bytes(written.paths[0]))).num_rows == 3


def test_a_model_steps_metrics_say_how_spark_reached_the_lake() -> None:
    assert model_metrics(ModelResult("m", rows=1, engine="local[2]", io="direct"))["io"] == "direct"
    assert "io" not in model_metrics(ModelResult("m", rows=1))  # DuckDB: no such choice


@pytest.mark.s3
def test_an_empty_result_leaves_nothing_on_s3(tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str) -> None:
    storage = open_storage(
        StorageConfig(
            root=f"s3://{s3_bucket}/lake",
            s3=S3Options(
                endpoint=moto_s3.url, region=S3_REGION, access_key_id=S3_KEY, secret_access_key=S3_KEY
            ),
        ),
        tmp_path,
    )
    local = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), local)
    storage.put_file(local, "curated/t/data/run2/part-00000.zstd.parquet")
    written = s3.collect_written(storage, "curated/t/data/run2", {})
    assert (written.paths, written.rows, written.bytes) == ([], 0, 0)
    assert moto_s3.keys(s3_bucket, "lake/curated/t/data/run2") == []

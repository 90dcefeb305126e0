"""``storage lifecycle --apply`` on the S3-compatible server: set, read back, other rules kept, and a
raw retention written to the governance audit log before it is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.errors import AwsError
from lakeplane.lake import Lake
from tests.backends.conftest import S3Endpoint

CONFIG = """name: t
storage:
  retention: {raw: 7y}
  lifecycle:
    raw: {intelligent_tiering_after: 0d, glacier_after: 18mo}
"""


def s3_lake(root: Path, moto_s3: S3Endpoint, bucket: str, prefix: str, config: str = CONFIG) -> Lake:
    root.mkdir(parents=True)
    (root / "lakeplane.yaml").write_text(config)
    return Lake(root, moto_s3.storage_overrides(f"s3://{bucket}/{prefix}"))


def read_rules(moto_s3: S3Endpoint, bucket: str) -> dict[str, dict]:
    got = moto_s3.client().get_bucket_lifecycle_configuration(Bucket=bucket)
    return {r["ID"]: r for r in got["Rules"]}


def test_apply_sets_the_rules_and_keeps_the_buckets_others(
    tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str
) -> None:
    foreign = {
        "ID": "exports",
        "Filter": {"Prefix": "exports/"},
        "Status": "Enabled",
        "Expiration": {"Days": 3},
    }
    moto_s3.client().put_bucket_lifecycle_configuration(
        Bucket=s3_bucket, LifecycleConfiguration={"Rules": [foreign]}
    )
    lake = s3_lake(tmp_path / "a", moto_s3, s3_bucket, "lakes/a")
    shown = lake.storage_lifecycle()
    assert shown.on_s3 and not shown.applied and "not applied" in shown.note
    assert set(read_rules(moto_s3, s3_bucket)) == {"exports"}, "rendering alone sends nothing"

    result = lake.storage_lifecycle(apply=True, principal="ops")
    assert result.applied and result.kept_rules == ["exports"]
    rules = read_rules(moto_s3, s3_bucket)
    assert set(rules) == {
        "exports",
        "lakeplane lakes/a/raw",
        "lakeplane lakes/a/processed",
        "lakeplane lakes/a/curated",
    }
    raw = rules["lakeplane lakes/a/raw"]
    assert raw["Filter"] == {"Prefix": "lakes/a/raw/"}
    assert [(t["Days"], t["StorageClass"]) for t in raw["Transitions"]] == [
        (0, "INTELLIGENT_TIERING"),
        (540, "GLACIER"),
    ]
    assert raw["Expiration"] == {"Days": 2555}
    assert rules["lakeplane lakes/a/curated"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert {r["ID"] for r in result.rules} == set(rules), "the result is what was read back"

    # Applied again: the same rules, not twice. A second lake in the bucket adds its own and keeps these.
    lake.storage_lifecycle(apply=True, principal="ops")
    assert len(read_rules(moto_s3, s3_bucket)) == 4
    other = s3_lake(tmp_path / "b", moto_s3, s3_bucket, "lakes/b", config="name: b\n")
    assert sorted(other.storage_lifecycle(apply=True).kept_rules) == sorted(set(rules))
    after = read_rules(moto_s3, s3_bucket)
    assert len(after) == 7 and "Expiration" not in after["lakeplane lakes/b/raw"]


def test_applying_a_raw_retention_is_audited_and_recorded(
    tmp_path: Path, moto_s3: S3Endpoint, s3_bucket: str
) -> None:
    lake = s3_lake(tmp_path / "p", moto_s3, s3_bucket, "lake")
    out = CliRunner().invoke(
        cli,
        [
            "--lake",
            str(lake.project_dir),
            "storage",
            "lifecycle",
            "--apply",
            "--as",
            "ops",
            "--output",
            "json",
        ],
        env={
            f"LAKEPLANE__STORAGE__{k.upper()}": json.dumps(v) if isinstance(v, dict) else v
            for k, v in lake.overrides["storage"].items()
        },
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["applied"] is True
    records = lake.governance.audit_log().search(principal="ops")
    assert len(records) == 1
    record = records[0]
    assert (
        record.decision == "allowed"
        and record.sql == f"APPLY RETENTION ON s3://{s3_bucket}/lake/raw/ EXPIRE AFTER 2555 DAYS"
    )
    assert "storage.retention.raw" in record.reason
    assert lake.governance.audit_log().verify().ok
    kinds = [a["action"] for a in lake.maintenance_log.for_table(lake.storage.root_uri)]
    assert sorted(kinds) == ["lifecycle", "retention"]

    # Without a retention policy nothing is audited.
    plain = s3_lake(tmp_path / "q", moto_s3, s3_bucket, "plain", config="name: q\n")
    plain.storage_lifecycle(apply=True, principal="ops2")
    assert plain.governance.audit_log().search(principal="ops2") == []


def test_an_unreachable_endpoint_is_a_clear_error(tmp_path: Path, moto_s3: S3Endpoint) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "lakeplane.yaml").write_text("name: t\n")
    overrides = moto_s3.storage_overrides("s3://no-such-bucket-here/lake")
    with pytest.raises(AwsError) as caught:
        Lake(root, overrides).storage_lifecycle(apply=True)
    assert caught.value.code == "NoSuchBucket" and caught.value.operation

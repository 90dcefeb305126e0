"""``storage lifecycle``: the S3 lifecycle configuration rendered from ``storage:``, validated
against botocore's model, and the refusals that keep data from being lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeplane.aws.render import validate_request
from lakeplane.cli.main import cli
from lakeplane.config import load_config
from lakeplane.errors import AwsRequestInvalid, ConfigError
from lakeplane.lake import open_lake
from lakeplane.maintenance.lifecycle import render_lifecycle


def render(tmp_path: Path, text: str, prefix: str = "lakes/ads") -> dict:
    (tmp_path / "lakeplane.yaml").write_text(text)
    config = load_config(tmp_path)
    return render_lifecycle(config.storage, "my-bucket", prefix, tmp_path / "lakeplane.yaml")


def rules_by_zone(request: dict) -> dict[str, dict]:
    return {
        r["Filter"]["Prefix"].rstrip("/").rsplit("/", 1)[-1]: r
        for r in request["LifecycleConfiguration"]["Rules"]
    }


def test_default_tiers_raw_moves_to_intelligent_tiering_then_glacier_and_never_expires(
    tmp_path: Path,
) -> None:
    request = render(tmp_path, "name: t\n")
    assert request["Bucket"] == "my-bucket"
    rules = rules_by_zone(request)
    assert set(rules) == {"raw", "processed", "curated"}
    raw = rules["raw"]
    assert raw["Filter"] == {"Prefix": "lakes/ads/raw/"} and raw["Status"] == "Enabled"
    assert raw["Transitions"] == [
        {"Days": 0, "StorageClass": "INTELLIGENT_TIERING"},
        {"Days": 540, "StorageClass": "GLACIER"},
    ]
    assert "Expiration" not in raw, "raw data is never deleted without a retention policy"
    for zone in ("processed", "curated"):
        assert rules[zone]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
        assert rules[zone]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
        assert "Transitions" not in rules[zone] and "Expiration" not in rules[zone]


def test_a_retention_policy_is_the_only_expiration_of_raw(tmp_path: Path) -> None:
    request = render(tmp_path, "storage:\n  retention: {raw: 7y}\n", prefix="")
    raw = rules_by_zone(request)["raw"]
    assert raw["Filter"] == {"Prefix": "raw/"}
    assert raw["Expiration"] == {"Days": 7 * 365}


def test_an_expiration_on_raw_without_retention_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        render(
            tmp_path, "storage:\n  lifecycle:\n    raw: {intelligent_tiering_after: 0d, expire_after: 2y}\n"
        )
    assert caught.value.key == "storage.lifecycle.raw.expire_after"
    assert "storage.retention.raw" in str(caught.value) and str(tmp_path / "lakeplane.yaml") in str(
        caught.value
    )
    # With the retention policy it is accepted, and must agree with it.
    request = render(
        tmp_path,
        "storage:\n  retention: {raw: 2y}\n  lifecycle:\n    raw: {intelligent_tiering_after: 0d, expire_after: 2y}\n",
    )
    assert rules_by_zone(request)["raw"]["Expiration"] == {"Days": 730}
    with pytest.raises(ConfigError, match="must be storage.retention.raw"):
        render(tmp_path, "storage:\n  retention: {raw: 2y}\n  lifecycle:\n    raw: {expire_after: 1y}\n")


@pytest.mark.parametrize("key", ["expire_after", "glacier_after", "deep_archive_after"])
def test_table_zones_never_expire_nor_go_to_glacier(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match="Iceberg tables") as caught:
        render(tmp_path, f"storage:\n  lifecycle:\n    curated: {{{key}: 400d}}\n")
    assert caught.value.key == f"storage.lifecycle.curated.{key}"


def test_transitions_out_of_order_and_expiry_before_the_last_transition_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="increasing days"):
        render(
            tmp_path,
            "storage:\n  lifecycle:\n    raw: {intelligent_tiering_after: 90d, glacier_after: 30d}\n",
        )
    with pytest.raises(ConfigError, match="after the last transition"):
        render(tmp_path, "storage:\n  retention: {raw: 100d}\n  lifecycle:\n    raw: {glacier_after: 200d}\n")


def test_a_zone_with_nothing_to_do_has_no_rule(tmp_path: Path) -> None:
    request = render(
        tmp_path,
        "storage:\n  lifecycle:\n    processed: {abort_multipart_after: null}\n    curated: {abort_multipart_after: 1d}\n",
    )
    assert set(rules_by_zone(request)) == {"raw", "curated"}


def test_the_request_is_the_one_botocores_model_describes(tmp_path: Path) -> None:
    request = render(tmp_path, "storage:\n  retention: {raw: 7y}\n")
    validate_request("s3", "PutBucketLifecycleConfiguration", request)  # what render already checked
    rule = request["LifecycleConfiguration"]["Rules"][0]
    rule["Transitions"][0]["Days"] = "0"  # the checker does see a wrong shape
    with pytest.raises(AwsRequestInvalid) as caught:
        validate_request("s3", "PutBucketLifecycleConfiguration", request)
    assert "Days" in str(caught.value)


def test_on_a_local_lake_it_says_what_it_would_do_and_that_it_applies_only_to_s3(tmp_path: Path) -> None:
    (tmp_path / "lakeplane.yaml").write_text("name: t\nstorage:\n  retention: {raw: 7y}\n")
    runner = CliRunner()
    out = runner.invoke(cli, ["--lake", str(tmp_path), "storage", "lifecycle", "--apply", "--output", "json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["on_s3"] is False and result["applied"] is False
    assert "applies only to a lake on S3" in result["note"]
    assert len(result["request"]["LifecycleConfiguration"]["Rules"]) == 3
    text = runner.invoke(cli, ["--lake", str(tmp_path), "storage", "lifecycle"])
    assert text.exit_code == 0 and "INTELLIGENT_TIERING at 0d" in text.output and "2555d" in text.output
    # Nothing was applied, so nothing was audited or recorded.
    lake = open_lake(tmp_path)
    assert lake.maintenance_log.for_table(lake.storage.root_uri) == []


def test_a_refused_policy_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "lakeplane.yaml").write_text("storage:\n  lifecycle:\n    raw: {expire_after: 30d}\n")
    out = CliRunner().invoke(cli, ["--lake", str(tmp_path), "storage", "lifecycle"])
    assert out.exit_code == 1
    assert out.output.startswith("error: ") and "storage.retention.raw" in out.output

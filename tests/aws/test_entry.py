"""The module a remote job runs (``lakeplane.aws.entry``), run here against a lake on S3 (moto): the
project fetched from its ``project.zip`` on S3, steps run through ``execute_step`` as on EMR or Glue."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakeplane.aws.bundle import project_archive
from lakeplane.demo.generator import DayDrop
from lakeplane.lake import Lake, open_lake
from tests.aws.conftest import CODE_BUCKET, KEY, REGION, MotoAws, configured_demo, write_settings
from tests.conftest import DAY1

LAKE_BUCKET = "lakeplane-lake"
SRC = Path(__file__).parents[2] / "src"


@pytest.fixture
def s3_project(tmp_path: Path, moto_aws: MotoAws, drops: dict[dt.date, DayDrop]) -> Lake:
    """The demo project with its lake on moto's S3 and its catalog in a file both sides reach, the
    ad-tech day landed; its project.zip uploaded where a submit puts it."""
    moto_aws.client("s3").create_bucket(Bucket=LAKE_BUCKET)
    lake = configured_demo(tmp_path, moto_aws.url)
    write_settings(
        lake.project_dir,
        {
            "storage": {
                "root": f"s3://{LAKE_BUCKET}/lake",
                "s3": {
                    "endpoint": moto_aws.url,
                    "region": REGION,
                    "access_key_id": KEY,
                    "secret_access_key": KEY,
                },
            },
            "catalog": {"uri": f"sqlite:///{tmp_path / 'catalog.db'}"},
        },
    )
    lake = open_lake(lake.project_dir)
    for dataset, files in drops[DAY1].files.items():
        lake.land(dataset, files, DAY1)
    return lake


def _upload_project(lake: Lake, moto_aws: MotoAws) -> str:
    key = "code/adtech/project.zip"
    moto_aws.client("s3").put_object(
        Bucket=CODE_BUCKET, Key=key, Body=project_archive(lake.project_dir, None)
    )
    return f"s3://{CODE_BUCKET}/{key}"


def _entry(moto_aws: MotoAws, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAKEPLANE"))}
    env |= {
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": moto_aws.url,  # on AWS the job's role and the regional endpoint
        "PYTHONPATH": str(SRC),
    }
    return subprocess.run(
        [sys.executable, "-m", "lakeplane.aws.entry", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_entry_runs_pipeline_steps_against_the_s3_lake(s3_project: Lake, moto_aws: MotoAws) -> None:
    project = _upload_project(s3_project, moto_aws)
    common = ["--project", project, "--lake-root", f"s3://{LAKE_BUCKET}/lake", "--pipeline", "nightly"]
    # Glue passes its own arguments too; the entry ignores them
    done = _entry(
        moto_aws,
        *common,
        "--step",
        "impressions,clicks",
        "--step",
        "campaigns",
        "--ds",
        "2026-11-01",
        "--job-bookmark-option",
        "job-bookmark-enable",
        "--JOB_ID",
        "j_1",
    )
    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["step"] for r in reports] == ["impressions", "clicks", "campaigns"]
    assert all(r["ok"] and r["metrics"]["rows_out"] > 0 for r in reports)

    model = _entry(moto_aws, *common, "--step", "daily_campaign_stats", "--ds", "2026-11-01")
    assert model.returncode == 0, model.stderr
    (report,) = [json.loads(line) for line in model.stdout.splitlines() if line.startswith("{")]
    assert report["metrics"]["rows_out"] > 0

    # what the remote step wrote is in this project's lake: the same S3 root, the same catalog
    rows = s3_project.query("SELECT count(*) AS n FROM curated.daily_campaign_stats").to_pylist()
    assert rows[0]["n"] == report["metrics"]["rows_out"]
    keys = moto_aws.client("s3").list_objects_v2(Bucket=LAKE_BUCKET, Prefix="lake/")["KeyCount"]
    assert keys > 0


@pytest.mark.slow
def test_entry_fails_the_job_on_a_failed_gate(s3_project: Lake, moto_aws: MotoAws) -> None:
    (s3_project.project_dir / "quality" / "daily_campaign_stats.dqdl").write_text(
        "Rules = [ RowCount > 1000000000 ]\n"
    )
    project = _upload_project(s3_project, moto_aws)
    common = ["--project", project, "--lake-root", f"s3://{LAKE_BUCKET}/lake", "--ds", "2026-11-01"]
    ingested = _entry(moto_aws, *common, "--pipeline", "nightly", "--step", "impressions,clicks,campaigns")
    assert ingested.returncode == 0, ingested.stderr
    gated = _entry(moto_aws, *common, "--model", "curated.daily_campaign_stats")
    assert gated.returncode == 1
    error = json.loads(gated.stderr.strip().splitlines()[-1])
    assert error["error"] == "QualityGateFailed" and error["ok"] is False
    assert "RowCount" in error["message"]


def test_entry_names_an_unknown_step(tmp_path: Path, moto_aws: MotoAws) -> None:
    lake = configured_demo(tmp_path, None)
    done = _entry(
        moto_aws,
        "--project",
        str(lake.project_dir),
        "--pipeline",
        "nightly",
        "--step",
        "nope",
        "--ds",
        "2026-11-01",
    )
    assert done.returncode == 1
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert error["error"] == "ConfigError" and "has no step 'nope'" in error["message"]
    assert "Traceback" not in done.stderr

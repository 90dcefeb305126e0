"""``lakeplane aws submit`` against a moto server: each target created or started, what moto keeps
read back, Step Functions executed by moto's interpreter, and no credentials as one clear error."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lakeplane.aws.submit import submit_job
from lakeplane.errors import AwsError
from lakeplane.lake import Lake
from tests.aws.conftest import CODE_BUCKET, MotoAws, configured_demo, write_settings

DS = dt.date(2026, 11, 1)
MODEL = "curated.daily_campaign_stats"

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture
def lake(tmp_path: Path, moto_aws: MotoAws) -> Lake:
    application = moto_aws.client("emr-serverless").create_application(
        name=f"lakeplane-{tmp_path.name}", releaseLabel="emr-7.5.0", type="SPARK"
    )
    lake = configured_demo(
        tmp_path,
        moto_aws.url,
        workgroups={"analysts": {"bytes_scanned_cutoff_per_query": "2GB"}},
    )
    serverless = {**lake.config.aws.serverless.model_dump(), "application_id": application["applicationId"]}
    write_settings(lake.project_dir, {"aws": {**lake.config.aws.model_dump(), "serverless": serverless}})
    return Lake(lake.project_dir)


def _uploaded(moto_aws: MotoAws) -> set[str]:
    listing = moto_aws.client("s3").list_objects_v2(Bucket=CODE_BUCKET, Prefix="code/adtech/")
    return {item["Key"].rsplit("/", 1)[-1] for item in listing.get("Contents", [])}


def test_emr_cluster_is_started_with_its_steps(lake: Lake, moto_aws: MotoAws) -> None:
    submission = submit_job(lake, "emr", "nightly", DS)
    assert {"entry.py", "project.zip", "bootstrap.sh"} <= _uploaded(moto_aws)
    assert any(name.endswith("-py3-none-any.whl") for name in _uploaded(moto_aws))
    emr = moto_aws.client("emr")
    cluster = emr.describe_cluster(ClusterId=submission.ids["cluster_id"])["Cluster"]
    assert cluster["Name"] == "lakeplane-adtech-nightly-2026-11-01"
    assert cluster["AutoTerminate"] is True
    steps = emr.list_steps(ClusterId=submission.ids["cluster_id"])["Steps"]
    assert {s["Name"] for s in steps} == set(lake.pipeline("nightly").steps)


@pytest.mark.xfail(
    strict=True,
    reason="moto 5.2.5 accepts RunJobFlow with InstanceFleets but keeps no fleets: "
    "ListInstanceFleets answers HTTP 500 and DescribeCluster has no InstanceCollectionType",
    raises=ClientError,
)
def test_emr_instance_fleets_read_back(lake: Lake, moto_aws: MotoAws) -> None:
    submission = submit_job(lake, "emr", "nightly", DS)
    fleets = moto_aws.client("emr").list_instance_fleets(ClusterId=submission.ids["cluster_id"])
    assert {f["InstanceFleetType"] for f in fleets["InstanceFleets"]} == {"MASTER", "CORE", "TASK"}


def test_serverless_job_run_started_and_finished(lake: Lake, moto_aws: MotoAws) -> None:
    submission = submit_job(lake, "emr-serverless", MODEL, DS, wait=True, timeout_s=60)
    assert submission.state == "SUCCESS" and submission.succeeded
    run = moto_aws.client("emr-serverless").get_job_run(
        applicationId=submission.ids["application_id"], jobRunId=submission.ids["job_run_id"]
    )["jobRun"]
    assert run["jobDriver"]["sparkSubmit"]["entryPointArguments"][-1] == "2026-11-01"


def test_glue_job_created_and_run_started(lake: Lake, moto_aws: MotoAws) -> None:
    submission = submit_job(lake, "glue", "nightly", DS)
    glue = moto_aws.client("glue")
    job = glue.get_job(JobName=submission.ids["job_name"])["Job"]
    assert job["GlueVersion"] == "5.0" and job["Command"]["Name"] == "glueetl"
    assert job["DefaultArguments"]["--job-bookmark-option"] == "job-bookmark-enable"
    assert job["ExecutionClass"] == "FLEX"
    run = glue.get_job_run(JobName=submission.ids["job_name"], RunId=submission.ids["job_run_id"])["JobRun"]
    assert run["Arguments"]["--ds"] == "2026-11-01"


@pytest.mark.xfail(strict=True, reason="moto 5.2.5 has no Glue UpdateJob (HTTP 500)", raises=AwsError)
def test_glue_job_submitted_again_is_updated_in_place(lake: Lake, moto_aws: MotoAws) -> None:
    first = submit_job(lake, "glue", "nightly", DS)
    again = submit_job(lake, "glue", "nightly", DS)
    assert again.ids["job_run_id"] != first.ids["job_run_id"]


def test_athena_workgroup_created_with_its_scan_cap(lake: Lake, moto_aws: MotoAws) -> None:
    submission = submit_job(lake, "athena-workgroup", "analysts", DS)
    assert submission.details["bytes_scanned_cutoff_per_query"] == 2 * 1024**3
    stored = moto_aws.client("athena").get_work_group(WorkGroup=submission.ids["workgroup"])["WorkGroup"]
    assert stored["Configuration"]["BytesScannedCutoffPerQuery"] == 2 * 1024**3
    assert stored["Configuration"]["ResultConfiguration"]["OutputLocation"].startswith("s3://")


def _finish(moto_aws: MotoAws, execution_arn: str, timeout_s: float = 60) -> dict[str, Any]:
    sfn = moto_aws.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise AssertionError(f"{execution_arn} still running after {timeout_s} s")


def _history(moto_aws: MotoAws, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = moto_aws.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return events


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="moto 5.2.5's interpreter fails every .sync service task with States.Runtime "
    "\"'NoneType' object has no attribute 'interrupt_all'\" (no callback endpoint for .sync)",
    raises=AssertionError,
)
def test_state_machine_with_sync_tasks_runs_on_moto(lake: Lake, moto_aws: MotoAws) -> None:
    submission = submit_job(lake, "stepfunctions", "nightly", DS, runs_on="glue", wait=True, timeout_s=60)
    assert submission.state == "SUCCEEDED"


def _without_sync(definition: str) -> str:
    """The definition with each ``.sync`` task started without waiting, which moto can run."""
    return definition.replace(":startJobRun.sync", ":startJobRun")


def _run_machine(lake: Lake, moto_aws: MotoAws, name: str, definition: str) -> dict[str, Any]:
    from lakeplane.aws.render import render_job

    rendered = render_job(lake, "stepfunctions", "nightly", DS, runs_on="glue")
    sfn = moto_aws.client("stepfunctions")
    arn = sfn.create_state_machine(name=name, definition=definition, roleArn=rendered.request["roleArn"])[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"ds": DS.isoformat()}))
    described = _finish(moto_aws, execution["executionArn"])
    described["events"] = _history(moto_aws, execution["executionArn"])
    return described


@pytest.mark.slow
def test_state_machine_runs_every_step_of_the_dag_on_moto(lake: Lake, moto_aws: MotoAws) -> None:
    submission = submit_job(lake, "stepfunctions", "nightly", DS, runs_on="glue")
    machine = moto_aws.client("stepfunctions").describe_state_machine(
        stateMachineArn=submission.ids["state_machine_arn"]
    )
    described = _run_machine(lake, moto_aws, "nightly-started", _without_sync(machine["definition"]))
    assert described["status"] == "SUCCEEDED", described
    scheduled = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])
        for e in described["events"]
        if e["type"] == "TaskScheduled"
    ]
    assert sorted(p["Arguments"]["--step"] for p in scheduled) == sorted(lake.pipeline("nightly").steps)
    assert {p["Arguments"]["--ds"] for p in scheduled} == {"2026-11-01"}
    # each step ran as a run of the pipeline's Glue job, which submit created
    runs = moto_aws.client("glue").get_job_runs(JobName="lakeplane-adtech-nightly")["JobRuns"]
    assert {r["Arguments"].get("--step") for r in runs} >= set(lake.pipeline("nightly").steps)
    # a level's steps ran as the branches of one Parallel state, after the level before
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in described["events"] if "stateEnteredEventDetails" in e
    ]
    assert (
        entered.index("campaign_totals")
        > entered.index("daily_campaign_stats")
        > entered.index("impressions")
    )


@pytest.mark.slow
def test_a_failing_gated_step_ends_in_its_gate_fail_state(lake: Lake, moto_aws: MotoAws) -> None:
    from lakeplane.aws.render import render_job

    submit_job(lake, "glue", "nightly", DS)  # the Glue job the steps run as
    definition = json.loads(
        _without_sync(render_job(lake, "stepfunctions", "nightly", DS, runs_on="glue").request["definition"])
    )
    # moto runs no Spark: the gated step's job run fails by naming a job that does not exist
    (level,) = [
        s for s in definition["States"].values() if "daily_campaign_stats" in json.dumps(s.get("Branches"))
    ]
    for branch in level["Branches"]:
        if branch["StartAt"] == "daily_campaign_stats":
            branch["States"]["daily_campaign_stats"]["Parameters"]["JobName"] = "gate-of-daily-campaign-stats"
            branch["States"]["daily_campaign_stats"]["Retry"][0]["IntervalSeconds"] = 1
    described = _run_machine(lake, moto_aws, "nightly-gate", json.dumps(definition))
    assert described["status"] == "FAILED"
    assert described["error"] == "QualityGateFailed"
    fail_states = [
        e["stateEnteredEventDetails"]["name"] for e in described["events"] if e["type"] == "FailStateEntered"
    ]
    assert fail_states == ["daily_campaign_stats quality gate"]
    failed_tries = [e for e in described["events"] if e["type"] == "TaskFailed"]
    assert len(failed_tries) == 3  # the first try and the policy's two retries
    entered = {
        e["stateEnteredEventDetails"]["name"] for e in described["events"] if "stateEnteredEventDetails" in e
    }
    assert "campaign_totals" not in entered  # nothing after the gate ran


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "fresh" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "fresh" / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).parents[2] / "src"), env.get("PYTHONPATH")])
        ),
    }
    return env


@pytest.mark.slow
def test_submit_without_credentials_is_one_clear_error(lake: Lake, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "lakeplane.cli.main",
        "--lake",
        str(lake.project_dir),
        "aws",
        "submit",
        "glue",
        "nightly",
    ]
    done = subprocess.run(command, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "no AWS credentials found" in done.stderr and "AWS_ACCESS_KEY_ID" in done.stderr
    assert "Traceback" not in done.stderr
    as_json = subprocess.run(
        [*command, "--output", "json"], env=_clean_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["code"] == "NoCredentials"


def test_submit_refuses_placeholders(tmp_path: Path) -> None:
    from lakeplane.demo.run import build_project

    bare = build_project(tmp_path / "bare", governed=False)
    with pytest.raises(AwsError, match=r"aws\.glue\.role is not set") as caught:
        submit_job(bare, "glue", "nightly", DS)
    assert caught.value.code == "MissingSettings"

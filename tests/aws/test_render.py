"""``lakeplane aws render``: every target's request for the demo pipeline and a demo model, checked
against botocore's service models, and what each request must carry."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakeplane.aws.render import TARGETS, render_job, validate_request
from lakeplane.cli.main import cli
from lakeplane.demo.run import build_project
from lakeplane.errors import AwsRequestInvalid, ConfigError
from lakeplane.lake import Lake
from tests.aws.conftest import configured_demo

DS = dt.date(2026, 11, 1)
MODEL = "curated.daily_campaign_stats"
NIGHTLY_ORDER_FIRST = {"impressions", "clicks", "campaigns", "cdr", "subscribers"}


@pytest.fixture
def bare(tmp_path: Path) -> Lake:
    """The demo project as shipped: no ``aws:`` section."""
    return build_project(tmp_path / "project", governed=False)


@pytest.fixture
def configured(tmp_path: Path) -> Lake:
    return configured_demo(tmp_path, None, workgroups={"analysts": {"bytes_scanned_cutoff_per_query": "1GB"}})


@pytest.mark.parametrize("name", ["nightly", MODEL])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_renders_a_request_botocore_accepts(bare: Lake, target: str, name: str) -> None:
    rendered = render_job(bare, target, name, DS)
    validate_request(rendered.target.service, rendered.target.operation, rendered.request)
    document = json.loads(json.dumps(rendered.to_dict()))
    assert document["operation"] == TARGETS[target].operation
    assert document["service"] == TARGETS[target].service
    # without an aws: section, what a real submit needs is a placeholder, and said so
    if target != "athena-workgroup":
        assert any("aws.code_uri is not set" in w for w in document["warnings"])


def test_a_complete_aws_section_leaves_no_placeholder(configured: Lake) -> None:
    for target in TARGETS:
        rendered = render_job(configured, target, "nightly", DS)
        assert "<aws." not in json.dumps(rendered.request), target
        assert not [w for w in rendered.warnings if "is not set (" in w], target


def test_emr_cluster_is_transient_with_a_diversified_spot_task_fleet(bare: Lake) -> None:
    request = render_job(bare, "emr", "nightly", DS).request
    fleets = {f["InstanceFleetType"]: f for f in request["Instances"]["InstanceFleets"]}
    assert fleets["MASTER"]["TargetOnDemandCapacity"] == 1 and "TargetSpotCapacity" not in fleets["MASTER"]
    assert fleets["CORE"]["TargetOnDemandCapacity"] >= 1 and "TargetSpotCapacity" not in fleets["CORE"]
    task = fleets["TASK"]
    assert task["TargetSpotCapacity"] > 0 and task["TargetOnDemandCapacity"] == 0
    types = [c["InstanceType"] for c in task["InstanceTypeConfigs"]]
    assert {t.split(".")[0] for t in types} >= {"r6g", "r6i", "r5", "m6g"}
    spot = task["LaunchSpecifications"]["SpotSpecification"]
    assert spot["AllocationStrategy"] == "price-capacity-optimized"
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False
    assert request["AutoTerminationPolicy"]["IdleTimeout"] == 900
    limits = request["ManagedScalingPolicy"]["ComputeLimits"]
    assert limits["UnitType"] == "InstanceFleetUnits"
    assert limits["MinimumCapacityUnits"] <= limits["MaximumCapacityUnits"]
    (defaults,) = [c for c in request["Configurations"] if c["Classification"] == "spark-defaults"]
    conf = defaults["Properties"]
    for key in ("enabled", "skewJoin.enabled", "coalescePartitions.enabled"):
        assert conf[f"spark.sql.adaptive.{key}"] == "true"
    assert conf["spark.sql.parquet.fieldId.write.enabled"] == "true"
    # one EMR step per pipeline step, in dependency order, each running lakeplane's entry for that step
    names = [s["Name"] for s in request["Steps"]]
    assert set(names[:5]) == NIGHTLY_ORDER_FIRST and names.index("campaign_totals") > names.index(
        "daily_campaign_stats"
    )
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[0] == "spark-submit" and args[args.index("--step") + 1] == names[0]
    assert args[args.index("--ds") + 1] == "2026-11-01"
    assert request["ReleaseLabel"].startswith("emr-") and request["LogUri"] and request["ServiceRole"]


def test_spark_conf_of_the_project_reaches_every_job(tmp_path: Path) -> None:
    lake = configured_demo(tmp_path, None, spark={"conf": {"spark.sql.shuffle.partitions": 400}})
    emr = render_job(lake, "emr", "nightly", DS).request
    assert emr["Configurations"][0]["Properties"]["spark.sql.shuffle.partitions"] == "400"
    serverless = render_job(lake, "emr-serverless", "nightly", DS).request
    overrides = serverless["configurationOverrides"]["applicationConfiguration"][0]["properties"]
    assert overrides["spark.sql.shuffle.partitions"] == "400"
    glue = render_job(lake, "glue", "nightly", DS).request
    assert "spark.sql.shuffle.partitions=400" in glue["DefaultArguments"]["--conf"]


def test_serverless_job_run(configured: Lake) -> None:
    request = render_job(configured, "emr-serverless", MODEL, DS).request
    assert request["applicationId"] == "app00000001"
    driver = request["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"].endswith("/adtech/entry.py")
    assert driver["entryPointArguments"][-2:] == ["--ds", "2026-11-01"]
    assert "--model" in driver["entryPointArguments"]
    monitoring = request["configurationOverrides"]["monitoringConfiguration"]
    assert monitoring["s3MonitoringConfiguration"]["logUri"].startswith("s3://")
    # the same job and day is one run: the client token is stable
    assert (
        request["clientToken"] == render_job(configured, "emr-serverless", MODEL, DS).request["clientToken"]
    )


def test_glue_job_with_bookmarks_and_flex(configured: Lake, bare: Lake) -> None:
    request = render_job(configured, "glue", "nightly", DS).request
    assert request["Command"]["Name"] == "glueetl" and request["GlueVersion"] == "5.0"
    assert request["DefaultArguments"]["--job-bookmark-option"] == "job-bookmark-enable"
    assert request["ExecutionClass"] == "FLEX" and request["NumberOfWorkers"] == 4
    assert request["DefaultArguments"]["--additional-python-modules"].endswith("-py3-none-any.whl")
    assert render_job(bare, "glue", "nightly", DS).request["ExecutionClass"] == "STANDARD"


def _states(definition: dict[str, Any]) -> dict[str, Any]:
    """Every state, branches included, by name."""
    found: dict[str, Any] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(_states(branch))
    return found


@pytest.mark.parametrize("runs_on", ["glue", "emr-serverless", "emr"])
def test_state_machine_follows_the_dag(bare: Lake, runs_on: str) -> None:
    rendered = render_job(bare, "stepfunctions", "nightly", DS, runs_on=runs_on)
    definition = json.loads(rendered.request["definition"])
    top = definition["States"]
    parallel = [s for s in top.values() if s["Type"] == "Parallel"]
    assert {b["StartAt"] for b in parallel[0]["Branches"]} == NIGHTLY_ORDER_FIRST
    assert {b["StartAt"] for b in parallel[1]["Branches"]} == {"daily_campaign_stats", "cell_daily"}
    states = _states(definition)
    task = states["impressions"]
    assert task["Resource"].endswith(".sync")
    (retry,) = task["Retry"]  # nightly.yaml: attempts 3, interval 2 s, backoff 2, at most 60 s, jitter
    assert retry["MaxAttempts"] == 2 and retry["IntervalSeconds"] == 2 and retry["BackoffRate"] == 2.0
    assert retry["MaxDelaySeconds"] == 60 and retry["JitterStrategy"] == "FULL"
    assert task["TimeoutSeconds"] == 1800
    # the gated models fail into a Fail state named for their gate; the ungated one has none
    for gated in ("daily_campaign_stats", "cell_daily"):
        (catch,) = states[gated]["Catch"]
        assert states[catch["Next"]] == {
            **states[catch["Next"]],
            "Type": "Fail",
            "Error": "QualityGateFailed",
        }
        assert catch["Next"] == f"{gated} quality gate"
    assert "Catch" not in states["campaign_totals"]
    last = states["campaign_totals"]
    assert last.get("End") or last["Next"] == "terminate cluster"
    assert rendered.to_dict()["execution_input"] == {"ds": "2026-11-01"}
    if runs_on == "emr":
        assert definition["StartAt"] == "create cluster"
        assert states["create cluster"]["Parameters"]["Instances"]["InstanceFleets"]


def test_athena_workgroup_scan_cap_from_workgroups(configured: Lake) -> None:
    request = render_job(configured, "athena-workgroup", "analysts", DS).request
    assert request["Configuration"]["BytesScannedCutoffPerQuery"] == 1024**3
    assert request["Configuration"]["EnforceWorkGroupConfiguration"] is True
    assert request["Configuration"]["ResultConfiguration"]["OutputLocation"].startswith("s3://")
    # a pipeline's name renders the project's first (here: only) workgroup
    by_pipeline = render_job(configured, "athena-workgroup", "nightly", DS).request
    assert by_pipeline["Configuration"]["BytesScannedCutoffPerQuery"] == 1024**3


def test_a_cap_under_athenas_minimum_is_raised_and_said(tmp_path: Path) -> None:
    lake = configured_demo(tmp_path, None, workgroups={"tiny": {"bytes_scanned_cutoff_per_query": "1MB"}})
    rendered = render_job(lake, "athena-workgroup", "tiny", DS)
    assert rendered.request["Configuration"]["BytesScannedCutoffPerQuery"] == 10_000_000
    assert any("under Athena's minimum" in w for w in rendered.warnings)


def test_a_broken_request_is_rejected_naming_the_parameter(bare: Lake) -> None:
    request = copy.deepcopy(render_job(bare, "emr", "nightly", DS).request)
    request["Instances"]["InstanceFleets"][2]["TargetSpotCapacity"] = "four"
    del request["Name"]
    request["AutoTerminationPolicy"]["IdleTimeOut"] = 60
    with pytest.raises(AwsRequestInvalid) as caught:
        validate_request("emr", "RunJobFlow", request)
    message = str(caught.value)
    assert "Instances.InstanceFleets[2].TargetSpotCapacity" in message
    assert '"Name"' in message and "IdleTimeOut" in message
    assert len(caught.value.problems) == 3


def test_unknown_names_are_clear_errors(bare: Lake) -> None:
    with pytest.raises(ConfigError) as caught:
        render_job(bare, "glue", "nightlyy", DS)
    assert "did you mean 'nightly'" in str(caught.value)
    assert "adtech.curated.campaign_totals" in str(caught.value)
    with pytest.raises(ConfigError, match="unknown AWS target 'gleu'; did you mean 'glue'"):
        render_job(bare, "gleu", "nightly", DS)


def test_cli_render_json_and_out_file(bare: Lake, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "req.json"
    args = [
        "--lake",
        str(bare.project_dir),
        "aws",
        "render",
        "stepfunctions",
        "nightly",
        "--ds",
        "2026-11-01",
    ]
    done = runner.invoke(cli, [*args, "--output", "json", "--out", str(out)])
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert {"operation", "service", "request"} <= set(document)
    assert document["operation"] == "CreateStateMachine" and json.loads(out.read_text()) == document
    unknown = runner.invoke(cli, ["--lake", str(bare.project_dir), "aws", "render", "emr", "nope"])
    assert unknown.exit_code == 1
    assert "neither a pipeline nor a model" in unknown.stderr and "nightly" in unknown.stderr
    usage = runner.invoke(cli, ["--lake", str(bare.project_dir), "aws", "render", "lambda", "nightly"])
    assert usage.exit_code == 2


def test_a_wide_level_gets_a_short_state_name_and_a_quality_step_its_gate(bare: Lake) -> None:
    steps: dict[str, dict[str, Any]] = {
        f"ingest_partner_feed_number_{i}": {"ingest": "partner/impressions"} for i in range(4)
    }
    steps["check"] = {
        "quality": "quality/daily_campaign_stats.dqdl",
        "table": "curated.daily_campaign_stats",
        "depends_on": sorted(steps),
    }
    steps["advisory"] = {
        "quality": "quality/daily_campaign_stats.dqdl",
        "table": "curated.daily_campaign_stats",
        "blocking": False,
        "depends_on": ["check"],
    }
    (bare.project_dir / "pipelines" / "wide.yaml").write_text(json.dumps({"steps": steps}))
    definition = json.loads(render_job(bare, "stepfunctions", "wide", DS).request["definition"])
    assert definition["StartAt"] == "level 1 (4 steps)"
    states = _states(definition)
    assert states["check"]["Catch"][0]["Next"] == "check quality gate"
    assert "Catch" not in states["advisory"]  # a non-blocking check gates nothing

"""The reference decision table falls out of each job's inputs, and flips when the inputs do."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.compute.advisor import JobProfile, advise
from lakeplane.compute.prices import load_prices
from lakeplane.compute.scenario import evaluate

PRICES = load_prices()
GB, TB = 2**30, 2**40
MERIDIAN = Path(__file__).parents[2] / "src/lakeplane/demo/project/scenarios/meridian.yaml"

NIGHTLY = JobProfile(
    "nightly",
    seconds=12600,
    cores=480,
    input_bytes=20 * TB,
    peak_memory_gb=2400,
    runs_per_month=30.4,
    deadline=14400,
)
SPIKY = JobProfile(
    "spiky",
    seconds=1200,
    cores=64,
    input_bytes=200 * GB,
    peak_memory_gb=256,
    runs_per_month=400,
    arrival="unpredictable",
    start_latency=300,
    deadline=3600,
    concurrency=5,
)
ROUTINE = JobProfile(
    "routine", seconds=300, cores=4, input_bytes=GB // 2, peak_memory_gb=8, runs_per_month=720
)
ADHOC = JobProfile(
    "adhoc",
    kind="query",
    seconds=60,
    cores=32,
    bytes_scanned=20 * GB,
    input_bytes=20 * GB,
    peak_memory_gb=64,
    runs_per_month=54000,
    arrival="unpredictable",
    start_latency=10,
    deadline=120,
    concurrency=10,
)


@pytest.mark.parametrize(
    ("job", "shape"),
    [
        (NIGHTLY, "emr-transient-spot"),
        (SPIKY, "emr-serverless"),
        (ROUTINE, "glue-flex"),
        (ADHOC, "athena"),
    ],
)
def test_reference_decision_table(job: JobProfile, shape: str) -> None:
    advice = advise(job, PRICES)
    assert advice.choice is not None and advice.choice.shape == shape
    assert advice.runner_up is not None and advice.runner_up.shape != shape
    assert advice.reasons[0].startswith(f"{shape} is the cheapest")
    # every other shape is explained: as dearer, or as unable to run it
    assert len(advice.reasons) == len(advice.candidates)
    data = advice.to_dict()
    assert data["choice"] == shape and len(data["candidates"]) == 7


def test_a_small_nightly_job_is_no_longer_emr() -> None:
    small = replace(NIGHTLY, seconds=600, cores=8, input_bytes=20 * GB, peak_memory_gb=32)
    choice = advise(small, PRICES).choice
    assert choice is not None and not choice.shape.startswith("emr-transient")


def test_an_urgent_routine_job_is_not_flex() -> None:
    advice = advise(replace(ROUTINE, urgent=True), PRICES)
    assert advice.choice is not None and advice.choice.shape != "glue-flex"
    assert "urgent" in (advice.candidate("glue-flex").why_not or "")


def test_spiky_work_that_can_wait_goes_to_transient_emr() -> None:
    # no one waits for it to start: the bootstrap is no longer a reason to refuse EMR
    relaxed = replace(SPIKY, start_latency=None)
    assert advise(relaxed, PRICES).candidate("emr-transient-spot").feasible


def test_no_shape_fits_says_why() -> None:
    impossible = replace(ADHOC, deadline=1.0)
    advice = advise(impossible, PRICES)
    assert advice.choice is None and advice.reasons[0].startswith("no shape can run")


def test_meridian_within_15_percent_of_the_article() -> None:
    result = evaluate(MERIDIAN)
    data = result.to_dict()
    assert data["standing_usd_per_year"] == pytest.approx(6_400_000)
    assert data["transient_usd_per_year"] == pytest.approx(2_700_000, rel=0.15)
    assert data["savings"] == pytest.approx(0.58, rel=0.15)
    assert data["nightly_transient_vs_serverless"] == pytest.approx(0.65, rel=0.15)
    shapes = {job["job"]: job["choice"] for job in data["jobs"]}
    assert shapes["nightly CDR conformance"] == "emr-transient-spot"
    assert shapes["monthly fraud reprocessing"] == "emr-transient-spot"
    assert shapes["routine aggregates"] == "glue-flex"
    assert shapes["analysts' ad-hoc queries"] == "athena"
    assert shapes["analysts' Spark jobs"] == "emr-serverless"


def test_scenario_errors_name_file_and_key(tmp_path: Path) -> None:
    from lakeplane.errors import ConfigError

    text = MERIDIAN.read_text(encoding="utf-8").replace("deadline: 4h", "deadline: soon", 1)
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        evaluate(tmp_path / "s.yaml")
    assert raised.value.key == "jobs[0].deadline" and raised.value.file == str(tmp_path / "s.yaml")


def test_cli_advise_scenario_json_and_text() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["advise", "--scenario", str(MERIDIAN), "--output", "json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.output)
    for key in (
        "savings",
        "nightly_transient_vs_serverless",
        "standing_usd_per_year",
        "transient_usd_per_year",
    ):
        assert isinstance(data[key], float)
    assert len(data["jobs"]) == 6
    text = runner.invoke(cli, ["advise", "--scenario", str(MERIDIAN)])
    assert text.exit_code == 0 and "saved" in text.output


def test_cli_advise_target_needs_history_and_no_argument_is_usage() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["advise", "nightly"]).exit_code == 1
    assert runner.invoke(cli, ["advise"]).exit_code == 2


def test_cli_cost_prices() -> None:
    import json

    result = CliRunner().invoke(cli, ["cost", "prices", "--region", "eu-west-1", "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["region"] == "eu-west-1" and data["glue"]["dpu_hour"] == 0.44


def test_demo_project_ships_the_scenario(tmp_path: Path) -> None:
    from lakeplane.demo.run import build_project

    lake = build_project(tmp_path / "demo")
    assert (lake.project_dir / "scenarios" / "meridian.yaml").is_file()

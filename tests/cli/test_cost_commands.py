"""``advise PIPELINE|MODEL``, ``cost report`` and ``run-show``'s costs on the demo lake after three
real nightly runs at three sizes (the figures checked by hand against the run store)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake
from lakeplane.pipelines.store import RunRecord

#: The demo's nightly runs: impressions and calls per day, growing ~15x from the first day.
SIZES = ((2_000, 300), (10_000, 1_500), (30_000, 4_500))
PER_HOUR = 0.36

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, list[RunRecord]]:
    root = tmp_path_factory.mktemp("history")
    lake = build_project(root / "project", governed=False)
    with (lake.project_dir / "lakeplane.yaml").open("a") as config:
        config.write(f"\ncost:\n  here:\n    per_hour: {PER_HOUR}\n")
    lake = Lake(lake.project_dir)
    runs = []
    for offset, (impressions, calls) in enumerate(SIZES):
        day = dt.date(2026, 11, 1) + dt.timedelta(days=offset)
        files = generate_day(root / "drops", day, impressions).files | telco.generate_day(
            root / "drops", day, calls
        )
        for dataset, paths in files.items():
            lake.land(dataset, paths, day)
        run = lake.run_record(lake.run_pipeline("nightly", day).run_id)
        assert run.state == "succeeded", run.to_dict()
        runs.append(run)
    return lake, runs


def cli_json(lake: Lake, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), "--output", "json", *args])
    return result.exit_code, json.loads(result.output) if result.output.strip() else None


def cli_text(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


def wall(run: RunRecord) -> float:
    assert run.ended_at
    return (
        dt.datetime.fromisoformat(run.ended_at) - dt.datetime.fromisoformat(run.started_at)
    ).total_seconds()


def test_advise_a_pipeline_at_today_ten_and_a_hundred_times(history: tuple[Lake, list[RunRecord]]) -> None:
    lake, runs = history
    code, found = cli_json(
        lake, "advise", "nightly", "--volume", "10x", "--volume", "100", "--deadline", "1h"
    )
    assert code == 0, found
    assert found["job"] == "nightly" and found["kind"] == "pipeline" and found["model"]["runs"] == 3
    assert [r["run_id"] for r in found["runs"]] == [r.run_id for r in runs]
    today = sum(int(a.metrics.get("bytes_read", 0)) for a in runs[-1].attempts if a.state == "succeeded")
    assert found["today"]["input_bytes"] == today
    assert found["model"]["bytes_range"] == [min(r["input_bytes"] for r in found["runs"]), today]
    volumes = {v["multiple"]: v for v in found["volumes"]}
    assert sorted(volumes) == [1.0, 10.0, 100.0]
    assert not volumes[1.0]["predicted"]["extrapolated"]
    for multiple in (10.0, 100.0):
        answer = volumes[multiple]
        assert answer["input_bytes"] == int(today * multiple)
        assert answer["predicted"]["extrapolated"] and answer["predicted"]["bytes_factor"] == pytest.approx(
            multiple
        )
        assert f"{multiple:.1f}x the largest input seen" in answer["uncertainty"]
        assert answer["deadline"] == 3600
    for answer in volumes.values():
        low, mid, high = (answer["predicted"][k] for k in ("low", "seconds", "high"))
        assert low <= mid <= high and "at 90%" in answer["uncertainty"]
        assert answer["choice"] and answer["runner_up"] and answer["choice"] != answer["runner_up"]
        assert answer["reasons"][0].startswith(f"{answer['choice']} is the cheapest shape")
        assert any("athena cannot run it" in r for r in answer["reasons"])
    assert any("today's volume is the latest run's input" in a for a in found["assumptions"])


def test_advise_a_model_built_by_a_pipeline_step(history: tuple[Lake, list[RunRecord]]) -> None:
    lake, runs = history
    code, found = cli_json(lake, "advise", "daily_campaign_stats", "--volume", "10x")
    assert code == 0, found
    assert found["job"] == "adtech.curated.daily_campaign_stats" and found["kind"] == "model"
    step = [next(a for a in r.attempts if a.step == "daily_campaign_stats") for r in runs]
    assert [r["input_bytes"] for r in found["runs"]] == [a.metrics["bytes_read"] for a in step]
    assert [r["seconds"] for r in found["runs"]] == [a.metrics["seconds"] for a in step]


def test_advise_text(history: tuple[Lake, list[RunRecord]]) -> None:
    code, out = cli_text(history[0], "advise", "nightly", "--volume", "10x")
    assert code == 0, out
    assert "nightly (pipeline): scaling model from 3 runs" in out
    assert "runner-up" in out and "10x:" in out and "assumed: " in out


def test_advise_errors(history: tuple[Lake, list[RunRecord]], demo_lake: Lake) -> None:
    code, out = cli_text(history[0], "advise", "nighty")
    assert (
        code == 1
        and "error: no pipeline or pipeline-built model named 'nighty'; did you mean 'nightly'" in out
    )
    code, found = cli_json(demo_lake, "advise", "nightly")
    assert code == 1
    assert found["error"] == "ScalingError" and found["runs"] == 0 and found["needed"] == 3
    assert "nightly: 0 usable run(s)" in found["message"]
    code, out = cli_text(history[0], "advise", "nightly", "--volume", "ten")
    assert code == 2 and "--volume ten: expected a positive multiple" in out


def test_cost_report_against_the_run_store(history: tuple[Lake, list[RunRecord]]) -> None:
    lake, runs = history
    code, found = cli_json(lake, "cost", "report", "--since", "7d")
    assert code == 0, found
    assert found["days"] == pytest.approx(7.0, abs=1e-3)
    assert [r["run_id"] for r in found["runs"]] == [r.run_id for r in runs]
    for priced, run in zip(found["runs"], runs, strict=True):
        assert priced["here_usd"] == pytest.approx(PER_HOUR * wall(run) / 3600, abs=1e-6)
        feasible = {s: v for s, v in priced["shapes"].items() if v is not None and s != "emr-standing"}
        assert priced["transient_usd"] == pytest.approx(min(feasible.values()))
    total = found["total"]
    assert total["runs"] == 3
    assert total["here_usd"] == pytest.approx(sum(PER_HOUR * wall(r) / 3600 for r in runs), abs=3e-6)
    # Figures are rounded to the millionth of a dollar.
    assert total["transient_usd"] == pytest.approx(sum(r["transient_usd"] for r in found["runs"]), abs=3e-6)
    # Standing: one m6g.xlarge primary ($0.154 + $0.0385 EMR) and r6g.2xlarge nodes ($0.4032 +
    # $0.1008), enough for the peak run's cores (8 vCPUs a node) and memory (80 % of 64 GB), at least 2.
    peak_cores = max(float(a.metrics.get("cores", 0)) for r in runs for a in r.attempts)
    peak_gb = max(float(a.metrics.get("peak_memory_mb", 0)) for r in runs for a in r.attempts) / 1024
    nodes = max(2, math.ceil(peak_cores / 8), math.ceil(peak_gb / (64 * 0.8)))
    standing = total["standing"]
    assert (standing["peak_vcpu"], standing["nodes"]) == (peak_cores, nodes)
    assert standing["usd_per_hour"] == pytest.approx(0.154 + 0.0385 + nodes * (0.4032 + 0.1008))
    assert total["standing_usd"] == pytest.approx(standing["usd_per_hour"] * 24 * 7, rel=1e-4)
    assert total["savings"] == pytest.approx(1 - total["transient_usd"] / total["standing_usd"], abs=1e-4)
    assert [p["name"] for p in found["pipelines"]] == ["nightly"]
    assert found["pipelines"][0]["standing_usd"] == total["standing_usd"]
    code, out = cli_text(lake, "cost", "report", "--since", "2026-01-01")
    assert code == 0 and "all runs on each shape" in out and "assumed: standing:" in out
    code, out = cli_text(lake, "cost", "report", "--since", "last week")
    assert code == 1 and "--since last week: expected a duration (7d, 12h) or a date" in out
    code, found = cli_json(lake, "cost", "report", "--since", "2099-01-01")
    assert code == 0 and found["runs"] == [] and found["total"] is None


def test_run_show_costs(history: tuple[Lake, list[RunRecord]]) -> None:
    lake, runs = history
    run = runs[-1]
    code, found = cli_json(lake, "run-show", run.run_id)
    assert code == 0, found
    cost = found["cost"]
    assert [(s["step"], s["attempt"]) for s in cost["steps"]] == [(a.step, a.attempt) for a in run.attempts]
    for step, attempt in zip(cost["steps"], run.attempts, strict=True):
        assert step["usage"]["vcpu_seconds"] == attempt.metrics.get("vcpu_seconds", 0)
        assert step["usage"]["bytes_read"] == attempt.metrics.get("bytes_read", 0)
        seconds = float(attempt.metrics.get("seconds", 0))
        assert step["here_usd"] == pytest.approx(PER_HOUR * seconds / 3600, abs=1e-6)
        assert {"emr-transient-spot", "emr-serverless", "glue", "glue-flex"} <= set(step["shapes"])
    total = cost["total"]
    assert total["here_usd"] == pytest.approx(PER_HOUR * wall(run) / 3600, abs=1e-6)  # shown to 6 places
    athena = total["shapes"]["athena"]
    assert not athena["feasible"] and "batch" in athena["why_not"]
    spot = total["shapes"]["emr-transient-spot"]
    assert spot["feasible"] and spot["usd"] > 0 and spot["assumptions"]
    assert any("as of" in a for a in cost["assumptions"])
    code, out = cli_text(lake, "run-show", run.run_id)
    assert code == 0 and "usage per step attempt" in out and "the run as one job: here $" in out


def test_run_show_with_a_broken_price_table_still_shows_the_run(
    history: tuple[Lake, list[RunRecord]],
) -> None:
    lake, runs = history
    result = CliRunner().invoke(
        cli,
        ["--lake", str(lake.project_dir), "run-show", runs[0].run_id],
        env={"LAKEPLANE__COST__PRICES": "missing-prices.yaml"},
    )
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "cost: not computed: price table" in result.output


def test_placing_by_cost_predicts_with_the_models_own_scaling_model(
    history: tuple[Lake, list[RunRecord]],
) -> None:
    lake = history[0]
    fits = lake.costs.engine_fits("daily_campaign_stats")
    assert set(fits) == {"duckdb"} and fits["duckdb"].runs == 3, "three runs on DuckDB, none on Spark"
    overrides = {"engine": {"type": "auto"}, "placement": {"by_cost": True}}
    placed = Lake(lake.project_dir, overrides).model_jobs.placement(
        lake.model("daily_campaign_stats"), dt.date(2026, 11, 3)
    )
    predicted = fits["duckdb"].predict(int(placed.input_bytes or 0), 2)
    assert placed.engine == "duckdb"
    assert "its scaling model from 3 runs on duckdb" in placed.reason
    assert f"duckdb ~{predicted.seconds:.1f} s" in placed.reason
    # Spark has no history here: its time is the reference throughput's.
    assert "local[" in placed.reason and "runs on spark" not in placed.reason
    # A deadline below the fitted model's interval cannot be met on DuckDB, whatever its estimate.
    tight = {**overrides, "placement": {"by_cost": True, "deadline": max(predicted.high * 0.5, 0.01)}}
    moved = Lake(lake.project_dir, tight).model_jobs.placement(
        lake.model("daily_campaign_stats"), dt.date(2026, 11, 3)
    )
    assert "misses the deadline" in moved.reason

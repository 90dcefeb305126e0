"""Each SLO kind judged on a real run store, checked against a computation by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from lakeplane.observe.slo import SloResult
from tests.observe.conftest import PER_HOUR, Observed

pytestmark = pytest.mark.slow

HOUR = 3600.0


def by_name(results: list[SloResult]) -> dict[str, SloResult]:
    return {r.name: r for r in results}


def test_rate_slos_against_the_run_store(observed: Observed) -> None:
    attempts = [a for run in observed.chaos for a in run.attempts if a.attempt >= 1]
    steps = {(a.step, run.run_id) for run in observed.chaos for a in run.attempts if a.attempt >= 1}
    extra = len(attempts) - len(steps)
    lost = [a for a in attempts if "died (exit code -9)" in (a.error or "")]
    assert (len(steps), extra, len(attempts), len(lost)) == (8, 2, 10, 2)  # flaky retried, killed lost

    results = by_name(observed.lake.slos())
    retries = results["chaos_retries"]
    assert retries.observed == pytest.approx(2 / 8) and retries.ok
    assert retries.error_budget_remaining == pytest.approx(1 - 2 / (0.5 * 8))  # 0.5 of the budget used
    assert retries.burn_rate == pytest.approx((2 / 8) / 0.5)  # every run is in the last hour

    loss = results["chaos_lost"]
    assert loss.observed == pytest.approx(2 / 10) and not loss.ok
    assert loss.error_budget_remaining == pytest.approx(1 - 2 / (0.1 * 10))  # overspent: -1
    assert loss.burn_rate == pytest.approx(2.0)

    # the table's gates: the nightly model's (passed) and the chaos quality step's, twice (failed)
    dq = results["stats_dq"]
    assert (dq.target_type, dq.events) == ("table", 3)
    assert dq.observed == pytest.approx(1 / 3) and not dq.ok
    assert dq.error_budget_remaining == pytest.approx(1 - 2 / (0.1 * 3))
    assert dq.burn_rate == pytest.approx((2 / 3) / 0.1)
    gated = [a for a in observed.nightly.attempts if a.metrics.get("quality")]
    assert {a.step for a in gated} == {"daily_campaign_stats", "cell_daily"}
    nightly_dq = results["nightly_dq"]
    assert (nightly_dq.observed, nightly_dq.events, nightly_dq.ok) == (1.0, 2, True)
    assert nightly_dq.error_budget_remaining == 1.0 and nightly_dq.burn_rate == 0.0


def test_cost_per_day_prices_the_pipeline_runs(observed: Observed) -> None:
    run = observed.nightly
    assert run.ended_at is not None
    wall = (
        dt.datetime.fromisoformat(run.ended_at) - dt.datetime.fromisoformat(run.started_at)
    ).total_seconds()
    spend = PER_HOUR * wall / HOUR  # this machine for the run's wall time
    cost = by_name(observed.lake.slos(["nightly_cost"]))["nightly_cost"]
    assert cost.observed == pytest.approx(spend / 1.0)  # one run in a one-day window
    assert cost.ok and cost.error_budget_remaining == pytest.approx(1 - spend / 0.5)
    assert cost.burn_rate == pytest.approx((spend / (1 / 24)) / 0.5)
    assert cost.to_dict()["window"] == "1d" and cost.unit == "usd"


def test_freshness_of_a_table_and_of_a_pipeline_two_hours_later(observed: Observed) -> None:
    lake = observed.lake
    table = lake.catalog.load("adtech.curated.daily_campaign_stats")
    head = table.current_snapshot()
    assert head is not None
    published = dt.datetime.fromtimestamp(head.timestamp_ms / 1000, dt.UTC)
    assert observed.nightly.ended_at is not None
    ended = dt.datetime.fromisoformat(observed.nightly.ended_at)
    for name, last in (("stats_fresh", published), ("nightly_fresh", ended)):
        later = last + dt.timedelta(hours=2)
        (fresh,) = lake.slos([name], now=later)
        assert fresh.observed == pytest.approx(2 * HOUR) and not fresh.ok
        # stale for the last hour (lag above 1 h); the budget is 10 % of a day, 8640 s
        assert fresh.error_budget_remaining == pytest.approx(1 - HOUR / (0.1 * 86400))
        assert fresh.burn_rate == pytest.approx((HOUR / HOUR) / 0.1)
        (ok,) = lake.slos([name], now=last + dt.timedelta(minutes=30))
        assert ok.ok and ok.observed == pytest.approx(1800) and ok.error_budget_remaining == 1.0
    # a day and more later, the window holds nothing but stale time
    (gone,) = lake.slos(["stats_fresh"], now=published + dt.timedelta(days=3))
    assert gone.error_budget_remaining == pytest.approx(1 - 86400 / 8640)


def test_a_breach_and_each_failed_run_alert_once_with_the_run_link(observed: Observed) -> None:
    first, second = observed.chaos
    titles = [a["title"] for a in observed.received]
    assert titles == [
        f"lakeplane: run {first.run_id} failed",
        "lakeplane: SLO chaos_lost breached",
        "lakeplane: SLO stats_dq breached",
        f"lakeplane: run {second.run_id} failed",
    ]  # the second run keeps both SLOs breached: not announced again
    failed, lost, dq, _ = observed.received
    assert f"http://console.test:8700/runs/{first.run_id}" in failed["message"]
    assert "step killed (attempt 1): step 'killed' died (exit code -9)" in failed["message"]
    assert f"http://console.test:8700/runs/{first.run_id}" in lost["message"]
    assert "worker_loss_rate of pipeline chaos" in lost["message"]
    assert "dq_pass_rate of table curated.daily_campaign_stats" in dq["message"]

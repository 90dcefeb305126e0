"""Cost figures on every shape against arithmetic done by hand (written out in each test)."""

from __future__ import annotations

import pytest

from lakeplane.compute.costs import HereMachine, ShapeCost, Usage, price_job, price_usage
from lakeplane.compute.jobs import AmdahlScaling, JobProfile
from lakeplane.compute.prices import HerePrice, load_prices

PRICES = load_prices()
# 600 s on 8 vCPUs peaking at 32 GB, nothing scanned.
BATCH = Usage.from_metrics({"seconds": 600, "cores": 8, "peak_memory_mb": 32 * 1024, "bytes_read": 10})


def _by_shape(costs: list[ShapeCost]) -> dict[str, ShapeCost]:
    return {c.shape: c for c in costs}


def test_usage_from_metrics_reads_the_agreed_keys_and_missing_ones_are_zero() -> None:
    usage = Usage.from_metrics(
        {"seconds": 12.5, "vcpu_seconds": 25, "peak_memory_mb": 512, "bytes_scanned": 7}
    )
    assert usage.seconds == 12.5 and usage.vcpu_seconds == 25 and usage.bytes_scanned == 7
    assert usage.peak_memory_gb == 0.5
    assert usage.cpu_seconds == 0 and usage.cores == 0 and usage.memory_gb_seconds == 0


def test_here_is_the_machine_price_for_the_measured_wall_time() -> None:
    cost = _by_shape(price_usage(BATCH, PRICES, 0.0832))["here"]
    # 600 s x $0.0832/h
    assert cost.usd == pytest.approx(600 / 3600 * 0.0832)
    assert cost.seconds == 600


def test_emr_transient_one_primary_and_one_core_node_with_bootstrap_billed() -> None:
    costs = _by_shape(price_usage(BATCH, PRICES, None))
    assert "here" not in costs
    emr = costs["emr-transient"]
    # 8 vCPU and 32 GB fit one r6g.2xlarge worker (8 vCPU, 64 GB x 0.8 usable): a core node.
    # hourly = m6g.xlarge (0.154 + 0.0385) + r6g.2xlarge (0.4032 + 0.1008) = 0.6965
    # billed = 480 s bootstrap + 600 s run = 1080 s
    assert emr.usd == pytest.approx(0.6965 * 1080 / 3600)
    assert emr.seconds == 1080 and emr.start_seconds == 480
    # no task node, so nothing runs on Spot
    assert costs["emr-transient-spot"].usd == pytest.approx(emr.usd)


def test_emr_transient_spot_task_fleet() -> None:
    usage = Usage(seconds=3600, cores=80, peak_memory_gb=100)
    spot = _by_shape(price_usage(usage, PRICES, None))["emr-transient-spot"]
    # 80 vCPUs: 10 r6g.2xlarge workers; core = max(2, ceil(10 x 0.1)) = 2, task = 8 on Spot.
    # task = 0.4032 x (1 - 0.70) + 0.1008 = 0.22176/h; hourly = 0.1925 + 2 x 0.504 + 8 x 0.22176
    hourly = 0.1925 + 2 * 0.504 + 8 * 0.22176
    # the run is 5 % longer for Spot rework: 3780 s, plus 480 s bootstrap
    assert spot.usd == pytest.approx(hourly * (480 + 3780) / 3600)
    assert "8 r6g.2xlarge task Spot" in spot.size
    assert any("70% r6g Spot saving" in a for a in spot.assumptions)


def test_emr_standing_carries_its_share_of_the_month() -> None:
    standing = _by_shape(price_usage(BATCH, PRICES, None, runs_per_month=30))["emr-standing"]
    # 0.6965/h x 730 h = $508.445 a month, over 30 runs
    assert standing.usd_per_month == pytest.approx(0.6965 * 730)
    assert standing.usd == pytest.approx(0.6965 * 730 / 30)


def test_emr_serverless_driver_and_minimum_executors() -> None:
    cost = _by_shape(price_usage(BATCH, PRICES, None))["emr-serverless"]
    # driver 4 vCPU/16 GB + 3 executors (the minimum) of 4 vCPU and ceil(32/3) = 11 GB:
    # 16 vCPU, 49 GB -> 16 x 0.052624 + 49 x 0.0057785 = 1.1251305/h
    # run on 12 executor vCPUs: 600 x (0.05 + 0.95 x 8/12) = 410 s; billed 30 s of start + 410 s
    assert cost.run_seconds == pytest.approx(410)
    assert cost.usd == pytest.approx(1.1251305 * 440 / 3600)
    assert cost.start_seconds == 90


def test_glue_and_flex_dpus_rounded_up_with_the_driver() -> None:
    costs = _by_shape(price_usage(BATCH, PRICES, None))
    # 8 vCPU / 4 = 2 executor DPUs (32 GB / 16 = 2 as well) + 1 driver = 3 G.1X workers, 600 s
    assert costs["glue"].usd == pytest.approx(3 * 0.44 * 600 / 3600)
    assert costs["glue-flex"].usd == pytest.approx(3 * 0.29 * 600 / 3600)


def test_glue_minimum_minute_and_two_workers() -> None:
    tiny = Usage(seconds=5, cores=1, peak_memory_gb=0.1)
    glue = _by_shape(price_usage(tiny, PRICES, None))["glue"]
    # 2 workers (the minimum) billed 60 s (the minimum), though the run takes 5 s
    assert glue.usd == pytest.approx(2 * 0.44 * 60 / 3600)


def test_athena_only_for_queries() -> None:
    costs = _by_shape(price_usage(BATCH, PRICES, None))
    assert not costs["athena"].feasible and "batch" in (costs["athena"].why_not or "")
    query = Usage(seconds=3, cores=2, bytes_scanned=5 * 2**20)
    athena = _by_shape(price_usage(query, PRICES, None))["athena"]
    # 5 MB scanned bills the 10 MB minimum: 10 / 1,048,576 TB x $5
    assert athena.feasible and athena.usd == pytest.approx(10 / 1048576 * 5)


def test_every_shape_states_its_assumptions_and_serialises() -> None:
    for cost in price_usage(BATCH, PRICES, HerePrice(0.1, "this machine costs $0.1/h")):
        assert cost.assumptions and all(isinstance(a, str) and a for a in cost.assumptions)
        data = cost.to_dict()
        assert data["shape"] == cost.shape and data["feasible"] == cost.feasible


def test_price_job_sizes_to_the_smallest_that_meets_the_deadline() -> None:
    job = JobProfile("j", seconds=3600, cores=64, peak_memory_gb=64, deadline=1800, runs_per_month=30)
    emr = _by_shape(price_job(job, PRICES, shapes=["emr-transient"]))["emr-transient"]
    # T(c) = 3600 x (0.05 + 0.95 x 64 / c) <= 1800 (scheduled: bootstrap begun ahead)
    # -> c >= 60.8 / 0.45 = 135.1 -> 17 nodes x 8 vCPU = 136 vCPUs
    assert emr.units == 17 and emr.run_seconds <= 1800
    assert emr.usd_per_month == pytest.approx(emr.usd * 30)


def test_price_job_rejects_what_cannot_meet_the_limits() -> None:
    job = JobProfile(
        "j",
        seconds=600,
        cores=8,
        peak_memory_gb=16,
        arrival="unpredictable",
        start_latency=60,
        urgent=True,
        budget=0.05,
    )
    costs = _by_shape(price_job(job, PRICES, here=HereMachine(HerePrice(0.05, "test"), 2, 8)))
    assert "must start within 60 s" in (costs["emr-transient"].why_not or "")
    assert "urgent" in (costs["glue-flex"].why_not or "")
    assert "budget" in (costs["glue"].why_not or "")
    assert "16 GB" in (costs["here"].why_not or "")


def test_the_scaling_callable_plugs_in() -> None:
    def seconds_at(cores: float) -> tuple[float, float, float]:
        return 1000.0, 900.0, 1200.0

    job = JobProfile("j", seconds=1, cores=4, seconds_at=seconds_at)
    glue = _by_shape(price_job(job, PRICES, shapes=["glue"]))["glue"]
    assert glue.seconds == 1030 and glue.seconds_low == 930 and glue.seconds_high == 1230
    assert AmdahlScaling(100, 4, max_cores=4)(64)[0] == pytest.approx(100)

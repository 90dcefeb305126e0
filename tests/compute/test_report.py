"""The cost report on a run store written with known usage and times, against hand arithmetic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakeplane.compute.history import read_runs
from lakeplane.compute.prices import HerePrice, load_prices
from lakeplane.compute.report import cost_report, parse_since, run_detail
from lakeplane.errors import ConfigError
from lakeplane.pipelines.store import RUNS, RunStore
from tests.compute.test_history import record_run

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
HERE = HerePrice(0.72, "this machine costs $0.7200/h (test)")


def at(store: RunStore, run_id: str, start: dt.datetime, seconds: float) -> None:
    """Give a run a known start and wall time."""
    with store.engine.begin() as conn:
        conn.execute(
            RUNS.update()
            .where(RUNS.c.run_id == run_id)
            .values(
                started_at=start.isoformat(), ended_at=(start + dt.timedelta(seconds=seconds)).isoformat()
            )
        )


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(sa.create_engine(f"sqlite:///{tmp_path / 'runs.db'}"))
    step = {
        "seconds": 500.0,
        "cores": 4,
        "vcpu_seconds": 2000.0,
        "peak_memory_mb": 2048,
        "bytes_read": 10 << 30,
    }
    small = record_run(store, "nightly", "2026-11-27", {"build": [step]})
    big = record_run(
        store,
        "nightly",
        "2026-11-28",
        {"build": [None, {**step, "cores": 20, "peak_memory_mb": 150 * 1024, "seconds": 1800.0}]},
    )
    hourly = record_run(store, "hourly", "2026-11-28", {"load": [{**step, "seconds": 60.0, "cores": 2}]})
    old = record_run(store, "nightly", "2026-11-01", {"build": [step]})
    at(store, small, NOW - dt.timedelta(days=3), 600)
    at(store, big, NOW - dt.timedelta(days=2), 2400)
    at(store, hourly, NOW - dt.timedelta(days=1), 90)
    at(store, old, NOW - dt.timedelta(days=29), 600)
    return store


def test_report_by_hand(store: RunStore) -> None:
    prices = load_prices()
    since = parse_since("7d", NOW)
    report = cost_report(read_runs(store, since=since), prices, HERE, since, NOW)
    assert report.days == 7.0
    assert [r.ds for r in report.runs] == ["2026-11-27", "2026-11-28", "2026-11-28"]  # not the old run
    # Here: the whole machine for each run's wall time, $0.72/h.
    assert [r.here_usd for r in report.runs] == pytest.approx(
        [0.72 * 600 / 3600, 0.72 * 2400 / 3600, 0.72 * 90 / 3600]
    )
    hourly, nightly = report.pipelines  # by name
    assert (nightly.name, nightly.runs, hourly.name, hourly.runs) == ("nightly", 2, "hourly", 1)
    assert nightly.here_usd == pytest.approx(0.72 * 3000 / 3600)
    # Standing for nightly: the big run held 20 cores (3 r6g.2xlarge of 8 vCPUs) and 150 GB (150 /
    # (64 x 0.8) -> 3 nodes): 3 nodes x ($0.4032 + $0.1008) + m6g.xlarge primary ($0.154 + $0.0385).
    standing = nightly.standing
    assert (standing.peak_vcpu, standing.nodes, standing.node, standing.primary) == (
        20,
        3,
        "r6g.2xlarge",
        "m6g.xlarge",
    )
    assert standing.usd_per_hour == pytest.approx(3 * 0.504 + 0.1925)
    assert standing.usd == pytest.approx((3 * 0.504 + 0.1925) * 24 * 7)
    # hourly's peak is 2 cores and 2 GB: the 2-node minimum.
    assert hourly.standing.nodes == 2 and hourly.standing.usd == pytest.approx((2 * 0.504 + 0.1925) * 24 * 7)
    total = report.total
    assert total is not None and total.standing.nodes == 3 and total.runs == 3
    assert total.transient_usd == pytest.approx(sum(r.transient_usd or 0 for r in report.runs))
    assert total.savings == pytest.approx(1 - total.transient_usd / total.standing.usd)
    assert 0 < total.transient_usd < total.standing.usd
    for run in report.runs:
        assert run.cheapest_transient is not None and run.shapes["athena"] is None  # batch runs
        assert run.transient_usd == min(
            v for s, v in run.shapes.items() if v is not None and s != "emr-standing"
        )
    assert any("standing: one m6g.xlarge primary" in a for a in report.assumptions)


def test_failed_attempts_are_paid_for(store: RunStore) -> None:
    runs = {r.ds: r for r in read_runs(store, ["nightly"], since=NOW - dt.timedelta(days=7))}
    detail = run_detail(runs["2026-11-28"], load_prices(), HERE)
    assert [(s.step, s.attempt, s.state) for s in detail.steps] == [
        ("build", 1, "failed"),
        ("build", 2, "succeeded"),
    ]
    # The failed attempt recorded only its seconds (1.0): it held no measured cores; the run adds
    # both attempts' usage.
    assert detail.total_usage.vcpu_seconds == 2000.0 and detail.total_usage.cores == 20
    data = detail.to_dict()
    assert data["steps"][1]["here_usd"] == pytest.approx(0.72 * 1800 / 3600)
    assert data["total"]["here_usd"] == pytest.approx(0.72 * 2400 / 3600)
    assert set(data["total"]["shapes"]) >= {"emr-transient-spot", "emr-serverless", "glue", "athena"}


def test_since() -> None:
    assert parse_since("2026-11-01", NOW) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert parse_since("12h", NOW) == NOW - dt.timedelta(hours=12)
    with pytest.raises(ConfigError, match="--since yesterday: expected a duration"):
        parse_since("yesterday", NOW)


def test_an_empty_period(store: RunStore) -> None:
    report = cost_report([], load_prices(), HERE, NOW, NOW)
    assert report.runs == [] and report.total is None and report.to_dict()["total"] is None

"""SLOs, alerts and /metrics with the catalog (and so the run store) on PostgreSQL: the same
aggregate queries, JSON read by PostgreSQL, alerts claimed once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lakeplane.lake import open_lake
from lakeplane.observe.alerts import AlertLog, after_run

DAY = dt.date(2026, 11, 1)

PIPELINE = """
concurrency: 2
defaults:
  retries: {attempts: 3, interval_s: 0, backoff_rate: 1, jitter: false}
steps:
  flaky: {python: "tests.observe.steps:flaky"}
  killed: {python: "tests.observe.steps:killed"}
  passes: {python: "tests.observe.steps:gate_passes"}
  fails: {python: "tests.observe.steps:gate_fails"}
"""
SLOS = """
slos:
  retries: {kind: retry_rate, pipeline: p, objective: 0.5, window: 1d, burn_window: 1h}
  lost: {kind: worker_loss_rate, pipeline: p, objective: 0.1, window: 1d, burn_window: 1h}
  dq: {kind: dq_pass_rate, pipeline: p, objective: 0.9, window: 1d, burn_window: 1h}
"""


def test_slos_alerts_and_metrics_on_a_postgresql_catalog(tmp_path: Path, pg_catalog_uri: str) -> None:
    root = tmp_path / "proj"
    (root / "pipelines").mkdir(parents=True)
    (root / "pipelines" / "p.yaml").write_text(PIPELINE)
    (root / "lakeplane.yaml").write_text(f"name: t\ncatalog: {{uri: '{pg_catalog_uri}'}}\n" + SLOS)
    lake = open_lake(root)
    run = lake.run_record(lake.run_pipeline("p", DAY).run_id)
    assert run.state == "failed"
    # 4 steps, flaky retried once; 5 attempts, killed lost; gates: passes (ok), fails (failed)
    results = {r.name: r for r in lake.slos()}
    assert results["retries"].observed == pytest.approx(1 / 4) and results["retries"].ok
    assert results["lost"].observed == pytest.approx(1 / 5) and not results["lost"].ok
    assert results["lost"].error_budget_remaining == pytest.approx(1 - 1 / (0.1 * 5))
    assert results["dq"].observed == pytest.approx(1 / 2) and results["dq"].burn_rate == pytest.approx(5.0)

    log = AlertLog(lake.catalog.state_engine)
    keys = {a.key for a in log.recent()}
    assert keys == {f"run:{run.run_id}", *(k for k in keys if k.startswith(("slo:lost:", "slo:dq:")))}
    assert len(keys) == 3  # the failed run, and the two SLOs it broke
    after_run(lake, run)  # judged again by another process: nothing new
    assert {a.key for a in log.recent()} == keys

    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(lake.metrics_text())
        for s in family.samples
    }
    step = (("pipeline", "p"), ("step", "passes"))
    assert found[("lakeplane_step_bytes_read_total", step)] == 1000
    assert found[("lakeplane_quarantined_records_total", step)] == 3
    assert (
        found[
            ("lakeplane_quality_gates_total", (("outcome", "failed"), ("pipeline", "p"), ("step", "fails")))
        ]
        == 1
    )
    assert found[("lakeplane_quality_rules_total", (("outcome", "passed"), *step))] == 2
    lost = (("pipeline", "p"), ("reason", "process_died"), ("step", "killed"))
    assert found[("lakeplane_step_lost_attempts_total", lost)] == 1
    assert (
        found[("lakeplane_step_attempts_total", (("pipeline", "p"), ("state", "failed"), ("step", "flaky")))]
        == 1
    )
    assert found[("lakeplane_runs_total", (("pipeline", "p"), ("state", "failed")))] == 1

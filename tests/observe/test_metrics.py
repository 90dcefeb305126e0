"""``metrics_text``: parsed as Prometheus text, its numbers equal the run store's and the query
history's; ``lakeplane metrics`` and ``lakeplane slo`` print the same answers."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from lakeplane.cli.main import cli
from lakeplane.query.history import QueryHistory
from tests.observe.conftest import Observed

pytestmark = pytest.mark.slow


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> labels (sorted pairs) -> value."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_equal_the_run_store_and_the_query_history(observed: Observed) -> None:
    lake = observed.lake
    for sql in ("SELECT sum(clicks) FROM adtech.curated.daily_campaign_stats", "SELECT 1"):
        lake.query(sql)
    found = samples(lake.metrics_text())
    runs = lake.runs(limit=1000)
    records = [lake.run_record(r.run_id) for r in runs]
    attempts = [(r.pipeline, a) for r in records for a in r.attempts]

    assert found["lakeplane_runs_total"] == {
        (("pipeline", p), ("state", s)): n
        for (p, s), n in Counter((r.pipeline, r.state) for r in runs).items()
    }
    assert found["lakeplane_runs_total"][(("pipeline", "chaos"), ("state", "failed"))] == 2
    by_state = Counter((p, a.step, a.state) for p, a in attempts)
    assert found["lakeplane_step_attempts_total"] == {
        (("pipeline", p), ("state", s), ("step", step)): n for (p, step, s), n in by_state.items()
    }
    tried = [(p, a) for p, a in attempts if a.attempt >= 1]
    for key, name in (
        ("seconds", "lakeplane_step_duration_seconds_sum"),
        ("bytes_read", "lakeplane_step_bytes_read_total"),
        ("bytes_written", "lakeplane_step_bytes_written_total"),
        ("quarantined", "lakeplane_quarantined_records_total"),
    ):
        expected: dict[tuple[str, str], float] = defaultdict(float)
        for p, a in tried:
            expected[(p, a.step)] += float(a.metrics.get(key, 0) or 0)
        got = {(dict(k)["pipeline"], dict(k)["step"]): v for k, v in found[name].items()}
        assert got == pytest.approx(dict(expected)), name
    assert sum(found["lakeplane_quarantined_records_total"].values()) > 0  # the demo drops hold bad records
    counts = Counter((p, a.step) for p, a in tried)
    assert {
        (dict(k)["pipeline"], dict(k)["step"]): v
        for k, v in found["lakeplane_step_duration_seconds_count"].items()
    } == counts
    lost = found["lakeplane_step_lost_attempts_total"]
    assert lost == {(("pipeline", "chaos"), ("reason", "process_died"), ("step", "killed")): 2}
    gates = found["lakeplane_quality_gates_total"]
    assert gates[(("outcome", "failed"), ("pipeline", "chaos"), ("step", "strict"))] == 2
    assert gates[(("outcome", "passed"), ("pipeline", "nightly"), ("step", "daily_campaign_stats"))] == 1
    rules = found["lakeplane_quality_rules_total"]
    assert rules[(("outcome", "passed"), ("pipeline", "chaos"), ("step", "strict"))] == 2
    assert rules[(("outcome", "failed"), ("pipeline", "chaos"), ("step", "strict"))] == 2

    history = QueryHistory(lake.catalog.state_engine).list(limit=None)
    assert len(history) >= 2
    scanned = sum(q.bytes_scanned or 0 for q in history)
    assert scanned > 0 and found["lakeplane_query_bytes_scanned_total"] == {(("workgroup", ""),): scanned}
    outcomes = Counter(q.outcome for q in history)
    assert found["lakeplane_queries_total"] == {
        (("outcome", o), ("workgroup", "")): n for o, n in outcomes.items()
    }

    slo_ok = {dict(k)["slo"]: v for k, v in found["lakeplane_slo_ok"].items()}
    judged = {r.name: r for r in lake.slos()}
    assert slo_ok == {name: float(r.ok) for name, r in judged.items()}
    assert slo_ok["chaos_lost"] == 0.0 and slo_ok["chaos_retries"] == 1.0
    budget = {dict(k)["slo"]: v for k, v in found["lakeplane_slo_error_budget_remaining"].items()}
    assert budget["chaos_lost"] == pytest.approx(-1.0)


def test_the_cli_prints_slos_and_metrics(observed: Observed) -> None:
    runner = CliRunner()
    base = ["--lake", str(observed.lake.project_dir)]
    result = runner.invoke(cli, [*base, "slo", "chaos_lost", "stats_dq", "--output", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert [r["name"] for r in answer] == ["chaos_lost", "stats_dq"]
    assert set(answer[0]) >= {
        "name",
        "target",
        "kind",
        "objective",
        "observed",
        "ok",
        "error_budget_remaining",
        "burn_rate",
        "window",
    }
    assert answer[0]["target"] == "chaos" and answer[0]["ok"] is False and answer[0]["observed"] == 0.2
    checked = runner.invoke(cli, [*base, "slo", "chaos_retries", "chaos_lost", "--check"])
    assert checked.exit_code == 1 and "BREACHED" in checked.output
    unknown = runner.invoke(cli, [*base, "slo", "chaos_lots"])
    assert (
        unknown.exit_code == 1 and "no SLO 'chaos_lots'" in unknown.output and "chaos_lost" in unknown.output
    )
    text = runner.invoke(cli, [*base, "metrics"])
    assert text.exit_code == 0
    found = samples(text.output)
    assert found["lakeplane_runs_total"][(("pipeline", "nightly"), ("state", "succeeded"))] == 1

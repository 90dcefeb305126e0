"""Alerts on small real pipelines: a failed run reaches a webhook once, with its link; an SLO breach
is sent once while it lasts; an unreachable alert URL fails nothing."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest

from lakeplane.lake import Lake, open_lake
from lakeplane.observe.alerts import AlertLog, after_run
from tests.observe.receiver import webhook_receiver

DAY = dt.date(2026, 11, 1)

PIPELINE = """
concurrency: 2
steps:
  fine: {python: "tests.observe.steps:marker"}
  broken: {python: "tests.observe.steps:broken", retries: {attempts: 1}}
"""


def project(tmp_path: Path, config: str, pipeline: str = PIPELINE) -> Lake:
    root = tmp_path / "proj"
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "lakeplane.yaml").write_text("name: t\n" + config)
    (root / "pipelines" / "p.yaml").write_text(pipeline)
    return open_lake(root)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_failed_run_alerts_the_webhook_once_with_its_link(tmp_path: Path) -> None:
    with webhook_receiver() as hook:
        lake = project(
            tmp_path,
            f"alerts:\n  urls: ['{hook.url}']\n  console_url: http://console.example:8700/\n",
        )
        first = lake.run_pipeline("p", DAY)
        assert first.state == "failed"
        assert len(hook.received) == 1
        alert = hook.received[0]
        assert alert["path"] == "/hook"
        assert f"http://console.example:8700/runs/{first.run_id}" in alert["message"]
        assert "step broken (attempt 1): ModelError: the model is wrong" in alert["message"]
        assert first.run_id in alert["title"]
        # the same run seen again (another process, a redrive's hook) is not announced twice
        after_run(lake, lake.run_record(first.run_id))
        assert len(hook.received) == 1
        second = lake.run_pipeline("p", DAY)
        assert [a["title"] for a in hook.received] == [
            f"lakeplane: run {first.run_id} failed",
            f"lakeplane: run {second.run_id} failed",
        ]
        recorded = AlertLog(lake.catalog.state_engine).recent()
        assert {a.key for a in recorded} == {f"run:{first.run_id}", f"run:{second.run_id}"}
        assert all(a.delivered and a.error is None for a in recorded)


def test_an_unreachable_alert_url_does_not_fail_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = project(
        tmp_path,
        f"alerts:\n  urls: ['json://127.0.0.1:{closed_port()}/hook', 'nosuchscheme://x']\n",
        "steps:\n  broken: {python: 'tests.observe.steps:broken', retries: {attempts: 1}}\n",
    )
    run = lake.run_pipeline("p", DAY)
    assert run.state == "failed" and lake.run_record(run.run_id).state == "failed"
    (alert,) = AlertLog(lake.catalog.state_engine).recent()
    assert alert.key == f"run:{run.run_id}" and not alert.delivered
    assert (
        alert.error is not None
        and "127.0.0.1" in alert.error
        and "nosuchscheme://...: not an apprise URL" in alert.error
    )
    assert any("not delivered" in r.getMessage() for r in caplog.records)


def test_a_breach_alerts_once_while_it_lasts_and_again_after_recovery(tmp_path: Path) -> None:
    """A retry-rate SLO breaks on the first run, is announced once over the next breached run,
    recovers, and is announced again when it breaks again."""
    pipeline = """
steps:
  flaky: {python: "tests.observe.steps:flaky", retries: {attempts: 3, interval_s: 0, jitter: false}}
  fine: {python: "tests.observe.steps:marker"}
"""
    slos = "slos:\n  retries: {kind: retry_rate, pipeline: p, objective: 0.3, window: 1d, burn_window: 1h}\n"
    with webhook_receiver() as hook:
        lake = project(tmp_path, f"alerts:\n  urls: ['{hook.url}']\n" + slos, pipeline)
        runs = [lake.run_pipeline("p", DAY) for _ in range(2)]
        assert all(r.state == "succeeded" for r in runs)
        # 2 steps a run, the flaky one retried once: 1 extra attempt per 2 steps = 0.5 > 0.3
        (result,) = lake.slos()
        assert result.observed == pytest.approx(0.5) and not result.ok
        assert [a["title"] for a in hook.received] == ["lakeplane: SLO retries breached"]
        assert f"/runs/{runs[0].run_id}" in hook.received[0]["message"]
        # more steps that never retry bring the rate under the objective: ok again, no alert
        (lake.project_dir / "pipelines" / "p.yaml").write_text(
            pipeline + "".join(f"  m{i}: {{python: 'tests.observe.steps:marker'}}\n" for i in range(6))
        )
        lake.run_pipeline("p", DAY)  # 8 steps, 1 retry: (2 + 1) / (4 + 8) = 0.25
        assert lake.slos()[0].ok and len(hook.received) == 1
        (lake.project_dir / "pipelines" / "p.yaml").write_text(pipeline)
        lake.run_pipeline("p", DAY)  # (3 + 1) / (12 + 2) = 0.286: still ok
        lake.run_pipeline("p", DAY)  # (4 + 1) / (14 + 2) = 0.3125: breached again, announced again
        assert [a["title"] for a in hook.received] == ["lakeplane: SLO retries breached"] * 2

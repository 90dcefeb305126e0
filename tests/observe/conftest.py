"""The demo lake with SLOs and alerts, after real runs: the nightly pipeline, and twice a pipeline
with a flaky step (retried), a killed step (its worker lost) and a failing non-blocking gate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lakeplane.demo import telco
from lakeplane.demo.generator import DayDrop
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake
from lakeplane.pipelines.store import RunRecord
from tests.conftest import DAY1, DAY2, land_drop
from tests.observe.receiver import webhook_receiver

PER_HOUR = 3.6

CHAOS = """
concurrency: 2
defaults:
  retries: {attempts: 3, interval_s: 0, backoff_rate: 1, jitter: false}
steps:
  fine: {python: "tests.observe.steps:marker"}
  flaky: {python: "tests.observe.steps:flaky"}
  killed: {python: "tests.observe.steps:killed"}
  strict: {quality: quality/strict.dqdl, table: adtech.curated.daily_campaign_stats, blocking: false}
"""

STRICT = "Rules = [\n    RowCount > 0,\n    RowCount > 1000000000\n]\n"

SLOS = """
cost:
  here: {{per_hour: {per_hour}}}
slos:
  chaos_retries: {{kind: retry_rate, pipeline: chaos, objective: 0.5, window: 1d, burn_window: 1h}}
  chaos_lost: {{kind: worker_loss_rate, pipeline: chaos, objective: 0.1, window: 1d, burn_window: 1h}}
  stats_dq: {{kind: dq_pass_rate, table: curated.daily_campaign_stats, objective: 0.9, window: 1d,
             burn_window: 1h}}
  nightly_dq: {{kind: dq_pass_rate, pipeline: nightly, objective: 0.9, window: 1d, burn_window: 1h}}
  stats_fresh: {{kind: freshness, table: curated.daily_campaign_stats, objective: 1h, target: 0.9,
                window: 1d, burn_window: 1h}}
  nightly_fresh: {{kind: freshness, pipeline: nightly, objective: 1h, target: 0.9, window: 1d,
                  burn_window: 1h}}
  nightly_cost: {{kind: cost_per_day, pipeline: nightly, objective: 0.5, window: 1d, burn_window: 1h}}
alerts:
  urls: ["{url}"]
  console_url: http://console.test:8700
"""


@dataclass
class Observed:
    lake: Lake
    nightly: RunRecord
    chaos: list[RunRecord]
    received: list[dict[str, Any]]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, drops: dict[dt.date, DayDrop]) -> Iterator[Observed]:
    root = tmp_path_factory.mktemp("observed")
    with webhook_receiver() as hook:
        lake = build_project(root / "project", governed=False)
        with (lake.project_dir / "lakeplane.yaml").open("a") as config:
            config.write(SLOS.format(per_hour=PER_HOUR, url=hook.url))
        (lake.project_dir / "pipelines" / "chaos.yaml").write_text(CHAOS)
        (lake.project_dir / "quality" / "strict.dqdl").write_text(STRICT)
        lake = Lake(lake.project_dir)
        land_drop(lake, drops[DAY1])
        for dataset, files in telco.generate_day(root / "telco", DAY1, 300).items():
            lake.land(dataset, files, DAY1)
        nightly = lake.run_record(lake.run_pipeline("nightly", DAY1).run_id)
        assert nightly.state == "succeeded", nightly.to_dict()
        assert hook.received == []  # every SLO is met after the nightly run
        chaos = [lake.run_record(lake.run_pipeline("chaos", day).run_id) for day in (DAY1, DAY2)]
        assert [r.state for r in chaos] == ["failed", "failed"]
        yield Observed(lake, nightly, chaos, list(hook.received))

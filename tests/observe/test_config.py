"""``slos:`` and ``alerts:`` in lakeplane.yaml: what is accepted, and clear errors naming the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakeplane.config import load_config
from lakeplane.errors import ConfigError
from lakeplane.observe.measures import stale_seconds


def config(tmp_path: Path, text: str) -> Path:
    (tmp_path / "lakeplane.yaml").write_text(text)
    return tmp_path


def test_slos_and_alerts_are_read_with_durations(tmp_path: Path) -> None:
    loaded = load_config(
        config(
            tmp_path,
            "slos:\n  fresh: {kind: freshness, table: curated.t, objective: 26h, window: 7d}\n"
            "  dq: {kind: dq_pass_rate, pipeline: nightly, objective: 0.95}\n"
            "alerts:\n  urls: ['json://127.0.0.1:9/x']\n  console_url: http://c:8700/\n",
        )
    )
    fresh, dq = loaded.slos["fresh"], loaded.slos["dq"]
    assert (fresh.objective, fresh.window, fresh.burn_window, fresh.target) == (
        26 * 3600,
        7 * 86400,
        86400,
        0.99,
    )
    assert (dq.target_name, dq.window) == ("nightly", 30 * 86400)
    assert loaded.alerts.console_url == "http://c:8700"


@pytest.mark.parametrize(
    ("slo", "problem"),
    [
        ("{kind: freshness, objective: 1h}", "give exactly one of pipeline and table"),
        (
            "{kind: retry_rate, pipeline: p, table: t, objective: 0.1}",
            "give exactly one of pipeline and table",
        ),
        (
            "{kind: retry_rate, pipeline: p, objective: 1.5}",
            "a retry_rate objective is a share between 0 and 1",
        ),
        ("{kind: dq_pass_rate, pipeline: p, objective: 1}", "a dq_pass_rate objective is a share"),
        ("{kind: cost_per_day, table: t, objective: 1}", "cost_per_day is an SLO of a pipeline"),
        ("{kind: latency, pipeline: p, objective: 1}", "slos.x.kind"),
        ("{kind: freshness, pipeline: p, objective: 1h, window: 1h, burn_window: 1d}", "burn_window"),
    ],
)
def test_a_wrong_slo_names_the_file_and_key(tmp_path: Path, slo: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(config(tmp_path, f"slos:\n  x: {slo}\n"))
    assert "lakeplane.yaml" in str(raised.value) and problem in str(raised.value)


def test_stale_time_counts_only_lag_beyond_the_objective_after_the_first_publish() -> None:
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    hours = [t0 + dt.timedelta(hours=h) for h in (0, 3, 4)]
    # lag > 1 h: from 1 h to 3 h (2 h), none between 3 and 4, from 5 h to the end at 6 h (1 h)
    assert stale_seconds(hours, 3600, t0 - dt.timedelta(days=1), t0 + dt.timedelta(hours=6)) == 3 * 3600
    assert stale_seconds(hours, 3600, t0 + dt.timedelta(hours=2), t0 + dt.timedelta(hours=6)) == 2 * 3600
    assert stale_seconds([], 3600, t0, t0 + dt.timedelta(hours=6)) == 0

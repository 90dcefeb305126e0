from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakeplane.errors import ConfigError
from lakeplane.lake import open_lake
from lakeplane.pipelines.definition import load_pipeline
from lakeplane.pipelines.schedule import Cron, due

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "cron, now, fired",
    [
        ("30 2 * * *", "2026-11-05 03:00", "2026-11-05 02:30"),
        ("30 2 * * *", "2026-11-05 02:29", "2026-11-04 02:30"),
        ("*/15 * * * *", "2026-11-05 10:44", "2026-11-05 10:30"),
        ("0 6 * * 1-5", "2026-11-08 12:00", "2026-11-06 06:00"),  # Sunday: last weekday run was Friday
        ("0 0 1 * *", "2026-11-20 00:00", "2026-11-01 00:00"),
        ("0 9,17 * * 0", "2026-11-08 12:00", "2026-11-08 09:00"),
        ("5/15 * * * *", "2026-11-05 10:44", "2026-11-05 10:35"),  # 5, 20, 35, 50: not just minute 5
        ("0 6 * * MON", "2026-11-05 12:00", "2026-11-02 06:00"),  # 2026-11-02 is a Monday
        ("0 6 * * MON-FRI", "2026-11-08 12:00", "2026-11-06 06:00"),
        ("@daily", "2026-11-05 10:44", "2026-11-05 00:00"),
        ("@hourly", "2026-11-05 10:44", "2026-11-05 10:00"),
        ("30 2 * * *", "2026-11-05 02:30", "2026-11-05 02:30"),  # a fire time at ``now`` counts
    ],
)
def test_latest_fire_time(cron: str, now: str, fired: str) -> None:
    assert Cron.parse(cron).latest(at(now)) == at(fired)


def fired_at(cron: Cron, now: dt.datetime) -> dt.datetime:
    """When ``cron`` last fired before ``now``, which the test expects it did."""
    latest = cron.latest(now)
    assert latest is not None
    return latest


@pytest.mark.parametrize(
    "cron",
    [
        "* * *",
        "61 * * * *",
        "a * * * *",
        "0 0 0 * *",
        "*/0 * * * *",
        "0 6 * * MONDAY",
        "@fortnightly",
        "0 0 * * * *",
    ],
)
def test_bad_cron_is_a_config_error(cron: str) -> None:
    with pytest.raises(ConfigError, match="schedule") as caught:
        Cron.parse(cron)
    assert f"'{cron}'" in str(caught.value) and caught.value.value == cron
    assert caught.value.key == "schedule" and not caught.value.retryable


def test_a_date_that_never_comes_never_fires() -> None:
    assert Cron.parse("0 0 30 2 *").latest(at("2026-11-05 03:00")) is None
    assert due("0 0 30 2 *", None, at("2026-11-05 03:00")) is None


def test_a_bad_schedule_is_an_error_when_checked_for_being_due() -> None:
    with pytest.raises(ConfigError, match="'0 25 \\* \\* \\*'"):
        due("0 25 * * *", None, at("2026-11-05 03:00"))


def test_due_runs_yesterday_once() -> None:
    assert due("30 2 * * *", None, at("2026-11-05 03:00")) == dt.date(2026, 11, 4)
    assert due("30 2 * * *", at("2026-11-05 02:31"), at("2026-11-05 03:00")) is None
    assert due("30 2 * * *", at("2026-11-04 02:31"), at("2026-11-05 03:00")) == dt.date(2026, 11, 4)


def test_run_due_starts_scheduled_pipelines_once(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "pipelines").mkdir(parents=True)
    (root / "lakeplane.yaml").write_text("name: t\n")
    (root / "pipelines" / "nightly.yaml").write_text(
        "schedule: '0 1 * * *'\nsteps:\n  m: {python: 'tests.pipelines.steps:marker'}\n"
    )
    (root / "pipelines" / "manual.yaml").write_text("steps:\n  m: {python: 'tests.pipelines.steps:marker'}\n")
    lake = open_lake(root)
    now = dt.datetime.now(UTC)
    first = lake.run_due(now)
    assert [(r.pipeline, r.ds, r.state) for r in first] == [
        (
            "nightly",
            (fired_at(Cron.parse("0 1 * * *"), now) - dt.timedelta(days=1)).date().isoformat(),
            "succeeded",
        )
    ]
    assert lake.run_due(now + dt.timedelta(minutes=1)) == []


def test_a_pipeline_file_with_a_bad_schedule_fails_when_it_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text('steps:\n  a: {python: "m:f"}\nschedule: "0 6 * * MONDAY"\n')
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert str(caught.value).startswith(f"{path}:3: schedule: schedule '0 6 * * MONDAY' is not a valid cron")
    assert caught.value.line == 3 and caught.value.key == "schedule"

"""``DetectAnomalies`` end to end: a real DuckDB table, a metric history of 30 days in SQLite (and the
catalog's database of a real lake), the rule written as DQDL."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from lakeplane.config import StorageConfig
from lakeplane.engines.base import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.errors import QualityGateFailed
from lakeplane.lake import open_lake
from lakeplane.quality import MetricHistory, RuleOutcome, evaluate, parse
from lakeplane.quality.history import PIPELINE_SERIES
from lakeplane.storage import open_storage
from tests.quality.shop import order_ids, shop_lake

TODAY = dt.datetime(2026, 10, 15, tzinfo=dt.UTC)  # a Thursday
WEEKLY = (1.0, 1.1, 1.1, 1.0, 1.2, 0.5, 0.4)


def rows_on(day: dt.datetime) -> int:
    """The row count a healthy day has: about 1 000, growing 5 a day, quiet at weekends."""
    return round((1_000 + 5 * (day - TODAY).days) * WEEKLY[day.weekday()])


def table(rows: int, missing: int = 0) -> pa.Table:
    return pa.table(
        {
            "id": list(range(rows)),
            "email": [None if i < missing else f"u{i}@example.com" for i in range(rows)],
        }
    )


@pytest.fixture
def session(tmp_path: Path) -> Iterator[DuckDBSession]:
    storage = open_storage(StorageConfig(root=str(tmp_path / "lake")), tmp_path)
    with DuckDBSession(storage, JobSpec("t", "512MB", 2, tmp_path)) as opened:
        yield opened


@pytest.fixture
def history(tmp_path: Path) -> Iterator[MetricHistory]:
    """30 days of RowCount and Completeness "email" before TODAY, recorded the way checks record."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    kept = MetricHistory(engine, "shop.events")
    rng = random.Random(7)
    for back in range(30, 0, -1):
        day = TODAY - dt.timedelta(days=back)
        count = rows_on(day) * (1 + rng.gauss(0, 0.01))
        kept.record(
            [
                RuleOutcome("RowCount > 0", "RowCount", True, count, metric_key="RowCount"),
                RuleOutcome(
                    "", "Completeness", True, 0.98 + rng.gauss(0, 0.002), metric_key='Completeness "email"'
                ),
            ],
            day,
        )
    yield kept
    engine.dispose()


def check(session: DuckDBSession, data: pa.Table, rules: str, history: MetricHistory) -> list[RuleOutcome]:
    session.register_arrow("events", data)
    earlier = history.before(TODAY)
    return evaluate(
        parse(f"Rules = [ {rules} ]"), session, "events", now=TODAY, history=earlier, timed_history=earlier
    )


def test_a_healthy_day_passes_and_says_what_was_expected(
    session: DuckDBSession, history: MetricHistory
) -> None:
    healthy = rows_on(TODAY)
    [count, complete] = check(
        session,
        table(healthy, missing=healthy // 50),
        'DetectAnomalies "RowCount", DetectAnomalies "Completeness" "email"',
        history,
    )
    assert count.passed and complete.passed, (count.message, complete.message)
    assert count.observed == healthy and count.metrics == {"RowCount": healthy}
    assert "expected" in count.message and "band [" in count.message and "weekly seasonality" in count.message


@pytest.mark.parametrize("factor", [0.5, 1.6])
def test_a_spike_or_a_drop_in_rows_fails(
    session: DuckDBSession, history: MetricHistory, factor: float
) -> None:
    [outcome] = check(session, table(round(rows_on(TODAY) * factor)), 'DetectAnomalies "RowCount"', history)
    assert not outcome.passed and not outcome.error
    assert "ANOMALY" in outcome.message


def test_a_weekend_sized_day_on_a_thursday_fails(session: DuckDBSession, history: MetricHistory) -> None:
    saturday_sized = round(rows_on(TODAY + dt.timedelta(days=2)))
    [outcome] = check(session, table(saturday_sized), 'DetectAnomalies "RowCount"', history)
    assert not outcome.passed, outcome.message


def test_a_completeness_drop_fails(session: DuckDBSession, history: MetricHistory) -> None:
    rows = rows_on(TODAY)
    [outcome] = check(
        session, table(rows, missing=rows // 10), 'DetectAnomalies "Completeness" "email"', history
    )
    assert not outcome.passed and outcome.metrics == {'Completeness "email"': pytest.approx(0.9, abs=0.001)}


def test_without_enough_history_there_is_no_verdict(session: DuckDBSession, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'short.db'}")
    short = MetricHistory(engine, "shop.events")
    for back in (3, 2, 1):
        short.record(
            [RuleOutcome("", "RowCount", True, 1000.0, metric_key="RowCount")],
            TODAY - dt.timedelta(days=back),
        )
    [outcome] = check(session, table(5), 'DetectAnomalies "RowCount"', short)
    assert outcome.passed and outcome.history_missing
    assert "3 earlier values, 7 needed: no verdict" in outcome.message
    engine.dispose()


def test_several_metrics_and_unknown_ones(session: DuckDBSession, history: MetricHistory) -> None:
    [lengths, unknown] = check(
        session, table(50), 'DetectAnomalies "ColumnLength" "email", DetectAnomalies "RowCont"', history
    )
    assert lengths.passed and lengths.history_missing  # no history of lengths yet
    assert lengths.metrics == {'MinimumLength "email"': 14.0, 'MaximumLength "email"': 15.0}
    assert unknown.error and "did you mean 'RowCount'" in unknown.message


def test_through_a_lake_check_the_rule_reads_and_lengthens_its_series(tmp_path: Path) -> None:
    day = dt.date(2026, 10, 15)
    lake = shop_lake(tmp_path, {"pos/orders": {day: order_ids(range(40))}})
    project = lake.project_dir
    (project / "anomalies.dqdl").write_text('Rules = [ DetectAnomalies "RowCount" ]\n')
    kept = MetricHistory(lake.catalog.state_engine, "shop.processed.orders", series=PIPELINE_SERIES)
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    for back in range(30, 0, -1):  # about 40 rows a day
        value = 40.0 + (back % 3) - 1
        kept.record(
            [RuleOutcome("", "RowCount", True, value, metric_key="RowCount")], start - dt.timedelta(days=back)
        )

    [outcome] = lake.dq_check("processed.orders", "anomalies.dqdl", ds=day, only_ds=True)
    assert outcome["passed"] and not outcome["history_missing"], outcome["message"]
    assert kept.points("RowCount", 1)[0] == (start, 40.0), "the rule recorded today's value"

    more = tmp_path / "more.ndjson"
    more.write_text("".join(json.dumps({"order_id": i}) + "\n" for i in range(40, 400)))
    next_day = day + dt.timedelta(days=1)
    lake.land("pos/orders", [more], next_day)
    lake.ingest("pos/orders", next_day)
    [spike] = lake.dq_check("processed.orders", "anomalies.dqdl", ds=next_day, only_ds=True)
    assert not spike["passed"] and spike["observed"] == 360.0, spike["message"]
    adhoc = lake.dq_check("processed.orders", "anomalies.dqdl", ds=next_day, only_ds=True, series="adhoc")
    assert adhoc[0]["passed"] and adhoc[0]["history_missing"], "the ad-hoc series has no history"


SPIKY_MODEL = """-- partition_by: [ds]
-- quality: anomalies.dqdl
SELECT :ds AS ds, n FROM (SELECT unnest(range(60)) AS n) AS t WHERE n < CASE WHEN :ds = DATE '2026-11-02' THEN 60 ELSE 20 END
"""


def test_a_model_gate_with_detect_anomalies_does_not_publish_a_spike(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "models" / "curated").mkdir(parents=True)
    (root / "lakeplane.yaml").write_text("name: t\n")
    (root / "models" / "curated" / "daily.sql").write_text(SPIKY_MODEL)
    (root / "anomalies.dqdl").write_text('Rules = [ DetectAnomalies "RowCount" ]\n')
    lake = open_lake(root)
    kept = MetricHistory(lake.catalog.state_engine, "t.curated.daily")
    first = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for back in range(21, 0, -1):  # three weeks of 19 to 21 rows a day
        value = 20.0 + (back % 3) - 1
        kept.record(
            [RuleOutcome("", "RowCount", True, value, metric_key="RowCount")], first - dt.timedelta(days=back)
        )
    model = lake.model("curated.daily")

    published = lake.run_model(model, first.date())
    assert [o["passed"] for o in published.quality] == [True], published.quality
    with pytest.raises(QualityGateFailed, match="DetectAnomalies"):
        lake.run_model(model, dt.date(2026, 11, 2))
    days = lake.query("SELECT DISTINCT ds FROM curated.daily").column("ds").to_pylist()
    assert days == [first.date()], "the day whose row count tripled reached no consumer"

"""The ``Analyzers`` section on real tables: AllStatistics' values, analyzers measured in the rules'
scans, recorded, and read later by a dynamic rule; shown by ``lakeplane dq check``."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.config import StorageConfig
from lakeplane.engines.base import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.lake import Lake
from lakeplane.quality import MetricHistory, parse
from lakeplane.quality.evaluate import evaluate_with_analyzers
from lakeplane.storage import open_storage
from tests.quality.shop import orders, shop_lake

NOW = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)
PEOPLE = pa.table(
    {
        "age": [30, 40, 40, None, 10],
        "name": ["ann", "bob", "bob", "christine", None],
        "team": ["a", "a", "b", "b", "b"],
    }
)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBSession]:
    tmp = tmp_path_factory.mktemp("analyzers")
    storage = open_storage(StorageConfig(root=str(tmp / "lake")), tmp)
    with DuckDBSession(storage, JobSpec("t", "512MB", 2, tmp)) as opened:
        opened.register_arrow("people", PEOPLE)
        yield opened


def analyze(session: DuckDBSession, analyzers: str, rules: str = "ColumnCount = 3") -> dict[str, float]:
    evaluation = evaluate_with_analyzers(
        parse(f"Rules = [ {rules} ]\nAnalyzers = [ {analyzers} ]"), session, "people", now=NOW
    )
    assert all(o.passed for o in evaluation.rules)
    merged: dict[str, float] = {}
    for outcome in evaluation.analyzers:
        assert not outcome.error, outcome.message
        merged.update(outcome.metrics)
    return merged


def test_all_statistics_of_a_numeric_column(session: DuckDBSession) -> None:
    values = analyze(session, 'AllStatistics "age"')
    present = [30, 40, 40, 10]
    entropy = -sum(p * math.log(p) for p in (0.25, 0.5, 0.25))
    assert values == pytest.approx(
        {
            "RowCount": 5.0,
            'Completeness "age"': 0.8,
            'Uniqueness "age"': 0.5,  # 30 and 10 occur once among 4 values
            'DistinctValuesCount "age"': 3.0,
            'UniqueValueRatio "age"': 2 / 3,
            'Entropy "age"': entropy,
            'Mean "age"': 30.0,
            'Sum "age"': 120.0,
            'StandardDeviation "age"': math.sqrt(sum((v - 30) ** 2 for v in present) / 4),
            'Minimum "age"': 10.0,
            'Maximum "age"': 40.0,
        }
    )


def test_all_statistics_of_a_string_column(session: DuckDBSession) -> None:
    values = analyze(session, 'AllStatistics "name"')
    assert values["RowCount"] == 5.0
    assert values['Completeness "name"'] == pytest.approx(0.8)
    assert values['DistinctValuesCount "name"'] == 3.0
    assert values['MinimumLength "name"'] == 3.0
    assert values['MaximumLength "name"'] == 9.0
    assert values['AverageLength "name"'] == 4.5  # (3 + 3 + 3 + 9) / 4: NULL has no length
    assert 'Mean "name"' not in values and 'Minimum "name"' not in values


def test_plain_analyzers_and_one_that_cannot_be_measured(session: DuckDBSession) -> None:
    evaluation = evaluate_with_analyzers(
        parse(
            'Rules = [ RowCount = 5 ]\nAnalyzers = [ RowCount, Mean "age", ColumnLength "name", Completeness "nope" ]'
        ),
        session,
        "people",
        now=NOW,
    )
    [passed] = evaluation.rules
    assert passed.passed
    count, mean, lengths, broken = evaluation.analyzers
    assert count.metrics == {"RowCount": 5.0} and mean.metrics == {'Mean "age"': 30.0}
    assert lengths.metrics == {'MinimumLength "name"': 3.0, 'MaximumLength "name"': 9.0}
    assert broken.error and "column 'nope' does not exist" in broken.message and broken.to_dict()["passed"]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    days = {dt.date(2026, 11, 1): orders((1, 10.0), (2, None)), dt.date(2026, 11, 2): orders((3, 5.0))}
    return shop_lake(tmp_path, {"pos/orders": days})


def test_analyzers_are_recorded_and_read_by_a_later_dynamic_rule(lake: Lake) -> None:
    (lake.project_dir / "profile.dqdl").write_text(
        'Rules = [ ColumnCount > 0 ]\nAnalyzers = [ Completeness "amount", AllStatistics "amount" ]\n'
    )
    day1 = dt.date(2026, 11, 1)
    rule, *analyzers = lake.dq_check("processed.orders", "profile.dqdl", ds=day1, only_ds=True)
    assert rule["passed"] and [a["analyzer"] for a in analyzers] == [True, True]
    assert analyzers[0]["metrics"] == {'Completeness "amount"': 0.5}
    kept = MetricHistory(lake.catalog.state_engine, "shop.processed.orders")
    assert kept('Completeness "amount"', 5) == [0.5] and kept('Maximum "amount"', 5) == [10.0]

    (lake.project_dir / "dynamic.dqdl").write_text('Rules = [ Completeness "amount" >= avg(last(3)) ]\n')
    [later] = lake.dq_check("processed.orders", "dynamic.dqdl", ds=dt.date(2026, 11, 2), only_ds=True)
    assert later["passed"] and not later["history_missing"], later["message"]
    assert later["message"].endswith("(avg(last(3)) = 0.5)"), later["message"]


def test_the_cli_shows_analyzers_and_counts_only_rules(lake: Lake) -> None:
    ruleset = lake.project_dir / "profile.dqdl"
    ruleset.write_text('Rules = [ RowCount = 3 ]\nAnalyzers = [ AllStatistics "order_id" ]\n')
    base = ["--lake", str(lake.project_dir), "dq", "check", "processed.orders", str(ruleset)]
    shown = CliRunner().invoke(cli, base)
    assert shown.exit_code == 0 and "1 of 1 rules passed" in shown.output and "analyzed" in shown.output, (
        shown.output
    )
    as_json = CliRunner().invoke(cli, [*base, "--output", "json"])
    rule, analyzer = json.loads(as_json.output)
    assert rule["rule"] == "RowCount = 3" and "analyzer" not in rule
    assert analyzer["analyzer"] and analyzer["metrics"]['Maximum "order_id"'] == 3.0


def test_a_ruleset_of_analyzers_only(session: DuckDBSession) -> None:
    evaluation = evaluate_with_analyzers(
        parse('Analyzers = [ RowCount, Sum "age" ]'), session, "people", now=NOW
    )
    assert evaluation.rules == []
    assert [a.metrics for a in evaluation.analyzers] == [{"RowCount": 5.0}, {'Sum "age"': 120.0}]

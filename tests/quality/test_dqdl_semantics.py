"""What the rest of DQDL's syntax means when evaluated: dates, typed conditions, functions in dynamic
bounds, labels, connector words and variables, on a real DuckDB session."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from lakeplane.config import StorageConfig
from lakeplane.engines.base import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.quality import RuleOutcome, evaluate, parse
from lakeplane.quality.expressions import Bounds, check_metric, operand_value
from lakeplane.quality.rules import Rule
from lakeplane.storage import open_storage

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
EVENTS = pa.table(
    {
        "id": [1, 2, 3, 4, 5],
        "region": ["eu", "eu", "us", "us", "ap"],
        "day": [dt.date(2026, 2, d) for d in (1, 10, 20, 27, 28)],
        "seen_at": [NOW - dt.timedelta(hours=h) for h in (1, 5, 30, 50, 200)],
        "code": ["12", "7", "x", "3.5", "44"],
        "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
    }
)
HISTORY = {"RowCount": [4.0, 6.0, 5.0, 7.0, 3.0], 'Mean "amount"': [2.0, 4.0]}


def history(key: str, n: int) -> Sequence[float]:
    return HISTORY.get(key, [])[:n]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBSession]:
    tmp = tmp_path_factory.mktemp("dq-semantics")
    storage = open_storage(StorageConfig(root=str(tmp / "lake")), tmp)
    with DuckDBSession(storage, JobSpec("t", "512MB", 2, tmp)) as opened:
        opened.register_arrow("events", EVENTS)
        yield opened


def run(session: DuckDBSession, text: str) -> list[RuleOutcome]:
    return evaluate(parse(text), session, "events", {}, NOW, history)


def one(session: DuckDBSession, rule: str) -> RuleOutcome:
    (outcome,) = run(session, f"Rules = [ {rule} ]")
    return outcome


@pytest.mark.parametrize(
    ("rule", "passes", "failing"),
    [
        ('ColumnValues "day" > "2026-02-05"', False, 1),
        ('ColumnValues "day" between "2026-01-31" and "2026-03-01"', True, 0),
        ('ColumnValues "day" in ["2026-02-01", "2026-02-10"]', False, 3),
        ('ColumnValues "day" not in ["2026-02-01"]', False, 1),
        ('ColumnValues "day" != "2026-02-28"', False, 1),
        ('ColumnValues "seen_at" > (now() - 2 days)', False, 2),
        ('ColumnValues "seen_at" <= now()', True, 0),
        ('DataFreshness "seen_at" in [1 hours, 5 hours]', False, 3),
        ('DataFreshness "seen_at" not between 2 hours and 3 days', False, 3),
        ('ColumnDataType "code" != "INTEGER"', False, 4),  # "3.5" casts to INTEGER, as in Spark
        ('ColumnDataType "code" not in ["DOUBLE"]', False, 4),
        ('ColumnDataType "code" = "DOUBLE" with threshold >= 0.8', True, 1),
        ('IsUnique "region" "id"', True, 0),
        ('IsUnique "region"', False, 4),
        ("Completeness of region > 0.99", True, None),
        ("ColumnCorrelation of id and amount > 0.99", True, None),
    ],
)
def test_typed_conditions_on_rows(
    session: DuckDBSession, rule: str, passes: bool, failing: int | None
) -> None:
    outcome = one(session, rule)
    assert not outcome.error, outcome.message
    assert (outcome.passed, outcome.failing_rows) == (passes, failing), outcome.message


@pytest.mark.parametrize(
    ("rule", "passes", "shown"),
    [
        ("RowCount > average(last(3))", False, "average(last(3)) = 5"),
        ("RowCount = avg(last(2)) ", True, "avg(last(2)) = 5"),
        ("RowCount >= median(last(5))", True, "median(last(5)) = 5"),
        ("RowCount < max(last(5)) - index(last(5), 4)", False, "= 4"),
        ("RowCount between avg(last(5)) - 2 * std(last(5)) and 9", True, ""),
        ("RowCount = avg(std(last(2)))", False, "avg(std(last(2))) = 1"),
        ("RowCount > abs(-4)", True, "abs(-4) = 4"),
        ("Mean of amount = avg(last(2)) + 0", True, "= 3"),
    ],
)
def test_functions_in_dynamic_bounds(session: DuckDBSession, rule: str, passes: bool, shown: str) -> None:
    outcome = one(session, rule)
    assert not outcome.error, outcome.message
    assert outcome.passed is passes, outcome.message
    assert shown in outcome.message


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("RowCount > avgg(last(3))", "unknown function 'avgg'; did you mean 'avg'?"),
        ("RowCount > last(3)", "is a list: reduce it, e.g. avg(last(3))"),
        ("RowCount > avg(last(0))", "last(k) takes one whole number k >= 1"),
        ("RowCount > percentile(last(3), 90)", "unknown function 'percentile'"),
    ],
)
def test_functions_the_grammar_accepts_but_lakeplane_cannot_compute_are_errors(
    session: DuckDBSession, rule: str, problem: str
) -> None:
    outcome = one(session, rule)
    assert outcome.error and not outcome.passed
    assert problem in outcome.message


@pytest.mark.parametrize(
    ("condition", "metric", "passes"),
    [  # the reference implementation's own verdicts for these conditions and metrics
        ("between 0.4 and 0.9", 0.4, False),
        ("between 0.4 and 0.9", 0.5, True),
        ("not between 0.4 and 0.9", 0.9, True),
        ("not in [0.4, 0.9]", 0.91, True),
        ("between -0.2 and 1.0", -0.2001, False),
        ("not between -0.2 and 1.0", -0.2, True),
        ("in [1, 2, 3, 4]", 3.999999, False),
        ("in [1, 2, 3, 4]", 4.0, True),
        ("< -0.4", -0.41, True),
        ("not between -0.4 and -0.5", -0.41, True),
        ("= 0.3", 0.1 + 0.2, False),  # exactly, as the reference compares
    ],
)
def test_comparisons_are_the_reference_implementations(condition: str, metric: float, passes: bool) -> None:
    (rule,) = parse(f'Rules = [ Completeness "a" {condition} ]').rules
    assert isinstance(rule, Rule) and rule.condition is not None
    assert check_metric(rule.condition, metric, Bounds(NOW)).passed is passes


def test_labels_default_and_own_reach_every_outcome(session: DuckDBSession) -> None:
    outcomes = run(
        session,
        """DefaultLabels = ["team" = "growth", "tier" = "1"]
        Rules = [
            RowCount > 0 labels = ["tier" = "2"],
            IsComplete "region",
            (RowCount > 0) and (IsComplete "id" labels = ["kind" = "key"]),
            ((RowCount > 0) or (RowCount < 0)) labels = ["owner" = "ops"]
        ]""",
    )
    assert [o.labels for o in outcomes] == [
        {"team": "growth", "tier": "2"},
        {"team": "growth", "tier": "1"},
        {"team": "growth", "tier": "1"},
        {"team": "growth", "tier": "1", "owner": "ops"},
    ]
    assert outcomes[2].children[1].labels == {"team": "growth", "tier": "1", "kind": "key"}
    assert all(o.passed for o in outcomes)
    assert outcomes[0].to_dict()["labels"] == {"team": "growth", "tier": "2"}


def test_variables_as_parameters_and_values(session: DuckDBSession) -> None:
    outcomes = run(
        session,
        """regions = ["eu", "us"]
        sql = "select count(*) from primary where region = 'eu'"
        Rules = [
            ColumnValues "region" in $regions with threshold >= 0.8,
            CustomSql $sql = 2,
            ColumnValues "region" = $sql
        ]""",
    )
    assert [(o.passed, o.error) for o in outcomes] == [(True, False), (True, False), (False, False)]


def test_times_of_day_read_in_the_time_zone_of_the_rule() -> None:
    (rule,) = parse('Rules = [ FileFreshness > "9:30 PM" ]').rules
    assert isinstance(rule, Rule) and rule.condition is not None
    (operand,) = rule.condition.operands
    value: Any = operand_value(operand, Bounds(NOW))
    assert value == dt.datetime(2026, 3, 1, 21, 30, tzinfo=dt.UTC)
    tokyo = operand_value(operand, Bounds(NOW).in_zone(ZoneInfo("Asia/Tokyo")))
    assert isinstance(tokyo, dt.datetime) and tokyo.astimezone(dt.UTC) == dt.datetime(
        2026, 3, 1, 12, 30, tzinfo=dt.UTC
    )


def test_ignore_case_compares_strings_without_case(session: DuckDBSession) -> None:
    exact, folded, pattern = run(
        session,
        """Rules = [
            ColumnValues "region" in ["EU", "US", "AP"],
            ColumnValues "region" in ["EU", "US", "AP"] with ignoreCase = "true",
            ColumnValues "region" matches "E.|U.|A." with ignoreCase = "true"
        ]""",
    )
    assert (exact.passed, exact.failing_rows) == (False, 5)
    assert (folded.passed, folded.failing_rows) == (True, 0), folded.message
    assert (pattern.passed, pattern.failing_rows) == (True, 0), pattern.message
    assert "not applied" not in folded.message


def test_a_tag_lakeplane_does_not_apply_is_named_in_the_outcome(session: DuckDBSession) -> None:
    (outcome,) = run(session, 'Rules = [ RowCount > 0 with owner = "ads" with retries = 2 ]')
    assert outcome.passed and outcome.message.endswith("; not applied by lakeplane: with owner, with retries")


def test_ignore_case_takes_true_or_false_as_the_file_rules_flags_do(session: DuckDBSession) -> None:
    (outcome,) = run(session, 'Rules = [ ColumnValues "region" in ["EU"] with ignoreCase = "yes" ]')
    assert outcome.error and 'ColumnValues: ignoreCase must be "true" or "false"' in outcome.message

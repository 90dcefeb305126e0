"""Evaluating DQDL on a real DuckDB session: every rule type passing and failing, shared scans."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeplane.config import StorageConfig
from lakeplane.engines.base import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.quality import DQDLError, MetricHistory, RuleOutcome, evaluate, parse
from lakeplane.storage import open_storage

NOW = dt.datetime(2026, 3, 1, 12, 0, 0)
HOURS_AGO = [1, 2, 30, 3, 80, 5]

ORDERS = pa.table(
    {
        "order_id": [1, 2, 3, 4, 5, 6],
        "customer_id": [10, 11, 12, 10, 13, 99],
        "country": ["US", "CA", "UK", None, "", "  "],
        "amount": [10.0, 20.0, 30.0, 40.0, None, 50.0],
        "postal_code": ["12345", "23456", "3456", "45678", None, "56789"],
        "status": ["shipped", "shipped", "open", "open", "open", "cancelled"],
        "ordered_at": [NOW - dt.timedelta(hours=h) for h in HOURS_AGO],
        "qty_text": ["1", "2", "x", "4", "5", "6"],
    }
)
CUSTOMERS = pa.table({"customer_id": [10, 11, 12, 13, 14], "name": ["a", "b", "c", "d", "e"]})


class RecordingSession(DuckDBSession):
    """A real DuckDB session that also keeps the statements run through ``execute``."""

    statements: list[str]

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        self.statements.append(sql)
        return super().execute(sql)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingSession]:
    tmp = tmp_path_factory.mktemp("dq")
    storage = open_storage(StorageConfig(root=str(tmp / "lake")), tmp)
    with RecordingSession(storage, JobSpec("t", "512MB", 2, tmp)) as opened:
        opened.statements = []
        opened.register_arrow("orders", ORDERS)
        opened.register_arrow("customers", CUSTOMERS)
        opened.register_arrow("orders_copy", ORDERS)
        yield opened


REFERENCES = {"customers": "customers", "reference": "customers", "orders_copy": "orders_copy"}


def run(session: DuckDBSession, text: str, history: Any = None, **kwargs: Any) -> list[RuleOutcome]:
    return evaluate(parse(f"Rules = [ {text} ]"), session, "orders", REFERENCES, NOW, history, **kwargs)


def one(session: DuckDBSession, text: str, history: Any = None) -> RuleOutcome:
    (outcome,) = run(session, text, history)
    assert not outcome.error, outcome.message
    return outcome


# rule, passes, observed, failing rows
CASES = [
    ("RowCount = 6", True, 6, None),
    ("RowCount > 6", False, 6, None),
    ("ColumnCount = 8", True, 8, None),
    ('Completeness "amount" > 0.8', True, 5 / 6, None),
    ('Completeness "amount" >= 0.9', False, 5 / 6, None),
    ('IsComplete "order_id"', True, 1.0, 0),
    ('IsComplete "country"', False, 5 / 6, 1),
    ('IsUnique "order_id"', True, 1.0, 0),
    ('IsUnique "customer_id"', False, 4 / 6, 2),
    ('Uniqueness "customer_id" > 0.6', True, 4 / 6, None),
    ('Uniqueness "customer_id" = 1.0', False, 4 / 6, None),
    ('Uniqueness "customer_id" "order_id" = 1.0', True, 1.0, None),
    ('IsPrimaryKey "order_id"', True, 1.0, 0),
    ('IsPrimaryKey "customer_id"', False, 4 / 6, 2),
    ('IsPrimaryKey "customer_id" "order_id"', True, 1.0, 0),
    ('IsPrimaryKey "country"', False, 5 / 6, 1),
    ('ColumnValues "status" in ["shipped", "open", "cancelled"]', True, 1.0, 0),
    ('ColumnValues "status" in ["shipped", "open"]', False, 5 / 6, 1),
    ('ColumnValues "amount" between 5 and 55', False, 5 / 6, 1),  # NULL fails
    ('ColumnValues "amount" between 5 and 55 with threshold > 0.8', True, 5 / 6, 1),
    ('ColumnValues "amount" between 5 and 55 with threshold >= 0.9', False, 5 / 6, 1),
    ('ColumnValues "order_id" between 1 and 6', False, 4 / 6, 2),  # between excludes its ends
    ('ColumnValues "order_id" not between 2 and 5', False, 4 / 6, 2),
    ('ColumnValues "amount" > 10', False, 4 / 6, 2),
    ('ColumnValues "amount" <= 50', False, 5 / 6, 1),
    ('ColumnValues "amount" != 10', False, 5 / 6, 1),  # != lets NULL pass
    ('ColumnValues "amount" not in [10, 20]', False, 4 / 6, 2),  # so does not in
    ('ColumnValues "amount" not in [10, 20, NULL]', False, 3 / 6, 3),
    ('ColumnValues "country" in ["US", "CA", "UK", NULL, EMPTY, WHITESPACES_ONLY]', True, 1.0, 0),
    ('ColumnValues "country" in ["US", "CA", "UK"]', False, 3 / 6, 3),
    ('ColumnValues "country" in ["US", "CA", "UK", EMPTY]', False, 4 / 6, 2),
    ('ColumnValues "country" = NULL', False, 1 / 6, 5),
    ('ColumnValues "country" != NULL', False, 5 / 6, 1),
    ('ColumnValues "country" = "US"', False, 1 / 6, 5),
    ('ColumnValues "postal_code" matches "[0-9]{5}"', False, 4 / 6, 2),
    ('ColumnValues "postal_code" not matches "[0-9]{5}"', False, 1 / 6, 5),
    ('ColumnValues "ordered_at" > (now() - 48 hours)', False, 5 / 6, 1),
    ('ColumnValues "ordered_at" > "2026-02-01"', True, 1.0, 0),
    ('ColumnValues "qty_text" in [1, 2, 4, 5, 6]', False, 5 / 6, 1),
    ('ColumnLength "postal_code" = 5', False, 4 / 6, 2),  # NULL has length 0
    ('ColumnLength "postal_code" <= 5', True, 1.0, 0),
    ('ColumnLength "status" between 3 and 10', True, 1.0, 0),
    ('ColumnExists "amount"', True, 1.0, None),
    ('ColumnExists "AMOUNT"', True, 1.0, None),
    ('ColumnExists "discount"', False, 0.0, None),
    ('ColumnDataType "qty_text" = "INTEGER"', False, 5 / 6, 1),
    ('ColumnDataType "qty_text" = "INTEGER" with threshold > 0.8', True, 5 / 6, 1),
    ('ColumnDataType "postal_code" in ["INTEGER", "DATE"]', True, 1.0, 0),
    ('ColumnDataType "status" = "BOOLEAN"', False, 0.0, 6),
    ('Mean "amount" = 30', True, 30, None),
    ('Mean "amount" > 30', False, 30, None),
    ('Sum "amount" = 150', True, 150, None),
    ('Sum "amount" < 100', False, 150, None),
    ('StandardDeviation "amount" between 14 and 15', True, math.sqrt(200), None),
    ('StandardDeviation "amount" < 10', False, math.sqrt(200), None),
    ('DistinctValuesCount "customer_id" = 5', True, 5, None),
    ('DistinctValuesCount "customer_id" in [1, 2]', False, 5, None),
    ('UniqueValueRatio "customer_id" = 0.8', True, 0.8, None),
    ('UniqueValueRatio "customer_id" > 0.9', False, 0.8, None),
    ('Entropy "status" > 1', True, -(math.log(1 / 3) / 3 + math.log(1 / 2) / 2 + math.log(1 / 6) / 6), None),
    ('Entropy "status" < 1', False, -(math.log(1 / 3) / 3 + math.log(1 / 2) / 2 + math.log(1 / 6) / 6), None),
    ('ColumnCorrelation "order_id" "amount" > 0.9', True, None, None),
    ('ColumnNamesMatchPattern "[a-z_]+"', True, 1.0, None),
    ('ColumnNamesMatchPattern "[a-z]+"', False, 3 / 8, None),
    ('ReferentialIntegrity "customer_id" "customers.customer_id" >= 0.8', True, 5 / 6, 1),
    ('ReferentialIntegrity "customer_id" "customers.customer_id" = 1.0', False, 5 / 6, 1),
    ('ReferentialIntegrity "customer_id,status" "orders_copy.{customer_id,status}" = 1.0', True, 1.0, 0),
    ('DataFreshness "ordered_at" <= 24 hours', False, 4 / 6, 2),
    ('DataFreshness "ordered_at" <= 4 days', True, 1.0, 0),
    ('DataFreshness "ordered_at" between 2 hours and 4 days', False, 4 / 6, 2),
    ('DataFreshness "ordered_at" > 30 minutes', True, 1.0, 0),
    ("CustomSql \"select count(*) from primary where status = 'open'\" = 3", True, 3, None),
    ("CustomSql \"select count(*) from primary where status = 'open'\" > 3", False, 3, None),
    (
        'CustomSql "select count(*) from primary p join customers c on p.customer_id = c.customer_id" = 5',
        True,
        5,
        None,
    ),
    ('CustomSql "select order_id from primary where amount > 15"', False, 4 / 6, 2),
    ('CustomSql "select order_id from primary where amount > 15" with threshold > 0.5', True, 4 / 6, 2),
    ('CustomSql "select order_id, status from primary"', True, 1.0, 0),
    ('RowCountMatch "customers" = 1.2', True, 1.2, None),
    ('RowCountMatch "reference" >= 1.5', False, 1.2, None),
    ('SchemaMatch "orders_copy" = 1.0', True, 1.0, None),
    ('SchemaMatch "customers" = 1.0', False, 1 / 9, None),
]


@pytest.mark.parametrize(("rule", "passes", "observed", "failing"), CASES, ids=[c[0] for c in CASES])
def test_rule_types(
    session: DuckDBSession, rule: str, passes: bool, observed: float | None, failing: int | None
) -> None:
    outcome = one(session, rule)
    assert outcome.passed is passes, outcome.message
    if observed is not None:
        assert isinstance(outcome.observed, float)
        assert outcome.observed == pytest.approx(observed)
    assert outcome.failing_rows == failing
    assert outcome.rule == rule
    assert outcome.message


def test_failing_rows_come_with_a_sample(session: DuckDBSession) -> None:
    outcome = one(session, 'ColumnValues "amount" > 10')
    assert sorted(r["order_id"] for r in outcome.failing_sample) == [1, 5]
    assert set(outcome.failing_sample[0]) == set(ORDERS.column_names)
    assert run(session, 'ColumnValues "amount" > 10', sample_size=0)[0].failing_sample == []
    dup = one(session, 'IsUnique "customer_id"')
    assert sorted(r["order_id"] for r in dup.failing_sample) == [1, 4]
    missing = one(session, 'ReferentialIntegrity "customer_id" "customers.customer_id" = 1.0')
    assert [r["customer_id"] for r in missing.failing_sample] == [99]
    assert one(session, 'IsComplete "order_id"').failing_sample == []


@pytest.mark.parametrize(
    ("rule", "passes", "observed", "failing"),
    [
        ("RowCount = 3 where \"status = 'open'\"", True, 3, None),
        (r'RowCount = 2 where "status = \"shipped\""', True, 2, None),  # Spark's double-quoted string
        ('Mean "amount" = 15 where "status = \'shipped\'"', True, 15, None),
        ('ColumnValues "amount" > 25 where "status = \'open\'"', False, 2 / 3, 1),
        ('IsComplete "amount" where "status <> \'open\'"', True, 1.0, 0),
        ('IsUnique "customer_id" where "order_id > 1"', True, 1.0, 0),
        ('Uniqueness "customer_id" > 0.99 where "order_id < 4"', True, 1.0, None),
    ],
)
def test_where_clauses(
    session: DuckDBSession, rule: str, passes: bool, observed: float, failing: int | None
) -> None:
    outcome = one(session, rule)
    assert outcome.passed is passes, outcome.message
    assert outcome.observed == pytest.approx(observed)
    assert outcome.failing_rows == failing


#: Single-column rules that a grouping of their column answers when some frequency rule asks for one.
GROUPABLE = [
    c[0]
    for c in CASES
    if c[0].split()[0]
    in ("IsComplete", "Completeness", "ColumnValues", "ColumnLength", "DataFreshness", "ColumnDataType")
] + [
    'ColumnValues "amount" > 25 where "status = \'open\'"',
    'IsComplete "amount" where "status <> \'open\'"',
    'Completeness "country" > 0.5 where "order_id > 2"',
    'ColumnLength "country" = 2 where "amount > 15"',
]


@pytest.mark.parametrize("rule", GROUPABLE)
def test_a_grouped_column_answers_its_row_checks_exactly_as_a_scan_does(
    session: RecordingSession, rule: str
) -> None:
    column = rule.split('"')[1]
    where = rule[rule.index(" where ") :] if " where " in rule else ""
    (alone,) = run(session, rule)
    session.statements.clear()
    with_grouping = run(session, f'{rule}, DistinctValuesCount "{column}" >= 0{where}')
    assert with_grouping[0] == alone
    assert len(session.statements) == 1, "the grouping answered both rules"
    assert "GROUP BY" in session.statements[0]


def test_checks_on_a_column_of_few_values_run_once_per_value(session: RecordingSession) -> None:
    rows = 100_000
    statuses = ["open", "shipped", "cancelled", "Lost!"]
    session.register_arrow(
        "events",
        pa.table(
            {
                "id": pa.array(range(rows), pa.int64()),
                "status": [None if n % 997 == 0 else statuses[n % 4] for n in range(rows)],
            }
        ),
    )
    session.statements.clear()
    outcomes = evaluate(
        'Rules = [ ColumnValues "status" matches "[a-z]+", ColumnLength "status" <= 9, '
        'ColumnValues "id" >= 0 ]',
        session,
        "events",
        now=NOW,
    )
    expected_bad = sum(1 for n in range(rows) if n % 997 == 0 or n % 4 == 3)
    assert [o.failing_rows for o in outcomes] == [expected_bad, 0, 0]
    assert [o.passed for o in outcomes] == [False, True, True]
    probe, aggregates, grouping = session.statements
    assert '"status"' in probe and '"id"' in probe, "both checked columns are probed"
    assert '"status"' not in aggregates and '"id"' in aggregates, "many ids: checked row by row"
    assert 'GROUP BY "status"' in grouping and "regexp_full_match" in grouping


def test_a_row_check_the_engine_refuses_breaks_only_itself(session: DuckDBSession) -> None:
    from lakeplane.quality.scan import FrequencyScan

    scan = FrequencyScan("orders")
    key = scan.add(0, ("status",), None)
    broken = scan.add_check(1, key, "CAST(status AS INTEGER) > 0")  # a status is no integer
    fine = scan.add_check(2, key, "status <> 'open'")
    found, failing, errors = scan.run(session)
    assert found[key].distinct == 3 and found[key].scoped_rows == 6
    assert failing == {fine: 3} and broken not in failing
    assert list(errors) == [1] and "Conversion Error: Could not convert string" in errors[1]


def test_composites_combine_their_parts_in_order(session: DuckDBSession) -> None:
    outcomes = run(
        session,
        '(RowCount > 0) and (IsComplete "country"), '
        '(RowCount > 100) or (IsComplete "order_id"), '
        '(RowCount > 100) or ((Mean "amount" = 30) and (ColumnExists "amount")), '
        "RowCount > 0 and ColumnCount > 100",
    )
    assert [o.passed for o in outcomes] == [False, True, True, False]
    first = outcomes[0]
    assert first.rule_type == "Composite" and first.rule == '(RowCount > 0) and (IsComplete "country")'
    assert [(c.rule, c.passed) for c in first.children] == [
        ("RowCount > 0", True),
        ('IsComplete "country"', False),
    ]
    assert first.message == "1 of 2 rules passed (and)"
    nested = outcomes[2].children[1]
    assert nested.rule_type == "Composite" and [c.passed for c in nested.children] == [True, True]
    assert first.to_dict()["children"][1]["failing_rows"] == 1


def test_dynamic_rules_read_the_history(session: DuckDBSession) -> None:
    asked: list[tuple[str, int]] = []

    def history(key: str, n: int) -> list[float]:
        asked.append((key, n))
        return {"RowCount": [5.0, 6.0, 7.0, 100.0][:n], 'Mean "amount"': [30.0, 29.0, 31.0]}.get(key, [])

    outcomes = run(
        session,
        "RowCount > avg(last(3)) * 0.8, "
        "RowCount > max(last(4)) - 1, "
        "RowCount between min(last(3)) - 1 and max(last(3)) + 1, "
        'Mean "amount" between avg(last(3)) * 0.9 and avg(last(3)) * 1.1, '
        'Mean "amount" > avg(last(3)) + std(last(3)), '
        "RowCount < sum(last(2))",
        history,
    )
    assert [o.passed for o in outcomes] == [True, False, True, True, False, True]
    assert ("RowCount", 3) in asked and ('Mean "amount"', 3) in asked
    assert outcomes[0].message == "RowCount is 6; meets > avg(last(3)) * 0.8 (avg(last(3)) * 0.8 = 4.8)"
    assert outcomes[0].metric_key == "RowCount" and not outcomes[0].history_missing


def test_dynamic_bounds_without_history_pass_and_say_so(session: DuckDBSession) -> None:
    outcomes = run(
        session,
        "RowCount > avg(last(10)), RowCount between 100 and max(last(3)), "
        "(RowCount > min(last(2))) and (RowCount = 6), ColumnCount = 8",
    )
    assert [o.passed for o in outcomes] == [True, False, True, True]  # the static bound still counts
    assert [o.history_missing for o in outcomes] == [True, True, True, False]
    assert "without history a dynamic bound counts as met" in outcomes[0].message
    assert "avg(last(10)) = no history" in outcomes[0].message


def test_metric_history_feeds_the_next_run(session: DuckDBSession, tmp_path: Path) -> None:
    store = MetricHistory(sa.create_engine(f"sqlite:///{tmp_path / 'dq.sqlite'}"), "shop.orders")
    rules = 'RowCount >= avg(last(5)), (Mean "amount" > min(last(5))) or (RowCount > 0)'
    day = dt.datetime(2026, 3, 1)
    first = run(session, rules, store.before(day))
    assert all(o.passed and o.history_missing for o in first)
    assert store.record(first, day) == 2  # RowCount (in two rules) and Mean "amount"
    assert store.record(first, day) == 2  # a rerun of the same day replaces its values
    assert store("RowCount", 5) == [6.0] and store('Mean "amount"', 5) == [30.0]
    store.record(
        [RuleOutcome("RowCount > 0", "RowCount", True, 60.0, metric_key="RowCount")],
        day + dt.timedelta(days=1),
    )
    assert store("RowCount", 5) == [60.0, 6.0]
    assert store.before(day + dt.timedelta(days=1))("RowCount", 5) == [6.0]  # a backfill sees the past only
    second = run(session, rules, store.before(day + dt.timedelta(days=2)))
    assert not second[0].passed and not second[0].history_missing  # 6 < avg(60, 6)
    assert "avg(last(5)) = 33" in second[0].message


def test_outcomes_follow_the_ruleset_and_a_broken_rule_breaks_only_itself(session: DuckDBSession) -> None:
    outcomes = run(
        session,
        'RowCount = 6, Mean "amout" > 1, ColumnValues "amount" > 1 where "nosuch > 1", '
        'Uniqueness "customer_id" > 0.1 where "nosuch = 1", IsUnique "order_id", '
        'CustomSql "select order_id, status from primary" > 1, '
        'ColumnValues "status" > 3, Sum "status" > 1, RowCount > 0',
    )
    assert [o.rule_type for o in outcomes] == [
        "RowCount",
        "Mean",
        "ColumnValues",
        "Uniqueness",
        "IsUnique",
        "CustomSql",
        "ColumnValues",
        "Sum",
        "RowCount",
    ]
    # "status" > 3 compares numbers: text that is no number fails the rule, it does not break it
    assert [o.error for o in outcomes] == [False, True, True, True, False, True, False, True, False]
    assert [o.passed for o in outcomes] == [True, False, False, False, True, False, False, False, True]
    assert outcomes[1].message == "column 'amout' does not exist; did you mean 'amount'?"
    assert "nosuch" in outcomes[2].message and "nosuch" in outcomes[3].message
    assert "must return one value" in outcomes[5].message


def test_configuration_mistakes_raise(session: DuckDBSession) -> None:
    with pytest.raises(DQDLError, match=r"unknown reference dataset 'refernce'; did you mean 'reference'\?"):
        run(session, 'RowCountMatch "refernce" >= 0.9')
    with pytest.raises(DQDLError, match="CustomSql reads unknown table 'secrets'"):
        run(session, 'CustomSql "select count(*) from secrets" > 0')
    with pytest.raises(DQDLError, match="only primary and the reference datasets"):
        run(session, "CustomSql \"select count(*) from read_csv('/etc/passwd')\" > 0")


def test_rules_share_scans(session: RecordingSession) -> None:
    session.statements.clear()
    outcomes = run(
        session,
        'RowCount > 0, ColumnCount = 8, Completeness "amount" > 0.5, IsComplete "order_id", '
        'Mean "amount" > 1, Sum "amount" > 1, StandardDeviation "amount" > 1, '
        'DistinctValuesCount "status" = 3, ColumnValues "status" in ["open", "shipped", '
        '"cancelled"], ColumnLength "status" < 20, DataFreshness "ordered_at" < 5 days, '
        'RowCount = 3 where "status = \'open\'", ColumnDataType "postal_code" = "INTEGER", '
        '(IsUnique "order_id") and (Uniqueness "customer_id" > 0.5), '
        'UniqueValueRatio "status" > 0.1, Entropy "customer_id" > 1, IsPrimaryKey "order_id"',
    )
    assert all(o.passed for o in outcomes), [o.message for o in outcomes if not o.passed]
    # a probe of the checked columns' cardinality, one SELECT of every plain aggregate, then one
    # GROUP BY per column set, whichever rules ask for it
    assert len(session.statements) == 5
    probe, aggregates, *groupings = session.statements
    assert "count(distinct" in probe.lower() and "LIMIT 65536" in probe
    assert "GROUP BY" not in aggregates
    by_columns = {re.search(r"GROUP BY ([^)]*)\)", s)[1]: s for s in groupings}  # type: ignore[index]
    assert sorted(by_columns) == ['"customer_id"', '"order_id"', '"status"']
    # the row checks on "status" are answered by its grouping, once per distinct value
    assert "length(" not in aggregates and "IN ('open'" not in aggregates
    assert "length(" in by_columns['"status"'] and "IN ('open'" in by_columns['"status"']


def test_ruleset_text_and_empty_tables(session: DuckDBSession) -> None:
    session.register_arrow("empty_orders", ORDERS.slice(0, 0))
    outcomes = evaluate(
        'Rules = [ RowCount = 0, IsComplete "amount", Mean "amount" > 1, IsUnique "order_id" ]',
        session,
        "empty_orders",
        now=NOW,
    )
    assert [o.passed for o in outcomes] == [True, True, False, True]
    assert "no value" in outcomes[2].message


def test_documented_ruleset_runs_on_documented_columns(session: DuckDBSession) -> None:
    session.register_arrow(
        "reviews",
        pa.table(
            {
                "Order_Id": ["o1", "o2", "o3", "o4"],
                "Star_Rating": [5, 4, 3, 4],
                "Order_Total": [900, 200, 700, 400],
                "Country": ["US", "CA", None, " "],
                "gender": ["F", "M", "X", "F"],
                "weightinkgs": [5, 8, 12, 70],
                "First_Name": ["Ann", "Bo", "Cy", "D3"],
                "Customer_ID": [1, 2, 3, 2001],
                "Age": [30, None, 21, 44],
                "Postal_Code": ["12345", "2345", None, "45678"],
                "zipcode": [111, 222, 333, 444],
                "Order_Date": [NOW - dt.timedelta(hours=h) for h in (2, 20, 30, 100)],
            }
        ),
    )
    session.register_arrow("zips", pa.table({"zipcode": [111, 222, 333, 555]}))
    ruleset = parse(
        """Rules = [
        IsComplete "Order_Id", IsUnique "Order_Id",
        (Mean "Star_Rating" > 3) and ((Mean "Order_Total" > 500) or (IsComplete "Order_Id")),
        ColumnValues "Country" in [ "US", "CA", "UK", NULL, EMPTY, WHITESPACES_ONLY ],
        ColumnValues "gender" in ["F", "M"] where "weightinkgs < 10",
        ColumnValues "First_Name" matches "[a-zA-Z]*",
        ColumnValues "Customer_ID" between 0 and 2000,
        (ColumnValues "Age" > 21) OR (ColumnValues "Age" = NULL),
        ColumnValues "Age" not in [21, 22, 23, NULL],
        ColumnLength "Postal_Code" = 5,
        (ColumnLength "Postal_Code" > 4) AND (ColumnValues "Postal_Code" != NULL),
        DataFreshness "Order_Date" <= 24 hours,
        (DataFreshness "Order_Date" <= 24 hours) OR (ColumnValues "Order_Date" = NULL),
        CustomSql "select count(*) from primary" between 2 and 20,
        ReferentialIntegrity "zipcode" "reference.zipcode" >= 0.7,
        RowCountMatch "reference" >= 0.9,
        RowCount > avg(last(10)) *0.8
    ]""",
        source="reviews.dqdl",
    )
    outcomes = evaluate(ruleset, session, "reviews", {"reference": "zips"}, NOW, lambda key, n: [])
    assert not any(o.error for o in outcomes), [o.message for o in outcomes if o.error]
    assert [o.passed for o in outcomes] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    assert outcomes[5].failing_rows == 1  # "D3" is not letters only
    assert outcomes[6].failing_rows == 1  # 2001 is out of range
    assert outcomes[-1].history_missing


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.one_of(st.none(), st.integers(-50, 50)), max_size=30),
    low=st.integers(-60, 60),
    width=st.integers(0, 60),
    negated=st.booleans(),
)
def test_column_values_between_matches_python(
    session: DuckDBSession, values: list[int | None], low: int, width: int, negated: bool
) -> None:
    session.register_arrow("numbers", pa.table({"x": pa.array(values, pa.int64())}))
    high = low + width
    rule = f'ColumnValues "x" {"not " if negated else ""}between {low} and {high}'
    (outcome,) = evaluate(f"Rules = [ {rule} ]", session, "numbers", now=NOW)

    def passes(v: int | None) -> bool:
        return v is not None and (low < v < high) != negated

    assert outcome.failing_rows == sum(not passes(v) for v in values)
    assert outcome.passed is all(passes(v) for v in values)

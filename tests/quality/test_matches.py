"""Variance, AggregateMatch and DatasetMatch on a real DuckDB session, and on a real lake with
references from ``DataSources`` and from ``--ref``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeplane.cli.main import cli
from lakeplane.config import StorageConfig
from lakeplane.engines.base import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.lake import Lake
from lakeplane.quality import RuleOutcome, evaluate, parse
from lakeplane.storage import open_storage
from tests.quality.shop import orders, shop_lake

NOW = dt.datetime(2026, 3, 1, 12, 0, 0)

ORDERS = pa.table(
    {
        "order_id": [1, 2, 3, 4, 5],
        "region": ["EU", "EU", "US", "US", "US"],
        "amount": [10.0, 20.0, None, 40.0, 55.5],
        "qty": [1, 3, 3, 7, 12],
        "note": ["a", None, "c", "d", "e"],
    }
)
#: The same orders as a ledger sees them: order 2's amount differs, order 4 is missing, order 9 is extra,
#: the key columns are named differently and the note of order 2 is NULL on both sides.
LEDGER = pa.table(
    {
        "ORDER_ID": [1, 2, 3, 5, 9],
        "Region": ["EU", "EU", "US", "US", "EU"],
        "amount": [10.0, 21.0, None, 55.5, 99.0],
        "qty": [1, 3, 3, 12, 1],
        "note": ["a", None, "c", "e", "z"],
    }
)
#: Lines keyed by (order_id, line): duplicates and NULLs in a single column are fine, the pair is unique.
LINES = pa.table({"order_id": [1, 1, 2, 2], "line": [1, 2, 1, 2], "amount": [4.0, 6.0, 20.0, 1.0]})
LINES_REF = pa.table({"oid": [1, 1, 2, 2], "ln": [1, 2, 1, 3], "amount": [4.0, 6.0, 20.0, 1.0]})
DUPLICATED = pa.table({"order_id": [1, 1, 2, 3, 5], "amount": [10.0, 10.0, 20.0, None, 55.5]})
NULL_KEYS = pa.table({"order_id": [1, None, 3], "amount": [10.0, 20.0, None]})
ZEROS = pa.table({"order_id": [1], "amount": [0.0]})
BLANK = pa.table({"order_id": [1], "amount": pa.array([None], pa.float64())})

REFERENCES = {
    "ledger": "ledger",
    "lines_ref": "lines_ref",
    "duplicated": "duplicated",
    "null_keys": "null_keys",
    "orders_copy": "orders",
    "zeros": "zeros",
    "blank": "blank",
    "prop_reference": "prop_reference",
    "finance.ledger": "ledger",  # a catalog-style alias with a dot, as Glue's Data Catalog names them
}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBSession]:
    tmp = tmp_path_factory.mktemp("matches")
    storage = open_storage(StorageConfig(root=str(tmp / "lake")), tmp)
    with DuckDBSession(storage, JobSpec("t", "512MB", 2, tmp)) as opened:
        tables = {"orders": ORDERS, "ledger": LEDGER, "lines": LINES, "lines_ref": LINES_REF}
        tables |= {"duplicated": DUPLICATED, "null_keys": NULL_KEYS, "zeros": ZEROS, "blank": BLANK}
        for name, table in tables.items():
            opened.register_arrow(name, table)
        yield opened


def run(session: DuckDBSession, text: str, table: str = "orders", history: Any = None) -> list[RuleOutcome]:
    return evaluate(parse(f"Rules = [ {text} ]"), session, table, REFERENCES, NOW, history)


def one(session: DuckDBSession, text: str, table: str = "orders", history: Any = None) -> RuleOutcome:
    (outcome,) = run(session, text, table, history)
    assert not outcome.error, outcome.message
    return outcome


def problem(session: DuckDBSession, text: str, table: str = "orders") -> str:
    (outcome,) = run(session, text, table)
    assert outcome.error and not outcome.passed, outcome
    return outcome.message


# -- Variance ----------------------------------------------------------------------------------


def test_variance_is_numpys_population_variance_of_the_non_null_values(session: DuckDBSession) -> None:
    amounts = np.array([v for v in ORDERS.column("amount").to_pylist() if v is not None])
    outcome = one(session, 'Variance "amount" > 1')
    assert outcome.observed == pytest.approx(float(np.var(amounts)), rel=1e-12)
    assert outcome.passed and outcome.metric_key == 'Variance "amount"'
    assert not one(session, f'Variance "amount" < {float(np.var(amounts)) - 0.001}').passed
    integers = one(session, 'Variance "qty" between 15 and 17')
    assert integers.observed == pytest.approx(float(np.var(ORDERS.column("qty").to_numpy())))
    assert integers.passed


def test_variance_is_the_square_of_standard_deviation(session: DuckDBSession) -> None:
    variance, deviation = run(session, 'Variance "amount" > 0, StandardDeviation "amount" > 0')
    assert variance.observed == pytest.approx(deviation.observed**2)  # type: ignore[operator]


def test_variance_with_a_where_clause_and_dynamic_bounds(session: DuckDBSession) -> None:
    eu = one(session, 'Variance "amount" = 25 where "region = \'EU\'"')  # 10 and 20
    assert eu.passed and eu.observed == 25.0
    assert eu.metric_key == 'Variance "amount" where "region = \'EU\'"'

    def history(key: str, n: int) -> list[float]:
        assert key == 'Variance "qty"'
        return [10.0, 20.0][:n]

    dynamic = one(session, 'Variance "qty" > avg(last(2))', history=history)  # 16 > 15
    assert dynamic.passed and "avg(last(2)) = 15" in dynamic.message
    assert not one(session, 'Variance "qty" > max(last(2))', history=history).passed


def test_variance_of_a_text_column_or_no_values(session: DuckDBSession) -> None:
    assert "Variance needs a numeric column; 'note' is string" in problem(session, 'Variance "note" > 0')
    assert "column 'amout' does not exist; did you mean 'amount'" in problem(session, 'Variance "amout" > 0')
    nothing = one(session, 'Variance "amount" > 0 where "order_id > 100"')
    assert not nothing.passed and nothing.observed is None


# -- AggregateMatch ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "passed", "observed"),
    [
        ('AggregateMatch "sum(amount)" "sum(ledger.amount)" >= 0.9', False, 125.5 / 185.5),
        ('AggregateMatch "sum(ledger.amount)" "sum(amount)" >= 0.9', True, 185.5 / 125.5),
        ('AggregateMatch "sum(amount)" "sum(orders_copy.amount)" = 1.0', True, 1.0),
        ('AggregateMatch "avg(qty)" "avg(ledger.qty)" = 1.3', True, 5.2 / 4.0),
        ('AggregateMatch "sum(qty)" "sum(amount)" < 0.21', True, 26 / 125.5),
        ('AggregateMatch "SUM(amount)" "sum(finance.ledger.amount)" > 0.9', False, 125.5 / 185.5),
    ],
)
def test_aggregate_match_divides_the_first_aggregate_by_the_second(
    session: DuckDBSession, rule: str, passed: bool, observed: float
) -> None:
    outcome = one(session, rule)
    assert outcome.observed == pytest.approx(observed)
    assert outcome.passed is passed, outcome.message


def test_aggregate_match_reads_spark_quoted_names(session: DuckDBSession) -> None:
    outcome = one(session, 'AggregateMatch "sum(`qty`)" "sum(`ledger`.`qty`)" = 1.3')
    assert outcome.passed and outcome.observed == pytest.approx(26 / 20)


def test_aggregate_match_says_both_values(session: DuckDBSession) -> None:
    outcome = one(session, 'AggregateMatch "sum(amount)" "sum(ledger.amount)" >= 0.5')
    assert "sum(amount) is 125.5 against sum(ledger.amount) is 185.5" in outcome.message
    assert outcome.metric_key == 'AggregateMatch "sum(amount)" "sum(ledger.amount)"'


def test_aggregate_match_with_a_zero_or_missing_total(session: DuckDBSession) -> None:
    against_zero = one(session, 'AggregateMatch "sum(amount)" "sum(zeros.amount)" > 0')
    assert not against_zero.passed and against_zero.observed is None
    assert one(session, 'AggregateMatch "sum(amount)" "sum(zeros.amount)" = 1', table="zeros").passed
    no_values = one(session, 'AggregateMatch "sum(amount)" "sum(blank.amount)" > 0')
    assert not no_values.passed and no_values.observed is None
    assert "sum(blank.amount) is no value" in no_values.message


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            'AggregateMatch "amount" "sum(ledger.amount)" > 0',
            "'amount' is not an aggregate; write sum(column)",
        ),
        ('AggregateMatch "max(amount)" "sum(ledger.amount)" > 0', "unknown aggregate 'max' in 'max(amount)'"),
        ('AggregateMatch "sum()" "sum(ledger.amount)" > 0', "'sum()' is not an aggregate"),
        ('AggregateMatch "sum(amount)" "sum(ledgr.amount)" > 0', "unknown reference dataset 'ledgr'"),
        ('AggregateMatch "sum(amount)" "sum(ledger.amont)" > 0', "reference 'ledger' has no column 'amont'"),
        ('AggregateMatch "sum(amonut)" "sum(ledger.amount)" > 0', "column 'amonut' does not exist"),
        (
            'AggregateMatch "sum(note)" "sum(ledger.amount)" > 0',
            "needs a numeric column; 'note' in 'sum(note)' is string",
        ),
        ('AggregateMatch "sum(amount)" "sum(ledger.note)" > 0', "'note' in 'sum(ledger.note)' is string"),
    ],
)
def test_aggregate_match_mistakes_are_the_rules_error(
    session: DuckDBSession, rule: str, message: str
) -> None:
    assert message in problem(session, rule)


def test_a_broken_rule_leaves_the_others_measured(session: DuckDBSession) -> None:
    outcomes = run(
        session,
        'AggregateMatch "sum(amount)" "sum(nowhere.amount)" > 0, RowCount = 5, '
        'DatasetMatch "nowhere" "order_id" > 0, Variance "qty" > 0',
    )
    assert [(o.error, o.passed) for o in outcomes] == [
        (True, False),
        (False, True),
        (True, False),
        (False, True),
    ]
    assert "name them in DataSources or with --ref ALIAS=TABLE" in outcomes[2].message


# -- DatasetMatch ------------------------------------------------------------------------------


def test_dataset_match_on_renamed_keys_comparing_every_other_column(session: DuckDBSession) -> None:
    outcome = one(session, 'DatasetMatch "ledger" "order_id->ORDER_ID" >= 0.6')
    # order 1, 3 (NULL amount on both sides), 5 match; 2 differs in amount, 4 is not in the ledger
    assert outcome.observed == pytest.approx(3 / 5) and outcome.passed
    assert outcome.failing_rows == 2
    assert sorted(r["order_id"] for r in outcome.failing_sample) == [2, 4]
    assert (
        "3 of 5 rows match ledger on (order_id->ORDER_ID) comparing region, amount, qty, note"
        in outcome.message
    )
    assert not one(session, 'DatasetMatch "ledger" "order_id->ORDER_ID" > 0.6').passed


def test_dataset_match_on_chosen_columns(session: DuckDBSession) -> None:
    qty = one(session, 'DatasetMatch "ledger" "order_id->ORDER_ID" "qty" = 0.8')
    assert qty.passed, "only order 4 is missing; order 2's quantity agrees"
    both = one(session, 'DatasetMatch "ledger" "order_id->ORDER_ID" "qty,region->Region,amount" = 0.6')
    assert both.passed
    keys_only = one(session, 'DatasetMatch "orders_copy" "order_id" "order_id" = 1.0')
    assert keys_only.passed


def test_dataset_match_on_a_composite_key(session: DuckDBSession) -> None:
    outcome = one(session, 'DatasetMatch "lines_ref" "order_id->oid,line->ln" = 0.75', table="lines")
    assert outcome.passed and outcome.failing_rows == 1
    assert outcome.failing_sample == [{"order_id": 2, "line": 2, "amount": 1.0}]


def test_dataset_match_needs_a_primary_key_on_both_sides(session: DuckDBSession) -> None:
    duplicated = problem(session, 'DatasetMatch "duplicated" "order_id" "amount" > 0')
    assert "not a primary key of duplicated: 2 rows share 1 key" in duplicated
    null_reference = problem(session, 'DatasetMatch "null_keys" "order_id" "amount" > 0')
    assert "not a primary key of null_keys: 1 row with a NULL key" in null_reference
    null_primary = problem(session, 'DatasetMatch "orders_copy" "order_id" "amount" > 0', table="null_keys")
    assert "not a primary key of the table: 1 row with a NULL key" in null_primary
    assert "AggregateMatch compares totals instead" in null_primary
    single_column = problem(session, 'DatasetMatch "lines_ref" "order_id->oid" "amount" > 0', table="lines")
    assert "not a primary key of the table: 4 rows share 2 keys" in single_column


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('DatasetMatch "ledgr" "order_id" > 0', "unknown reference dataset 'ledgr'; did you mean 'ledger'"),
        (
            'DatasetMatch "duplicated" "order_id" > 0',
            "reference 'duplicated' has no columns 'region', 'qty', 'note'",
        ),
        ('DatasetMatch "ledger" "order_id->ID" > 0', "reference 'ledger' has no column 'ID'"),
        ('DatasetMatch "ledger" "id->ORDER_ID" > 0', "the table has no column 'id'"),
        ('DatasetMatch "ledger" "order_id->" > 0', "bad key column mapping 'order_id->'"),
        ('DatasetMatch "ledger" "order_id->ORDER_ID" "amount,,qty" > 0', "bad match column mapping"),
        (
            'DatasetMatch "ledger" "order_id->ORDER_ID" "amount->note" > 0',
            "comparing the table with ledger: ",
        ),
    ],
)
def test_dataset_match_mistakes_are_the_rules_error(session: DuckDBSession, rule: str, message: str) -> None:
    assert message in problem(session, rule)


def test_dataset_match_compares_names_case_insensitively_as_spark_does(session: DuckDBSession) -> None:
    outcome = one(session, 'DatasetMatch "ledger" "ORDER_ID" "REGION" = 0.8')
    assert outcome.passed, outcome.message


VALUES = st.one_of(st.none(), st.integers(-3, 3).map(float))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.tuples(VALUES, VALUES), min_size=1, max_size=12),
    changed=st.lists(st.integers(0, 11), max_size=4, unique=True),
    dropped=st.lists(st.integers(0, 11), max_size=4, unique=True),
)
def test_dataset_match_counts_exactly_the_rows_changed_or_missing(
    session: DuckDBSession,
    values: list[tuple[float | None, float | None]],
    changed: list[int],
    dropped: list[int],
) -> None:
    """NULL-safe comparison: a NULL turned into a value, or a value into NULL, is a change; NULL
    against NULL is not."""
    rows = len(values)
    mine = pa.table(
        {"id": list(range(rows)), "a": [a for a, _ in values], "b": [b for _, b in values]},
        schema=pa.schema([("id", pa.int64()), ("a", pa.float64()), ("b", pa.float64())]),
    )
    changed_rows = {i for i in changed if i < rows and i not in dropped}
    theirs = [
        {"id": i, "a": a, "b": (None if b is not None else 7.5) if i in changed_rows else b}
        for i, (a, b) in enumerate(values)
        if i not in dropped
    ]
    session.register_arrow("prop_primary", mine)
    session.register_arrow("prop_reference", pa.Table.from_pylist(theirs, schema=mine.schema))
    outcome = one(session, 'DatasetMatch "prop_reference" "id" >= 0', table="prop_primary")
    lost = len(changed_rows) + len([i for i in dropped if i < rows])
    assert outcome.failing_rows == lost
    assert outcome.observed == pytest.approx((rows - lost) / rows)
    only_a = one(session, 'DatasetMatch "prop_reference" "id" "a" >= 0', table="prop_primary")
    assert only_a.failing_rows == len([i for i in dropped if i < rows]), "column a never changes"


# -- on a lake: DataSources and --ref ----------------------------------------------------------

DAY = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return shop_lake(
        tmp_path_factory.mktemp("shop"),
        {
            "pos/orders": {DAY: orders((1, 10.0), (2, 20.0), (3, 30.0))},
            "erp/ledger": {DAY: orders((1, 10.0), (2, 20.0), (3, 35.0))},
        },
    )


RULES = """DataSources = { "Primary": "processed.orders", "AdditionalDataSources": ["processed.ledger"] }
Rules = [
    AggregateMatch "sum(amount)" "sum(ledger.amount)" >= 0.9,
    AggregateMatch "avg(processed.ledger.amount)" "avg(amount)" > 1,
    DatasetMatch "ledger" "order_id" "amount" >= 0.6,
    DatasetMatch "other" "order_id" "amount" = 1.0,
    Variance "amount" = 66.66666666666667
]
"""


def test_references_from_data_sources_and_from_the_command_line(lake: Lake, tmp_path: Path) -> None:
    ruleset = tmp_path / "match.dqdl"
    ruleset.write_text(RULES)
    base = [
        "--lake",
        str(lake.project_dir),
        "--output",
        "json",
        "dq",
        "check",
        "processed.orders",
        str(ruleset),
    ]
    result = CliRunner().invoke(cli, [*base, "--ref", "other=processed.orders"])
    assert result.exit_code == 0, result.output
    outcomes = json.loads(result.output)
    assert [o["passed"] for o in outcomes] == [True, True, True, True, True]
    assert outcomes[0]["observed"] == pytest.approx(60 / 65)
    assert outcomes[1]["observed"] == pytest.approx(65 / 60)
    assert outcomes[2]["observed"] == pytest.approx(2 / 3) and outcomes[2]["failing_rows"] == 1

    without = CliRunner().invoke(cli, base)
    assert without.exit_code == 1, without.output
    missing = json.loads(without.output)[3]
    assert missing["error"] and "unknown reference dataset 'other'" in missing["message"]
    assert [o["passed"] for o in json.loads(without.output)] == [True, True, True, False, True]

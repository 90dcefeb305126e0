"""DQDL inside pipeline runs: rulesets shaped like AWS Glue's documented ones as a quality step and as
a model's write-audit-publish gate, and the demo's telco gate on generated and on broken data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from lakeplane.demo import telco
from lakeplane.demo.run import build_project
from lakeplane.errors import QualityGateFailed
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.store import RunRecord
from tests.conftest import head_id

DAY1, DAY2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
CONFIG = """
name: shop
datasets:
  pos/orders:
    format: ndjson
    table: shop.processed.orders
    key: [order_id]
    fields:
      order_id: {type: long, required: true}
      customer_id: {type: long, required: true}
      country: {type: string}
      amount: {type: double}
      placed_at: {type: timestamp, required: true}
  crm/customers:
    format: ndjson
    table: shop.processed.customers
    key: [customer_id]
    fields:
      customer_id: {type: long, required: true}
      name: {type: string, required: true}
"""
MODEL = """-- partition_by: [ds]
SELECT o.ds, o.order_id, o.customer_id, c.name AS customer, o.country, o.amount, o.placed_at
FROM processed.orders AS o LEFT JOIN processed.customers AS c ON c.customer_id = o.customer_id
WHERE o.ds = :ds
"""
PIPELINE = """
steps:
  orders: {ingest: pos/orders}
  customers: {ingest: crm/customers, if_missing: skip}
  check_orders:
    quality: quality/orders.dqdl
    table: processed.orders
    depends_on: [orders]
  order_facts:
    model: curated.order_facts
    depends_on: [check_orders, customers]
    quality: quality/order_facts.dqdl
"""
# Written in the shapes of the AWS Glue DQDL reference: composites, keyword values, where clauses,
# thresholds, a dynamic bound, reference datasets and CustomSql against "primary".
ORDERS_RULES = """Rules = [
    IsComplete "order_id",
    IsUnique "order_id",
    ColumnValues "order_id" > 0,
    Completeness "amount" >= 0.75,
    ColumnExists "placed_at",
    ColumnValues "country" in ["US", "CA", "UK", NULL, EMPTY, WHITESPACES_ONLY],
    (ColumnValues "amount" >= 0 with threshold >= 0.75) or (ColumnValues "amount" = NULL),
    ColumnValues "amount" between 0 and 200 with threshold >= 0.5,
    DistinctValuesCount "country" >= 1,
    Uniqueness "order_id" > 0.95,
    StandardDeviation "amount" < 1000,
    RowCount > avg(last(10)) * 0.5
]
"""
FACTS_RULES = """DataSources = { "AdditionalDataSources": ["processed.customers"] }
Rules = [
    RowCount between 0 and 1000,
    IsPrimaryKey "order_id",
    (IsComplete "customer") and (ColumnLength "customer" between 0 and 41),
    ColumnValues "amount" > 100 where "country = 'UK'",
    ColumnValues "country" in ["US", "CA", "UK"] with threshold > 0.5,
    ReferentialIntegrity "customer_id" "customers.customer_id" = 1.0,
    CustomSql "select count(*) from primary where amount < 0" = 0,
    Mean "amount" between 1 and 500,
    RowCountMatch "customers" > 0.1
]
"""


@pytest.fixture
def shop(tmp_path: Path) -> Lake:
    root = tmp_path / "shop"
    for folder in ("models/curated", "pipelines", "quality"):
        (root / folder).mkdir(parents=True)
    (root / "lakeplane.yaml").write_text(CONFIG)
    (root / "models" / "curated" / "order_facts.sql").write_text(MODEL)
    (root / "pipelines" / "shop.yaml").write_text(PIPELINE)
    (root / "quality" / "orders.dqdl").write_text(ORDERS_RULES)
    (root / "quality" / "order_facts.dqdl").write_text(FACTS_RULES)
    return open_lake(root)


def land(lake: Lake, dataset: str, day: dt.date, rows: list[dict[str, object]]) -> None:
    drop = lake.project_dir.parent / f"{dataset.replace('/', '-')}-{day}.ndjson"
    drop.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lake.land(dataset, [drop], day)


def order(
    order_id: int, customer_id: int, country: str | None, amount: float | None, day: dt.date
) -> dict[str, object]:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "country": country,
        "amount": amount,
        "placed_at": f"{day} 09:30:00",
    }


def attempt(record: RunRecord, step: str) -> dict[str, object]:
    (found,) = [a for a in record.attempts if a.step == step]
    return {"state": found.state, "error": found.error, **found.metrics}


def test_documented_rulesets_run_as_a_quality_step_and_a_model_gate(shop: Lake) -> None:
    land(shop, "crm/customers", DAY1, [{"customer_id": n, "name": f"Customer {n}"} for n in (1, 2, 3)])
    land(
        shop,
        "pos/orders",
        DAY1,
        [
            order(1, 1, "US", 20.0, DAY1),
            order(2, 2, "UK", 150.0, DAY1),
            order(3, 3, " ", None, DAY1),
            order(4, 1, "CA", 35.5, DAY1),
        ],
    )
    first = shop.run_record(shop.run_pipeline("shop", DAY1).run_id)
    assert first.state == "succeeded", [a.error for a in first.attempts if a.error]
    checked = attempt(first, "check_orders")["quality"]
    assert isinstance(checked, list) and len(checked) == 12 and all(o["passed"] for o in checked)
    assert checked[-1]["history_missing"], "the first run has no history for the dynamic bound"
    gated = attempt(first, "order_facts")["quality"]
    assert isinstance(gated, list) and [o["passed"] for o in gated] == [True] * 9
    assert [o["rule_type"] for o in gated][:3] == ["RowCount", "IsPrimaryKey", "Composite"]
    facts = shop.query("SELECT order_id, customer FROM curated.order_facts ORDER BY order_id").to_pylist()
    assert [f["customer"] for f in facts] == ["Customer 1", "Customer 2", "Customer 3", "Customer 1"]
    published = head_id(shop.catalog.load("shop.curated.order_facts"))

    # Day 2: an order of a customer the CRM does not know. The processed table's own rules still pass;
    # the curated model's gate stops the day before consumers see it.
    land(
        shop,
        "pos/orders",
        DAY2,
        [order(5, 2, "US", 12.0, DAY2), order(6, 99, "US", 40.0, DAY2), order(7, 3, "UK", 180.0, DAY2)],
    )
    second = shop.run_record(shop.run_pipeline("shop", DAY2).run_id)
    assert second.state == "failed"
    assert attempt(second, "check_orders")["state"] == "succeeded"
    gate = attempt(second, "order_facts")
    assert gate["state"] == "failed" and "QualityGateFailed" in str(gate["error"])
    failing = {r["rule"]: r for r in gate["details"]["rules"]}  # type: ignore[index]
    assert set(failing) == {
        '(IsComplete "customer") and (ColumnLength "customer" between 0 and 41)',
        'ReferentialIntegrity "customer_id" "customers.customer_id" = 1.0',
    }
    integrity = failing['ReferentialIntegrity "customer_id" "customers.customer_id" = 1.0']
    assert integrity["failing_rows"] == 1 and integrity["observed"] == pytest.approx(2 / 3)
    assert [s["order_id"] for s in integrity["failing_sample"]] == [6]
    table = shop.catalog.load("shop.curated.order_facts")
    assert head_id(table) == published, "main did not move"
    days = shop.query("SELECT DISTINCT ds FROM curated.order_facts").column("ds").to_pylist()
    assert days == [DAY1]


def test_the_demo_telco_gate_passes_generated_days_and_stops_a_broken_one(tmp_path: Path) -> None:
    lake = build_project(tmp_path / "demo", governed=False)
    step = lake.pipeline("nightly").steps["cell_daily"]
    model = lake.model(step.model or "")
    assert step.quality is None, "the gate is the model's, not the pipeline step's"
    assert model.header.quality == "quality/cell_daily.dqdl" and model.header.quality_blocking
    for day in (DAY1, DAY2):
        drops = telco.generate_day(tmp_path / "incoming", day, 3000)
        lake.land("telco/cdr", drops["telco/cdr"], day)
        lake.ingest("telco/cdr", day)
        done = lake.run_model(model, day)
        assert len(done.quality) == 12 and all(o["passed"] for o in done.quality), [
            o["message"] for o in done.quality if not o["passed"]
        ]
    published = head_id(lake.catalog.load("telco.curated.cell_daily"))

    broken_day = DAY2 + dt.timedelta(days=1)
    drop = telco.generate_day(tmp_path / "broken", broken_day, 3000)["telco/cdr"][0]
    lines = drop.read_text().splitlines()
    lines[::50] = [
        line.replace('"region":"EU"', '"region":"APAC"').replace('"region":"US"', '"region":"APAC"')
        for line in lines[::50]
    ]
    drop.write_text("\n".join(lines) + "\n")
    lake.land("telco/cdr", [drop], broken_day)
    lake.ingest("telco/cdr", broken_day)
    with pytest.raises(QualityGateFailed) as caught:
        lake.run_model(model, broken_day)
    assert [r["rule"] for r in caught.value.rules] == [
        'ColumnValues "region" in ["EU", "US"]',
        'DistinctValuesCount "region" <= 2',
    ]
    assert all(row["region"] == "APAC" for row in caught.value.rules[0]["failing_sample"])
    assert head_id(lake.catalog.load("telco.curated.cell_daily")) == published

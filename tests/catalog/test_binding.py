"""Columns bound by field id on every read path: after a rename, drop, add, move and type promotion
(made with pyiceberg, as another tool would), queries, models, quality checks and time travel read
each column's own data on every engine, from files with field ids and from files without them."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.table import Table
from pyiceberg.types import DecimalType, DoubleType, LongType, StringType

from lakeplane.catalog import TableRef
from lakeplane.catalog.scan import plan_scan
from lakeplane.catalog.writer import TableWriter, new_write_dir
from lakeplane.engines.base import Capability
from lakeplane.errors import AccessDenied
from lakeplane.lake import Lake, open_lake
from tests.conftest import DAY1, DAY2, head_id, on_engine
from tests.pipelines.test_models import write_model

ORDERS = TableRef("shop", "processed", "orders")
V0 = pa.schema(
    [
        pa.field("ds", pa.date32(), nullable=False),
        ("order_id", pa.int64()),
        ("qty", pa.int32()),
        ("price", pa.float32()),
        ("amount", pa.decimal128(7, 2)),
        ("note", pa.string()),
    ]
)
#: Rows of the first snapshot: two in a file with field ids, one in a file without.
WITH_IDS = [(DAY1, 1, 3, 1.5, Decimal("2.25"), "a"), (DAY1, 2, 4, 2.5, Decimal("3.50"), "b")]
WITHOUT_IDS = [(DAY1, 3, 5, 0.5, Decimal("1.00"), "c")]
#: After the evolution: amount moved first, qty renamed quantity (and every number widened),
#: note dropped and added again (a new column that happens to reuse the old name).
COLUMNS = ["amount", "ds", "order_id", "quantity", "price", "note"]
LATER = (Decimal("10.00"), DAY2, 4, 7, 9.75, "new")


def arrow_rows(schema: pa.Schema, rows: Sequence[tuple[object, ...]]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema)


def write_file_without_ids(lake: Lake, table: Table, rows: pa.Table, name: str) -> None:
    """A data file as older lakeplane versions (or other tools) wrote them: columns named only."""
    path = f"{new_write_dir(ORDERS)}/ds={DAY1.isoformat()}/{name}.parquet"
    target = lake.storage.path(path)
    if lake.storage.is_local:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, target, filesystem=lake.storage.fs)
    assert pq.read_schema(target, filesystem=lake.storage.fs).field("qty").metadata is None
    TableWriter(lake.catalog).commit(table, [path], "append", rows.num_rows, 0)


def make_orders(project: Path, overrides: dict[str, Any] | None = None) -> Lake:
    """A project ``shop`` holding ``shop.processed.orders`` in its first schema."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "lakeplane.yaml").write_text("name: shop\n")
    lake = open_lake(project, overrides)
    table = TableWriter(lake.catalog).ensure_table(ORDERS, V0, ["ds"], frozenset({"ds"}))
    table.append(arrow_rows(V0, WITH_IDS))
    write_file_without_ids(lake, lake.catalog.load(ORDERS), arrow_rows(V0, WITHOUT_IDS), "old")
    return lake


def evolve_with_pyiceberg(lake: Lake) -> int:
    """Evolve the table as another tool would; returns the snapshot id from before."""
    table = lake.catalog.load(ORDERS)
    before = head_id(table)
    with table.update_schema() as update:
        update.rename_column("qty", "quantity")
        update.update_column("qty", LongType())
        update.update_column("price", DoubleType())
        update.update_column("amount", DecimalType(12, 2))
        update.delete_column("note")
        update.move_first("amount")
    with lake.catalog.load(ORDERS).update_schema() as update:
        update.add_column("note", StringType())
    table = lake.catalog.load(ORDERS)
    table.append(arrow_rows(table.schema().as_arrow(), [LATER]))
    return before


def rows_of(result: pa.Table) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in result.to_pylist()]


@pytest.fixture
def evolved(tmp_path: Path) -> tuple[Lake, int]:
    lake = make_orders(tmp_path / "shop")
    return lake, evolve_with_pyiceberg(lake)


def expected_rows(lake: Lake) -> list[tuple[object, ...]]:
    # The file without ids binds through the name mapping, which pyiceberg points at the new
    # `note` when it is added again (see the alter tests for a re-add that keeps old data out).
    mapped_note = pyiceberg_note(lake, order_id=3)
    return [
        (Decimal("2.25"), DAY1, 1, 3, 1.5, None),
        (Decimal("3.50"), DAY1, 2, 4, 2.5, None),
        (Decimal("1.00"), DAY1, 3, 5, 0.5, mapped_note),
        LATER,
    ]


def pyiceberg_note(lake: Lake, order_id: int) -> object:
    rows = lake.catalog.load(ORDERS).scan().to_arrow().to_pylist()
    return next(r["note"] for r in rows if r["order_id"] == order_id)


def test_queries_read_every_column_by_id(evolved: tuple[Lake, int], engine: str) -> None:
    lake = on_engine(evolved[0], engine)
    result = lake.query("SELECT * FROM processed.orders ORDER BY order_id")
    assert result.schema.names == COLUMNS
    assert result.schema.field("quantity").type == pa.int64()
    assert result.schema.field("price").type == pa.float64()
    assert result.schema.field("amount").type == pa.decimal128(12, 2)
    assert rows_of(result) == expected_rows(lake)
    oracle = lake.catalog.load(ORDERS).scan().to_arrow().sort_by("order_id")
    assert rows_of(oracle.select(COLUMNS)) == rows_of(result), "pyiceberg reads the table the same"
    narrowed = lake.query("SELECT order_id FROM processed.orders WHERE quantity >= 5 AND note IS NULL")
    assert sorted(r["order_id"] for r in narrowed.to_pylist()) == (
        [3] if expected_rows(lake)[2][5] is None else []
    )


def test_a_model_reads_the_evolved_table(evolved: tuple[Lake, int], engine: str) -> None:
    lake = on_engine(evolved[0], engine)
    write_model(
        lake.project_dir,
        "curated",
        "order_totals",
        "SELECT ds, count(*) AS orders, sum(quantity) AS quantity, sum(amount) AS amount, "
        "sum(price) AS price FROM processed.orders GROUP BY ds\n",
    )
    lake.run_model(lake.model("curated.order_totals"), None)
    totals = lake.query("SELECT * FROM curated.order_totals ORDER BY ds").to_pylist()
    assert [(r["ds"], r["orders"], r["quantity"], r["amount"], r["price"]) for r in totals] == [
        (DAY1, 3, 12, Decimal("6.75"), 4.5),
        (DAY2, 1, 7, Decimal("10.00"), 9.75),
    ]


def test_quality_checks_see_the_current_columns(evolved: tuple[Lake, int]) -> None:
    lake = evolved[0]
    (lake.project_dir / "orders.dqdl").write_text(
        'Rules = [ IsComplete "quantity", Sum "quantity" = 19, ColumnValues "amount" > 0, '
        'IsComplete "note", ColumnExists "qty" ]'
    )
    outcomes = lake.dq_check("processed.orders", "orders.dqdl", record=False)
    assert [o["passed"] for o in outcomes] == [True, True, True, False, False]


def test_time_travel_reads_the_schema_of_then(evolved: tuple[Lake, int], engine: str) -> None:
    lake, before = evolved
    lake = on_engine(lake, engine)
    source = plan_scan(lake.catalog, str(ORDERS), snapshot_id=before)
    assert source.schema.names == list(V0.names)
    compute = lake.compute
    with compute.session(compute.engine(), "time-travel", (Capability.SANDBOX,)) as session:
        session.register_scan("orders_then", source)
        rows = session.arrow_reader("SELECT * FROM orders_then ORDER BY order_id").read_all()
    assert rows.schema.field("qty").type == pa.int32()
    assert rows_of(rows)[:2] == [tuple(r) for r in WITH_IDS]
    # The file without ids binds through the table's name mapping, as pyiceberg's time travel does.
    oracle = lake.catalog.load(ORDERS).scan(snapshot_id=before).to_arrow().sort_by("order_id")
    assert rows_of(rows) == rows_of(oracle)
    assert rows_of(rows)[2][:5] == WITHOUT_IDS[0][:5]
    # A quality check of that snapshot (as the audit gate runs) sees the old names too.
    (lake.project_dir / "then.dqdl").write_text('Rules = [ Sum "qty" = 12, ColumnExists "quantity" ]')
    outcomes = lake.dq_check("processed.orders", "then.dqdl", snapshot_id=before, record=False)
    assert [o["passed"] for o in outcomes] == [True, False]


POLICY = """
principals:
  users:
    ana: {roles: [analyst]}
    ian: {roles: [intern]}
  roles: [analyst, intern]
grants:
  - to: [role:analyst, role:intern]
    privileges: [SELECT]
    on: shop
  - to: role:intern
    deny: [SELECT]
    on: shop.processed.orders.qty
masks:
  - to: role:analyst
    on: shop.processed.orders.price
    mask: "null"
"""


def test_governed_queries_after_the_evolution(tmp_path: Path, engine: str) -> None:
    lake = make_orders(tmp_path / "shop")
    (lake.project_dir / "policy.yaml").write_text(POLICY)
    lake = on_engine(lake, engine)
    before = lake.query("SELECT order_id, qty, price FROM processed.orders ORDER BY 1", principal="ana")
    assert rows_of(before) == [(1, 3, None), (2, 4, None), (3, 5, None)]
    evolve_with_pyiceberg(lake)
    lake = on_engine(lake, engine)
    result = lake.query("SELECT * FROM processed.orders ORDER BY order_id", principal="ana")
    assert result.schema.names == COLUMNS
    assert [r[:4] for r in rows_of(result)] == [r[:4] for r in expected_rows(lake)]
    assert {r["price"] for r in result.to_pylist()} == {None}, "the mask follows price"
    plain = lake.query("SELECT order_id, amount FROM processed.orders ORDER BY 1", principal="ian")
    assert rows_of(plain)[0] == (1, Decimal("2.25"))
    with pytest.raises(AccessDenied, match="quantity"):
        lake.query("SELECT quantity FROM processed.orders", principal="ian")

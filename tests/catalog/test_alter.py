"""``lakeplane alter``: schema and partition evolution as commands, one commit each, refused with a
clear error when the change cannot be made, governed (ALTER), audited, with policy bindings that
follow the columns by field id."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakeplane.catalog.evolution import AddColumn, RenameColumn
from lakeplane.catalog.upgrade import NAME_MAPPING_KEY
from lakeplane.catalog.writer import TableWriter
from lakeplane.cli.main import cli
from lakeplane.errors import AccessDenied
from lakeplane.lake import Lake, open_lake
from tests.catalog.test_binding import ORDERS, V0, arrow_rows, make_orders, rows_of
from tests.conftest import DAY1, DAY2, on_engine

TABLE = "processed.orders"


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


def alter(lake: Lake, *args: str) -> dict[str, Any]:
    code, out = invoke(lake, "--output", "json", "alter", TABLE, *args)
    assert code == 0, out
    result: dict[str, Any] = json.loads(out)
    return result


def metadata_count(lake: Lake) -> int:
    return len(lake.catalog.load(ORDERS).metadata.metadata_log)


@pytest.fixture
def orders(tmp_path: Path) -> Lake:
    return make_orders(tmp_path / "shop")


def test_each_change_is_one_commit_and_reads_by_id(orders: Lake, engine: str) -> None:
    lake = orders
    commits = metadata_count(lake)
    steps = [
        ("rename-column", "qty", "quantity"),
        ("widen", "quantity", "long"),
        ("widen", "price", "double"),
        ("widen", "amount", "decimal(12,2)"),
        ("add-column", "channel", "string", "--after", "order_id"),
        ("drop-column", "note"),
        ("add-column", "note", "string"),
        ("add-column", "region", "string", "--first"),
    ]
    for number, step in enumerate(steps, start=1):
        result = alter(lake, *step)
        assert result["schema_id"] == number and result["schema_id_before"] == number - 1, step
        assert metadata_count(lake) == commits + number, f"{step} is one commit"
    names = [c["name"] for c in result["columns"]]
    assert names == ["region", "ds", "order_id", "channel", "quantity", "price", "amount", "note"]

    table = lake.catalog.load(ORDERS)
    mapping = json.loads(table.properties[NAME_MAPPING_KEY])
    by_id = {m["field-id"]: m["names"] for m in mapping}
    assert by_id[3] == ["qty", "quantity"], "a renamed column keeps its old name for files without ids"
    assert by_id[6] == ["note"], "the dropped note keeps its name: old files' note is the old column"
    new_note = table.schema().find_field("note").field_id
    assert new_note not in by_id

    table.append(
        arrow_rows(table.schema().as_arrow(), [("EU", DAY2, 4, "web", 7, 9.75, Decimal("10.00"), "x")])
    )
    kept = str(table.properties[NAME_MAPPING_KEY])
    TableWriter(lake.catalog).ensure_table(ORDERS, table.schema().as_arrow(), ["ds"])  # as every write does
    assert lake.catalog.load(ORDERS).properties[NAME_MAPPING_KEY] == kept, "writes keep the re-added name out"
    lake = on_engine(lake, engine)
    result_rows = rows_of(lake.query(f"SELECT * FROM {TABLE} ORDER BY order_id"))
    assert result_rows == [
        (None, DAY1, 1, None, 3, 1.5, Decimal("2.25"), None),
        (None, DAY1, 2, None, 4, 2.5, Decimal("3.50"), None),
        (None, DAY1, 3, None, 5, 0.5, Decimal("1.00"), None),  # no ids: old note stays out
        ("EU", DAY2, 4, "web", 7, 9.75, Decimal("10.00"), "x"),
    ]
    oracle = lake.catalog.load(ORDERS).scan().to_arrow().sort_by("order_id")
    assert rows_of(oracle) == result_rows, "pyiceberg reads the evolved table the same"


def test_refusals_name_the_table_and_column_and_change_nothing(orders: Lake) -> None:
    lake = orders
    location = lake.catalog.load(ORDERS).metadata_location
    refusals = [
        (
            ("rename-column", "qtty", "quantity"),
            "table shop.processed.orders has no column 'qtty'; did you mean 'qty'?",
        ),
        (("rename-column", "qty", "price"), "already has a column 'price'"),
        (
            ("widen", "qty", "double"),
            "column 'qty' of table shop.processed.orders is int: it cannot become double",
        ),
        (("widen", "price", "int"), "cannot become int"),
        (("widen", "amount", "decimal(5,2)"), "cannot become decimal(5, 2)"),
        (("widen", "amount", "decimal(9,3)"), "cannot become decimal(9, 3)"),
        (("add-column", "extra", "bigdecimal"), "unknown type 'bigdecimal'"),
        (("add-column", "note", "string"), "already has a column 'note'"),
        (("add-column", "extra", "string", "--after", "nope"), "has no column 'nope'"),
        (("drop-column", "ds"), "column 'ds' of table shop.processed.orders is a partition source (ds)"),
        (("drop-column", "nope"), "has no column 'nope'"),
        (("partition-by", "bucket(order_id)"), "partition field 'bucket(order_id)'"),
        (("partition-by", "day(nope)"), "has no column 'nope'"),
    ]
    for args, message in refusals:
        code, out = invoke(lake, "alter", TABLE, *args)
        assert code == 1, (args, out)
        assert message in out, (args, out)
        assert "Traceback" not in out and out.count("\n") == 1, out
    code, out = invoke(lake, "--output", "json", "alter", TABLE, "widen", "price", "int")
    assert code == 1 and json.loads(out)["error"] == "SchemaChangeError"
    assert json.loads(out)["column"] == "price"
    code, out = invoke(lake, "alter", TABLE, "add-column", "x", "string", "--first", "--after", "ds")
    assert code == 2, out
    assert lake.catalog.load(ORDERS).metadata_location == location, "nothing was committed"


def test_dry_run_shows_the_schema_and_commits_nothing(orders: Lake) -> None:
    location = orders.catalog.load(ORDERS).metadata_location
    result = alter(orders, "rename-column", "qty", "quantity", "--dry-run")
    assert result["dry_run"] is True and result["schema_id"] == 1
    assert "quantity" in [c["name"] for c in result["columns"]]
    assert orders.catalog.load(ORDERS).metadata_location == location
    code, out = invoke(orders, "alter", TABLE, "widen", "qty", "long", "--dry-run")
    assert code == 0 and "would change schema 0 -> 1" in out and "dry run" in out, out


def test_partition_by_changes_the_spec_for_new_data(orders: Lake) -> None:
    result = alter(orders, "partition-by", "ds", "bucket[4](order_id)")
    assert result["partition_by"] == ["ds", "bucket[4](order_id)"]
    result = alter(orders, "partition-by", "month(ds)", "truncate(2, note)")
    assert result["partition_by"] == ["month(ds)", "truncate[2](note)"]
    table = orders.catalog.load(ORDERS)
    table.append(arrow_rows(V0, [(DAY2, 9, 1, 1.0, Decimal("1.00"), "zz")]))
    assert orders.query(f"SELECT count(*) AS n, sum(qty) AS q FROM {TABLE}").to_pylist() == [
        {"n": 4, "q": 13}
    ]
    # ds is no longer a partition source of the current spec, note is
    code, out = invoke(orders, "alter", TABLE, "drop-column", "note")
    assert code == 1 and "partition source" in out


POLICY = """
principals:
  users:
    owner: {roles: [engineer]}
    ana: {roles: [analyst]}
    ian: {roles: [intern]}
  roles: [engineer, analyst, intern]
tags:
  sensitivity: [internal, pii]
tag_assignments:
  shop.processed.orders.note: {sensitivity: pii}
grants:
  - to: [role:engineer, role:analyst, role:intern]
    privileges: [SELECT]
    on: shop
  - to: role:engineer
    privileges: [ALTER]
    on: shop.processed
  - to: role:intern
    deny: [SELECT]
    on: shop.processed.orders.qty
masks:
  - to: role:analyst
    on: shop.processed.orders.qty
    mask: "null"
  - to: role:analyst
    tags: {sensitivity: [pii]}
    mask: redact
"""


def governed(lake: Lake) -> Lake:
    (lake.project_dir / "policy.yaml").write_text(POLICY)
    return open_lake(lake.project_dir)


def test_alter_needs_the_alter_privilege_and_is_audited(orders: Lake) -> None:
    lake = governed(orders)
    code, out = invoke(lake, "alter", TABLE, "rename-column", "qty", "quantity", "--as", "ian")
    assert code == 1
    assert "principal 'ian' may not alter table shop.processed.orders (no ALTER grant)" in out
    code, out = invoke(lake, "alter", TABLE, "rename-column", "qty", "quantity")
    assert code == 1 and "name a principal" in out
    with pytest.raises(AccessDenied):
        lake.alter(TABLE, AddColumn("x", "string"), principal="ana")
    assert "qty" in lake.catalog.load(ORDERS).schema().column_names

    code, out = invoke(lake, "alter", "--as", "owner", TABLE, "rename-column", "qty", "quantity")
    assert code == 0, out
    log = lake.governance.audit_log()
    denied = log.search(principal="ian", decision="denied")
    assert denied and denied[0].sql == "ALTER TABLE shop.processed.orders RENAME COLUMN qty TO quantity"
    allowed = log.search(principal="owner", decision="allowed")[0]
    assert allowed.sql == "ALTER TABLE shop.processed.orders RENAME COLUMN qty TO quantity"
    assert allowed.tables == ["shop.processed.orders"]
    assert allowed.columns == ["shop.processed.orders.qty", "shop.processed.orders.quantity"]
    assert log.search(column="orders.qty")[0].seq == allowed.seq
    assert "before: schema 0 (" in allowed.reason and "3:qty int" in allowed.reason
    assert "after: schema 1 (" in allowed.reason and "3:quantity int" in allowed.reason
    assert log.verify().ok


def test_policy_bindings_follow_a_renamed_column(orders: Lake, engine: str) -> None:
    lake = governed(orders)
    lake.alter(TABLE, RenameColumn("qty", "quantity"), principal="owner")
    lake.alter(TABLE, RenameColumn("note", "remark"), principal="owner")
    lake = on_engine(lake, engine)
    seen = lake.query(f"SELECT order_id, quantity, remark FROM {TABLE} ORDER BY 1", principal="ana")
    assert rows_of(seen)[0][1] is None, "the mask on qty follows it to quantity"
    assert {r[2] for r in rows_of(seen)} != {"a", "b", "c"}, "the pii tag on note follows it to remark"
    owner = lake.query(f"SELECT order_id, quantity, remark FROM {TABLE} ORDER BY 1", principal="owner")
    assert rows_of(owner) == [(1, 3, "a"), (2, 4, "b"), (3, 5, "c")]
    with pytest.raises(AccessDenied, match="quantity"):
        lake.query(f"SELECT quantity FROM {TABLE}", principal="ian")
    everything = lake.query(f"SELECT * FROM {TABLE}", principal="ian")
    assert "quantity" not in everything.schema.names and "qty" not in everything.schema.names
    visibility = {v.principal: v.sees for v in lake.who_can_see(f"{TABLE}.quantity")}
    assert visibility["user:ian"] == "denied" and visibility["user:ana"] == "masked"

    code, out = invoke(lake, "alter", TABLE, "drop-column", "quantity", "--as", "owner")
    assert code == 1
    assert "column 'quantity' of table shop.processed.orders is named by the policy" in out
    assert "shop.processed.orders.qty" in out and "remove it from the policy first" in out
    assert "quantity" in lake.catalog.load(ORDERS).schema().column_names


def test_a_table_without_a_name_mapping_gets_one_keeping_the_old_name(orders: Lake) -> None:
    with orders.catalog.load(ORDERS).transaction() as tx:  # as tables made before the mapping
        tx.remove_properties(NAME_MAPPING_KEY)
    alter(orders, "rename-column", "qty", "quantity")
    mapping = json.loads(orders.catalog.load(ORDERS).properties[NAME_MAPPING_KEY])
    assert {m["field-id"]: m["names"] for m in mapping}[3] == ["qty", "quantity"]
    result = orders.query(f"SELECT order_id, quantity FROM {TABLE} ORDER BY 1")
    assert rows_of(result) == [(1, 3), (2, 4), (3, 5)], "the file without ids finds qty as quantity"


def test_bindings_survive_a_policy_edit_after_the_rename(orders: Lake) -> None:
    lake = governed(orders)
    lake.alter(TABLE, RenameColumn("qty", "quantity"), principal="owner")
    edited = POLICY.replace(
        "    ian: {roles: [intern]}\n", "    ian: {roles: [intern]}\n    zoe: {roles: [analyst]}\n"
    )
    (lake.project_dir / "policy.yaml").write_text(edited)  # a new policy version, still naming qty
    lake = open_lake(lake.project_dir)
    seen = lake.query(f"SELECT order_id, quantity FROM {TABLE} ORDER BY 1", principal="zoe")
    assert [r[1] for r in rows_of(seen)] == [None, None, None], "the mask on qty still follows it"
    with pytest.raises(AccessDenied, match="quantity"):
        lake.query(f"SELECT quantity FROM {TABLE}", principal="ian")

"""Short table names: ``lineitem`` and ``curated.lineitem`` wherever a table name works, when they
name one table; ambiguous and unknown names are refused with the candidates."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lakeplane.catalog import TableRef
from lakeplane.cli.main import cli
from lakeplane.errors import AmbiguousTableError, TableNotFoundError
from lakeplane.lake import Lake, init_project, open_lake

#: name → rows; the project's domain is ``tpch``.
TABLES = {
    "tpch.curated.lineitem": 3,
    "tpch.processed.orders": 4,
    "sales.curated.orders": 5,
    "sales.processed.orders": 6,
    "sales.curated.customers": 7,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("names") / "project"
    init_project(folder, "tpch")
    lake = open_lake(folder)
    for name, rows in TABLES.items():
        path = folder.parent / f"{name}.parquet"
        pq.write_table(pa.table({"id": pa.array(range(rows), pa.int64()), "source": [name] * rows}), path)
        lake.register(name, [str(path)])
    return folder


@pytest.fixture
def lake(project: Path) -> Lake:
    return open_lake(project)


def count(lake: Lake, sql: str) -> int:
    return int(lake.query(sql).column(0)[0].as_py())


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("written", "full"),
    [
        ("lineitem", "tpch.curated.lineitem"),
        ("curated.lineitem", "tpch.curated.lineitem"),
        ("customers", "sales.curated.customers"),
        ("curated.customers", "sales.curated.customers"),  # not in the project's domain: the one there is
        ("curated.orders", "sales.curated.orders"),
        ("processed.orders", "tpch.processed.orders"),  # in both domains: the project's domain first
        ("sales.processed.orders", "sales.processed.orders"),
    ],
)
def test_short_names_resolve_in_sql(lake: Lake, written: str, full: str) -> None:
    assert lake.resolve_table(written) == full
    assert count(lake, f"SELECT count(*) FROM {written}") == TABLES[full]
    (source,) = lake.query(f"SELECT DISTINCT source FROM {written}").column(0).to_pylist()
    assert source == full


def test_short_names_in_joins_and_ctes(lake: Lake) -> None:
    sql = (
        "WITH customers AS (SELECT 1 AS id) "  # a CTE shadows the table of that name
        "SELECT count(*) FROM lineitem l JOIN customers c ON c.id = l.id JOIN curated.orders o ON o.id = l.id"
    )
    assert count(lake, sql) == 1


def test_an_ambiguous_name_lists_the_candidates(lake: Lake) -> None:
    with pytest.raises(AmbiguousTableError) as ambiguous:
        lake.query("SELECT * FROM orders")
    assert ambiguous.value.candidates == [
        "sales.curated.orders",
        "sales.processed.orders",
        "tpch.processed.orders",
    ]
    assert "table name 'orders' is ambiguous" in str(ambiguous.value)
    code, out = invoke(lake, "describe", "orders")
    assert code == 1 and "ambiguous" in out and "tpch.processed.orders" in out
    code, out = invoke(lake, "--output", "json", "query", "SELECT * FROM orders")
    assert code == 1 and json.loads(out)["candidates"] == ambiguous.value.candidates


def test_an_unknown_name_suggests_the_close_ones(lake: Lake) -> None:
    with pytest.raises(
        TableNotFoundError, match="table 'lineitems' does not exist; did you mean 'tpch.curated.lineitem'"
    ):
        lake.query("SELECT * FROM lineitems")
    with pytest.raises(TableNotFoundError, match="did you mean 'tpch.curated.lineitem'"):
        lake.describe("curated.lineitm")
    with pytest.raises(TableNotFoundError, match=r"expected <domain>.<zone>.<name>, <zone>.<name> or <name>"):
        lake.resolve_table("a.b.c.d")
    with pytest.raises(TableNotFoundError, match="also take <zone>.<name> and <name>"):
        TableRef.parse("lineitem")


def test_cli_commands_take_short_names(lake: Lake, tmp_path: Path) -> None:
    code, out = invoke(lake, "--output", "json", "describe", "lineitem")
    assert code == 0, out
    assert json.loads(out)["table"] == "tpch.curated.lineitem"
    code, out = invoke(lake, "--output", "json", "query", "SELECT count(*) AS n FROM customers")
    assert code == 0, out
    assert json.loads(out) == [{"n": 7}]
    ruleset = tmp_path / "rules.dqdl"
    ruleset.write_text("Rules = [ RowCount = 3 ]\n")
    code, out = invoke(lake, "--output", "json", "dq", "check", "lineitem", str(ruleset))
    assert code == 0, out
    assert json.loads(out)[0]["passed"] is True and json.loads(out)[0]["observed"] == 3


def test_the_name_list_is_read_once_and_again_when_a_table_is_added(tmp_path: Path) -> None:
    init_project(tmp_path / "project", "tpch")
    lake = open_lake(tmp_path / "project")
    path = tmp_path / "fresh.parquet"
    pq.write_table(pa.table({"id": pa.array([1], pa.int64())}), path)
    lake.register("curated.first", [str(path)])
    names = lake.catalog.table_names()
    assert lake.catalog.table_names() is names  # remembered
    assert lake.resolve_table("first") == "tpch.curated.first"
    assert lake.catalog.table_names() is names
    other = open_lake(tmp_path / "project")  # another process adds a table: a miss reads the names again
    other.register("curated.fresh", [str(path)])
    assert lake.resolve_table("fresh") == "tpch.curated.fresh"
    # a table added through this catalog is known at once, here making a short name ambiguous
    lake.register("processed.fresh", [str(path)], mode="copy")
    with pytest.raises(AmbiguousTableError):
        lake.resolve_table("fresh")


def test_models_read_and_are_named_by_bare_names(tmp_path: Path) -> None:
    """A model's SQL may name its inputs bare; a model reading another model's table by its bare name
    runs after it; ``lake.model`` takes the bare name of the table a model builds."""
    folder = tmp_path / "project"
    init_project(folder, "tpch")
    lake = open_lake(folder)
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"id": pa.array(range(6), pa.int64()), "amount": [1, 2, 3, 4, 5, 6]}), path)
    lake.register("processed.orders", [str(path)])
    curated = folder / "models" / "curated"
    curated.mkdir(parents=True, exist_ok=True)
    # written in an order that would run the reader first if bare names were not followed
    (curated / "a_order_total.sql").write_text("SELECT sum(amount) AS total FROM big_orders\n")
    (curated / "big_orders.sql").write_text("SELECT id, amount FROM orders WHERE amount > 2\n")
    lake = open_lake(folder)
    assert [m.name for m in lake.models()] == ["tpch.curated.big_orders", "tpch.curated.a_order_total"]
    for model in lake.models():
        lake.run_model(model, None)
    assert lake.query("SELECT total FROM a_order_total").column(0).to_pylist() == [18]
    assert lake.model("big_orders").name == "tpch.curated.big_orders"
    lake.register("curated.orders", [str(path)], mode="copy")  # now `orders` is two tables
    with pytest.raises(AmbiguousTableError, match="tpch.curated.orders"):
        lake.run_model(lake.model("big_orders"), None)

"""One pipeline, two engines: the demo's nightly pipeline, governed as ``lakeplane run nightly`` runs it
(models compiled for the policy's pipeline principal, the policy active), gives identical tables on
DuckDB and Spark, and a governed query gives each principal the same answer on both engines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import TELCO_QUERY, build_project
from lakeplane.errors import AccessDenied
from lakeplane.lake import Lake, open_lake
from tests.conftest import on_engine

DAYS = (dt.date(2026, 11, 1), dt.date(2026, 11, 2))
#: Who the nightly pipeline's models run as (the demo policy's ``role:pipeline``: unmasked, every row).
PIPELINE = "pipeline"
#: Columns that record when a row was written, not what it holds.
WALL_CLOCK = ("quarantined_at",)

pytestmark = pytest.mark.slow


def built(root: Path, engine: str, drops: Path) -> Lake:
    lake = on_engine(build_project(root / engine), engine)
    assert lake.governance.enabled and lake.config.governance.pipeline_principal == PIPELINE
    for day in DAYS:
        files = {**generate_day(drops, day, 4_000).files, **telco.generate_day(drops, day, 2_000)}
        for dataset, paths in files.items():
            lake.land(dataset, paths, day)
        run = lake.run_pipeline("nightly", day)
        assert run.state == "succeeded", [(a.step, a.error) for a in lake.run_record(run.run_id).attempts]
    return lake


def every_table(lake: Lake) -> dict[str, tuple[pa.Schema, list[tuple[object, ...]]]]:
    """Every table's result schema and rows, read by the embedded engine whatever engine wrote them
    (the project's own folder, which quarantined lines name, written the same for both)."""
    reader = open_lake(lake.project_dir, {"engine": {"type": "duckdb"}})
    here = str(lake.project_dir)

    def same_place(value: object) -> object:
        return value.replace(here, "<project>") if isinstance(value, str) else value

    tables = {}
    for ref in reader.tables():
        result = reader.query(f"SELECT * FROM {ref}", principal=PIPELINE)
        result = result.drop_columns([c for c in WALL_CLOCK if c in result.column_names])
        rows = [tuple(same_place(v) for v in r.values()) for r in result.to_pylist()]
        tables[str(ref)] = (result.schema, sorted(rows, key=repr))
    return tables


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, Lake]:
    root = tmp_path_factory.mktemp("parity")
    return built(root, "duckdb", root / "drops"), built(root, "spark", root / "drops")


def test_demo_pipeline_tables_are_identical_row_for_row(pair: tuple[Lake, Lake]) -> None:
    duck, spark = pair
    expected, got = every_table(duck), every_table(spark)
    assert set(got) == set(expected)
    curated = [name for name in expected if ".curated." in name]
    assert len(curated) == 3
    for name in expected:
        (expected_schema, expected_rows), (schema, rows) = expected[name], got[name]
        if name in curated:
            assert expected_rows, f"{name} is empty: the comparison would prove nothing"
        assert schema == expected_schema, f"{name}: column types differ between DuckDB and Spark"
        assert rows == expected_rows, f"{name} differs between DuckDB and Spark"
    for lake in pair:
        for table in curated:
            assert lake.catalog.load(table).schema() == duck.catalog.load(table).schema(), table


#: Queries as people write them (Trino dialect, the last one DuckDB's for its QUALIFY), over masked
#: columns, row-filtered tables and the model whose QUALIFY the governed rewrite wraps for Spark.
PRINCIPAL_QUERIES = (
    (TELCO_QUERY, "trino"),
    (
        "SELECT region, count(*) AS calls, count(DISTINCT msisdn) AS callers, min(imsi) AS first_imsi "
        "FROM telco.processed.cdr GROUP BY region ORDER BY region",
        "trino",
    ),
    (
        "SELECT s.region, s.plan, s.card_pan, s.msisdn FROM telco.processed.subscribers AS s "
        "ORDER BY s.msisdn LIMIT 20",
        "trino",
    ),
    (
        "SELECT ds, region, sum(calls) AS calls FROM telco.curated.cell_daily GROUP BY ds, region "
        "ORDER BY 1, 2",
        "trino",
    ),
    (
        "SELECT campaign_id, country, impressions FROM curated.daily_campaign_stats "
        "QUALIFY row_number() OVER (PARTITION BY campaign_id ORDER BY impressions DESC, country) = 1 "
        "ORDER BY campaign_id",
        "duckdb",
    ),
)


#: The domain the demo policy does not let each principal read (ian is an intern, eve in the EU team).
DENIED_DOMAIN = {"ian": "telco", "eve": "adtech"}


@pytest.mark.parametrize("principal", ["ana", "eve", "ian"])
def test_principals_get_the_same_answer_on_both_engines(pair: tuple[Lake, Lake], principal: str) -> None:
    """ana sees hashed phone numbers and the last four card digits, eve the EU's rows with card numbers
    redacted (and no ad-tech table), ian (intern) the ad-tech tables only: the same on DuckDB and on Spark, over one lake.

    The answers' values are compared, not their Arrow types: DuckDB sums a BIGINT into a HUGEINT
    (DECIMAL(38, 0) in Arrow) where Spark keeps a BIGINT (the models cast their sums).
    """
    duck = pair[0]
    spark = on_engine(duck, "spark")
    answered = 0
    for sql, dialect in PRINCIPAL_QUERIES:
        domain = "telco" if "telco." in sql else "adtech"
        if domain == DENIED_DOMAIN.get(principal):
            for lake in (duck, spark):
                with pytest.raises(AccessDenied) as denied:
                    lake.query(sql, principal=principal, dialect=dialect)
                assert denied.value.principal == principal and denied.value.table.startswith(f"{domain}.")
            continue
        expected = duck.query(sql, principal=principal, dialect=dialect)
        got = spark.query(sql, principal=principal, dialect=dialect)
        assert expected.num_rows, f"{sql}: empty for {principal}, the comparison would prove nothing"
        assert got.column_names == expected.column_names, f"{principal}: {sql}"
        assert got.to_pylist() == expected.to_pylist(), f"{principal}: {sql}"
        answered += 1
    assert answered == {"ana": 5, "eve": 4, "ian": 1}[principal]


#: Table clauses the governed rewrite keeps (DuckDB dialect): deterministic answers, equal on both engines.
CLAUSE_QUERIES = (
    "SELECT k, count(*) AS n, count(DISTINCT v) AS values FROM telco.processed.subscribers "
    "UNPIVOT (v FOR k IN (msisdn, card_pan)) GROUP BY k ORDER BY k",
    # without GROUP BY (Spark has none in PIVOT) both engines group by every other column; a value
    # no row has counts 0 on DuckDB, NULL on Spark
    "SELECT count(*) AS groups, coalesce(sum(eu), 0) AS eu, coalesce(sum(us), 0) AS us "
    "FROM telco.processed.subscribers "
    "PIVOT (count(*) FOR region IN ('EU', 'US'))",
    "SELECT a, b FROM telco.processed.subscribers AS s(a, b) ORDER BY a LIMIT 10",
)


@pytest.mark.parametrize("principal", ["ana", "eve"])
def test_kept_clauses_answer_the_same_on_both_engines(pair: tuple[Lake, Lake], principal: str) -> None:
    duck = pair[0]
    spark = on_engine(duck, "spark")
    for sql in CLAUSE_QUERIES:
        expected = duck.query(sql, principal=principal, dialect="duckdb")
        got = spark.query(sql, principal=principal, dialect="duckdb")
        assert expected.num_rows, f"{sql}: empty for {principal}"
        assert got.to_pylist() == expected.to_pylist(), f"{principal}: {sql}"


@pytest.mark.parametrize(
    "sql, dialect",
    [
        (
            "SELECT region, card_pan, msisdn FROM telco.processed.subscribers TABLESAMPLE BERNOULLI (50)",
            "trino",
        ),
        (
            "SELECT region, card_pan, msisdn FROM telco.processed.subscribers TABLESAMPLE SYSTEM (100)",
            "trino",
        ),
        (
            "SELECT s.region, s.card_pan, s.msisdn FROM telco.processed.subscribers AS s TABLESAMPLE 30 ROWS",
            "duckdb",
        ),
    ],
)
def test_a_sample_never_sees_hidden_rows_or_raw_values(
    pair: tuple[Lake, Lake], sql: str, dialect: str
) -> None:
    """On both engines the sample is drawn from the secured rows: eve's holds EU subscribers with card
    numbers redacted, ana's hashed phone numbers and the last four card digits only."""
    duck = pair[0]
    for lake in (duck, on_engine(duck, "spark")):
        everything = {
            who: {
                tuple(r.values())
                for r in lake.query(
                    "SELECT region, card_pan, msisdn FROM telco.processed.subscribers", principal=who
                ).to_pylist()
            }
            for who in ("eve", "ana")
        }
        for who in ("eve", "ana"):
            sampled = [tuple(r.values()) for r in lake.query(sql, principal=who, dialect=dialect).to_pylist()]
            assert sampled and set(sampled) <= everything[who], who
        eve = [tuple(r.values()) for r in lake.query(sql, principal="eve", dialect=dialect).to_pylist()]
        assert {r[0] for r in eve} == {"EU"} and {r[1] for r in eve} == {"****"}
        ana = [tuple(r.values()) for r in lake.query(sql, principal="ana", dialect=dialect).to_pylist()]
        assert all(len(r[2]) == 64 and not r[2].startswith("+") for r in ana)
        assert all(r[1].startswith("*") for r in ana)

"""One pipeline, two engines: the demo's nightly pipeline gives identical tables on DuckDB and Spark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, open_lake
from tests.conftest import on_engine

DAYS = (dt.date(2026, 11, 1), dt.date(2026, 11, 2))


def built(root: Path, engine: str, drops: Path) -> Lake:
    lake = on_engine(build_project(root / engine, governed=False), engine)
    for day in DAYS:
        files = {**generate_day(drops, day, 4_000).files, **telco.generate_day(drops, day, 2_000)}
        for dataset, paths in files.items():
            lake.land(dataset, paths, day)
        run = lake.run_pipeline("nightly", day)
        assert run.state == "succeeded", [(a.step, a.error) for a in lake.run_record(run.run_id).attempts]
    return lake


def every_table(lake: Lake) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, read by the embedded engine whatever engine wrote them."""
    reader = open_lake(lake.project_dir, {"engine": {"type": "duckdb"}})
    return {
        str(ref): sorted(
            (tuple(r.values()) for r in reader.query(f"SELECT * FROM {ref}").to_pylist()), key=repr
        )
        for ref in reader.tables()
    }


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
    for name in curated:
        assert expected[name], f"{name} is empty: the comparison would prove nothing"
        assert got[name] == expected[name], f"{name} differs between DuckDB and Spark"


def test_spark_steps_report_their_engine(pair: tuple[Lake, Lake]) -> None:
    _, spark = pair
    run = spark.runs("nightly", limit=1)[0]
    models = [
        a for a in spark.run_record(run.run_id).attempts if a.step in ("daily_campaign_stats", "cell_daily")
    ]
    assert models and all(a.metrics["engine"] == "local[2]" for a in models)
    assert all("engine.type is spark" in a.metrics["placement"] for a in models)
    assert all(a.metrics.get("stage_skew") for a in models), "Spark steps report per-stage skew"

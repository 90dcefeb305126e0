"""SQL models: headers, ordering, and the three materialisations on real Iceberg tables.

Tests that run models take the ``engine`` fixture and so run on DuckDB and on Spark.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakeplane.errors import ModelError, QueryError, TableNotFoundError
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.models import EMPTY_MERGE, discover_models, load_model
from tests.conftest import DAY1, DAY2, head_id, land_drop, on_engine, sorted_rows

CURATED = ("curated.daily_campaign_stats", "curated.campaign_totals")


def test_nightly_run_twice_gives_identical_tables(demo_lake: Lake, drops: dict, engine: str) -> None:
    demo_lake = on_engine(demo_lake, engine)
    for day in (DAY1, DAY2):
        land_drop(demo_lake, drops[day])
        demo_lake.run(day)
    before = {t: sorted_rows(demo_lake, t) for t in (*CURATED, "processed.impressions")}
    demo_lake.run(DAY1)
    demo_lake.run(DAY2)
    after = {t: sorted_rows(demo_lake, t) for t in before}
    assert after == before
    stats = demo_lake.query(
        "SELECT ds, count(*) AS n, count(DISTINCT (campaign_id, country, device)) "
        "AS keys FROM curated.daily_campaign_stats GROUP BY ds ORDER BY ds"
    ).to_pylist()
    assert [str(r["ds"]) for r in stats] == ["2026-11-01", "2026-11-02"]
    assert all(r["n"] == r["keys"] for r in stats), "no duplicated rollup rows"


def test_curated_rollup_matches_processed_rows(demo_lake: Lake, drops: dict, engine: str) -> None:
    demo_lake = on_engine(demo_lake, engine)
    land_drop(demo_lake, drops[DAY1])
    summary = demo_lake.run(DAY1)
    impressions = summary.ingests[0]
    totals = demo_lake.query(
        "SELECT sum(impressions) AS imps, sum(clicks) AS clicks FROM curated.daily_campaign_stats"
    ).to_pylist()[0]
    assert totals["imps"] == impressions.rows_written
    clicks = demo_lake.query(
        "SELECT count(*) AS n FROM processed.clicks c JOIN processed.impressions i "
        "ON i.event_id = c.impression_id"
    ).to_pylist()[0]["n"]
    assert totals["clicks"] == clicks
    names = demo_lake.query(
        "SELECT count(*) AS n FROM curated.daily_campaign_stats WHERE campaign_name IS NULL"
    ).to_pylist()[0]["n"]
    assert names == 0, "every campaign is enriched from the CRM extract"


def test_merge_replaces_matching_keys_and_keeps_the_rest(demo_lake: Lake, drops: dict, engine: str) -> None:
    demo_lake = on_engine(demo_lake, engine)
    land_drop(demo_lake, drops[DAY1])
    demo_lake.run(DAY1)
    day1 = {r["campaign_id"]: r for r in demo_lake.query("SELECT * FROM curated.campaign_totals").to_pylist()}
    land_drop(demo_lake, drops[DAY2])
    demo_lake.run(DAY2)
    both = {r["campaign_id"]: r for r in demo_lake.query("SELECT * FROM curated.campaign_totals").to_pylist()}
    assert set(day1) <= set(both)
    expected = demo_lake.query(
        "SELECT campaign_id, sum(impressions) AS imps, count(DISTINCT ds) AS days "
        "FROM curated.daily_campaign_stats GROUP BY 1"
    ).to_pylist()
    for row in expected:
        assert both[row["campaign_id"]]["impressions"] == row["imps"]
        assert both[row["campaign_id"]]["active_days"] == row["days"]
    assert len(both) == len(expected), "one row per campaign after two merges"


def write_model(root: Path, zone: str, name: str, text: str) -> Path:
    path = root / "models" / zone / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_append_adds_and_overwrite_partitions_replaces(tmp_path: Path, engine: str) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "lakeplane.yaml").write_text("name: t\n")
    lake = on_engine(project, engine)
    write_model(
        project,
        "processed",
        "numbers",
        "-- materialized: append\nSELECT n, :ds AS ds FROM (VALUES (0), (1), (2)) AS t(n)\n",
    )
    lake.run(DAY1)
    lake.run(DAY1)
    assert lake.query("SELECT count(*) AS c FROM processed.numbers").to_pylist() == [{"c": 6}]
    write_model(
        project,
        "curated",
        "by_day",
        "-- partition_by: [ds]\nSELECT ds, count(*) AS c FROM processed.numbers GROUP BY ds\n",
    )
    lake.run(DAY2)
    lake.run(DAY2)
    rows = lake.query("SELECT ds, c FROM curated.by_day ORDER BY ds").to_pylist()
    assert rows == [{"ds": DAY1, "c": 6}, {"ds": DAY2, "c": 6}]


def test_models_run_in_dependency_order(tmp_path: Path) -> None:
    write_model(tmp_path, "curated", "a_top", "SELECT * FROM curated.z_middle")
    write_model(tmp_path, "curated", "z_middle", "SELECT * FROM processed.base")
    write_model(tmp_path, "processed", "base", "SELECT 1 AS x")
    order = [m.ref.name for m in discover_models(tmp_path / "models", "d")]
    assert order == ["base", "z_middle", "a_top"]
    write_model(tmp_path, "processed", "base", "SELECT * FROM curated.a_top")
    with pytest.raises(ModelError, match="cycle"):
        discover_models(tmp_path / "models", "d")


def test_model_header_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = write_model(tmp_path, "curated", "bad", "-- materialized: append\n-- partiton_by: [ds]\nSELECT 1")
    with pytest.raises(ModelError) as caught:
        load_model(path, "d")
    assert caught.value.line == 2 and caught.value.key == "partiton_by"
    assert f"{path}:2: partiton_by: unknown header key" in str(caught.value)
    path = write_model(tmp_path, "curated", "merge", "-- materialized: merge\nSELECT 1 AS k")
    with pytest.raises(ModelError, match="merge needs unique_key"):
        load_model(path, "d")
    path = write_model(tmp_path, "curated", "write", "DELETE FROM x")
    with pytest.raises(ModelError, match="only read-only queries"):
        load_model(path, "d")


def test_unknown_table_and_missing_parameter_are_clear(demo_lake: Lake) -> None:
    with pytest.raises(TableNotFoundError, match="table 'adtech.processed.nope' does not exist"):
        demo_lake.query("SELECT * FROM processed.nope")
    with pytest.raises(QueryError, match="parameter ':ds' has no value"):
        demo_lake.query("SELECT n, :ds AS d FROM (VALUES (1)) AS t(n)")
    assert demo_lake.query(
        "SELECT n, :ds AS d FROM (VALUES (1)) AS t(n)", {"ds": dt.date(2026, 1, 2)}
    ).to_pylist() == [{"n": 1, "d": dt.date(2026, 1, 2)}]


def test_partitioned_merge_moves_a_key_between_partitions(tmp_path: Path, engine: str) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "lakeplane.yaml").write_text("name: t\n")
    write_model(
        project,
        "curated",
        "latest",
        """-- materialized: merge
-- unique_key: [k]
-- partition_by: [p]
SELECT k, CASE WHEN k = 'a' AND :ds > DATE '2026-11-01' THEN 'moved' ELSE 'start' END AS p, :ds AS seen
FROM (VALUES ('a'), ('b')) AS t(k)
WHERE k = 'a' OR :ds = DATE '2026-11-01'
""",
    )
    lake = on_engine(project, engine)
    lake.run(DAY1)
    lake.run(DAY2)
    rows = lake.query("SELECT k, p, seen FROM curated.latest ORDER BY k").to_pylist()
    assert rows == [{"k": "a", "p": "moved", "seen": DAY2}, {"k": "b", "p": "start", "seen": DAY1}]


def test_a_model_skips_a_day_whose_inputs_and_sql_are_unchanged(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "lakeplane.yaml").write_text("name: t\n")
    write_model(
        project,
        "processed",
        "numbers",
        "-- partition_by: [ds]\nSELECT n, :ds AS ds FROM (VALUES (0), (1), (2)) AS t(n)\n",
    )
    path = write_model(
        project,
        "curated",
        "total",
        "-- partition_by: [ds]\nSELECT ds, sum(n) AS s FROM processed.numbers WHERE ds = :ds GROUP BY ds\n",
    )
    lake = open_lake(project)
    first = lake.run(DAY1).models
    assert [m.skipped for m in first] == [None, None], "a model with no input table always runs"
    numbers = head_id(lake.catalog.load("t.processed.numbers"))
    second = lake.run(DAY1).models
    assert second[0].skipped is None and second[1].skipped is None, "numbers got a new snapshot"
    third = lake.run_model(lake.model("curated.total"), DAY1)
    assert third.skipped == f"inputs unchanged since snapshot {second[1].snapshot_id}"
    head = lake.catalog.load("t.curated.total").current_snapshot()
    assert head is not None and head.summary is not None
    bookmark = head.summary.additional_properties
    assert bookmark["lakeplane.inputs"] != f'{{"t.processed.numbers": {numbers}}}'
    path.write_text(path.read_text().replace("sum(n) AS s", "sum(n) + 0 AS s"))
    assert lake.run_model(lake.model("curated.total"), DAY1).skipped is None, "an edited model runs again"
    assert lake.run_model(lake.model("curated.total"), DAY1, force=True).skipped is None
    assert lake.query("SELECT ds, s FROM curated.total").to_pylist() == [{"ds": DAY1, "s": 3}]


@pytest.mark.parametrize("partition_by", [[], ["p"]], ids=["unpartitioned", "partitioned"])
def test_a_merge_with_an_empty_result_commits_nothing(tmp_path: Path, partition_by: list[str]) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "lakeplane.yaml").write_text("name: t\n")
    write_model(
        project,
        "curated",
        "latest",
        f"""-- materialized: merge
-- unique_key: [k]
-- partition_by: {partition_by}
SELECT k, 'start' AS p, :ds AS seen
FROM (VALUES ('a'), ('b')) AS t(k)
WHERE :ds = DATE '2026-11-01'
""",
    )
    lake = open_lake(project)
    model = lake.model("curated.latest")
    first = lake.run_model(model, DAY1)
    table = lake.catalog.load("t.curated.latest")
    snapshots = len(table.snapshots())
    assert first.rows == 2 and head_id(table) == first.snapshot_id

    empty = lake.run_model(model, DAY2)
    assert empty.skipped == EMPTY_MERGE and empty.rows == 0 and empty.files == 0
    table = lake.catalog.load("t.curated.latest")
    assert head_id(table) == first.snapshot_id == empty.snapshot_id, "no new snapshot"
    assert len(table.snapshots()) == snapshots
    rows = lake.query("SELECT k, seen FROM curated.latest ORDER BY k").to_pylist()
    assert rows == [{"k": "a", "seen": DAY1}, {"k": "b", "seen": DAY1}]


def test_quality_blocking_needs_quality(tmp_path: Path) -> None:
    path = write_model(tmp_path, "curated", "gated", "-- quality_blocking: false\nSELECT 1 AS x")
    with pytest.raises(ModelError, match="quality_blocking needs quality") as caught:
        load_model(path, "d")
    assert caught.value.key == "quality_blocking"
    path = write_model(
        tmp_path, "curated", "gated", "-- quality: q.dqdl\n-- quality_blocking: false\nSELECT 1 AS x"
    )
    header = load_model(path, "d").header
    assert (header.quality, header.quality_blocking) == ("q.dqdl", False)

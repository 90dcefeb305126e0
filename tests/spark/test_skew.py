"""Hot keys on Spark: two-phase salted aggregation, declared or detected, with unchanged results."""

from __future__ import annotations

import pytest

from lakeplane.lake import Lake, open_lake
from lakeplane.query.skew import SKEW_PROPERTY, salt_aggregation
from tests.spark.conftest import DAY
from tests.spark.test_cluster import table_rows

#: Campaigns are spread evenly in the demo; folding most of them into one key makes a hot key.
SKEWED = """{header}
SELECT ds, CASE WHEN campaign_id < 'cmp-0300' THEN 'hot' ELSE campaign_id END AS campaign,
       count(*) AS impressions, count(user_id) AS users,
       sum(CAST(win_price AS DECIMAL(18, 4))) AS spend, min(event_ts) AS first_seen,
       max(win_price) AS top_price
FROM processed.impressions
GROUP BY ds, CASE WHEN campaign_id < 'cmp-0300' THEN 'hot' ELSE campaign_id END
"""


def write(lake: Lake, name: str, header: str) -> None:
    (lake.project_dir / "models" / "curated" / f"{name}.sql").write_text(SKEWED.format(header=header))


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT a, count(*) AS n FROM t GROUP BY a", "only COUNT(*)"),
        ("SELECT a, count(DISTINCT b) AS n FROM t GROUP BY a", "COUNT(DISTINCT b) cannot be merged"),
        ("SELECT a, sum(b) AS n FROM t GROUP BY a HAVING sum(b) > 1", "a top-level HAVING"),
        ("SELECT a, b, sum(c) AS n FROM t GROUP BY a", "column b is neither an aggregate nor a key"),
        ("SELECT a, sum(b) FROM t GROUP BY a", "has no name"),
        ("SELECT a, b FROM t", "no GROUP BY"),
        ("SELECT a, avg(b) AS m FROM t GROUP BY a", "write AVG as SUM(x) / COUNT(x)"),
    ],
)
def test_what_cannot_be_salted_says_why(sql: str, reason: str) -> None:
    outcome = salt_aggregation(sql, "spark", 8)
    assert not outcome.salted and reason in outcome.reason and outcome.sql == sql


def test_salted_sql_groups_by_key_and_salt_then_by_key() -> None:
    outcome = salt_aggregation(
        "SELECT a, sum(b) / count(b) AS m, max(c) AS x FROM t GROUP BY ALL", "spark", 8
    )
    assert outcome.salted
    assert "GROUP BY a, PMOD(HASH(b, b, c), 8)) AS __salted GROUP BY __k0" in outcome.sql
    assert "SUM(__p0) / CAST(SUM(__p1) AS BIGINT) AS m, MAX(__p2) AS x" in outcome.sql


def test_declared_hot_key_is_salted_with_identical_results(heavy_lake: Lake) -> None:
    spark = open_lake(
        heavy_lake.project_dir, {"engine": {"type": "spark"}, "spark": {"skew": {"detect": False}}}
    )
    write(spark, "skew_plain", "-- partition_by: [ds]")
    write(spark, "skew_salted", "-- partition_by: [ds]\n-- hot_key: [campaign]")
    plain = spark.run_model(spark.model("curated.skew_plain"), DAY)
    salted = spark.run_model(spark.model("curated.skew_salted"), DAY)
    assert plain.skew == ""
    assert (
        "hot_key campaign declared: two-phase aggregation over 2 keys, salted into 16 buckets" in salted.skew
    )
    expected = table_rows(spark, "curated.skew_plain")
    assert table_rows(spark, "curated.skew_salted") == expected
    hot = [row for row in expected if row[1] == "hot"]
    assert hot and hot[0][2] > sum(row[2] for row in expected) * 0.3, "the hot key holds over 30 % of rows"
    duck = open_lake(heavy_lake.project_dir)
    write(duck, "skew_duck", "-- partition_by: [ds]\n-- hot_key: [campaign]")
    duck.run_model(duck.model("curated.skew_duck"), DAY)
    assert table_rows(duck, "curated.skew_duck") == expected, "DuckDB runs the model as written, same rows"


def test_a_skewed_run_is_detected_and_the_next_one_salted(heavy_lake: Lake) -> None:
    """A window over the hot key makes one task do most of a stage's work (no coalescing of the
    eight shuffle partitions); the run is marked, and the next run of the model is salted."""
    spark = open_lake(
        heavy_lake.project_dir,
        {
            "engine": {"type": "spark"},
            "spark": {
                "skew": {"detect_ratio": 2.0, "detect_min_task_s": 0},
                "conf": {"spark.sql.adaptive.coalescePartitions.enabled": False},
            },
        },
    )
    (spark.project_dir / "models" / "curated" / "skew_detected.sql").write_text(WINDOWED)
    model = spark.model("curated.skew_detected")
    first = spark.run_model(model, DAY)
    assert first.skew == "" and max(s["skew"] for s in first.stage_skew) >= 2.0
    marked = spark.catalog.load(model.name).properties.get(SKEW_PROPERTY)
    assert marked and marked.endswith("x")
    rows = table_rows(spark, model.name)
    second = spark.run_model(model, DAY, force=True)  # unchanged inputs would skip it
    assert f"stage skew {marked} in the previous run: two-phase aggregation" in second.skew
    assert table_rows(spark, model.name) == rows


WINDOWED = """-- partition_by: [ds]
SELECT ds, campaign, count(*) AS impressions, sum(position) AS positions
FROM (
    SELECT ds, CASE WHEN campaign_id < 'cmp-0300' THEN 'hot' ELSE campaign_id END AS campaign,
           row_number() OVER (PARTITION BY CASE WHEN campaign_id < 'cmp-0300' THEN 'hot'
                                             ELSE campaign_id END ORDER BY event_id) AS position
    FROM processed.impressions
) AS ranked
GROUP BY ds, campaign
"""


def test_stage_metrics_come_from_the_driver_not_its_web_ui(heavy_lake: Lake) -> None:
    """Stage skew is read from the driver's status store once its listeners have caught up: complete
    right after the job, whatever the load, and without the REST API (here the UI is off)."""
    spark = open_lake(
        heavy_lake.project_dir, {"engine": {"type": "spark"}, "spark": {"conf": {"spark.ui.enabled": False}}}
    )
    result = spark.run_model(spark.model("curated.per_campaign"), DAY, force=True)
    stages = result.stage_skew
    assert stages, "no stage metrics without the web UI"
    assert [s["stage_id"] for s in stages] == sorted({s["stage_id"] for s in stages})
    assert all(s["tasks"] > 0 and 0 <= s["median_task_ms"] <= s["max_task_ms"] for s in stages)
    assert all(s["spilled_bytes"] >= 0 for s in stages)
    assert result.spill_bytes == sum(s["spilled_bytes"] for s in stages), "a Spark job's spill is its stages'"
    again = spark.run_model(spark.model("curated.per_campaign"), DAY, force=True)
    assert again.stage_skew and min(s["stage_id"] for s in again.stage_skew) > max(
        s["stage_id"] for s in stages
    ), "a second job on the same driver reports only its own stages"

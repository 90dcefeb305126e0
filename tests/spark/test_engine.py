"""The Spark engine: clear errors without Java or the extra, the files it writes, reads, placement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeplane.config import load_config
from lakeplane.engines.placement import engine_overrides, place
from lakeplane.engines.spark import runtime
from lakeplane.errors import ConfigError, MissingDependencyError
from lakeplane.lake import Lake, open_lake
from tests.spark.conftest import DAY

SPARK = {"engine": {"type": "spark"}, "spark": {"master": "local[2]"}}


def run_cli(args: list[str], env: dict[str, str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys\n{prelude}\nfrom lakeplane.cli.main import main\nsys.argv = ['lakeplane', *sys.argv[1:]]\nmain()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_missing_java_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(MissingDependencyError, match=r"needs Java 17 or newer: JAVA_HOME=.* has no bin/java"):
        runtime.require_java()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="no java on PATH and JAVA_HOME unset"):
        runtime.require_java()


def test_cli_without_java_says_so_without_a_traceback(heavy_lake: Lake, tmp_path: Path) -> None:
    done = run_cli(
        [
            "--lake",
            str(heavy_lake.project_dir),
            "query",
            "--engine",
            "spark",
            "SELECT count(*) AS n FROM processed.impressions",
        ],
        {"JAVA_HOME": str(tmp_path)},
    )
    assert done.returncode == 1
    assert "error: engine 'spark' needs Java 17 or newer" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_without_the_spark_extra_names_it(heavy_lake: Lake) -> None:
    done = run_cli(
        ["--lake", str(heavy_lake.project_dir), "query", "--engine", "spark", "SELECT 1 AS x"],
        {},
        prelude="sys.modules['pyspark'] = None  # as if the extra were not installed",
    )
    assert done.returncode == 1
    assert "engine 'spark' needs pyspark: pip install 'lakeplane[spark]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_engine_or_master_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--engine sparky: expected duckdb, spark"):
        engine_overrides("sparky")
    (tmp_path / "lakeplane.yaml").write_text("spark:\n  master: mesos://x\n")
    with pytest.raises(
        ConfigError, match=r"lakeplane.yaml:2: spark.master: unknown Spark master 'mesos://x'"
    ):
        load_config(tmp_path)


def test_written_files_keep_partition_columns_and_micro_second_timestamps(heavy_lake: Lake) -> None:
    lake = open_lake(heavy_lake.project_dir, SPARK)
    model = lake.project_dir / "models" / "curated" / "last_seen.sql"
    model.write_text(
        "-- partition_by: [ds]\nSELECT ds, campaign_id, max(event_ts) AS last_seen, "
        "count(*) AS n FROM processed.impressions GROUP BY ds, campaign_id"
    )
    try:
        result = lake.run_model(lake.model("curated.last_seen"), DAY)
    finally:
        model.unlink()
    table = lake.catalog.load("adtech.curated.last_seen")
    assert str(table.schema().find_field("last_seen").field_type) == "timestamp"
    files = [task.file.file_path for task in table.scan().plan_files()]
    assert len(files) == result.files > 0
    for uri in files:
        assert f"/ds={DAY.isoformat()}/" in uri
        schema = pq.read_schema(uri.removeprefix("file://"))
        assert "ds" in schema.names, "the partition column stays inside the file"
        assert schema.field("last_seen").type == pa.timestamp("us")
    embedded = open_lake(lake.project_dir)
    expected = embedded.query(
        "SELECT campaign_id, max(event_ts) AS last_seen, count(*) AS n "
        "FROM processed.impressions GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert (
        embedded.query("SELECT campaign_id, last_seen, n FROM curated.last_seen ORDER BY 1").to_pylist()
        == expected
    )


def test_spark_reads_only_planned_files_and_reapplies_the_filter(heavy_lake: Lake) -> None:
    sql = (
        "SELECT country, count(*) AS n, round(sum(win_price), 4) AS spend "
        "FROM processed.impressions "
        f"WHERE ds = DATE '{DAY.isoformat()}' AND country IN ('DE', 'FR') GROUP BY 1 ORDER BY 1"
    )
    on_spark = open_lake(heavy_lake.project_dir, SPARK).query(sql).to_pylist()
    assert on_spark == open_lake(heavy_lake.project_dir).query(sql).to_pylist()
    assert {r["country"] for r in on_spark} == {"DE", "FR"}
    none = "SELECT count(*) AS n FROM processed.impressions WHERE ds = DATE '2020-01-01'"
    assert open_lake(heavy_lake.project_dir, SPARK).query(none).to_pylist() == [{"n": 0}]


def test_placement_picks_by_input_size_and_says_why(heavy_lake: Lake) -> None:
    config = load_config(
        heavy_lake.project_dir,
        {"engine": {"type": "auto"}, "placement": {"spark_above": "1MB", "cluster_above": "1GB"}},
    )
    small, medium, large = place(config, 10_000), place(config, 5 << 20), place(config, 2 << 30)
    assert (small.engine, small.shape) == ("duckdb", "duckdb")
    assert "input 9.8 KB < placement.spark_above 1MB" in small.reason
    assert medium.engine == "spark" and medium.shape.startswith("local[")
    assert "input 5.0 MB >= placement.spark_above 1MB" in medium.reason
    assert (large.engine, large.shape) == ("spark", "spark-cluster")
    lake = open_lake(
        heavy_lake.project_dir, {"engine": {"type": "auto"}, "placement": {"spark_above": "64KB"}}
    )
    placed = lake.model_jobs.placement(lake.model("curated.per_campaign"), DAY)
    assert placed.engine == "spark" and placed.input_bytes and placed.input_bytes > 64 << 10
    done = run_cli(
        ["--lake", str(lake.project_dir), "run", "--ds", DAY.isoformat(), "--engine", "auto", "--force"],
        {"LAKEPLANE__PLACEMENT__SPARK_ABOVE": "100GB"},
    )
    assert done.returncode == 0, done.stderr
    assert "adtech.curated.per_campaign: ran on duckdb (input" in done.stdout
    assert "< placement.spark_above 100GB: fits one machine)" in done.stdout


def test_cli_query_runs_on_spark(heavy_lake: Lake) -> None:
    sql = "SELECT country, count(*) AS n FROM processed.impressions GROUP BY 1 ORDER BY 1"
    done = run_cli(
        ["--lake", str(heavy_lake.project_dir), "--output", "json", "query", "--engine", "local[1]", sql], {}
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == open_lake(heavy_lake.project_dir).query(sql).to_pylist()

"""File rules written as DQDL, end to end: ``Lake.dq_check`` on a table (the batches feeding it)
and on a raw dataset itself, the metric history they keep, and ``lakeplane dq check``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.errors import ConfigError, DQDLError
from lakeplane.lake import Lake
from lakeplane.quality.history import METRICS
from tests.quality.test_file_rules import DAY1, DAY2, landed_orders

FILE_RULES = """Rules = [
    FileFreshness > (now() - 1 days),
    FileSize > 10,
    FileUniqueness = 1.0
]
"""


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """Orders landed on two days (two batches, then one) and ingested."""
    opened = landed_orders(tmp_path)
    (opened.project_dir / "files.dqdl").write_text(FILE_RULES)
    return opened


def test_rules_on_a_table_read_the_batches_of_its_dataset(lake: Lake) -> None:
    lake.ingest("pos/orders", DAY1)
    every = lake.dq_check("processed.orders", "files.dqdl", record=False)
    assert [o["passed"] for o in every] == [True, True, True]
    assert all("FileCount 3" in o["message"] for o in every)
    one_day = lake.dq_check("processed.orders", "files.dqdl", ds=DAY1, record=False)
    assert all("FileCount 2" in o["message"] for o in one_day)


def test_a_raw_dataset_is_a_target_and_keeps_its_own_history(lake: Lake) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    outcomes = lake.dq_check("raw/pos/orders", "files.dqdl", now=later, ds=DAY2)
    fresh, size, unique = outcomes
    assert not fresh.get("error") and not fresh["passed"] and "FileCount 1" in fresh["message"]
    assert "orders-2026-11-02-4.ndjson landed" in fresh["message"]
    assert size["passed"] and unique["passed"] and unique["observed"] == 1.0
    with lake.catalog.state_engine.connect() as conn:
        kept = conn.execute(
            sa.select(METRICS.c.metric_key, METRICS.c.value).where(METRICS.c.dataset == "raw/pos/orders")
        ).all()
    assert ("FileUniqueness", 1.0) in kept


def test_a_raw_dataset_takes_file_rules_only_and_must_exist(lake: Lake) -> None:
    (lake.project_dir / "rows.dqdl").write_text("Rules = [\n    FileSize > 0,\n    RowCount > 0\n]\n")
    with pytest.raises(DQDLError, match="RowCount checks rows; raw/pos/orders is a raw dataset") as raised:
        lake.dq_check("raw/pos/orders", "rows.dqdl")
    assert raised.value.line == 3
    with pytest.raises(ConfigError, match="unknown raw dataset 'pos/ordrs'"):
        lake.dq_check("raw/pos/ordrs", "files.dqdl")


def test_cli_checks_a_raw_dataset_with_json_output_and_exit_codes(lake: Lake) -> None:
    runner = CliRunner()
    base = ["--lake", str(lake.project_dir)]
    rules = str(lake.project_dir / "files.dqdl")
    passed = runner.invoke(
        cli, [*base, "--output", "json", "dq", "check", "raw/pos/orders", rules, "--ds", "2026-11-01"]
    )
    assert passed.exit_code == 0, passed.output
    outcomes = json.loads(passed.output)
    assert [o["rule_type"] for o in outcomes] == ["FileFreshness", "FileSize", "FileUniqueness"]
    assert all("FileCount 2" in o["message"] for o in outcomes)
    (lake.project_dir / "big.dqdl").write_text("Rules = [ FileSize > 1000000 ]\n")
    failed = runner.invoke(cli, [*base, "dq", "check", "raw/pos/orders", str(lake.project_dir / "big.dqdl")])
    assert failed.exit_code == 1 and "FAIL" in failed.output and "0 of 1 rules passed" in failed.output
    missing = runner.invoke(cli, [*base, "dq", "check", "raw/pos/nothing", rules])
    assert missing.exit_code == 1 and "unknown raw dataset 'pos/nothing'" in missing.output
    assert "Traceback" not in missing.output


PIPELINE = """
steps:
  landing:
    quality: quality/landing.dqdl
    table: raw/pos/orders
  orders:
    ingest: pos/orders
    depends_on: [landing]
"""


def test_a_pipeline_gate_on_the_landed_files_stops_the_ingest_of_a_bad_day(
    lake: Lake, tmp_path: Path
) -> None:
    (lake.project_dir / "pipelines").mkdir()
    (lake.project_dir / "pipelines" / "landing.yaml").write_text(PIPELINE)
    (lake.project_dir / "quality").mkdir()
    (lake.project_dir / "quality" / "landing.dqdl").write_text(
        "Rules = [ FileSize >= 20, FileUniqueness = 1.0 ]\n"
    )
    good = lake.run_record(lake.run_pipeline("landing", DAY2).run_id)
    assert good.state == "succeeded", [a.error for a in good.attempts if a.error]
    (checked,) = [a for a in good.attempts if a.step == "landing"]
    assert [o["passed"] for o in checked.metrics["quality"]] == [True, True]
    assert "FileCount 1" in checked.metrics["quality"][0]["message"]  # only DAY2's batch
    # DAY1 holds a 32-byte and a 16-byte batch: the gate fails, and nothing of DAY1 is ingested
    bad = lake.run_record(lake.run_pipeline("landing", DAY1).run_id)
    assert bad.state == "failed"
    (gate,) = [a for a in bad.attempts if a.step == "landing"]
    assert gate.error and "1 of 2 rules failed on raw/pos/orders: FileSize >= 20 (observed 0.5)" in gate.error
    assert not [a for a in bad.attempts if a.step == "orders" and a.state == "succeeded"]
    rows = lake.query("SELECT count(*) AS n FROM processed.orders WHERE ds = DATE '2026-11-01'").to_pylist()
    assert rows == [{"n": 0}]

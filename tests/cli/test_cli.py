"""The CLI end to end on the demo project: land, ingest, run, tables, describe, query."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from lakeplane.cli.main import cli
from lakeplane.demo.generator import MALFORMED_KINDS, malformed_count
from lakeplane.lake import Lake
from tests.conftest import DAY1


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


def test_land_ingest_and_run_with_json_output(demo_lake: Lake, drops: dict) -> None:
    drop = drops[DAY1]
    files = [str(p) for p in drop.files["partner/impressions"]]
    code, out = invoke(demo_lake, "--output", "json", "land", "partner/impressions", *files,
                       "--date", "2026-11-01")
    assert code == 0, out
    landed = json.loads(out)
    assert [r["landed"] for r in landed] == [True, True]
    code, out = invoke(demo_lake, "--output", "json", "land", "partner/impressions", *files,
                       "--date", "2026-11-01")
    assert [r["landed"] for r in json.loads(out)] == [False, False]

    code, out = invoke(demo_lake, "--output", "json", "ingest", "partner/impressions", "--ds", "2026-11-01")
    assert code == 0, out
    report = json.loads(out)
    assert report["read"] == sum(r["lines"] for r in landed)
    assert report["quarantined"] == malformed_count()
    assert report["read"] == report["accepted"] + report["quarantined"]
    assert report["by_reason"] == {"invalid_json": 3, "wrong_type": 3, "missing_required": 3,
                                   "invalid_utf8": 2, "blank_line": 1, "not_an_object": 1}
    assert set(report["by_reason"]) == set(MALFORMED_KINDS)

    for dataset in ("partner/clicks", "crm/campaigns"):
        invoke(demo_lake, "land", dataset, *map(str, drop.files[dataset]), "--date", "2026-11-01")
    code, out = invoke(demo_lake, "--output", "json", "run", "--ds", "2026-11-01")
    assert code == 0, out
    run = json.loads(out)
    ran = {m["model"]: m["skipped"] for m in run["models"]}
    assert ran == {"adtech.curated.daily_campaign_stats": None, "adtech.curated.campaign_totals": None,
                   "telco.curated.cell_daily": "no table telco.processed.cdr yet"}
    skipped = {i["dataset"]: i["skipped"] for i in run["ingests"]}
    assert skipped["partner/impressions"].startswith("batches unchanged since snapshot"), skipped
    assert skipped["partner/clicks"] is None and run["peak_memory_mb"] > 0

    code, out = invoke(demo_lake, "--output", "json", "tables")
    names = {t["table"] for t in json.loads(out)}
    assert {"adtech.processed.impressions", "adtech.processed.impressions_quarantine",
            "adtech.curated.daily_campaign_stats"} <= names
    code, out = invoke(demo_lake, "--output", "json", "describe", "curated.daily_campaign_stats")
    info = json.loads(out)
    assert info["partition_spec"] == [{"source": "ds", "transform": "identity", "name": "ds"}]
    assert info["records"] > 0 and info["files"] and info["snapshots"]
    code, out = invoke(demo_lake, "describe", "processed.impressions")
    assert code == 0 and "event_id" in out and "snapshots" in out


def test_table_output_prints_a_summary(demo_lake: Lake, drops: dict) -> None:
    for dataset, files in drops[DAY1].files.items():
        invoke(demo_lake, "land", dataset, *map(str, files), "--date", "2026-11-01")
    code, out = invoke(demo_lake, "run", "--ds", "2026-11-01")
    assert code == 0, out
    assert "quarantined" in out and "peak memory" in out and "adtech.curated.campaign_totals" in out
    code, out = invoke(demo_lake, "query", "SELECT count(*) AS n FROM curated.daily_campaign_stats")
    assert code == 0 and "1 rows" in out


def test_user_mistakes_are_one_line_errors(demo_lake: Lake, tmp_path: Path) -> None:
    cases = [
        (["ingest", "partner/impressions", "--ds", "2026-11-01"], "no batches of 'partner/impressions'"),
        (["query", "DROP TABLE x"], "only read-only queries are allowed"),
        (["query", "SELECT * FROM read_parquet('/etc/passwd')"], "is not allowed in a query"),
        (["describe", "curated.nope"], "table 'adtech.curated.nope' does not exist"),
        (["land", "partner/impressions", str(tmp_path / "none.ndjson")], "no such file"),
    ]
    for args, message in cases:
        code, out = invoke(demo_lake, *args)
        assert code == 1, (args, out)
        assert "Traceback" not in out and message in out, (args, out)
    code, out = invoke(demo_lake, "--output", "json", "describe", "curated.nope")
    assert code == 1 and json.loads(out)["error"] == "TableNotFoundError"


def test_init_then_defaults(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "new")])
    assert result.exit_code == 0 and (tmp_path / "new" / "lakeplane.yaml").exists()
    result = CliRunner().invoke(cli, ["--lake", str(tmp_path / "new"), "--output", "json", "tables"])
    assert result.exit_code == 0 and json.loads(result.output) == []

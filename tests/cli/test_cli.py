"""The CLI end to end on the demo project: land, ingest, run, tables, describe, query."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from lakeplane.cli.main import cli
from lakeplane.demo.generator import MALFORMED_KINDS, malformed_count
from lakeplane.errors import TableNotFoundError
from lakeplane.lake import Lake
from tests.conftest import DAY1


def invoke(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args])
    return result.exit_code, result.output


def test_land_ingest_and_run_with_json_output(demo_lake: Lake, drops: dict) -> None:
    drop = drops[DAY1]
    files = [str(p) for p in drop.files["partner/impressions"]]
    code, out = invoke(
        demo_lake, "--output", "json", "land", "partner/impressions", *files, "--date", "2026-11-01"
    )
    assert code == 0, out
    landed = json.loads(out)
    assert [r["landed"] for r in landed] == [True, True]
    code, out = invoke(
        demo_lake, "--output", "json", "land", "partner/impressions", *files, "--date", "2026-11-01"
    )
    assert [r["landed"] for r in json.loads(out)] == [False, False]

    code, out = invoke(demo_lake, "--output", "json", "ingest", "partner/impressions", "--ds", "2026-11-01")
    assert code == 0, out
    report = json.loads(out)
    assert report["read"] == sum(r["lines"] for r in landed)
    assert report["quarantined"] == malformed_count()
    assert report["read"] == report["accepted"] + report["quarantined"]
    assert report["by_reason"] == {
        "invalid_json": 3,
        "wrong_type": 3,
        "missing_required": 3,
        "invalid_utf8": 2,
        "blank_line": 1,
        "not_an_object": 1,
    }
    assert set(report["by_reason"]) == set(MALFORMED_KINDS)

    for dataset in ("partner/clicks", "crm/campaigns"):
        invoke(demo_lake, "land", dataset, *map(str, drop.files[dataset]), "--date", "2026-11-01")
    code, out = invoke(demo_lake, "--output", "json", "run", "--ds", "2026-11-01")
    assert code == 0, out
    run = json.loads(out)
    ran = {m["model"]: m["skipped"] for m in run["models"]}
    assert ran == {
        "adtech.curated.daily_campaign_stats": None,
        "adtech.curated.campaign_totals": None,
        "telco.curated.cell_daily": "no table telco.processed.cdr yet",
    }
    gate = next(m["quality"] for m in run["models"] if m["model"] == "adtech.curated.daily_campaign_stats")
    assert len(gate) == 8 and all(o["passed"] for o in gate), "the model's gate applies without a pipeline"
    skipped = {i["dataset"]: i["skipped"] for i in run["ingests"]}
    assert skipped["partner/impressions"].startswith("batches unchanged since snapshot"), skipped
    assert skipped["partner/clicks"] is None and run["peak_memory_mb"] > 0

    code, out = invoke(demo_lake, "--output", "json", "tables")
    names = {t["table"] for t in json.loads(out)}
    assert {
        "adtech.processed.impressions",
        "adtech.processed.impressions_quarantine",
        "adtech.curated.daily_campaign_stats",
    } <= names
    code, out = invoke(demo_lake, "--output", "json", "describe", "curated.daily_campaign_stats")
    info = json.loads(out)
    assert info["partition_spec"] == [{"source": "ds", "transform": "identity", "name": "ds"}]
    assert info["records"] > 0 and info["files"] and info["snapshots"]
    assert {f["partition"]["ds"] for f in info["files"]} == {"2026-11-01"}
    assert all(s["on_main"] and s["branch"] == "main" for s in info["snapshots"]), "audits were published"
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


def run_cli(lake: Lake, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--lake", str(lake.project_dir), *args], input=stdin)


def test_output_and_debug_go_before_or_after_the_command(demo_lake: Lake, drops: dict) -> None:
    files = [str(p) for p in drops[DAY1].files["crm/campaigns"]]
    code, out = invoke(demo_lake, "land", "crm/campaigns", *files, "--date", "2026-11-01", "--output", "json")
    assert code == 0 and [r["landed"] for r in json.loads(out)] == [True] * len(files), out
    code, out = invoke(demo_lake, "ingest", "crm/campaigns", "--output", "json", "--ds", "2026-11-01")
    assert code == 0 and json.loads(out)["table"] == "adtech.processed.campaigns", out

    before = invoke(demo_lake, "--output", "json", "tables")
    after = invoke(demo_lake, "tables", "--output", "json")
    assert (
        before == after
        and before[0] == 0
        and json.loads(after[1])[0]["table"] == "adtech.processed.campaigns"
    )
    code, out = invoke(demo_lake, "runs", "--output", "json")
    assert code == 0 and json.loads(out) == []
    code, out = invoke(demo_lake, "describe", "curated.nope", "--output", "json")
    assert code == 1 and json.loads(out)["error"] == "TableNotFoundError"
    # An option the command does not repeat keeps the group's value.
    code, out = invoke(demo_lake, "--output", "json", "describe", "processed.campaigns", "--debug")
    assert code == 0 and json.loads(out)["table"] == "adtech.processed.campaigns"

    for args in (["--debug", "describe", "curated.nope"], ["describe", "curated.nope", "--debug"]):
        result = run_cli(demo_lake, *args)
        assert result.exit_code == 1 and isinstance(result.exception, TableNotFoundError), args
    assert not isinstance(run_cli(demo_lake, "describe", "curated.nope").exception, TableNotFoundError)


def test_query_text_may_open_with_a_comment(demo_lake: Lake, tmp_path: Path) -> None:
    sql = "-- how many: one\nSELECT 1 AS n"
    code, out = invoke(demo_lake, "query", sql)
    assert code == 0 and "1 rows" in out, out
    code, out = invoke(demo_lake, "query", sql, "--output", "json")
    assert code == 0 and json.loads(out) == [{"n": 1}], out
    code, out = invoke(
        demo_lake, "query", "--format", "csv", "--", "-- after the end of options\nSELECT 2 AS n"
    )
    assert code == 0 and out.splitlines() == ["n", "2"], out
    (tmp_path / "q.sql").write_text("-- from a file\nSELECT 3 AS n\n")
    code, out = invoke(demo_lake, "--output", "json", "query", "-f", str(tmp_path / "q.sql"))
    assert code == 0 and json.loads(out) == [{"n": 3}], out
    result = run_cli(demo_lake, "--output", "json", "query", "--file", "-", stdin="-- stdin\nSELECT 4 AS n\n")
    assert result.exit_code == 0 and json.loads(result.output) == [{"n": 4}], result.output

    code, out = invoke(demo_lake, "query", "--limt", "5", "SELECT 1")
    assert code == 2 and "No such option '--limt'. Did you mean '--limit'?" in out, out
    code, out = invoke(demo_lake, "query")
    assert code == 2 and "give the query as SQL or with --file FILE" in out, out
    code, out = invoke(demo_lake, "query", "-f", str(tmp_path / "q.sql"), "SELECT 1")
    assert code == 2 and "give the query as SQL or with --file FILE" in out, out


def test_exit_codes(demo_lake: Lake, drops: dict, tmp_path: Path) -> None:
    """0 done, 1 a lakeplane error or a run or check that failed, 2 a usage error (README)."""
    for args in (
        ["run"],
        ["run", "--ds", "2026-13-01"],
        ["nope"],
        ["--output", "xml", "tables"],
        ["tables", "--output", "xml"],
        ["dq", "check", "processed.impressions", "none.dqdl"],
    ):
        code, out = invoke(demo_lake, *args)
        assert code == 2 and "Usage:" in out and "Traceback" not in out, (args, out)

    code, out = invoke(demo_lake, "ingest", "partner/impressions", "--ds", "2026-11-01")
    assert code == 1 and out.startswith("error: no batches of 'partner/impressions'"), out
    code, out = invoke(demo_lake, "--output", "json", "run", "nightly", "--ds", "2026-11-01")
    assert code == 1 and json.loads(out)["state"] == "failed", out

    for dataset, files in drops[DAY1].files.items():
        invoke(demo_lake, "land", dataset, *map(str, files), "--date", "2026-11-01")
    code, out = invoke(demo_lake, "ingest", "partner/impressions", "--ds", "2026-11-01")
    assert code == 0, out
    rules = tmp_path / "rules.dqdl"
    rules.write_text('Rules = [\n    RowCount > 0,\n    IsComplete "event_id"\n]\n')
    code, out = invoke(demo_lake, "dq", "check", "processed.impressions", str(rules))
    assert code == 0 and "2 of 2 rules passed" in out, out
    rules.write_text("Rules = [\n    RowCount > 100000000\n]\n")
    code, out = invoke(demo_lake, "dq", "check", "processed.impressions", str(rules), "--output", "json")
    assert code == 1 and [o["passed"] for o in json.loads(out)] == [False], out

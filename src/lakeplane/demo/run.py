"""``lakeplane demo``: build the demo project, generate partner drops, and run the nightly pipeline."""

from __future__ import annotations

import datetime as dt
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from lakeplane.cli.output import Printer
from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.errors import AccessDenied
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.runner import RunOptions
from lakeplane.pipelines.store import RunRecord


def build_project(path: Path, governed: bool = True) -> Lake:
    """A fresh copy of the demo project in ``path`` (anything there before is removed).

    With ``governed`` false the policy file is left out, so no query needs a principal.
    """
    if path.exists():
        shutil.rmtree(path)
    template = resources.files("lakeplane.demo") / "project"
    with resources.as_file(template) as source:
        shutil.copytree(source, path)
    if not governed:
        (path / "policy.yaml").unlink()
    return open_lake(path)


#: The telco query the demo runs as two principals: the same SQL, two different answers.
TELCO_QUERY = (
    "SELECT c.msisdn, s.card_pan, c.region, count(*) AS calls, sum(c.duration_s) AS seconds "
    "FROM telco.processed.cdr c JOIN telco.processed.subscribers s ON s.msisdn = c.msisdn "
    "GROUP BY ALL ORDER BY calls DESC, c.msisdn LIMIT 5"
)
ANALYST = "ana"


def run_demo(printer: Printer, path: Path, start: dt.date, days: int, impressions: int) -> None:
    lake = build_project(path)
    printer.line(f"demo project: {lake.project_dir}")
    end = start + dt.timedelta(days=days - 1)
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        # The last night's partner delivery is partial (a tenth of the usual impressions): the
        # quality gate between processed and curated stops it before it reaches consumers.
        partial = days >= 3 and day == end
        drop = generate_day(lake.project_dir / "incoming", day, impressions // 10 if partial else impressions)
        files = {**drop.files, **telco.generate_day(lake.project_dir / "incoming", day, impressions // 10)}
        for dataset, paths in files.items():
            lake.land(dataset, paths, day)
    steps = len(lake.pipeline("nightly").steps)
    with printer.progress(f"backfill nightly {start}..{end}", steps * days) as advance:
        def progress(text: str) -> None:
            if text.endswith(("succeeded", "skipped")) or ": failed" in text:
                advance(text.split(" (")[0])

        runs = lake.backfill("nightly", start, end, parallel=1, options=RunOptions(progress=progress))
    records = [lake.run_record(r.run_id) for r in runs]
    summaries = [run_summary(r) for r in records]
    if not printer.json:
        printer.table("nightly runs", ["ds", "run", "state", "lines read", "quarantined", "rows out",
                                       "written", "seconds", "steps"],
                      [[s["ds"], s["run_id"], s["state"], s["read"], s["quarantined"], s["rows_out"],
                        s["bytes_written"], s["seconds"], s["steps"]] for s in summaries])
        for record in records:
            for attempt in record.attempts:
                if attempt.state == "failed":
                    printer.line(f"[red]{record.ds} {attempt.step}[/red]: {attempt.error}")
    sample = lake.query(
        "SELECT ds, campaign_id, campaign_name, country, device, impressions, clicks, ctr, spend "
        "FROM curated.daily_campaign_stats WHERE ds = :ds ORDER BY impressions DESC LIMIT 8",
        params={"ds": end - dt.timedelta(days=1) if days >= 3 else end}, principal=ANALYST,
    )
    quarantine = lake.query(
        "SELECT reason, count(*) AS records, min(regexp_extract(source_file, 'raw/.*')) AS example_file, "
        "min(line) AS first_line FROM processed.impressions_quarantine GROUP BY reason "
        "ORDER BY records DESC, reason", principal=ANALYST,
    )
    governed = {who: lake.query(TELCO_QUERY, principal=who, dialect="trino") for who in ("ana", "eve")}
    try:
        lake.query(TELCO_QUERY, principal="ian", dialect="trino")
        denied = "allowed (unexpected)"
    except AccessDenied as exc:
        denied = str(exc)
    if printer.json:
        printer.emit({"project": str(lake.project_dir), "runs": summaries,
                      "sample": sample.to_pylist(), "quarantine": quarantine.to_pylist(),
                      "governed": {k: v.to_pylist() for k, v in governed.items()}, "intern": denied})
        return
    printer.table("curated.daily_campaign_stats (top rows of the last published day)", sample.column_names,
                  [list(r.values()) for r in sample.to_pylist()])
    printer.table("processed.impressions_quarantine by reason", quarantine.column_names,
                  [list(r.values()) for r in quarantine.to_pylist()])
    printer.line(f"\none policy, the same query, three principals:\n  {TELCO_QUERY}")
    for who, result in governed.items():
        role = ", ".join(lake.governance.principal(who).identities - {f"user:{who}"})
        printer.table(f"as {who} ({role})", result.column_names,
                      [list(r.values()) for r in result.to_pylist()])
    printer.line(f"as ian (role:intern): {denied}")
    printer.line(
        f"\nnext, from {lake.project_dir}:\n"
        "  lakeplane tables\n"
        "  lakeplane describe curated.daily_campaign_stats\n"
        "  lakeplane query --as fred \"SELECT * FROM telco.processed.subscribers LIMIT 5\"\n"
        "  lakeplane access who-can-see telco.processed.cdr.msisdn\n"
        "  lakeplane access explain --as eve \"SELECT region, count(*) FROM telco.processed.cdr GROUP BY 1\""
        "\n"
        "  lakeplane audit verify"
    )


def noop_step(lake: Lake, ds: dt.date) -> dict[str, int]:
    """A pipeline step that does nothing (for measuring the runner itself)."""
    return {"rows_out": 0}


def run_summary(run: RunRecord) -> dict[str, Any]:
    """Rows in and out, quarantined, bytes and time of one run, from its attempts."""
    done = [a for a in run.attempts if a.state == "succeeded"]
    return {
        "ds": run.ds, "run_id": run.run_id, "state": run.state,
        "read": sum(int(a.metrics.get("rows_in", 0)) for a in done),
        "quarantined": sum(int(a.metrics.get("quarantined", 0)) for a in done),
        "rows_out": sum(int(a.metrics.get("rows_out", 0)) for a in done),
        "bytes_written": sum(int(a.metrics.get("bytes_written", 0)) for a in done),
        "seconds": round(sum(float(a.metrics.get("seconds", 0)) for a in done), 2),
        "steps": ", ".join(f"{a.step}:{a.state}" for a in run.attempts if a.state != "succeeded") or "all ok",
    }

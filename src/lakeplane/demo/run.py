"""``lakeplane demo``: build the demo project, generate partner drops, and run the nightly pipeline."""

from __future__ import annotations

import datetime as dt
import shutil
from importlib import resources
from pathlib import Path

from lakeplane.cli.output import Printer
from lakeplane.cli.summary import print_run
from lakeplane.demo.generator import generate_day
from lakeplane.lake import Lake, open_lake


def build_project(path: Path) -> Lake:
    """A fresh copy of the demo project in ``path`` (anything there before is removed)."""
    if path.exists():
        shutil.rmtree(path)
    template = resources.files("lakeplane.demo") / "project"
    with resources.as_file(template) as source:
        shutil.copytree(source, path)
    return open_lake(path)


def run_demo(printer: Printer, path: Path, start: dt.date, days: int, impressions: int) -> None:
    lake = build_project(path)
    printer.line(f"demo project: {lake.project_dir}")
    summaries = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        drop = generate_day(lake.project_dir / "incoming", day, impressions)
        for dataset, files in drop.files.items():
            lake.land(dataset, files, day)
        steps = len(lake.config.datasets) + len(lake.models())
        with printer.progress(f"nightly {day}", steps) as advance:
            summary = lake.run(day, progress=advance)
        summaries.append(summary)
        if not printer.json:
            print_run(printer, summary)
    sample = lake.query(
        "SELECT ds, campaign_id, campaign_name, country, device, impressions, clicks, ctr, spend "
        "FROM curated.daily_campaign_stats WHERE ds = :ds ORDER BY impressions DESC LIMIT 8",
        params={"ds": start + dt.timedelta(days=days - 1)},
    )
    quarantine = lake.query(
        "SELECT reason, count(*) AS records, min(regexp_extract(source_file, 'raw/.*')) AS example_file, "
        "min(line) AS first_line FROM processed.impressions_quarantine GROUP BY reason "
        "ORDER BY records DESC, reason"
    )
    if printer.json:
        printer.emit({"project": str(lake.project_dir), "runs": [s.to_dict() for s in summaries],
                      "sample": sample.to_pylist(), "quarantine": quarantine.to_pylist()})
        return
    printer.table("curated.daily_campaign_stats (top rows of the last day)", sample.column_names,
                  [list(r.values()) for r in sample.to_pylist()])
    printer.table("processed.impressions_quarantine by reason", quarantine.column_names,
                  [list(r.values()) for r in quarantine.to_pylist()])
    printer.line(
        f"\nnext, from {lake.project_dir}:\n"
        "  lakeplane tables\n"
        "  lakeplane describe curated.daily_campaign_stats\n"
        "  lakeplane query \"SELECT reason, line, raw_text FROM processed.impressions_quarantine LIMIT 5\""
    )

"""The nightly pipeline through lakeplane versus a hand-written DuckDB script, on the same files.

Generates ~``--gb`` of impressions NDJSON with the demo generator (cached in ``benchmarks/.work``),
then, in separate child processes so each one's peak memory is its own:

1. lakeplane lands every day's partner files into a fresh demo project, once (timed, reported,
   not compared: the hand-written script reads the files in place);
2. for each of ``--repeat`` trials, on a fresh copy of that landed project, lakeplane runs the
   nightly pipeline for each day (``Lake.run``: ingest impressions, clicks and campaigns into
   Iceberg tables, then the curated models ``daily_campaign_stats`` and ``campaign_totals``);
3. in the same trial, a plain DuckDB script, as a competent engineer would write it for a cron box,
   does the same work on the files where the generator left them: read each day's NDJSON and CSV
   with explicit columns, dedupe on the keys, write processed Parquet (zstd), then the same two
   aggregations. The two sides alternate which goes first.

It checks that both give the same curated numbers, prints the timings (best of the trials), the
ratio and the throughput against their targets, the peak RSS of each child, and ends with one JSON
line. It is a measurement, not a test: it exits 0 when a target is missed (and prints MISS).

Usage: ``python benchmarks/bench_nightly.py [--gb 1.0] [--days 4] [--repeat 3] [--memory-limit 2GB]``
(see ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_WORK = HERE / ".work"
FIRST_DAY = dt.date(2026, 3, 1)
#: Bytes of one generated impression line (measured: 270.5 on 100k rows); sizes the generator.
BYTES_PER_IMPRESSION = 270.5
TARGET_RATIO = 1.15
TARGET_GB_PER_S = 0.18
#: The most the cross-day window (``--redeliver``) may add to lakeplane's nightly runs.
TARGET_WINDOW_RATIO = 1.05
NO_WINDOW = "lakeplane without the window"
#: The demo's event datasets, deduplicated across days by default (the CRM extract is not).
KEYED_EVENTS = ("partner/impressions", "partner/clicks")
DEFAULT_OVERHEAD = "512MiB"
UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}

# -- the child processes -------------------------------------------------------------------------
# Each child gets one JSON argument and writes one JSON result file; stdout and stderr stay free
# for whatever the code under test prints.

LAKEPLANE_LAND = r"""
import datetime as dt, json, sys, time
from pathlib import Path
args = json.loads(sys.argv[1])
from lakeplane.demo.run import build_project
started = time.perf_counter()
lake = build_project(Path(args["project"]), governed=False)
for day, files in args["drops"].items():
    for dataset, paths in files.items():
        lake.land(dataset, paths, dt.date.fromisoformat(day))
seconds = time.perf_counter() - started
Path(args["result"]).write_text(json.dumps({"seconds": seconds}))
"""

LAKEPLANE_RUN = r"""
import datetime as dt, json, sys, time
from pathlib import Path
args = json.loads(sys.argv[1])
importing = time.perf_counter()
from lakeplane import open_lake
import lakeplane.lake  # what open_lake loads on first use: its engines, pyiceberg, SQLAlchemy
imported = time.perf_counter() - importing
started, cpu_started = time.perf_counter(), time.process_time()
lake = open_lake(args["project"], overrides={"engine": args["engine"], **args.get("overrides", {})})
opened = time.perf_counter() - started
runs = []
for day in args["days"]:
    summary = lake.run(dt.date.fromisoformat(day))
    runs.append(summary.to_dict())
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
result = {"seconds": seconds, "cpu_seconds": cpu, "runs": runs, "opened": opened, "imported": imported}
Path(args["result"]).write_text(json.dumps(result, default=str))
"""

# The baseline. Written the way one would write the nightly cron job by hand: one DuckDB
# connection per night with the same memory limit, threads and insertion-order setting lakeplane
# uses, the reader's ignore_errors for the malformed lines, required fields checked in WHERE.
HAND_WRITTEN = r"""
import json, sys, time
from datetime import date, timedelta
from pathlib import Path
importing = time.perf_counter()
import duckdb
imported = time.perf_counter() - importing

args = json.loads(sys.argv[1])
out = Path(args["out"])

IMPRESSIONS = ("{event_id: 'VARCHAR', event_ts: 'TIMESTAMP', campaign_id: 'VARCHAR', "
               "country: 'VARCHAR', device: 'VARCHAR', publisher_id: 'VARCHAR', user_id: 'VARCHAR', "
               "bid_price: 'DOUBLE', win_price: 'DOUBLE', page_url: 'VARCHAR'}")
CLICKS = ("{click_id: 'VARCHAR', impression_id: 'VARCHAR', event_ts: 'TIMESTAMP', "
          "campaign_id: 'VARCHAR'}")
CAMPAIGNS = ("{campaign_id: 'VARCHAR', name: 'VARCHAR', advertiser: 'VARCHAR', channel: 'VARCHAR', "
             "daily_budget: 'DOUBLE', start_date: 'DATE'}")
PARQUET = "(FORMAT parquet, COMPRESSION zstd)"


def files(paths):
    return "[" + ", ".join("'" + p + "'" for p in paths) + "]"


def target(*parts):
    path = out.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


# With cross_day, this script's own processed files of the week before: their keys are not kept again.
def earlier_days(day, table):
    if not args["cross_day"]:
        return []
    first = str(date.fromisoformat(day) - timedelta(days=7))
    return [str(out / "processed" / table / f"ds={d}" / "data.parquet")
            for d in args["drops"] if first <= d < day]


def unseen(alias, key, day, table):
    seen = earlier_days(day, table)
    if not seen:
        return ""
    return f"ANTI JOIN read_parquet({files(seen)}) AS seen ON seen.{key} = {alias}.{key}"


def nightly(day, drop):
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{args['memory_limit']}'")
    if args["threads"]:
        con.execute(f"SET threads = {int(args['threads'])}")
    con.execute(f"SET temp_directory = '{out / 'tmp'}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    steps = {}

    def step(name, sql):
        started = time.perf_counter()
        con.execute(sql)
        steps[name] = time.perf_counter() - started

    imps = target("processed", "impressions", f"ds={day}", "data.parquet")
    step("impressions", f'''
        COPY (
            SELECT i.*, DATE '{day}' AS ds
            FROM read_json({files(drop["partner/impressions"])}, format = 'newline_delimited',
                           columns = {IMPRESSIONS}, ignore_errors = true) AS i
            {unseen("i", "event_id", day, "impressions")}
            WHERE i.event_id IS NOT NULL AND i.event_ts IS NOT NULL AND i.campaign_id IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY i.event_id) = 1
        ) TO '{imps}' {PARQUET}''')
    clicks = target("processed", "clicks", f"ds={day}", "data.parquet")
    step("clicks", f'''
        COPY (
            SELECT c.*, DATE '{day}' AS ds
            FROM read_json({files(drop["partner/clicks"])}, format = 'newline_delimited',
                           columns = {CLICKS}, ignore_errors = true) AS c
            {unseen("c", "click_id", day, "clicks")}
            WHERE c.click_id IS NOT NULL AND c.impression_id IS NOT NULL AND c.event_ts IS NOT NULL
              AND c.campaign_id IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY c.click_id) = 1
        ) TO '{clicks}' {PARQUET}''')
    campaigns = target("processed", "campaigns", f"ds={day}", "data.parquet")
    step("campaigns", f'''
        COPY (
            SELECT *, DATE '{day}' AS ds
            FROM read_csv({files(drop["crm/campaigns"])}, header = true, columns = {CAMPAIGNS},
                          ignore_errors = true)
            WHERE campaign_id IS NOT NULL AND name IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY campaign_id) = 1
        ) TO '{campaigns}' {PARQUET}''')
    stats = target("curated", "daily_campaign_stats", f"ds={day}", "data.parquet")
    step("daily_campaign_stats", f'''
        COPY (
            WITH clicks_per_impression AS (
                SELECT impression_id, count(*) AS clicks
                FROM read_parquet('{clicks}') GROUP BY impression_id
            )
            SELECT i.ds, i.campaign_id, c.name AS campaign_name, c.advertiser, i.country, i.device,
                   count(*) AS impressions,
                   CAST(coalesce(sum(k.clicks), 0) AS BIGINT) AS clicks,
                   round(coalesce(sum(k.clicks), 0) / count(*), 6) AS ctr,
                   CAST(round(sum(CAST(i.win_price AS DECIMAL(18, 4))) / 1000, 4)
                        AS DECIMAL(18, 4)) AS spend
            FROM read_parquet('{imps}') AS i
            LEFT JOIN clicks_per_impression AS k ON k.impression_id = i.event_id
            LEFT JOIN read_parquet('{campaigns}') AS c ON c.campaign_id = i.campaign_id
            GROUP BY ALL
        ) TO '{stats}' {PARQUET}''')
    totals = target("curated", "campaign_totals", "data.parquet")
    step("campaign_totals", f'''
        COPY (
            SELECT campaign_id, any_value(campaign_name) AS campaign_name,
                   CAST(count(DISTINCT ds) AS BIGINT) AS active_days,
                   CAST(sum(impressions) AS BIGINT) AS impressions,
                   CAST(sum(clicks) AS BIGINT) AS clicks,
                   round(sum(clicks) / sum(impressions), 6) AS ctr,
                   CAST(sum(spend) AS DECIMAL(18, 4)) AS spend
            FROM read_parquet('{out / "curated" / "daily_campaign_stats"}/*/*.parquet')
            GROUP BY campaign_id
        ) TO '{totals}' {PARQUET}''')
    con.close()
    return steps


started, cpu_started = time.perf_counter(), time.process_time()
runs = []
for day, drop in args["drops"].items():
    night = time.perf_counter()
    steps = nightly(day, drop)
    runs.append({"ds": day, "seconds": time.perf_counter() - night, "steps": steps})
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
Path(args["result"]).write_text(
    json.dumps({"seconds": seconds, "cpu_seconds": cpu, "runs": runs, "imported": imported})
)
"""


@dataclass
class ChildResult:
    """What a child process reported, how long it lived and its peak resident memory."""

    result: dict[str, Any]
    wall_seconds: float
    peak_rss_bytes: int


def run_child(
    code: str, args: dict[str, Any], scratch: Path, env: dict[str, str] | None = None
) -> ChildResult:
    """Run ``code`` in a fresh interpreter and measure its peak RSS with ``wait4``."""
    result_file = scratch / f"result-{time.monotonic_ns()}.json"
    args = {**args, "result": str(result_file)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(args)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed with exit code {proc.returncode}")
    result = json.loads(result_file.read_text())
    result_file.unlink()
    return ChildResult(result, wall, usage.ru_maxrss * 1024)  # ru_maxrss is KiB on Linux


# -- input data ----------------------------------------------------------------------------------


@dataclass
class InputData:
    """The generated partner drops: paths per day and dataset, and their sizes."""

    drops: dict[str, dict[str, list[str]]]
    impressions_bytes: int
    ndjson_bytes: int
    impressions_per_day: int
    generated_seconds: float | None


def ensure_data(work: Path, gb: float, days: int, redeliver: float = 0.0) -> InputData:
    """Generate the drops once per (size, days, re-delivered share); later runs reuse the cached files."""
    per_day = max(1_000, round(gb * 1e9 / days / BYTES_PER_IMPRESSION))
    folder = work / "data" / (f"{per_day}x{days}" + (f"-redeliver{redeliver:g}" if redeliver else ""))
    manifest = folder / "manifest.json"
    seconds = None
    if manifest.exists():
        drops = json.loads(manifest.read_text())
    else:
        from lakeplane.demo.generator import generate_day

        if folder.exists():
            shutil.rmtree(folder)
        started = time.perf_counter()
        drops = {}
        for offset in range(days):
            day = FIRST_DAY + dt.timedelta(days=offset)
            print(f"generating {day}: {per_day:,} impressions ...", flush=True)
            drop = generate_day(folder, day, per_day, redeliver=redeliver if offset else 0.0)
            drops[day.isoformat()] = {k: [str(p) for p in v] for k, v in drop.files.items()}
        seconds = time.perf_counter() - started
        manifest.write_text(json.dumps(drops, indent=1))  # last: marks the cache complete

    def size(dataset: str) -> int:
        return sum(Path(p).stat().st_size for d in drops.values() for p in d.get(dataset, []))

    imps = size("partner/impressions")
    return InputData(drops, imps, imps + size("partner/clicks"), per_day, seconds)


# -- checking that both did the same work -------------------------------------------------------


def lakeplane_figures(project: Path, cross_day: bool = False) -> dict[str, Any]:
    """Per-day curated and processed counts from the lake, read through ``Lake.query``."""
    from lakeplane import open_lake

    lake = open_lake(project)

    def rows(sql: str) -> list[dict[str, Any]]:
        return lake.query(sql).to_pylist()

    daily = rows(
        "SELECT CAST(ds AS VARCHAR) AS ds, CAST(sum(impressions) AS BIGINT) AS impressions, "
        "CAST(sum(clicks) AS BIGINT) AS clicks, count(*) AS groups "
        "FROM curated.daily_campaign_stats GROUP BY ds ORDER BY ds"
    )
    processed = rows(
        "SELECT CAST(ds AS VARCHAR) AS ds, count(*) AS impressions "
        "FROM processed.impressions GROUP BY ds ORDER BY ds"
    )
    clicks = rows(
        "SELECT CAST(ds AS VARCHAR) AS ds, count(*) AS clicks FROM processed.clicks GROUP BY ds ORDER BY ds"
    )
    wrong_type = rows(
        "SELECT CAST(ds AS VARCHAR) AS ds, count(*) AS n "
        "FROM processed.impressions_quarantine WHERE reason = 'wrong_type' GROUP BY ds"
    )
    totals = rows(
        "SELECT CAST(sum(impressions) AS BIGINT) AS impressions, "
        "CAST(sum(clicks) AS BIGINT) AS clicks, count(*) AS campaigns "
        "FROM curated.campaign_totals"
    )[0]
    figures = _by_day(daily, processed, clicks, wrong_type, totals)
    if cross_day:
        figures["events_on_two_days"] = rows(
            "SELECT count(*) - count(DISTINCT event_id) AS n FROM processed.impressions"
        )[0]["n"]
    return figures


def hand_written_figures(out: Path, cross_day: bool = False) -> dict[str, Any]:
    """The same counts from the hand-written script's Parquet files.

    With ``cross_day`` it also counts the wrong-typed lines it kept (the generator names their
    events ``bad-type-N`` every day): it keeps them on the first day only, as later days drop them as
    already published, where lakeplane quarantines them every day.
    """
    import duckdb

    con = duckdb.connect()

    def rows(sql: str) -> list[dict[str, Any]]:
        result = con.sql(sql)
        return [dict(zip(result.columns, r, strict=True)) for r in result.fetchall()]

    daily = rows(
        "SELECT CAST(ds AS VARCHAR) AS ds, CAST(sum(impressions) AS BIGINT) AS impressions, "
        "CAST(sum(clicks) AS BIGINT) AS clicks, count(*) AS groups "
        f"FROM read_parquet('{out}/curated/daily_campaign_stats/*/*.parquet') "
        "GROUP BY ds ORDER BY ds"
    )
    processed = rows(
        "SELECT CAST(ds AS VARCHAR) AS ds, count(*) AS impressions "
        f"FROM read_parquet('{out}/processed/impressions/*/*.parquet') GROUP BY ds"
    )
    clicks = rows(
        "SELECT CAST(ds AS VARCHAR) AS ds, count(*) AS clicks "
        f"FROM read_parquet('{out}/processed/clicks/*/*.parquet') GROUP BY ds"
    )
    totals = rows(
        "SELECT CAST(sum(impressions) AS BIGINT) AS impressions, "
        "CAST(sum(clicks) AS BIGINT) AS clicks, count(*) AS campaigns "
        f"FROM read_parquet('{out}/curated/campaign_totals/data.parquet')"
    )[0]
    kept = (
        rows(
            "SELECT CAST(ds AS VARCHAR) AS ds, count(*) AS n "
            f"FROM read_parquet('{out}/processed/impressions/*/*.parquet') "
            "WHERE event_id LIKE 'bad-type-%' GROUP BY ds"
        )
        if cross_day
        else []
    )
    figures = _by_day(daily, processed, clicks, [], totals)
    if cross_day:
        for day in figures["days"].values():
            day["wrong_typed_kept"] = 0
        for row in kept:
            figures["days"][row["ds"]]["wrong_typed_kept"] = row["n"]
        figures["events_on_two_days"] = rows(
            "SELECT count(*) - count(DISTINCT event_id) AS n "
            f"FROM read_parquet('{out}/processed/impressions/*/*.parquet')"
        )[0]["n"]
    return figures


def _by_day(
    daily: list[dict[str, Any]],
    processed: list[dict[str, Any]],
    clicks: list[dict[str, Any]],
    wrong_type: list[dict[str, Any]],
    totals: dict[str, Any],
) -> dict[str, Any]:
    days: dict[str, dict[str, int]] = {}
    for row in daily:
        days[row["ds"]] = {
            "curated_impressions": row["impressions"],
            "curated_clicks": row["clicks"],
            "groups": row["groups"],
        }
    for row in processed:
        days.setdefault(row["ds"], {})["processed_impressions"] = row["impressions"]
    for row in clicks:
        days.setdefault(row["ds"], {})["processed_clicks"] = row["clicks"]
    for row in wrong_type:
        days.setdefault(row["ds"], {})["wrong_type_quarantined"] = row["n"]
    return {"days": days, "totals": totals}


def compare(lake: dict[str, Any], hand: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether both runs hold the same valid rows, with one line per day explaining it.

    DuckDB's ``ignore_errors`` keeps a line whose value has the wrong type (the value becomes
    NULL) where lakeplane quarantines it as ``wrong_type``; those lines are the only expected
    difference in impression counts. Clicks and curated groups must be equal.
    """
    ok = True
    lines = []
    extra_total = 0
    for ds in sorted(set(lake["days"]) | set(hand["days"])):
        mine, theirs = lake["days"].get(ds, {}), hand["days"].get(ds, {})
        extra = theirs.get("wrong_typed_kept", mine.get("wrong_type_quarantined", 0))
        extra_total += extra
        same = (
            theirs.get("curated_impressions", -1) - mine.get("curated_impressions", -2) == extra
            and theirs.get("processed_impressions", -1) - mine.get("processed_impressions", -2) == extra
            and theirs.get("curated_clicks") == mine.get("curated_clicks")
            and theirs.get("processed_clicks") == mine.get("processed_clicks")
            and theirs.get("groups") == mine.get("groups")
        )
        ok = ok and same
        lines.append(
            f"  {ds}  impressions lakeplane {mine.get('curated_impressions', 0):>11,}  "
            f"hand-written {theirs.get('curated_impressions', 0):>11,}  "
            f"(hand-written keeps {extra} wrong-typed lines)  clicks "
            f"{mine.get('curated_clicks', 0):,} / {theirs.get('curated_clicks', 0):,}  "
            f"groups {mine.get('groups', 0):,} / {theirs.get('groups', 0):,}  "
            f"{'same' if same else 'DIFFERENT'}"
        )
    t_mine, t_theirs = lake["totals"], hand["totals"]
    same = (
        t_theirs["impressions"] - t_mine["impressions"] == extra_total
        and t_theirs["clicks"] == t_mine["clicks"]
        and t_theirs["campaigns"] == t_mine["campaigns"]
    )
    ok = ok and same
    if "events_on_two_days" in hand:
        once = lake["events_on_two_days"] == hand["events_on_two_days"] == 0
        ok = ok and once
        lines.append(
            f"  events published on two days: lakeplane {lake['events_on_two_days']:,}, hand-written "
            f"{hand['events_on_two_days']:,}  {'none' if once else 'DIFFERENT'}"
        )
    lines.append(
        f"  campaign_totals  impressions {t_mine['impressions']:,} / "
        f"{t_theirs['impressions']:,}  clicks {t_mine['clicks']:,} / {t_theirs['clicks']:,}"
        f"  campaigns {t_mine['campaigns']} / {t_theirs['campaigns']}  "
        f"{'same' if same else 'DIFFERENT'}"
    )
    return ok, lines


# -- reporting -----------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    """Bytes in a DuckDB-style size such as ``2GB`` (decimal) or ``512MiB`` (binary)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", text)
    unit = (match[2] if match else "").lower() or "b"
    if not match or unit not in UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 2GB, 1536MiB)")
    return int(float(match[1]) * UNITS[unit])


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def step_table(
    lake_runs: list[dict[str, Any]], hand_runs: list[dict[str, Any]], opened: float | None = None
) -> list[str]:
    """Seconds per step and day, lakeplane next to the hand-written script's matching statement;
    ``opened``, lakeplane's startup (``open_lake``, once per process), last."""
    days = [r["ds"] for r in lake_runs]
    steps: dict[str, dict[str, float]] = {}  # lakeplane step -> ds -> seconds
    hand_key: dict[str, str] = {}  # lakeplane step -> the hand-written statement doing its work
    for run in lake_runs:
        accounted = 0.0
        for ingest in run["ingests"]:
            name = f"ingest {ingest['dataset']}"
            steps.setdefault(name, {})[run["ds"]] = ingest["seconds"]
            hand_key[name] = ingest["dataset"].split("/")[-1]
            accounted += ingest["seconds"]
        for model in run["models"]:
            name = f"model {model['model'].split('.', 1)[-1]}"
            steps.setdefault(name, {})[run["ds"]] = model["seconds"]
            hand_key[name] = model["model"].rsplit(".", 1)[-1]
            accounted += model["seconds"]
        steps.setdefault("(run overhead: between steps)", {})[run["ds"]] = run["seconds"] - accounted
    lines = [
        f"  {'step':<36}" + "".join(f"{d:>12}" for d in days) + f"{'total':>10}" + f"{'hand-written':>14}"
    ]
    for name, by_day in steps.items():
        cells = "".join(f"{by_day[d]:>12.2f}" if d in by_day else f"{'-':>12}" for d in days)
        key = hand_key.get(name)
        hand = f"{sum(r['steps'].get(key, 0.0) for r in hand_runs):>14.2f}" if key else f"{'':>14}"
        lines.append(f"  {name:<36}{cells}{sum(by_day.values()):>10.2f}{hand}")
    if opened is not None:  # before the first night
        lines.append(f"  {'(startup: open_lake)':<36}{'':>{12 * len(days)}}{opened:>10.2f}")
    return lines


def engine_split(lake: dict[str, Any], hand_seconds: float) -> tuple[list[str], dict[str, float]]:
    """How lakeplane's compared time divides: its steps' DuckDB statements (each step session's
    ``engine_seconds``), its startup, and the rest (planning, commits, quality gates, Python)."""
    engine = sum(step["engine_seconds"] for run in lake["runs"] for step in [*run["ingests"], *run["models"]])
    opened = lake.get("opened") or 0.0
    rest = lake["seconds"] - engine - opened
    lines = [
        f"where lakeplane's {lake['seconds']:.2f} s went: DuckDB statements {engine:.2f} s, startup "
        f"{opened:.2f} s, the rest {rest:.2f} s (planning, commits, quality gates, sessions, Python)",
        f"  its DuckDB statements alone take {engine / hand_seconds:.2f}x the hand-written script's "
        f"{hand_seconds:.2f} s",
    ]
    split = {
        "engine_seconds": round(engine, 3),
        "startup_seconds": round(opened, 3),
        "rest_seconds": round(rest, 3),
        "engine_ratio": round(engine / hand_seconds, 3),
    }
    return lines, split


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def window_cost(trials: list[Trial], redeliver: float) -> dict[str, Any]:
    """What the cross-day window costs: lakeplane with it over lakeplane without it, in each trial."""
    ratios = [t.window_ratio for t in trials]
    cpu = [
        t.lakeplane.result["cpu_seconds"] / t.no_window.result["cpu_seconds"] for t in trials if t.no_window
    ]
    best_with = min(t.lakeplane.result["seconds"] for t in trials)
    best_without = min(t.no_window.result["seconds"] for t in trials if t.no_window)
    best = best_with / best_without
    across = [
        sum(i["duplicates_across_days"] for i in run["ingests"]) for run in trials[0].lakeplane.result["runs"]
    ]
    lines = [
        f"cross-day dedupe ({redeliver:.1%} of each day's impressions re-delivered the next day; "
        f"dedupe_window_days 7 against 0, same input, same trial):",
        f"  rows dropped as published on an earlier day, per night: {', '.join(f'{n:,}' for n in across)}",
        f"  lakeplane with the window {best_with:.2f} s, without {best_without:.2f} s (best of each): "
        f"{best:.3f}x; per trial {', '.join(f'{r:.3f}' for r in ratios)} (median {median(ratios):.3f}x); "
        f"CPU per trial {', '.join(f'{r:.3f}' for r in cpu)}   target <= {TARGET_WINDOW_RATIO}x   "
        f"{verdict(best <= TARGET_WINDOW_RATIO)}",
    ]
    return {
        "lines": lines,
        "redeliver": redeliver,
        "duplicates_across_days": across,
        "window_seconds_best": round(best_with, 3),
        "no_window_seconds_best": round(best_without, 3),
        "window_ratio_best": round(best, 4),
        "window_ratios": [round(r, 4) for r in ratios],
        "window_ratio_median": round(median(ratios), 4),
        "window_cpu_ratios": [round(r, 4) for r in cpu],
        "window_ratio_target": TARGET_WINDOW_RATIO,
        "window_ratio_pass": best <= TARGET_WINDOW_RATIO,
    }


def fresh_copy(landed: Path, project: Path) -> None:
    """A new project from the landed template; raw files are write-once, so they are hard links."""
    shutil.rmtree(project, ignore_errors=True)
    raw = landed / "lake" / "raw"

    def link_or_copy(src: str, dst: str) -> object:
        if Path(src).is_relative_to(raw):
            os.link(src, dst)
            return dst
        return shutil.copy2(src, dst)

    shutil.copytree(landed, project, copy_function=link_or_copy)


@dataclass
class Trial:
    """One measured pair of runs."""

    lakeplane: ChildResult
    hand_written: ChildResult
    #: With ``--redeliver``: lakeplane again with ``dedupe_window_days: 0``, the cost of the window.
    no_window: ChildResult | None = None

    @property
    def ratio(self) -> float:
        return float(self.lakeplane.result["seconds"] / self.hand_written.result["seconds"])

    @property
    def window_ratio(self) -> float:
        assert self.no_window is not None
        return float(self.lakeplane.result["seconds"] / self.no_window.result["seconds"])


def bytecode_env(work: Path) -> dict[str, str]:
    """The children's environment: Python's bytecode cache on (in ``work/pycache``), with
    lakeplane's modules compiled there first, as installing a wheel compiles them.

    A development install in an environment with ``PYTHONDONTWRITEBYTECODE`` set would otherwise
    compile every lakeplane module from source in every child (about 0.13 s a start), which an
    installed package never does; the hand-written script's only import, duckdb, is compiled at
    install. Both sides get this same environment.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    package = Path(importlib.util.find_spec("lakeplane").origin or "").parent  # type: ignore[union-attr]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], env=env, check=True)
    return env


def run_trials(args: argparse.Namespace, data: InputData, work: Path) -> tuple[ChildResult, list[Trial]]:
    """Land once, then ``--repeat`` pairs of runs, alternating which side goes first."""
    landed, project, hand_out = (work / "lakeplane-landed", work / "lakeplane-project", work / "hand-written")
    engine: dict[str, Any] = {"memory_limit": args.memory_limit}
    if args.threads:
        engine["threads"] = args.threads
    trials = []
    env = bytecode_env(work)
    with tempfile.TemporaryDirectory(dir=work) as scratch_dir:
        scratch = Path(scratch_dir)
        print("lakeplane: building the demo project and landing the drops ...", flush=True)
        land = run_child(LAKEPLANE_LAND, {"project": str(landed), "drops": data.drops}, scratch, env)
        for number in range(1, args.repeat + 1):
            fresh_copy(landed, project)
            shutil.rmtree(hand_out, ignore_errors=True)
            results: dict[str, ChildResult] = {}
            sides = ["hand-written", "lakeplane"] if number % 2 else ["lakeplane", "hand-written"]
            if args.redeliver:  # the windowless run next to the windowed one, before or after it
                sides.insert(2 * (number % 2), NO_WINDOW)
            for side in sides:
                print(f"trial {number}/{args.repeat}: {side} nightly runs ...", flush=True)
                if side == "lakeplane":
                    results[side] = run_child(
                        LAKEPLANE_RUN,
                        {"project": str(project), "engine": engine, "days": list(data.drops)},
                        scratch,
                        env,
                    )
                elif side == NO_WINDOW:
                    fresh_copy(landed, work / "lakeplane-no-window")
                    results[side] = run_child(
                        LAKEPLANE_RUN,
                        {
                            "project": str(work / "lakeplane-no-window"),
                            "engine": engine,
                            "days": list(data.drops),
                            "overrides": {"datasets": {d: {"dedupe_window_days": 0} for d in KEYED_EVENTS}},
                        },
                        scratch,
                        env,
                    )
                else:
                    results[side] = run_child(
                        HAND_WRITTEN,
                        {
                            "out": str(hand_out),
                            "drops": data.drops,
                            "memory_limit": args.memory_limit,
                            "threads": args.threads,
                            "cross_day": bool(args.redeliver),
                        },
                        scratch,
                        env,
                    )
            trials.append(Trial(results["lakeplane"], results["hand-written"], results.get(NO_WINDOW)))
    return land, trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--gb",
        type=float,
        default=1.0,
        help="GB (10^9 bytes) of impressions NDJSON to generate (default 1.0)",
    )
    parser.add_argument("--days", type=int, default=4, help="days the data is spread over (default 4)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="measured pairs of runs; the best of each side is compared (default 3)",
    )
    parser.add_argument(
        "--memory-limit",
        default="2GB",
        help="DuckDB memory limit for both sides (default 2GB, as the demo project)",
    )
    parser.add_argument(
        "--memory-overhead",
        default=DEFAULT_OVERHEAD,
        help=f"fixed allowance above the limit for the peak-RSS target (default {DEFAULT_OVERHEAD})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="DuckDB threads for both sides (default: DuckDB's, one per core)",
    )
    parser.add_argument(
        "--redeliver",
        type=float,
        default=0.0,
        help="share of each day's impressions re-delivered in the next day's batch (e.g. 0.03): both "
        "sides then drop events published on an earlier day, and lakeplane also runs with "
        "dedupe_window_days: 0 to measure the window's cost (default 0: no cross-day case)",
    )
    parser.add_argument(
        "--work-dir", type=Path, default=DEFAULT_WORK, help=f"scratch folder (default {DEFAULT_WORK})"
    )
    args = parser.parse_args(argv)
    limit_bytes = parse_size(args.memory_limit)
    overhead_bytes = parse_size(args.memory_overhead)
    if args.repeat < 1 or args.days < 1 or args.gb <= 0:
        parser.error("--repeat and --days must be at least 1, --gb above 0")

    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = ensure_data(work, args.gb, args.days, args.redeliver)
    cores = os.cpu_count()
    load = os.getloadavg()[0]
    land, trials = run_trials(args, data, work)
    load_end = os.getloadavg()[0]
    same, check_lines = compare(
        lakeplane_figures(work / "lakeplane-project", bool(args.redeliver)),
        hand_written_figures(work / "hand-written", bool(args.redeliver)),
    )

    best_lake = min((t.lakeplane for t in trials), key=lambda c: c.result["seconds"])
    best_hand = min((t.hand_written for t in trials), key=lambda c: c.result["seconds"])
    lake_s, hand_s = best_lake.result["seconds"], best_hand.result["seconds"]
    ratio = lake_s / hand_s
    lake_cpu = min(t.lakeplane.result["cpu_seconds"] for t in trials)
    hand_cpu = min(t.hand_written.result["cpu_seconds"] for t in trials)
    gb_per_s = data.ndjson_bytes / 1e9 / lake_s
    lake_rss = max(t.lakeplane.peak_rss_bytes for t in trials)
    hand_rss = max(t.hand_written.peak_rss_bytes for t in trials)
    allowed = limit_bytes + overhead_bytes
    ratios = sorted(t.ratio for t in trials)
    median_ratio = (
        ratios[len(ratios) // 2]
        if len(ratios) % 2
        else (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    )

    print()
    print(
        f"nightly pipeline benchmark: {args.days} days x {data.impressions_per_day:,} impressions, "
        f"{cores} cores, DuckDB memory_limit {args.memory_limit}, threads "
        f"{args.threads or 'DuckDB default'}"
    )
    print(
        f"  load average: {load:.2f} at start, {load_end:.2f} at end (above ~0 means other work "
        "shared the cores; compare the best of several trials)"
    )
    if data.generated_seconds is not None:
        print(f"  generated the input in {data.generated_seconds:.1f} s (cached in {work / 'data'})")
    print(
        f"  input: impressions NDJSON {data.impressions_bytes / 1e9:.3f} GB, all raw NDJSON "
        f"(impressions + clicks) {data.ndjson_bytes / 1e9:.3f} GB"
    )
    print(
        f"  lakeplane landing (copy + sha256 + line count into the raw zone): "
        f"{land.result['seconds']:.2f} s, once - reported only, not compared: the hand-written "
        "script reads the files in place"
    )
    print()
    print("trials (seconds of the nightly runs, measured inside each child):")
    for number, trial in enumerate(trials, 1):
        print(
            f"  {number}: lakeplane {trial.lakeplane.result['seconds']:7.2f}  hand-written "
            f"{trial.hand_written.result['seconds']:7.2f}  ratio {trial.ratio:.2f}    CPU seconds: "
            f"lakeplane {trial.lakeplane.result['cpu_seconds']:7.2f}  hand-written "
            f"{trial.hand_written.result['cpu_seconds']:7.2f}"
        )
    print()
    print(
        "seconds per step in the fastest trial of each side "
        "(lakeplane per day and total; hand-written total of the same statement)"
    )
    for line in step_table(
        best_lake.result["runs"], best_hand.result["runs"], best_lake.result.get("opened")
    ):
        print(line)
    split_lines, split = engine_split(best_lake.result, best_hand.result["seconds"])
    for line in split_lines:
        print(line)
    print()
    print(
        "same curated numbers? (valid rows; the hand-written script cannot see wrong-typed "
        "values, lakeplane quarantines them)"
    )
    for line in check_lines:
        print(line)
    print(f"  -> {'MATCH' if same else 'MISMATCH'}")
    print()
    print(
        f"lakeplane nightly runs:     {lake_s:8.2f} s   best of {len(trials)} (child wall "
        f"{best_lake.wall_seconds:.2f} s with interpreter start and imports; its imports "
        f"{best_lake.result['imported']:.2f} s)"
    )
    print(
        f"hand-written DuckDB script: {hand_s:8.2f} s   best of {len(trials)} (child wall "
        f"{best_hand.wall_seconds:.2f} s; its imports {best_hand.result['imported']:.2f} s)"
    )
    print(
        f"ratio of the child wall times (interpreter start and imports included): "
        f"{best_lake.wall_seconds / best_hand.wall_seconds:.2f}x"
    )
    print(
        f"ratio lakeplane / hand-written: {ratio:.2f}x (median of trials {median_ratio:.2f}x)   "
        f"target <= {TARGET_RATIO}x   {verdict(ratio <= TARGET_RATIO)}"
    )
    print(
        f"CPU seconds (all threads; less sensitive to other work on the machine): lakeplane "
        f"{lake_cpu:.2f}, hand-written {hand_cpu:.2f}, ratio {lake_cpu / hand_cpu:.2f}x "
        "(best of the trials)"
    )
    print(
        f"lakeplane throughput: {gb_per_s:.3f} GB/s of raw NDJSON   target >= {TARGET_GB_PER_S} "
        f"GB/s   {verdict(gb_per_s >= TARGET_GB_PER_S)}   (hand-written: "
        f"{data.ndjson_bytes / 1e9 / hand_s:.3f} GB/s)"
    )
    print(
        f"peak RSS: lakeplane {mib(lake_rss)}, hand-written {mib(hand_rss)}, landing "
        f"{mib(land.peak_rss_bytes)}; memory_limit {args.memory_limit} ({mib(limit_bytes)}) + "
        f"overhead {mib(overhead_bytes)} = {mib(allowed)}   {verdict(lake_rss <= allowed)}"
    )
    window = window_cost(trials, args.redeliver) if args.redeliver else None
    if window:
        for line in window.pop("lines"):
            print(line)
    print(f"results: {'MATCH' if same else 'MISMATCH'}")
    figures = {
        "days": args.days,
        "impressions_per_day": data.impressions_per_day,
        "impressions_bytes": data.impressions_bytes,
        "ndjson_bytes": data.ndjson_bytes,
        "cores": cores,
        "threads": args.threads,
        "repeat": len(trials),
        "load_average_start": round(load, 2),
        "load_average_end": round(load_end, 2),
        "memory_limit": args.memory_limit,
        "memory_limit_bytes": limit_bytes,
        "memory_overhead_bytes": overhead_bytes,
        "lakeplane_seconds": round(lake_s, 3),
        "hand_written_seconds": round(hand_s, 3),
        "trials": [
            {
                "lakeplane_seconds": round(t.lakeplane.result["seconds"], 3),
                "hand_written_seconds": round(t.hand_written.result["seconds"], 3),
                "lakeplane_cpu_seconds": round(t.lakeplane.result["cpu_seconds"], 3),
                "hand_written_cpu_seconds": round(t.hand_written.result["cpu_seconds"], 3),
            }
            for t in trials
        ],
        "lakeplane_cpu_seconds": round(lake_cpu, 3),
        "hand_written_cpu_seconds": round(hand_cpu, 3),
        "cpu_ratio": round(lake_cpu / hand_cpu, 3),
        "ratio": round(ratio, 3),
        "median_ratio": round(median_ratio, 3),
        "wall_ratio": round(best_lake.wall_seconds / best_hand.wall_seconds, 3),
        "lakeplane_import_seconds": round(best_lake.result["imported"], 3),
        "hand_written_import_seconds": round(best_hand.result["imported"], 3),
        "lakeplane_split": split,
        "ratio_target": TARGET_RATIO,
        "ratio_pass": ratio <= TARGET_RATIO,
        "gb_per_s": round(gb_per_s, 4),
        "gb_per_s_target": TARGET_GB_PER_S,
        "gb_per_s_pass": gb_per_s >= TARGET_GB_PER_S,
        "hand_written_gb_per_s": round(data.ndjson_bytes / 1e9 / hand_s, 4),
        "lakeplane_peak_rss_bytes": lake_rss,
        "hand_written_peak_rss_bytes": hand_rss,
        "landing_peak_rss_bytes": land.peak_rss_bytes,
        "memory_pass": lake_rss <= allowed,
        "landing_seconds": round(land.result["seconds"], 3),
        "results_match": same,
        "lakeplane_steps": {
            r["ds"]: {
                **{f"ingest {i['dataset']}": i["seconds"] for i in r["ingests"]},
                **{f"model {m['model']}": m["seconds"] for m in r["models"]},
            }
            for r in best_lake.result["runs"]
        },
        "hand_written_steps": {
            r["ds"]: {k: round(v, 3) for k, v in r["steps"].items()} for r in best_hand.result["runs"]
        },
    }
    if window:
        figures["cross_day"] = window
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

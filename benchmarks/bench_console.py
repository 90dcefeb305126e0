"""Server time of every console page and its /api twin with 10,000 runs and 100 tables in the store.

Usage::

    .venv/bin/python benchmarks/bench_console.py [--runs 10000] [--tables 100] [--repeat 5]

A generator fills the demo project's store directly: ``--tables`` Iceberg tables of three commits
each (two thirds in the ad-tech domain, a third in telco), ``--runs`` runs of the nightly pipeline
written to the run store (eight attempts each, with usage and rule outcomes as real runs record
them), and 5,000 queries in the query history. Each page is asked for ``--repeat`` times as ana (an
analyst, who may read part of the lake) and as fred (an admin) after one warm-up; the figure is the
median of the app's own time (its ``Server-Timing`` header). The baseline, measured in the same run,
is the raw SQL reads of the same data the page shows, without deciding access or rendering. The
target: every page under 300 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from lakeplane.catalog import TableRef
from lakeplane.config_console import ConsoleConfig
from lakeplane.console.app import create_app
from lakeplane.demo.run import build_project
from lakeplane.governance.tokens import access_tokens
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.store import ATTEMPTS, RUNS, RunStore
from lakeplane.query.history import HISTORY, QueryHistory

WORK = Path(__file__).resolve().parent / ".work" / "console"
TARGET_MS = 300.0
STEPS = ("impressions", "clicks", "campaigns", "cdr", "subscribers", "daily_campaign_stats", "cell_daily")
SLOS = """
slos:
  stats_fresh: {kind: freshness, table: curated.daily_campaign_stats, objective: 26h}
  nightly_dq: {kind: dq_pass_rate, pipeline: nightly, objective: 0.95}
  nightly_retries: {kind: retry_rate, pipeline: nightly, objective: 0.10}
"""


def make_tables(lake: Lake, count: int) -> list[str]:
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "region", StringType(), required=False),
        NestedField(3, "value", LongType(), required=False),
    )
    names = []
    for i in range(count):
        domain = "telco" if i % 3 == 2 else "adtech"
        ref = TableRef(domain, "processed", f"bench_{i:03d}")
        table = lake.catalog.create(ref, schema, UNPARTITIONED_PARTITION_SPEC)
        for commit in range(3):
            rows = pa.table(
                {
                    "id": pa.array(range(commit * 100, commit * 100 + 100), pa.int64()),
                    "region": pa.array(["EU", "US"] * 50),
                    "value": pa.array([i * commit] * 100, pa.int64()),
                }
            )
            table.append(rows)
        names.append(str(ref))
    return names


def make_runs(lake: Lake, count: int) -> None:
    RunStore(lake.catalog.state_engine)
    random.seed(14)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    runs, attempts = [], []
    for n in range(count):
        at = start + dt.timedelta(minutes=30 * n)
        run_id = f"nightly-{at:%Y-%m-%d}-{n:08x}"
        failed = n % 50 == 7
        runs.append(
            {
                "run_id": run_id,
                "pipeline": "nightly",
                "ds": at.date().isoformat(),
                "state": "failed" if failed else "succeeded",
                "started_at": at.isoformat(timespec="milliseconds"),
                "ended_at": (at + dt.timedelta(seconds=40)).isoformat(timespec="milliseconds"),
                "reason": "cell_daily failed" if failed else None,
            }
        )
        for s, step in enumerate(STEPS):
            began = at + dt.timedelta(seconds=5 * s)
            metrics = {
                "rows_in": 2000,
                "rows_out": 1900 + s,
                "bytes_read": 650_000,
                "bytes_written": 66_000,
                "engine": "duckdb",
                "placement": "engine.type is duckdb",
                "cores": 2,
                "peak_memory_mb": 200.0 + random.random() * 20,
                "seconds": 0.4 + random.random(),
                "cpu_seconds": 0.3,
                "vcpu_seconds": 0.8,
                "memory_gb_seconds": 0.08,
                "bytes_scanned": 0,
            }
            if step in ("daily_campaign_stats", "cell_daily"):
                metrics["quality"] = [
                    {
                        "rule": "RowCount > 0",
                        "passed": True,
                        "observed": 405.0,
                        "message": "RowCount is 405",
                        "failing_sample": [],
                        "ruleset": f"quality/{step}.dqdl",
                        "blocking": True,
                    },
                    {
                        "rule": 'IsComplete "region"',
                        "passed": not failed,
                        "observed": 1.0,
                        "message": "all rows passed",
                        "failing_sample": [],
                        "ruleset": f"quality/{step}.dqdl",
                        "blocking": True,
                    },
                ]
            attempts.append(
                {
                    "run_id": run_id,
                    "step": step,
                    "attempt": 1,
                    "state": "failed" if failed and step == "cell_daily" else "succeeded",
                    "started_at": began.isoformat(timespec="milliseconds"),
                    "ended_at": (began + dt.timedelta(seconds=4)).isoformat(timespec="milliseconds"),
                    "metrics": json.dumps(metrics),
                }
            )
    with lake.catalog.state_engine.begin() as conn:
        conn.execute(RUNS.insert(), runs)
        conn.execute(ATTEMPTS.insert(), attempts)


def make_queries(lake: Lake, count: int) -> None:
    QueryHistory(lake.catalog.state_engine)
    rows = [
        {
            "id": f"q{n:08d}",
            "started_at": (dt.datetime(2026, 6, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n)).isoformat(),
            "principal": ("ana", "eve", "fred", "ian")[n % 4],
            "workgroup": "primary",
            "sql": f"SELECT region, count(*) FROM adtech.processed.bench_{n % 60:03d} GROUP BY 1",
            "tables": json.dumps([f"adtech.processed.bench_{n % 60:03d}"]),
            "bytes_estimated": 4096,
            "bytes_actual": 3000,
            "rows": 2,
            "seconds": 0.02,
            "cache_hit": False,
            "cost_usd": 0.0000001,
            "outcome": "succeeded",
        }
        for n in range(count)
    ]
    with lake.catalog.state_engine.begin() as conn:
        conn.execute(HISTORY.insert(), rows)


def server_ms(client: TestClient, path: str, auth: tuple[str, str], repeat: int) -> float:
    client.get(path, auth=auth)  # warm: first use of a service, the viewer's tables
    times = []
    for _ in range(repeat):
        response = client.get(path, auth=auth)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        times.append(float(response.headers["server-timing"].split("dur=")[1]))
    return statistics.median(times)


def baseline_ms(read: Callable[[sa.Connection], object], engine: sa.Engine, repeat: int) -> float:
    times = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        with engine.connect() as conn:
            read(conn)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])


def baselines(lake: Lake, table: str, run_id: str) -> dict[str, Callable[[sa.Connection], object]]:
    """The raw reads behind each page: what it shows, straight from the database."""

    def runs(conn: sa.Connection) -> object:
        page = conn.execute(sa.select(RUNS).order_by(RUNS.c.started_at.desc()).limit(50)).all()
        return conn.execute(sa.select(ATTEMPTS).where(ATTEMPTS.c.run_id.in_([r.run_id for r in page]))).all()

    def run(conn: sa.Connection) -> object:
        conn.execute(sa.select(RUNS).where(RUNS.c.run_id == run_id)).all()
        return conn.execute(sa.select(ATTEMPTS).where(ATTEMPTS.c.run_id == run_id)).all()

    def tables(conn: sa.Connection) -> object:
        return conn.execute(sa.text("SELECT * FROM iceberg_tables")).all()

    def one_table(conn: sa.Connection) -> object:
        return lake.catalog.describe(table)

    def quality(conn: sa.Connection) -> object:
        return conn.execute(
            sa.select(ATTEMPTS.c.metrics)
            .where(ATTEMPTS.c.metrics.like('%"quality": [{%'))
            .order_by(ATTEMPTS.c.started_at.desc())
            .limit(400)
        ).all()

    def queries(conn: sa.Connection) -> object:
        return conn.execute(sa.select(HISTORY).order_by(HISTORY.c.started_at.desc()).limit(50)).all()

    def audit(conn: sa.Connection) -> object:
        return conn.execute(sa.text("SELECT * FROM lakeplane_audit ORDER BY seq DESC LIMIT 50")).all()

    return {
        "/": runs,
        "/runs": runs,
        "/runs/{id}": run,
        "/tables": tables,
        "/tables/{t}": one_table,
        "/lineage/{t}": tables,
        "/quality": quality,
        "/slos": runs,
        "/queries": queries,
        "/access": audit,
        "/metrics": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    started = time.perf_counter()
    lake = build_project(WORK / "project")
    with (lake.project_dir / "lakeplane.yaml").open("a") as config:
        config.write(SLOS)
    lake = open_lake(lake.project_dir)
    names = make_tables(lake, args.tables)
    make_runs(lake, args.runs)
    make_queries(lake, 5_000)
    print(
        f"filled in {time.perf_counter() - started:.1f} s: "
        f"{args.tables} tables, {args.runs} runs, 5000 queries"
    )
    tokens = access_tokens(lake.governance)
    auth = {who: (who, tokens.create(who).secret) for who in ("ana", "fred")}
    client = TestClient(create_app(lake, ConsoleConfig(admins=["fred"], metrics_cache_s=3600)))
    table = {"ana": names[0], "fred": names[2]}  # fred reads telco only, ana both domains
    cold = client.get("/", auth=auth["ana"])
    cold_ms = float(cold.headers["server-timing"].split("dur=")[1])
    run_id = client.get("/api/runs?page=3", auth=auth["ana"]).json()["runs"][0]["run_id"]
    pages = {
        "/": "/",
        "/runs": "/runs",
        "/runs?page=150": "/runs?page=150",
        "/runs/{id}": f"/runs/{run_id}",
        "/tables": "/tables",
        "/tables/{t}": "/tables/{t}",
        "/lineage/{t}": "/lineage/{t}",
        "/quality": "/quality",
        "/quality?table={t}": "/quality?table={t}",
        "/slos": "/slos",
        "/queries": "/queries",
        "/access": "/access",
    }
    reads = baselines(lake, table["ana"], run_id)
    engine = lake.catalog.state_engine
    worst = 0.0
    print(f"median server time of {args.repeat} requests after a warm-up (ms); baseline: the raw reads")
    print(f"  {'page':22s} {'who':5s} {'page':>8s} {'/api':>8s} {'baseline':>9s} {'ratio':>6s}")
    for label, path in pages.items():
        base_key = label.split("?")[0] if label.split("?")[0] in reads else "/runs"
        base = baseline_ms(reads[base_key], engine, args.repeat)
        for who in ("ana", "fred"):
            asked = path.replace("{t}", table[who])
            page_ms = server_ms(client, asked, auth[who], args.repeat)
            api = "/api/overview" if asked == "/" else f"/api{asked}"
            api_ms = server_ms(client, api, auth[who], args.repeat)
            worst = max(worst, page_ms, api_ms)
            print(
                f"  {label:22s} {who:5s} {page_ms:8.1f} {api_ms:8.1f} {base:9.1f} "
                f"{page_ms / max(base, 0.01):6.1f}x"
            )
    first = client.get("/metrics", auth=auth["fred"])
    first_ms = float(first.headers["server-timing"].split("dur=")[1])
    metrics_ms = server_ms(client, "/metrics", auth["fred"], args.repeat)
    worst = max(worst, metrics_ms)
    metrics_base = baseline_ms(reads["/metrics"], engine, args.repeat)
    print(f"  {'/metrics (cached)':22s} {'fred':5s} {metrics_ms:8.1f} {'':>8s} {metrics_base:9.1f}")
    print(f"  /metrics worked out anew (once per console.metrics_cache_s): {first_ms:.1f} ms")
    print(f"  a principal's first page (its readable tables decided, services opened): {cold_ms:.1f} ms")
    verdict = "met" if worst < TARGET_MS else "NOT met"
    print(f"slowest: {worst:.1f} ms; target < {TARGET_MS:.0f} ms per page: {verdict}")


if __name__ == "__main__":
    main()

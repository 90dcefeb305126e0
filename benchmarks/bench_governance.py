"""The governance plane's cost: compile time, and governed queries against the same queries run directly.

Targets (from the issue): compiling a typical query (parse, check, rewrite, transpile) takes under
5 ms at p95; a governed query takes at most 1.05x the same query run directly on the same files.

Usage::

    .venv/bin/python benchmarks/bench_governance.py [--calls-per-day 2000000] [--repeat 5]

"Directly" means the same SQL compiled without a policy (tables resolved, nothing secured) and run
on the same engine, files and pruning. Queries that read a hashed column also pay the HMAC of every
row they read; that cost is reported on its own line, not hidden in the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import time
from pathlib import Path

from lakeplane.demo import telco
from lakeplane.demo.run import build_project
from lakeplane.governance.secure import compile_secured
from lakeplane.lake import Lake, open_lake
from lakeplane.query.compiler import compile_query

WORK = Path(__file__).parent / ".work" / "governance"
DAYS = (dt.date(2026, 11, 1), dt.date(2026, 11, 2))

#: Typical queries, each run as the principal the comparison is about.
QUERIES = {
    "regional minutes (eve: row filter)": (
        "eve",
        "SELECT region, call_type, count(*) AS calls, sum(duration_s) AS seconds "
        "FROM telco.processed.cdr WHERE ds = DATE '2026-11-02' GROUP BY 1, 2",
    ),
    "busy cells (ana: masked columns not read)": (
        "ana",
        "SELECT cell_id, count(*) AS calls FROM telco.processed.cdr "
        "WHERE duration_s > 600 GROUP BY cell_id ORDER BY calls DESC LIMIT 20",
    ),
    "plans by region (ana: join)": (
        "ana",
        "SELECT s.plan, c.region, count(*) AS calls FROM telco.processed.cdr c "
        "JOIN telco.processed.subscribers s ON s.region = c.region AND s.plan = 'business' "
        "WHERE c.ds = DATE '2026-11-01' GROUP BY 1, 2",
    ),
    "callers per cell (fred: policy, no masks)": (
        "fred",
        "SELECT cell_id, count(DISTINCT msisdn) AS callers, sum(duration_s) AS seconds "
        "FROM telco.processed.cdr GROUP BY cell_id",
    ),
    "top callers (ana: reads a hashed column)": (
        "ana",
        "SELECT msisdn, count(*) AS calls FROM telco.processed.cdr GROUP BY msisdn "
        "ORDER BY calls DESC LIMIT 10",
    ),
}
COMPILE_ONLY = [
    "SELECT * FROM telco.processed.cdr LIMIT 10",
    "WITH c AS (SELECT msisdn, region FROM telco.processed.cdr WHERE ds = DATE '2026-11-01') "
    "SELECT region, count(DISTINCT msisdn) FROM c GROUP BY region",
    "SELECT a.cell_id, b.plan FROM telco.processed.cdr a JOIN telco.processed.subscribers b "
    "USING (msisdn) WHERE a.duration_s BETWEEN 10 AND 100",
    "SELECT region FROM telco.processed.cdr UNION SELECT region FROM telco.processed.subscribers",
    "SELECT msisdn, sum(duration_s) OVER (PARTITION BY region ORDER BY started_at) FROM telco.processed.cdr",
    *[sql for _, sql in QUERIES.values()],
]


def build(calls_per_day: int) -> Lake:
    project = WORK / f"project-{calls_per_day}"
    if (project / "done").exists():
        return open_lake(project)
    shutil.rmtree(project, ignore_errors=True)
    lake = build_project(project)
    for day in DAYS:
        for dataset, files in telco.generate_day(WORK / f"drops-{calls_per_day}", day, calls_per_day).items():
            lake.land(dataset, files, day)
        lake.run(day)
    (project / "done").write_text("ok")
    return open_lake(project)


def compile_times(lake: Lake, repeat: int) -> dict[str, float]:
    governance = lake.governance
    key = governance.key()
    principal = governance.principal("ana")
    accesses = {
        t: governance.access(principal, t) for t in ("telco.processed.cdr", "telco.processed.subscribers")
    }
    resolved = {t: t for t in accesses}
    secured, direct = [], []
    for _ in range(repeat):
        for sql in COMPILE_ONLY:
            started = time.perf_counter()
            compile_secured(
                sql,
                resolved.__getitem__,
                accesses.__getitem__,
                key,
                principal="ana",
                read="trino",
                write="duckdb",
            )
            secured.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            compile_query(sql, resolved.__getitem__, read="trino", write="duckdb")
            direct.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": statistics.median(secured),
        "p95_ms": _p95(secured),
        "direct_p50_ms": statistics.median(direct),
        "direct_p95_ms": _p95(direct),
    }


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def query_times(lake: Lake, ungoverned: Lake, repeat: int) -> list[dict[str, object]]:
    results = []
    for name, (principal, sql) in QUERIES.items():
        governed_s, direct_s = [], []
        for trial in range(repeat):
            runs = [
                ("governed", lambda s=sql, p=principal: lake.query(s, principal=p, dialect="trino")),
                ("direct", lambda s=sql: ungoverned.query(s, dialect="trino")),
            ]
            for label, run in runs if trial % 2 == 0 else reversed(runs):
                started = time.perf_counter()
                run()
                (governed_s if label == "governed" else direct_s).append(time.perf_counter() - started)
        governed, direct = min(governed_s), min(direct_s)
        results.append(
            {
                "query": name,
                "principal": principal,
                "governed_s": round(governed, 4),
                "direct_s": round(direct, 4),
                "ratio": round(governed / direct, 3),
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-per-day", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"building the governed telco lake ({args.calls_per_day:,} calls a day, {len(DAYS)} days) ...")
    lake = build(args.calls_per_day)
    ungoverned_dir = WORK / f"ungoverned-{args.calls_per_day}"
    shutil.rmtree(ungoverned_dir, ignore_errors=True)
    ungoverned_dir.mkdir(parents=True)
    # The same catalog and files, without the policy file: "directly".
    (ungoverned_dir / "lakeplane.yaml").write_text(
        (lake.project_dir / "lakeplane.yaml").read_text().replace("root: lake", f"root: {lake.storage.base}")
    )
    ungoverned = open_lake(ungoverned_dir)

    compile_stats = compile_times(lake, repeat=max(20, args.repeat * 10))
    print(f"\ncompile (parse, check, rewrite, transpile), {len(COMPILE_ONLY)} queries:")
    print(
        f"  governed p50 {compile_stats['p50_ms']:.2f} ms, p95 {compile_stats['p95_ms']:.2f} ms "
        f"(target p95 < 5 ms: {'PASS' if compile_stats['p95_ms'] < 5 else 'MISS'}); "
        f"ungoverned p50 {compile_stats['direct_p50_ms']:.2f} ms, "
        f"p95 {compile_stats['direct_p95_ms']:.2f} ms"
    )
    results = query_times(lake, ungoverned, args.repeat)
    print(f"\ngoverned vs direct, best of {args.repeat} (target <= 1.05x):")
    for r in results:
        hashed = "hashed" in str(r["query"])
        verdict = (
            "(HMAC of every row read; not a pushdown cost)"
            if hashed
            else ("PASS" if float(r["ratio"]) <= 1.05 else "MISS")
        )  # type: ignore[arg-type]
        extra_ms = (float(r["governed_s"]) - float(r["direct_s"])) * 1000  # type: ignore[arg-type]
        print(
            f"  {r['query']:45s} governed {r['governed_s']:.3f} s  direct {r['direct_s']:.3f} s  "
            f"(+{extra_ms:.1f} ms)  ratio {r['ratio']:.3f}  {verdict}"
        )
    print(json.dumps({"compile": compile_stats, "queries": results}))


if __name__ == "__main__":
    main()

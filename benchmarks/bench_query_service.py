"""The query service's warm path: governed queries through one long-lived process, against DuckDB
run directly on the same files.

Targets (from the issue): through a warm process, a governed query's fixed cost is at most 20 ms
(governed warm minus DuckDB direct, same SQL, same files), a point query's p95 is under 50 ms, and
16 concurrent clients run with no errors.

Usage::

    .venv/bin/python benchmarks/bench_query_service.py [--calls-per-day 1000000] [--repeat 40] [--seconds 10]

Three ways to run each query, interleaved in one run:

* **cold**: a fresh ``Lake`` per query (``open_lake(...).query(...)``), as a one-shot CLI call pays
  once its interpreter is up: DuckDB session, planning, compile and audit, nothing reused.
* **warm**: one ``Lake`` for the whole run (what ``lakeplane serve`` holds), calling the same entry
  point as every client (``Queries.run`` through ``Lake.query``): compiled SQL, plans and sandboxed
  sessions reused within a snapshot, audit records committed before the rows are handed over.
* **direct**: one DuckDB connection with a view per table over the same data files
  (``read_parquet`` of the files the table's current snapshot holds), the same SQL, no governance.

Then 16 client threads run a mix of the queries as three principals through the warm ``Lake`` for
``--seconds``: throughput, latency percentiles and errors; and the warm path with result reuse on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

from lakeplane.catalog.scan import plan_scan
from lakeplane.demo import telco
from lakeplane.demo.run import build_project
from lakeplane.engines.base import Capability, EngineSession
from lakeplane.lake import Lake, open_lake
from lakeplane.query.reuse import cache_hit

WORK = Path(__file__).parent / ".work" / "query_service"
DAYS = (dt.date(2026, 11, 1), dt.date(2026, 11, 2))
TABLES = {"telco.processed.cdr": "cdr", "telco.processed.subscribers": "subscribers"}
POINT = "point query (ana: one call, masked)"

#: name -> (principal, SQL); the point query's call id is filled in once the lake exists.
QUERIES = {
    POINT: (
        "ana",
        "SELECT call_id, msisdn, region, duration_s FROM telco.processed.cdr WHERE call_id = '{call}'",
    ),
    "regional minutes (eve: row filter)": (
        "eve",
        "SELECT region, call_type, count(*) AS calls, sum(duration_s) AS seconds "
        "FROM telco.processed.cdr WHERE ds = DATE '2026-11-02' GROUP BY 1, 2",
    ),
    "busy cells (ana)": (
        "ana",
        "SELECT cell_id, count(*) AS calls FROM telco.processed.cdr "
        "WHERE duration_s > 600 GROUP BY cell_id ORDER BY calls DESC LIMIT 20",
    ),
    "plans by region (fred: join)": (
        "fred",
        "SELECT s.plan, c.region, count(*) AS calls FROM telco.processed.cdr c "
        "JOIN telco.processed.subscribers s ON s.msisdn = c.msisdn "
        "WHERE c.ds = DATE '2026-11-01' GROUP BY 1, 2",
    ),
}  # fmt: skip


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
    shutil.rmtree(WORK / f"drops-{calls_per_day}", ignore_errors=True)
    (project / "done").write_text("ok")
    return open_lake(project)


def direct_connection(lake: Lake) -> duckdb.DuckDBPyConnection:
    """DuckDB over the same data files, a view per table, nothing governed."""
    con = duckdb.connect()
    for table, view in TABLES.items():
        files = [
            task.file.file_path.removeprefix("file://")
            for task in lake.catalog.load(table).scan().plan_files()
        ]
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet([{listed}])")
    return con


def direct_sql(sql: str) -> str:
    for table, view in TABLES.items():
        sql = sql.replace(table, view)
    return sql


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(s * 1000 for s in seconds)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]

    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(at(0.95), 2),
        "p99_ms": round(at(0.99), 2),
    }


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def cold_query(project: Path, sql: str, principal: str) -> object:
    """A query as a new process would run it once its interpreter is up: a fresh ``Lake``."""
    return open_lake(project).query(sql, principal=principal)


def secured_session(lake: Lake, sql: str, principal: str) -> tuple[EngineSession, str]:
    """A sandboxed session holding the query's tables and its secured SQL: the engine's share of a
    governed query, without compile, planning or audit."""
    compiled = lake.queries.compile(sql, None, principal, read="trino", write="duckdb")
    session = lake.compute.session(lake.compute.engine("duckdb"), "bench", (Capability.SANDBOX,))
    for binding in compiled.tables:
        session.register_scan(binding.alias, plan_scan(lake.catalog, binding.table, binding.row_filter))
    session.sandbox()
    return session, compiled.sql


def single_stream(
    lake: Lake, con: duckdb.DuckDBPyConnection, repeat: int, cold_repeat: int
) -> list[dict[str, Any]]:
    results = []
    project = lake.project_dir
    for name, (principal, sql) in QUERIES.items():
        lake.query(sql, principal=principal)  # the first query of a snapshot fills the caches
        con.sql(direct_sql(sql)).to_arrow_table()
        warm: list[float] = []
        engine: list[float] = []
        direct: list[float] = []
        cold: list[float] = []
        reused: list[float] = []
        runs: list[tuple[list[float], Callable[[], object]]] = [
            (warm, partial(lake.query, sql, principal=principal)),
            (direct, partial(lambda s: con.sql(s).to_arrow_table(), direct_sql(sql))),
        ]
        secured = secured_session(lake, sql, principal)
        runs.append((engine, partial(lambda s, q: s.arrow_reader(q).read_all(), *secured)))
        for trial in range(repeat):
            for times, run in runs if trial % 2 == 0 else reversed(runs):
                times.append(timed(run))
            if trial < cold_repeat:
                cold.append(timed(partial(cold_query, project, sql, principal)))
        lake.query(sql, principal=principal, reuse=True)
        for _ in range(repeat):
            started = time.perf_counter()
            hit = cache_hit(lake.query(sql, principal=principal, reuse=True))
            reused.append(time.perf_counter() - started)
            assert hit, f"{name}: not reused"
        secured[0].close()
        row: dict[str, Any] = {
            "query": name,
            "principal": principal,
            "cold": percentiles(cold),
            "warm": percentiles(warm),
            "direct": percentiles(direct),
            "engine": percentiles(engine),
            "reused": percentiles(reused),
        }
        row["outside_engine_ms"] = round(row["warm"]["p50_ms"] - row["engine"]["p50_ms"], 2)
        row["fixed_cost_ms"] = round(row["warm"]["p50_ms"] - row["direct"]["p50_ms"], 2)
        row["warm_vs_direct"] = round(row["warm"]["p50_ms"] / row["direct"]["p50_ms"], 2)
        row["cold_vs_direct"] = round(row["cold"]["p50_ms"] / row["direct"]["p50_ms"], 2)
        results.append(row)
    return results


def through_servers(lake: Lake, results: list[dict[str, Any]], repeat: int) -> list[dict[str, Any]]:
    """Each query through ``lakeplane serve``'s listeners in this process, as a client sees it: psycopg
    over the PostgreSQL protocol and the ADBC Flight SQL driver, one warm connection each."""
    import adbc_driver_flightsql.dbapi as flight_sql
    import psycopg

    from lakeplane.governance.tokens import access_tokens
    from lakeplane.serve.flight import FlightSqlService
    from lakeplane.serve.pgwire import PgWireServer

    tokens = access_tokens(lake.governance)
    secrets = {p: tokens.create(p, label=f"bench-{p}-{time.time_ns()}").secret for p, _ in QUERIES.values()}
    flight_service = FlightSqlService(lake, "127.0.0.1", 0, log=lambda _line: None)
    flight_thread = threading.Thread(target=flight_service.serve, daemon=True)
    flight_thread.start()
    rows = []
    try:
        with PgWireServer(lake, log=lambda _line: None) as pg:
            for result in results:
                principal, sql = QUERIES[result["query"]]
                secret = secrets[principal]
                dsn = f"host=127.0.0.1 port={pg.port} user={principal} password={secret} dbname=lake"
                with (
                    psycopg.connect(dsn, autocommit=True) as pg_conn,
                    flight_sql.connect(
                        flight_service.uri,
                        db_kwargs={"username": principal, "password": secret},
                        autocommit=True,
                    ) as flight_conn,
                    flight_conn.cursor() as cursor,
                ):

                    def over_flight(text: str = sql) -> object:
                        cursor.execute(text)
                        return cursor.fetch_arrow_table()

                    def over_pg(text: str = sql) -> object:
                        return pg_conn.execute(text).fetchall()

                    over_pg(), over_flight()  # the first of a snapshot fills the caches
                    pg_times: list[float] = []
                    flight_times: list[float] = []
                    for _ in range(repeat):
                        pg_times.append(timed(over_pg))
                        flight_times.append(timed(over_flight))
                direct = result["direct"]["p50_ms"]
                row = {
                    "query": result["query"],
                    "pgwire": percentiles(pg_times),
                    "flight": percentiles(flight_times),
                }
                row["pgwire_fixed_cost_ms"] = round(row["pgwire"]["p50_ms"] - direct, 2)
                row["flight_fixed_cost_ms"] = round(row["flight"]["p50_ms"] - direct, 2)
                rows.append(row)
    finally:
        flight_service.shutdown()
        flight_thread.join(20)
    return rows


def concurrent(
    lake: Lake, seconds: float, clients: int = 16, direct: duckdb.DuckDBPyConnection | None = None
) -> dict[str, Any]:
    """``clients`` threads, each running the queries in turn (offset by its number) for ``seconds``,
    through ``lake`` (warm, governed) or, given ``direct``, on a cursor of that connection each."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    items = list(QUERIES.values())

    def client(number: int) -> None:
        cursor = direct.cursor() if direct is not None else None
        turn = number
        while time.monotonic() < stop:
            principal, sql = items[turn % len(items)]
            turn += 1
            started = time.perf_counter()
            try:
                if cursor is not None:
                    cursor.sql(direct_sql(sql)).to_arrow_table()
                else:
                    lake.query(sql, principal=principal)
            except Exception as exc:  # counted, and the run goes on
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    verified = lake.governance.audit_log().verify()
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "queries": len(latencies),
        "queries_per_s": round(len(latencies) / elapsed, 1),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "latency": percentiles(latencies) if latencies else {},
        "audit_verifies": verified.ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-per-day", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--cold-repeat", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"building the governed telco lake ({args.calls_per_day:,} calls a day, {len(DAYS)} days) ...")
    lake = build(args.calls_per_day)
    con = direct_connection(lake)
    call = con.execute("SELECT call_id FROM cdr ORDER BY call_id LIMIT 1 OFFSET 12345").fetchall()[0]
    assert call is not None
    principal, sql = QUERIES[POINT]
    QUERIES[POINT] = (principal, sql.format(call=call[0]))
    rows = con.execute("SELECT count(*) FROM cdr").fetchall()[0]
    print(f"cdr: {rows[0]:,} rows; warm = one Lake for the run, direct = DuckDB on the same files")

    results = single_stream(lake, con, args.repeat, args.cold_repeat)
    print(f"\nlatency, one client ({args.repeat} runs; cold {args.cold_repeat}), ms p50 / p95 / p99:")
    for r in results:
        print(f"  {r['query']}")
        for label in ("cold", "warm", "engine", "direct", "reused"):
            stats = r[label]
            print(f"    {label:7s} {stats['p50_ms']:8.2f} {stats['p95_ms']:8.2f} {stats['p99_ms']:8.2f}")
        print(
            f"    fixed cost (warm - direct, p50) {r['fixed_cost_ms']:.2f} ms "
            f"(target <= 20 ms: {'PASS' if float(r['fixed_cost_ms']) <= 20 else 'MISS'}); "
            f"outside the engine (warm - engine) {r['outside_engine_ms']:.2f} ms; "
            f"warm/direct {r['warm_vs_direct']}x, cold/direct {r['cold_vs_direct']}x"
        )
    point = next(r for r in results if r["query"] == POINT)
    p95 = point["warm"]["p95_ms"]
    print(f"\npoint query warm p95 {p95:.2f} ms (target < 50 ms: {'PASS' if p95 < 50 else 'MISS'})")

    served = through_servers(lake, results, args.repeat)
    print("\nthrough the servers (one warm client connection each), ms p50 / p95 / p99:")
    for r in served:
        print(f"  {r['query']}")
        for label in ("pgwire", "flight"):
            stats = r[label]
            fixed = r[f"{label}_fixed_cost_ms"]
            print(
                f"    {label:7s} {stats['p50_ms']:8.2f} {stats['p95_ms']:8.2f} {stats['p99_ms']:8.2f}"
                f"   fixed cost (client - direct, p50) {fixed:.2f} ms ({'PASS' if fixed <= 20 else 'MISS'})"
            )

    load = concurrent(lake, args.seconds)
    baseline = concurrent(lake, args.seconds, direct=con)
    print(f"\n16 concurrent clients for {args.seconds:.0f} s, ms p50 / p95 / p99:")
    for label, run in (("warm", load), ("direct", baseline)):
        latency = run["latency"]
        print(
            f"  {label:7s} {run['queries']} queries, {run['queries_per_s']} queries/s, "
            f"{run['errors']} errors, latency {latency['p50_ms']} / {latency['p95_ms']} / {latency['p99_ms']}"
        )
        if run["first_error"]:
            print(f"    first error: {run['first_error']}")
    print(
        f"  warm errors {load['errors']} (target 0: {'PASS' if load['errors'] == 0 else 'MISS'}); "
        f"throughput warm/direct {load['queries_per_s'] / max(baseline['queries_per_s'], 0.1):.2f}x; "
        f"audit chain verifies: {load['audit_verifies']}"
    )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    idle = len(lake.queries.warm.sessions)
    print(f"  peak memory of this process {rss_mb:.0f} MB; {idle} idle pooled sessions at the end")
    print(
        json.dumps({"single": results, "servers": served, "concurrent": load, "concurrent_direct": baseline})
    )


if __name__ == "__main__":
    main()

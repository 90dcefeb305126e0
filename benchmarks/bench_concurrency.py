"""N ``lakeplane run`` processes of different days at once, against the same N days run one by one.

Usage::

    .venv/bin/python benchmarks/bench_concurrency.py [--impressions 1000] [--n 1 2 4 8]
        [--backends sqlite postgres]

For each catalog backend (a SQLite file in the lake; a private PostgreSQL cluster started here with
``initdb`` + ``pg_ctl`` on a free port) and each N, two copies of the demo project get the same N
days of partner drops landed. One runs ``lakeplane run --ds D`` for each day in turn (the baseline,
measured in the same run), the other starts the N runs together. Printed per case: both wall
times and their ratio, the commit retries the concurrent runs needed (from the snapshot summaries,
``lakeplane.commit-retries``), keys found twice, and whether every table whose day's rows depend on
that day alone equals the sequential copy row for row. (The curated models reading other days —
the newest CRM extract, every day's stats — see whichever days were published when they read.)
Each run is a fresh process, whose start and per-step work dominate at this size: the defaults take
about five minutes on two cores, ``--backends sqlite`` half that.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from lakeplane.catalog import TableRef
from lakeplane.catalog.commits import RETRIES_KEY
from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, open_lake

FIRST_DAY = dt.date(2026, 11, 1)
ACROSS_DAYS = {"adtech.curated.daily_campaign_stats", "adtech.curated.campaign_totals"}
PER_PROJECT_COLUMNS = {"source_file", "quarantined_at"}
KEYS = {
    "adtech.processed.impressions": ["event_id"],
    "adtech.processed.clicks": ["click_id"],
    "telco.processed.cdr": ["call_id"],
    "adtech.curated.daily_campaign_stats": ["ds", "campaign_id", "country", "device"],
    "adtech.curated.campaign_totals": ["campaign_id"],
    "telco.curated.cell_daily": ["ds", "cell_id", "region", "call_type"],
}


# -- a private PostgreSQL ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway cluster on loopback; yields the URI of its ``postgres`` database."""
    bin_dir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="lakeplane-bench-pg-"))
    data, sockets, log = base / "data", base / "sockets", base / "server.log"
    sockets.mkdir()
    log.touch()
    if os.geteuid() == 0:
        for path in (base, sockets, log):
            shutil.chown(path, "postgres", "postgres")
    port = _free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"]
    subprocess.run(_as_postgres(initdb), cwd=base, check=True, capture_output=True)
    options = f"-p {port} -h 127.0.0.1 -k {sockets} -F"
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]
    subprocess.run(_as_postgres(start), cwd=base, check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_postgres(stop), cwd=base, check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + f"/{name}"


# -- projects and runs ---------------------------------------------------------------------------
def project(path: Path, catalog_uri: str | None, drops: dict[dt.date, dict[str, list[Path]]]) -> Lake:
    build_project(path, governed=False)
    if catalog_uri:
        with open(path / "lakeplane.yaml", "a") as config:
            config.write(f"\ncatalog:\n  uri: {catalog_uri}\n")
    lake = open_lake(path)
    for day, files in drops.items():
        for dataset, paths in files.items():
            lake.land(dataset, paths, day)
    return lake


def start_run(lake: Lake, day: dt.date) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from lakeplane.cli.main import main; main()"]
    command += ["--lake", str(lake.project_dir), "--output", "json", "run", "--ds", day.isoformat()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def wait(process: subprocess.Popen[bytes]) -> None:
    _, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"a run failed ({process.returncode}): {err.decode()[-2000:]}")


def timed_runs(lake: Lake, days: list[dt.date], together: bool) -> float:
    started = time.perf_counter()
    if together:
        for process in [start_run(lake, day) for day in days]:
            wait(process)
    else:
        for day in days:
            wait(start_run(lake, day))
    return time.perf_counter() - started


def commit_retries(lake: Lake) -> int:
    total = 0
    for ref in lake.catalog.list_tables():
        for snapshot in lake.catalog.load(ref).snapshots():
            summary = snapshot.summary.additional_properties if snapshot.summary else {}
            total += int(summary.get(RETRIES_KEY, 0))
    return total


def rows(lake: Lake, table: str) -> list[tuple[object, ...]]:
    names = lake.catalog.load(table).schema().column_names
    columns = ", ".join(f'"{c}"' for c in names if c not in PER_PROJECT_COLUMNS)
    result = lake.query(f"SELECT {columns} FROM {table}")
    return sorted((tuple(r.values()) for r in result.to_pylist()), key=repr)


def duplicates(lake: Lake) -> int:
    found = 0
    for table, keys in KEYS.items():
        if not lake.catalog.table_exists(TableRef.parse(table)):
            continue
        columns = ", ".join(f'"{k}"' for k in keys)
        repeated = f"SELECT {columns} FROM {table} GROUP BY {columns} HAVING count(*) > 1"
        query = f"SELECT count(*) AS n FROM ({repeated})"
        found += int(lake.query(query).column("n").to_pylist()[0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, default=1_000, help="impressions per day")
    parser.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8], help="concurrent runs")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lakeplane-bench-concurrency-"))
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range(max(args.n))]
    drops = {
        day: {
            **generate_day(work / "drops", day, args.impressions).files,
            **telco.generate_day(work / "drops", day, args.impressions // 10),
        }
        for day in days
    }
    print(f"{args.impressions} impressions a day; {os.cpu_count()} cores; each run a fresh process")
    print(
        f"{'backend':9s} {'N':>2s} {'sequential':>11s} {'concurrent':>11s} {'ratio':>6s} "
        f"{'retries':>8s} {'dup keys':>9s}  rows equal"
    )
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(postgres_server()) if "postgres" in args.backends else None
        for backend in args.backends:
            for n in args.n:
                case = work / f"{backend}-{n}"
                uris: tuple[str | None, str | None] = (None, None)
                if backend == "postgres" and server:
                    uris = (_database(server, f"c_{n}"), _database(server, f"s_{n}"))
                sequential = project(case / "sequential", uris[1], {d: drops[d] for d in days[:n]})
                concurrent = project(case / "concurrent", uris[0], {d: drops[d] for d in days[:n]})
                alone = timed_runs(sequential, days[:n], together=False)
                together = timed_runs(concurrent, days[:n], together=True)
                sequential, concurrent = open_lake(sequential.project_dir), open_lake(concurrent.project_dir)
                tables = [str(t) for t in sequential.catalog.list_tables()]
                equal = all(
                    rows(sequential, t) == rows(concurrent, t) for t in tables if t not in ACROSS_DAYS
                )
                print(
                    f"{backend:9s} {n:2d} {alone:10.1f}s {together:10.1f}s {together / alone:6.2f} "
                    f"{commit_retries(concurrent):8d} {duplicates(concurrent):9d}  "
                    f"{'yes' if equal else 'NO'} ({len(tables) - len(ACROSS_DAYS)} day-local tables)",
                    flush=True,
                )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What binding columns by field id, and registering existing data, cost.

Reads: the same aggregation over the same files, through lakeplane (plan the scan, bind every
file's columns by field id or through the name mapping, compile, run on DuckDB) against DuckDB's
``read_parquet`` over the file list, in the same process. Three tables of the same rows:
``ids`` (files lakeplane wrote, carrying field ids), ``mapped`` (files another tool wrote, without
ids, registered in place and read through the name mapping) and ``renamed`` (``mapped`` after
``lakeplane alter ... rename-column``: the files' names no longer match the table's). "Cold" is the
first query in the process, when every footer is read; "warm" the median of the repeats.

Registering: ``lakeplane register`` in place and copied against pyiceberg's ``add_files`` on the
same files.

Usage::

    .venv/bin/python benchmarks/bench_open_tables.py [--files 200] [--rows-per-file 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from lakeplane.catalog.evolution import RenameColumn
from lakeplane.catalog.scan import plan_scan
from lakeplane.engines import binding
from lakeplane.lake import Lake, init_project, open_lake

WORK = Path(__file__).parent / ".work" / "open_tables"
EPOCH_US = 1_700_000_000_000_000
QUERY = "SELECT country, count(*) AS n, sum(amount) AS amount, max(ts) AS last FROM {table} GROUP BY country"


def write_sources(folder: Path, files: int, rows: int) -> list[str]:
    """``files`` Parquet files as another tool would write them: no field ids."""
    folder.mkdir(parents=True)
    countries = pa.array(["DE", "FR", "ES", "IT", "PL", "NL", "SE", "PT"])
    paths = []
    for number in range(files):
        start = number * rows
        ids = pa.array(range(start, start + rows), pa.int64())
        table = pa.table(
            {
                "id": ids,
                "country": countries.take(pa.array([i % len(countries) for i in range(rows)])),
                "amount": pa.array([(i % 1000) / 10 for i in range(rows)], pa.float64()),
                "ts": pa.array(
                    [1_700_000_000_000_000 + i for i in range(start, start + rows)], pa.timestamp("us")
                ),
            }
        )
        path = folder / f"part-{number:05d}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths


def timed(run: object) -> float:
    started = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - started


def read_figures(lake: Lake, table: str, repeat: int) -> dict[str, float]:
    """Cold and warm seconds of the query through lakeplane and directly on the same files."""
    files = [lake.storage.fs_path(f) for f in plan_scan(lake.catalog, lake.resolve_table(table)).files]
    listing = ", ".join(f"'{f}'" for f in files)
    direct_sql = QUERY.format(table=f"read_parquet([{listing}])")
    binding.FOOTERS = binding.FooterCache()  # a new process: no footer read yet
    cold = timed(lambda: lake.query(QUERY.format(table=table)))
    warm = [timed(lambda: lake.query(QUERY.format(table=table))) for _ in range(repeat)]
    con = duckdb.connect()
    direct = [timed(lambda: con.sql(direct_sql).fetchall()) for _ in range(repeat)]
    ours = lake.query(QUERY.format(table=table)).sort_by("country").to_pylist()
    theirs = sorted(con.sql(direct_sql).fetchall())
    assert [tuple(r.values())[:3] for r in ours] == [r[:3] for r in theirs], "answers differ"
    return {
        "cold": cold,
        "warm": statistics.median(warm),
        "best": min(warm),
        "direct": statistics.median(direct),
        "files": len(files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rows-per-file", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    sources = write_sources(WORK / "incoming", args.files, args.rows_per_file)
    size = sum(Path(p).stat().st_size for p in sources)
    print(f"{args.files} files, {args.files * args.rows_per_file:,} rows, {size / 2**20:.0f} MiB")

    # -- registering ---------------------------------------------------------------------------
    init_project(WORK / "project", "bench")
    lake = open_lake(WORK / "project")
    inside = Path(lake.storage.path("external"))
    shutil.copytree(WORK / "incoming", inside)
    in_lake = sorted(str(p) for p in inside.glob("*.parquet"))
    in_place = timed(lambda: lake.register("processed.mapped", in_lake))
    copied = timed(lambda: lake.register("processed.copied", sources, mode="copy"))
    baseline_dir = WORK / "baseline"
    shutil.copytree(WORK / "incoming", baseline_dir)
    empty = lake.catalog.load("bench.processed.mapped").schema()
    table = lake.catalog.iceberg.create_table("bench.processed.baseline", empty)
    add_files = timed(lambda: table.add_files(sorted(str(p) for p in baseline_dir.glob("*.parquet"))))
    print("\nregister (one commit)            seconds   vs add_files")
    for label, seconds in (
        ("pyiceberg add_files", add_files),
        ("register in place", in_place),
        ("register copied", copied),
    ):
        print(f"  {label:<30} {seconds:7.2f}   {seconds / add_files:5.2f}x")

    # -- reading ---------------------------------------------------------------------------------
    con = duckdb.connect()
    ids_dir = WORK / "with-ids"
    ids_dir.mkdir()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{WORK / 'incoming'}/*.parquet')) TO '{ids_dir}' "
        "(FORMAT parquet, PER_THREAD_OUTPUT true, FIELD_IDS {id: 1, country: 2, amount: 3, ts: 4})"
    )
    lake.register("processed.ids", sorted(str(p) for p in ids_dir.glob("*.parquet")), mode="copy")
    lake.alter("processed.copied", RenameColumn("country", "market"))
    lake.alter("processed.copied", RenameColumn("market", "country"))  # the files still say `country`
    lake.alter("processed.mapped", RenameColumn("amount", "revenue"))
    renamed_query = QUERY.replace("sum(amount) AS amount", "sum(revenue) AS amount")
    print("\nquery (group by country)        cold s   warm s   direct s   warm/direct")
    for label, name in (
        ("ids (field ids in files)", "processed.ids"),
        ("mapped, renamed twice", "processed.copied"),
    ):
        figures = read_figures(lake, name, args.repeat)
        print(
            f"  {label:<30} {figures['cold']:6.3f}   {figures['warm']:6.3f}   {figures['direct']:8.3f}"
            f"   {figures['warm'] / figures['direct']:5.2f}x   ({figures['files']:.0f} files)"
        )
    seconds = timed(lambda: lake.query(renamed_query.format(table="processed.mapped")))
    print(f"  {'mapped, a column renamed':<30} {seconds:6.3f}   (answers through the new name)")


if __name__ == "__main__":
    main()

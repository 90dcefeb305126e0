"""Compaction: its throughput against a plain DuckDB rewrite of the same files, and what it buys a
typical query.

Input: a table of ``--files`` Parquet files of about ``--file-mb`` MB each (2,000 of ~1 MB by
default) over ``--days`` daily partitions, written by DuckDB with the table's field ids and
committed in one append (as a trickle of small loads would leave them, without the 2,000 commits).

Measured in one run, on the same files, with the same DuckDB memory limit and threads:

1. **the query before**: an aggregate with a filter (``QUERY``) through ``Lake.query``, best of
   ``--repeat``;
2. **plain DuckDB rewrite** (baseline): one connection, ``COPY (SELECT * FROM read_parquet([...
   every file ...]))`` to files of the target size, partitioned by ``ds``, nothing committed;
3. **lakeplane compaction**: ``Lake.compact`` with the target size: plan, rewrite group by group,
   one ``replace`` commit;
4. **the query after**, the same way.

Throughput is the input bytes over the wall time of each rewrite; the ratio says what planning,
the per-group streaming and the commit cost over the bare rewrite. The query speed-up is before
over after. The baseline runs first, so both rewrites read the files from a warm page cache.

Usage::

    .venv/bin/python benchmarks/bench_compaction.py [--files 2000] [--file-mb 1] [--days 10]
        [--target 128MB] [--memory-limit 2GB] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import shutil
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from lakeplane.catalog.writer import TableWriter, new_write_dir
from lakeplane.lake import Lake, init_project, open_lake
from lakeplane.units import human_bytes, parse_size

WORK = Path(__file__).parent / ".work" / "compaction"
TABLE = "processed.events"
#: Bytes a generated row takes in zstd Parquet, measured: how many rows make a file of the asked size
#: (one row group per file: a file is closed once past 1 KB, that is after its first row group).
BYTES_PER_ROW = 23
QUERY = (
    "SELECT campaign_id, count(*) AS n, sum(amount) AS amount FROM processed.events "
    "WHERE ds >= DATE '2026-11-06' AND country = 'FR' GROUP BY campaign_id"
)
ROWS = """
SELECT DATE '2026-11-01' + CAST(i % {days} AS INTEGER) AS ds,
       i AS event_id,
       CAST(hash(i) % 1000 AS INTEGER) AS campaign_id,
       round(random() * 100, 2) AS amount,
       ['FR', 'DE', 'US', 'GB', 'ES'][1 + CAST(hash(i * 7) % 5 AS INTEGER)] AS country,
       md5(CAST(i AS VARCHAR)) AS payload
FROM range({rows}) AS t(i)
"""


def build(root: Path, files: int, file_mb: float, days: int) -> Lake:
    """The project with the small-file table, written once and reused while the arguments match."""
    stamp = root / f"built-{files}x{file_mb}x{days}"
    if stamp.exists():
        return open_lake(root / "project")
    shutil.rmtree(root, ignore_errors=True)
    init_project(root / "project", "bench")
    lake = open_lake(root / "project")
    rows_per_file = int(file_mb * 1_000_000 / BYTES_PER_ROW)
    rows = files * rows_per_file
    writer = TableWriter(lake.catalog)
    ref = lake.catalog.resolve(TABLE, lake.config.name)
    con = duckdb.connect()
    sql = ROWS.format(days=days, rows=rows)
    schema = con.sql(f"SELECT * FROM ({sql}) LIMIT 0").to_arrow_table().schema
    table = writer.ensure_table(ref, pa.schema(schema), ["ds"])
    ids = ", ".join(f"'{name}': {i}" for name, i in writer.field_ids(table).items())
    folder = new_write_dir(ref)
    target = Path(lake.storage.path(folder))
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    con.execute(
        f"COPY ({sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (ds), "
        f"WRITE_PARTITION_COLUMNS true, ROW_GROUP_SIZE {rows_per_file}, "
        f"FILE_SIZE_BYTES '1KB', FIELD_IDS {{{ids}}})"
    )
    paths = [f"{folder}/{p.relative_to(target).as_posix()}" for p in sorted(target.rglob("*.parquet"))]
    size = sum((target / p.split(folder + "/", 1)[1]).stat().st_size for p in paths)
    writer.commit(table, paths, "append", rows, size)
    took = time.perf_counter() - started
    print(f"generated {len(paths)} files, {human_bytes(size)}, {rows:,} rows in {took:.1f} s")
    stamp.touch()
    return lake


def best_query(lake: Lake, repeat: int) -> tuple[float, list[tuple[object, ...]]]:
    times, result = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = lake.query(QUERY)
        times.append(time.perf_counter() - started)
        result = sorted(tuple(r.values()) for r in answer.to_pylist())
    return min(times), result


def same_answer(got: list[tuple[object, ...]], want: list[tuple[object, ...]]) -> bool:
    """Same groups and counts; sums of doubles equal up to the order they were added in."""
    return len(got) == len(want) and all(
        g[:2] == w[:2] and math.isclose(float(g[2]), float(w[2]), rel_tol=1e-9)  # type: ignore[arg-type]
        for g, w in zip(got, want, strict=True)
    )


def table_digest(lake: Lake) -> tuple[object, ...]:
    """Row count, exact sums and distinct counts over the whole table: equal when no row is lost,
    duplicated or changed."""
    (row,) = lake.query(
        f"SELECT count(*), sum(event_id), count(DISTINCT event_id), sum(CAST(amount * 100 AS BIGINT)), "
        f"sum(hash(payload) % 1000003), count(DISTINCT ds) FROM {TABLE}"
    ).to_pylist()
    return tuple(row.values())


def plain_rewrite(lake: Lake, out: Path, target: int, memory_limit: str, threads: int | None) -> float:
    """Every live file read and written again as files of ``target`` bytes by one DuckDB COPY."""
    paths = [f["path"].removeprefix("file://") for f in lake.describe(TABLE)["files"]]
    shutil.rmtree(out, ignore_errors=True)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {threads}")
    files = ", ".join(f"'{p}'" for p in paths)
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM read_parquet([{files}], hive_partitioning = false)) TO '{out}' "
        f"(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (ds), WRITE_PARTITION_COLUMNS true, "
        f"FILE_SIZE_BYTES '{target // 1024}KiB')"
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--file-mb", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--target", default="128MB")
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=WORK)
    args = parser.parse_args()
    target = parse_size(args.target)
    build(args.work_dir, args.files, args.file_mb, args.days)
    # Each run compacts a fresh copy: the built table stays small-file for the next run.
    project = args.work_dir / "run"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(args.work_dir / "project", project, symlinks=True)
    engine: dict[str, object] = {"memory_limit": args.memory_limit}
    if args.threads:
        engine["threads"] = args.threads
    lake = open_lake(project, {"engine": engine})
    files = lake.describe(TABLE)["files"]
    size = sum(f["bytes"] for f in files)
    print(f"table: {len(files)} files, {human_bytes(size)}; target {human_bytes(target)}")

    before_s, before = best_query(lake, args.repeat)
    digest = table_digest(lake)
    plain_s = plain_rewrite(lake, args.work_dir / "plain", target, args.memory_limit, args.threads)
    action = lake.compact(TABLE, target_file_size=target)
    lake = open_lake(project, {"engine": engine})  # fresh footer caches: no advantage to either side
    after_s, after = best_query(lake, args.repeat)
    assert same_answer(after, before), "the query answers differently after compaction"
    assert table_digest(lake) == digest, "the table holds other rows after compaction"
    plain_files = len(list((args.work_dir / "plain").rglob("*.parquet")))

    mb = size / 1024**2
    print(f"plain DuckDB rewrite: {plain_s:6.1f} s  {mb / plain_s:7.1f} MB/s  -> {plain_files} files")
    print(
        f"lakeplane compact:    {action.seconds:6.1f} s  {mb / action.seconds:7.1f} MB/s  -> "
        f"{action.files_after} files ({human_bytes(action.bytes_after)}), "
        f"{action.details['partitions_rewritten']} partitions, one replace commit"
    )
    print(f"compaction throughput / plain rewrite: {plain_s / action.seconds:.2f}x")
    print(
        f"query before: {before_s * 1000:8.1f} ms   after: {after_s * 1000:8.1f} ms   "
        f"speed-up: {before_s / after_s:.1f}x"
    )


if __name__ == "__main__":
    main()

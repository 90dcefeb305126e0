"""Column lineage of a 50-table graph: a leaf column traced upstream to the raw datasets.

Usage::

    .venv/bin/python benchmarks/bench_lineage.py [--repeat 20]

The graph: 10 processed tables ingested from raw datasets, 20 models joining two of them, 15 models
joining two of those, and 5 leaf models joining three of those (50 tables, chained and fanned out),
each model's edges traced from its compiled SQL and kept in a lineage store (SQLite, as the
catalog's database is by default). Measured: ``lineage_graph`` of a leaf model's column upstream,
to the end (the store is read, the graph walked), median of ``--repeat`` runs; target < 100 ms.
The baseline, measured in the same run, answers the same question without the store: every model's
SQL compiled and traced with sqlglot again, then the same walk.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from lakeplane.lineage.edges import Edge, ingest_edges, model_edges
from lakeplane.lineage.graph import LineageIndex, lineage_graph
from lakeplane.lineage.store import LineageStore
from lakeplane.query.compiler import CompileContext, compile_sql

DOMAIN = "bench"
VALUES = [f"v{i}" for i in range(6)]
COLUMNS = ["id", "k", *VALUES, "ds"]


def full(zone: str, name: str) -> str:
    return f"{DOMAIN}.{zone}.{name}"


def model_sql(inputs: list[str]) -> str:
    """A model joining ``inputs`` on ``k``: sums, a ratio, a renamed copy and a row count."""
    aliases = [f"t{i}" for i in range(len(inputs))]
    joins = " ".join(f"JOIN {t} AS {a} ON {a}.k = t0.k" for t, a in zip(inputs[1:], aliases[1:], strict=True))
    sums = ", ".join(f"sum({a}.{v}) AS {v}" for v, a in zip(VALUES, aliases * 6, strict=False))
    return (
        f"WITH base AS (SELECT * FROM {inputs[0]} WHERE ds = :ds) "
        f"SELECT t0.ds, t0.k, min(t0.id) AS id, {sums}, "
        f"sum(t0.v0) / nullif(sum({aliases[-1]}.v1), 0) AS ratio, count(*) AS n "
        f"FROM base AS t0 {joins} GROUP BY ALL"
    )


def build_graph() -> tuple[dict[str, str], dict[str, list[str]]]:
    """The models (table → SQL) and every table's columns."""
    columns = {full("processed", f"p{i}"): list(COLUMNS) for i in range(10)}
    models: dict[str, str] = {}
    layers = [
        ("l1", 20, 10, 2, "processed", "p"),
        ("l2", 15, 20, 2, "curated", "l1_"),
        ("l3", 5, 15, 3, "curated", "l2_"),
    ]
    for layer, count, below, fan, zone, prefix in layers:
        for i in range(count):
            inputs = [full(zone, f"{prefix}{(i + j * 3) % below}") for j in range(fan)]
            name = full("curated", f"{layer}_{i}")
            models[name] = model_sql(inputs)
            columns[name] = ["ds", "k", "id", *VALUES, "ratio", "n"]
    return models, columns


def trace_all(models: dict[str, str], columns: dict[str, list[str]]) -> list[Edge]:
    """Every model's edges, compiled and traced from its SQL now."""
    edges: list[Edge] = []
    for name, sql in models.items():
        compiled = compile_sql(sql, CompileContext(resolve=lambda n: n, params={"ds": None}))
        edges += model_edges(compiled, name, columns.__getitem__, name)
    return edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    models, columns = build_graph()
    raw = {
        full("processed", f"p{i}"): ingest_edges(f"src/p{i}", full("processed", f"p{i}"), COLUMNS[:-1])
        for i in range(10)
    }
    with tempfile.TemporaryDirectory() as folder:
        engine = sa.create_engine(f"sqlite:///{Path(folder) / 'catalog.db'}")
        store = LineageStore(engine)
        for table, edges in raw.items():
            store.record(table, 1, edges, model=edges[0].model, kind="ingest")
        traced = trace_all(models, columns)
        for name in models:
            store.record(name, 1, [e for e in traced if e.target_table == name], model=name, kind="model")
        print(f"graph: {len(models) + len(raw)} tables, {len(traced) + sum(map(len, raw.values()))} edges")
        leaf = full("curated", "l3_0")
        for column in ("ratio", "n"):  # a computed value; a row count (up through every table)
            measure(engine, models, columns, raw, leaf, column, args.repeat)
        engine.dispose()


def measure(
    engine: sa.Engine,
    models: dict[str, str],
    columns: dict[str, list[str]],
    raw: dict[str, list[Edge]],
    leaf: str,
    column: str,
    repeat: int,
) -> None:
    stored = []
    for _ in range(repeat):
        started = time.perf_counter()
        graph = lineage_graph(engine, leaf, column, "upstream")
        stored.append(time.perf_counter() - started)
    baseline = []
    for _ in range(max(3, repeat // 4)):
        started = time.perf_counter()
        edges = trace_all(models, columns) + [e for es in raw.values() for e in es]
        again = LineageIndex(edges).graph(leaf, column, "upstream", None)
        baseline.append(time.perf_counter() - started)
    assert again.to_dict() == graph.to_dict(), "the stored graph and the recomputed one differ"
    tables = {n.table for n in graph.nodes}
    ms, base_ms = statistics.median(stored) * 1000, statistics.median(baseline) * 1000
    reached = f"{len(graph.nodes)} nodes in {len(tables)} tables, {len(graph.edges)} edges"
    print(f"{leaf}.{column} upstream: {reached}")
    print(f"  lineage_graph (stored edges):   median {ms:7.2f} ms of {repeat}  (target < 100 ms)")
    print(f"  baseline (recompiled from SQL): median {base_ms:7.2f} ms of {len(baseline)}")
    print(f"  ratio: the store answers {base_ms / ms:.1f}x faster; target {'met' if ms < 100 else 'MISSED'}")


if __name__ == "__main__":
    main()

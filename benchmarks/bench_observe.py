"""How long ``metrics_text`` and ``evaluate_slos`` take on a run store of 10,000 runs.

Usage::

    .venv/bin/python benchmarks/bench_observe.py [--runs 10000] [--steps 8] [--repeat 3]

A fresh project's run store is filled with ``--runs`` ended runs of one pipeline over the last 30
days, ``--steps`` step attempts each (every tenth step retried once, one step in a hundred lost to a
died process, a quality gate on one step of each run), with the metrics a real step records. The
baseline, measured in the same run, is reading every attempt row with SQLAlchemy and decoding its
metrics (what any answer from the run store pays). The console's target is 300 ms per page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from lakeplane.lake import open_lake
from lakeplane.pipelines.store import ATTEMPTS, RUNS

SLOS = """
slos:
  retries: {kind: retry_rate, pipeline: p, objective: 0.2}
  lost: {kind: worker_loss_rate, pipeline: p, objective: 0.05}
  dq: {kind: dq_pass_rate, pipeline: p, objective: 0.9}
  fresh: {kind: freshness, pipeline: p, objective: 26h}
"""


def fill(engine: sa.Engine, runs: int, steps: int) -> None:
    now = dt.datetime.now(dt.UTC)
    run_rows, attempt_rows = [], []
    for n in range(runs):
        start = now - dt.timedelta(seconds=30 * 86400 * (runs - n) / runs)
        run_id = f"p-{n:06d}"
        stamp = start.isoformat(timespec="milliseconds")
        end = (start + dt.timedelta(seconds=60)).isoformat(timespec="milliseconds")
        run_rows.append(
            dict(
                run_id=run_id,
                pipeline="p",
                ds=start.date().isoformat(),
                state="succeeded",
                started_at=stamp,
                ended_at=end,
            )
        )
        for s in range(steps):
            tries = 2 if (n + s) % 10 == 0 else 1
            for t in range(1, tries + 1):
                lost = t == 1 and (n * steps + s) % 100 == 0
                metrics = {"seconds": 5.0, "bytes_read": 1000, "bytes_written": 500, "quarantined": 1}
                if s == 0:
                    metrics["quality"] = [{"rule": "RowCount > 0", "passed": True}]
                attempt_rows.append(
                    dict(
                        run_id=run_id,
                        step=f"s{s}",
                        attempt=t,
                        started_at=stamp,
                        ended_at=end,
                        state="failed" if (tries == 2 and t == 1) or lost else "succeeded",
                        error="step 's' died (exit code -9)" if lost else None,
                        metrics=json.dumps(metrics),
                    )
                )
    with engine.begin() as conn:
        conn.execute(RUNS.insert(), run_rows)
        conn.execute(ATTEMPTS.insert(), attempt_rows)


def best(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "pipelines").mkdir()
        (root / "pipelines" / "p.yaml").write_text(
            "steps:\n" + "".join(f"  s{s}: {{python: 'x:y'}}\n" for s in range(args.steps))
        )
        (root / "lakeplane.yaml").write_text("name: b\n" + SLOS)
        lake = open_lake(root)
        store = lake.pipeline_runs.store()
        fill(store.engine, args.runs, args.steps)

        def read_all() -> None:
            with store.engine.connect() as conn:
                for row in conn.execute(sa.select(ATTEMPTS)):
                    json.loads(row.metrics)

        baseline = best(read_all, args.repeat)
        metrics = best(lake.metrics_text, args.repeat)
        slos = best(lake.slos, args.repeat)
        print(f"{args.runs} runs, {args.runs * args.steps} steps")
        print(f"read every attempt (baseline): {baseline * 1000:8.0f} ms")
        print(
            f"metrics_text:                  {metrics * 1000:8.0f} ms  ({metrics / baseline:.1f}x baseline)"
        )
        print(f"evaluate_slos (4 SLOs):        {slos * 1000:8.0f} ms  ({slos / baseline:.1f}x baseline)")


if __name__ == "__main__":
    main()

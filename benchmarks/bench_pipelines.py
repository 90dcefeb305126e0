"""Pipelines: an incremental day on a lake holding 30 days against a lake holding one, and the runner's
overhead per step.

Targets (from the issue): the incremental daily run over a lake holding 30 landed days costs at most
1.2x a run over a lake that holds only that day; runner overhead per step is under 1 s.

Usage::

    .venv/bin/python benchmarks/bench_pipelines.py [--impressions 50000] [--days 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import time
from pathlib import Path

from lakeplane.demo import telco
from lakeplane.demo.generator import generate_day
from lakeplane.demo.run import build_project
from lakeplane.lake import Lake, open_lake

WORK = Path(__file__).parent / ".work" / "pipelines"
START = dt.date(2026, 10, 1)


def land(lake: Lake, drops: Path, day: dt.date, impressions: int) -> None:
    files = {
        **generate_day(drops, day, impressions).files,
        **telco.generate_day(drops, day, impressions // 10),
    }
    for dataset, paths in files.items():
        lake.land(dataset, paths, day)


def timed_run(lake: Lake, day: dt.date) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    run = lake.run_pipeline("nightly", day)
    seconds = time.perf_counter() - started
    assert run.state == "succeeded", lake.run_record(run.run_id).attempts
    record = lake.run_record(run.run_id)
    return seconds, {a.step: float(a.metrics.get("seconds", 0)) for a in record.attempts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, default=50_000, help="impressions per day")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    drops = WORK / "drops"
    target = START + dt.timedelta(days=args.days - 1)

    full = build_project(WORK / "thirty", governed=False)
    print(f"landing and running {args.days - 1} earlier days ({args.impressions:,} impressions a day) ...")
    for n in range(args.days):
        land(full, drops, START + dt.timedelta(days=n), args.impressions)
    full.backfill("nightly", START, target - dt.timedelta(days=1), parallel=1)
    single = build_project(WORK / "one", governed=False)
    land(single, drops, target, args.impressions)

    def measure(lake: Lake) -> float:
        best = float("inf")
        for _ in range(args.repeat):
            # Re-running the day must redo the work, not skip it on its bookmark: reset the bookmarks.
            from lakeplane.pipelines.bookmarks import reset

            for ref in lake.tables():
                if ref.zone == "processed":
                    reset(lake.catalog.load(ref))
            best = min(best, timed_run(open_lake(lake.project_dir), target)[0])
        return best

    thirty, one = measure(full), measure(single)
    ratio = thirty / one
    print(
        f"\nincremental day {target} on a lake holding {args.days} days: {thirty:.2f} s; "
        f"on a lake holding only that day: {one:.2f} s"
    )
    print(f"ratio {ratio:.2f}x (target <= 1.2x: {'PASS' if ratio <= 1.2 else 'MISS'})")

    overhead_lake = open_lake(single.project_dir)
    steps = []
    for n in range(5):
        after = f", depends_on: [s{n - 1}]" if n else ""
        steps.append(f"  s{n}: {{python: 'lakeplane.demo.run:noop_step'{after}}}\n")
    (overhead_lake.project_dir / "pipelines" / "noop.yaml").write_text(
        "concurrency: 1\nsteps:\n" + "".join(steps)
    )
    started = time.perf_counter()
    run = overhead_lake.run_pipeline("noop", target)
    per_step = (time.perf_counter() - started) / 5
    print(
        f"runner overhead per step (5 steps that do nothing, each in its own process): "
        f"{per_step:.2f} s (target < 1 s: {'PASS' if per_step < 1 else 'MISS'}); run {run.state}"
    )
    print(
        json.dumps(
            {
                "days": args.days,
                "impressions_per_day": args.impressions,
                "thirty_days_s": thirty,
                "one_day_s": one,
                "ratio": ratio,
                "runner_overhead_per_step_s": per_step,
            }
        )
    )


if __name__ == "__main__":
    main()

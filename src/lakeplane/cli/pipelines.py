"""Pipeline commands: ``run PIPELINE``, ``redrive``, ``backfill``, ``runs``, ``run-show``, ``schedule``."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

import click

from lakeplane.cli.context import DAY, EXIT_FAILED, Context, common_options, engine_option, pass_ctx
from lakeplane.units import human_bytes

if TYPE_CHECKING:
    from lakeplane.cli.output import Printer
    from lakeplane.lake import Lake
    from lakeplane.pipelines.runner import RunOptions
    from lakeplane.pipelines.store import RunRecord


def run_pipeline(ctx: Context, lake: Lake, name: str, day: dt.date) -> None:
    """``run PIPELINE``: run it for ``day``, print the run, exit 1 unless it succeeded."""
    record = lake.run_pipeline(name, day, _options(ctx))
    _report(ctx, lake.run_record(record.run_id))


def _options(ctx: Context) -> RunOptions:
    from lakeplane.pipelines.runner import RunOptions

    return RunOptions(progress=None if ctx.printer.json else ctx.printer.err.print)


def _report(ctx: Context, run: RunRecord) -> None:
    if ctx.printer.json:
        ctx.printer.emit(run.to_dict())
    else:
        _print_run(ctx.printer, run)
    if run.state != "succeeded":
        sys.exit(EXIT_FAILED)


def _print_run(printer: Printer, run: RunRecord) -> None:
    printer.line(
        f"[bold]{run.run_id}[/bold] {run.pipeline} ds={run.ds}: {run.state}"
        + (f" (redrive of {run.redrive_of})" if run.redrive_of else "")
    )
    if run.reason:
        from rich.markup import escape

        printer.line(f"{run.state}: {escape(run.reason)}")
    if run.holder and run.state in ("running", "waiting"):
        printer.line(f"runner {run.holder}, last heartbeat {run.heartbeat_at}")
    printer.table(
        None,
        ["step", "attempt", "state", "engine", "seconds", "rows in", "rows out", "peak MB", "error"],
        [
            [
                a.step,
                a.attempt,
                a.state,
                a.metrics.get("engine", ""),
                a.metrics.get("seconds", ""),
                a.metrics.get("rows_in", ""),
                a.metrics.get("rows_out", ""),
                a.metrics.get("peak_memory_mb", ""),
                (a.error or "")[:120],
            ]
            for a in run.attempts
        ],
    )
    for attempt in run.attempts:
        for rule in attempt.metrics.get("quality") or []:
            printer.line(_rule_line(attempt.step, rule))
        if attempt.metrics.get("placement"):
            printer.line(
                f"{attempt.step}: on {attempt.metrics['engine']} "
                f"because {attempt.metrics['placement']}"
                + (
                    f"; max stage skew {attempt.metrics['max_stage_skew']}"
                    if "max_stage_skew" in attempt.metrics
                    else ""
                )
            )


def _rule_line(step: str, rule: dict[str, Any]) -> str:
    """``step: FAIL IsComplete "x" [team=ads] 2 of 9 rows failed`` (markup-safe)."""
    from rich.markup import escape

    result = "error" if rule.get("error") else ("pass" if rule.get("passed") else "FAIL")
    labels = ", ".join(f"{k}={v}" for k, v in (rule.get("labels") or {}).items())
    shown = f" [{labels}]" if labels else ""
    return escape(f"{step}: {result} {rule.get('rule')}{shown} {rule.get('message') or ''}".rstrip())


@click.command()
@click.argument("run_id")
@engine_option
@common_options
@pass_ctx
def redrive(ctx: Context, run_id: str) -> None:
    """Rerun the failed and not-yet-run steps of RUN_ID, keeping those that succeeded.

    Exits 1 if the run does not succeed.
    """
    lake = ctx.lake()
    record = lake.redrive(run_id, _options(ctx))
    _report(ctx, lake.run_record(record.run_id))


@click.command()
@click.argument("pipeline")
@click.option("--from", "start", required=True, type=DAY, help="First business date.")
@click.option("--to", "end", required=True, type=DAY, help="Last business date.")
@click.option("--parallel", default=1, show_default=True, help="Runs at once.")
@click.option("--dry-run", is_flag=True, help="List what would run.")
@engine_option
@common_options
@pass_ctx
def backfill(ctx: Context, pipeline: str, start: dt.date, end: dt.date, parallel: int, dry_run: bool) -> None:
    """Run PIPELINE for every day from --from to --to.

    Exits 1 if a run does not succeed.
    """
    lake = ctx.lake()
    if dry_run:
        plan = lake.backfill_plan(pipeline, start, end)
        if ctx.printer.json:
            ctx.printer.emit(plan)
        else:
            ctx.printer.table(
                f"would run {len(plan)} runs, {parallel} at once",
                ["ds", "steps"],
                [[p["ds"], " -> ".join(p["steps"])] for p in plan],
            )
        return
    runs = lake.backfill(pipeline, start, end, parallel, _options(ctx))
    if ctx.printer.json:
        ctx.printer.emit([r.to_dict() for r in runs])
    else:
        ctx.printer.table(
            f"backfill {pipeline} {start}..{end}",
            ["run", "ds", "state"],
            [[r.run_id, r.ds, r.state] for r in runs],
        )
    if any(r.state != "succeeded" for r in runs):
        sys.exit(EXIT_FAILED)


@click.command()
@click.option("--pipeline")
@click.option("--limit", default=20, show_default=True)
@common_options
@pass_ctx
def runs(ctx: Context, pipeline: str | None, limit: int) -> None:
    """Recent runs."""
    found = ctx.lake().runs(pipeline, limit)
    if ctx.printer.json:
        ctx.printer.emit([r.to_dict() for r in found])
        return
    ctx.printer.table(
        None,
        ["run", "pipeline", "ds", "state", "started", "ended", "why"],
        [
            [r.run_id, r.pipeline, r.ds, r.state, r.started_at, r.ended_at, (r.reason or "")[:120]]
            for r in found
        ],
    )


@click.command()
@click.option("--once", is_flag=True, help="Run what is due now and exit (for cron or a timer).")
@click.option("--interval", default=60, show_default=True, help="Seconds between checks.")
@engine_option
@common_options
@pass_ctx
def schedule(ctx: Context, once: bool, interval: int) -> None:
    """Run pipelines when their cron schedules say so (a foreground loop; --once for cron)."""
    import time

    while True:
        started = ctx.lake().run_due(options=_options(ctx))
        if ctx.printer.json and once:
            ctx.printer.emit([r.to_dict() for r in started])
        for run in started:
            ctx.printer.line(f"{run.run_id}: {run.state}")
        if once:
            return
        time.sleep(interval)


@click.command("run-show")
@click.argument("run_id")
@common_options
@pass_ctx
def run_show(ctx: Context, run_id: str) -> None:
    """One run with every step attempt, what each used, and what it cost here and on each AWS shape."""
    from lakeplane.cli.costs import lake_costs
    from lakeplane.errors import ConfigError

    lake = ctx.lake()
    run = lake.run_record(run_id)
    try:
        data = lake_costs(lake).run_detail(run).to_dict()
    except ConfigError as exc:  # a wrong price table or cost.here: the run is still shown
        data = {"error": type(exc).__name__, "message": str(exc)}
    if ctx.printer.json:
        ctx.printer.emit({**run.to_dict(), "cost": data})
        return
    _print_run(ctx.printer, run)
    if "error" in data:
        ctx.printer.line(f"cost: not computed: {data['message']}")
        return
    ctx.printer.table(
        "usage per step attempt",
        ["step", "attempt", "vCPU-s", "GB-s", "read", "written", "here $"],
        [
            [
                step["step"],
                step["attempt"],
                round(step["usage"]["vcpu_seconds"], 1),
                round(step["usage"]["memory_gb_seconds"], 1),
                human_bytes(step["usage"]["bytes_read"]),
                human_bytes(step["usage"]["bytes_written"]),
                _dollars(step["here_usd"]),
            ]
            for step in data["steps"]
        ],
    )
    total = data["total"]
    ctx.printer.table(
        f"the run as one job: here ${_dollars(total['here_usd'])}; on each shape",
        ["shape", "USD", "seconds", "size"],
        [
            [shape, _shape_usd(priced), priced["seconds"], priced["size"] or priced["why_not"] or ""]
            for shape, priced in total["shapes"].items()
        ],
    )
    for assumption in data["assumptions"]:
        ctx.printer.line(f"assumed: {assumption}")
    for shape, priced in total["shapes"].items():
        stated = "; ".join(priced["assumptions"]) if priced["feasible"] else priced["why_not"]
        ctx.printer.line(f"{shape}: {stated}")


def _dollars(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6f}"


def _shape_usd(priced: dict[str, Any] | None) -> str:
    return "n/a" if priced is None or not priced["feasible"] else _dollars(priced["usd"])

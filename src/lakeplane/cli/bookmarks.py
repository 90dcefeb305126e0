"""Bookmark commands: ``bookmark show|reset|rewind STEP [--to RUN_ID]``."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.cli.output import Printer
    from lakeplane.pipelines.bookmarks import Bookmark
    from lakeplane.pipelines.step_bookmarks import BookmarkReport

SHOWN_BATCHES = 3


@click.group()
@common_options
def bookmark() -> None:
    """What ingest and model steps have processed already (kept in their tables' snapshots).

    STEP is a step of --pipeline (default: the first pipeline) or a table."""


pipeline_option = click.option(
    "--pipeline", help="The pipeline STEP belongs to (default: the first; for rewind, the run's)."
)


@bookmark.command("show")
@click.argument("step")
@pipeline_option
@common_options
@pass_ctx
def show(ctx: Context, step: str, pipeline: str | None) -> None:
    """STEP's bookmark for each business date: the batches or upstream snapshots it processed."""
    _print(ctx.printer, ctx.lake().bookmarks(step, pipeline))


@bookmark.command("reset")
@click.argument("step")
@pipeline_option
@common_options
@pass_ctx
def reset(ctx: Context, step: str, pipeline: str | None) -> None:
    """Forget STEP's bookmarks: its next run of any day processes that day again."""
    _print(ctx.printer, ctx.lake().reset_bookmarks(step, pipeline), changed=True)


@bookmark.command("rewind")
@click.argument("step")
@click.option(
    "--to",
    "run_id",
    required=True,
    metavar="RUN_ID",
    help="Make the bookmarks what they were right after this run (see `lakeplane runs`).",
)
@pipeline_option
@common_options
@pass_ctx
def rewind(ctx: Context, step: str, run_id: str, pipeline: str | None) -> None:
    """Forget STEP's bookmarks committed after run RUN_ID, so those days are processed again."""
    _print(ctx.printer, ctx.lake().rewind_bookmarks(step, run_id, pipeline), changed=True)


def _print(printer: Printer, report: BookmarkReport, changed: bool = False) -> None:
    if printer.json:
        printer.emit(report.to_dict())
        return
    target = report.target
    owner = f" (step {target.step} of pipeline {target.pipeline})" if target.step else ""
    printer.line(f"[bold]{target.table}[/bold]{owner}")
    if changed:
        if not report.changes:
            printer.line("no bookmark changed")
        else:
            printer.table(
                f"{len(report.changes)} bookmarks changed",
                ["ds", "was snapshot", "now"],
                [
                    [c.ds, c.before, c.after if c.after is not None else "forgotten: runs again"]
                    for c in report.changes
                ],
            )
    if not report.bookmarks:
        printer.line("no bookmarks: every day is processed on its next run")
        return
    printer.table(
        None,
        ["ds", "kind", "snapshot", "committed (UTC)", "processed"],
        [[b.ds, b.kind, b.snapshot_id, _when(b.committed_at_ms), _processed(b)] for b in report.bookmarks],
    )


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _processed(bookmark: Bookmark) -> str:
    if bookmark.kind == "model":
        if not bookmark.inputs:
            return "upstream snapshots not recorded"
        return ", ".join(f"{table}@{snapshot}" for table, snapshot in sorted(bookmark.inputs.items()))
    shown = ", ".join(b[:12] for b in bookmark.batches[:SHOWN_BATCHES])
    more = len(bookmark.batches) - SHOWN_BATCHES
    return f"{len(bookmark.batches)} batches: {shown}" + (f" and {more} more" if more > 0 else "")

"""Starting a project: ``init`` an empty one, or build and run the ``demo``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from lakeplane.cli.context import DAY, Context, common_options, pass_ctx
from lakeplane.cli.summary import print_demo


@click.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", help="The project's default domain (default: the folder's name).")
@common_options
@pass_ctx
def init(ctx: Context, path: Path, name: str | None) -> None:
    """Write a commented default lakeplane.yaml in PATH."""
    from lakeplane.lake import init_project

    config = init_project(path, name)
    if ctx.printer.json:
        ctx.printer.emit({"config": str(config)})
    else:
        ctx.printer.line(f"wrote {config}; land files with `lakeplane land`, add models in {path / 'models'}")


@click.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default="demo")
@click.option("--days", default=3, show_default=True, help="Days of partner drops to run.")
@click.option("--impressions", default=50_000, show_default=True, help="Impressions per day.")
@click.option("--start", type=DAY, default="2026-11-01", show_default=True, help="First day.")
@common_options
@pass_ctx
def demo(ctx: Context, path: Path, days: int, impressions: int, start: dt.date) -> None:
    """Build the ad-tech demo project in PATH (afresh) and run its nightly pipeline."""
    from lakeplane.demo.run import build_project, run_demo

    lake = build_project(path)
    ctx.printer.line(f"demo project: {lake.project_dir}")
    result = run_demo(lake, start, days, impressions, progress=ctx.printer.progress)
    if ctx.printer.json:
        ctx.printer.emit(result.to_dict())
    else:
        print_demo(ctx.printer, result)

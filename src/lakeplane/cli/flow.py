"""The nightly flow: ``land`` partner files, ``ingest`` one dataset, ``run`` a day or a pipeline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from lakeplane.cli.context import DAY, Context, common_options, engine_option, pass_ctx
from lakeplane.cli.pipelines import run_pipeline
from lakeplane.cli.summary import print_ingest, print_run
from lakeplane.units import human_bytes


@click.command()
@click.argument("dataset")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--date", "day", type=DAY, help="Ingest date (YYYY-MM-DD). Default: today.")
@common_options
@pass_ctx
def land(ctx: Context, dataset: str, files: tuple[Path, ...], day: dt.date | None) -> None:
    """Copy partner FILES into the raw zone of DATASET (<source>/<dataset>), once each."""
    lake = ctx.lake()
    with ctx.printer.progress(f"land {dataset}", len(files)) as advance:
        results = lake.land(dataset, files, day, progress=advance)
    landed = list(zip(files, results, strict=True))
    if ctx.printer.json:
        ctx.printer.emit(
            [
                {
                    "file": str(f),
                    "batch": r.batch.batch_id,
                    "path": r.batch.path,
                    "lines": r.batch.lines,
                    "bytes": r.batch.bytes,
                    "landed": r.landed,
                }
                for f, r in landed
            ]
        )
        return
    ctx.printer.table(
        None,
        ["file", "batch", "lines", "bytes", "result"],
        [
            [
                str(f),
                r.batch.batch_id,
                r.batch.lines,
                human_bytes(r.batch.bytes),
                "landed" if r.landed else "already landed",
            ]
            for f, r in landed
        ],
    )


@click.command()
@click.argument("dataset")
@click.option("--ds", required=True, type=DAY, help="Business date (YYYY-MM-DD) whose batches to ingest.")
@common_options
@pass_ctx
def ingest(ctx: Context, dataset: str, ds: dt.date) -> None:
    """Parse DATASET's raw batches for --ds into its processed table, quarantining bad records."""
    result = ctx.lake().ingest(dataset, ds)
    if ctx.printer.json:
        ctx.printer.emit(result.to_dict())
        return
    print_ingest(ctx.printer, result)


@click.command()
@click.argument("pipeline", required=False)
@click.option("--ds", required=True, type=DAY, help="Business date (YYYY-MM-DD).")
@click.option(
    "--force", is_flag=True, help="Without PIPELINE: redo steps whose bookmark says the day is done already."
)
@engine_option
@common_options
@pass_ctx
def run(ctx: Context, pipeline: str | None, ds: dt.date, force: bool) -> None:
    """Run PIPELINE (pipelines/PIPELINE.yaml) for --ds; without one, ingest every landed dataset and
    run every SQL model.

    Exits 1 if the pipeline run does not succeed.
    """
    lake = ctx.lake()
    if pipeline:
        run_pipeline(ctx, lake, pipeline, ds)
        return
    with ctx.printer.progress(f"run {ds}", len(lake.nightly_steps(ds))) as advance:
        summary = lake.run(ds, progress=advance, force=force)
    if ctx.printer.json:
        ctx.printer.emit(summary.to_dict())
        return
    print_run(ctx.printer, summary)

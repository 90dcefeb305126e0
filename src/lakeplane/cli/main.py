"""``lakeplane``: each command parses its arguments, calls the ``Lake`` facade, and prints."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from lakeplane.cli.bookmarks import register as register_bookmarks
from lakeplane.cli.governance import register as register_governance
from lakeplane.cli.output import Printer
from lakeplane.cli.pipelines import register as register_pipelines
from lakeplane.cli.quality import register as register_quality
from lakeplane.errors import LakeplaneError
from lakeplane.units import human_bytes


class Context:
    """What every command gets: where the lake is and how to print."""

    def __init__(self, lake_dir: str | None, output: str, debug: bool) -> None:
        self.lake_dir = lake_dir
        self.printer = Printer(output)
        self.debug = debug
        self.engine: str | None = None

    def lake(self) -> Any:
        from lakeplane.engines.placement import engine_overrides
        from lakeplane.lake import open_lake

        return open_lake(self.lake_dir, engine_overrides(self.engine) if self.engine else None)


pass_ctx = click.make_pass_decorator(Context)


def engine_option(command: Any) -> Any:
    """``--engine``: run this command's jobs on another engine or Spark shape than the config's."""
    def remember(ctx: click.Context, _param: Any, value: str | None) -> str | None:
        if value:
            ctx.ensure_object(Context).engine = value
        return value

    return click.option(
        "--engine", expose_value=False, callback=remember, metavar="ENGINE",
        help="duckdb, spark (spark.master of lakeplane.yaml), spark-cluster (transient), local[N], "
             "spark://host:port, or auto (by input size). Default: engine.type.")(command)


def parse_day(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date (YYYY-MM-DD)") from None


class LakeplaneGroup(click.Group):
    """Prints lakeplane's own errors as one line (exit 1); tracebacks only with ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LakeplaneError as exc:
            obj = ctx.obj if isinstance(ctx.obj, Context) else None
            if obj and obj.debug:
                raise
            if obj and obj.printer.json:
                obj.printer.emit(exc.to_dict())
            else:
                click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=LakeplaneGroup)
@click.option("--lake", "lake_dir", envvar="LAKEPLANE_LAKE", default=None, metavar="DIR",
              help="The lake project folder (holding lakeplane.yaml). Default: current folder.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table",
              help="table for people, json for scripts.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="lakeplane")
@click.pass_context
def cli(ctx: click.Context, lake_dir: str | None, output: str, debug: bool) -> None:
    """lakeplane: a zoned data lake, Iceberg tables and engines sized per job."""
    ctx.obj = Context(lake_dir, output, debug)


@cli.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", help="The project's default domain (default: the folder's name).")
@pass_ctx
def init(ctx: Context, path: Path, name: str | None) -> None:
    """Write a commented default lakeplane.yaml in PATH."""
    from lakeplane.lake import init_project

    config = init_project(path, name)
    if ctx.printer.json:
        ctx.printer.emit({"config": str(config)})
    else:
        ctx.printer.line(f"wrote {config}; land files with `lakeplane land`, add models in "
                         f"{path / 'models'}")


@cli.command()
@click.argument("dataset")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--date", "date_", help="Ingest date (YYYY-MM-DD). Default: today.")
@pass_ctx
def land(ctx: Context, dataset: str, files: tuple[Path, ...], date_: str | None) -> None:
    """Copy partner FILES into the raw zone of DATASET (<source>/<dataset>), once each."""
    lake = ctx.lake()
    with ctx.printer.progress(f"land {dataset}", len(files)) as advance:
        results = lake.land(dataset, files, parse_day(date_), progress=advance)
    rows = [{"file": str(f), "batch": r.batch.batch_id, "path": r.batch.path, "lines": r.batch.lines,
             "bytes": r.batch.bytes, "landed": r.landed} for f, r in zip(files, results, strict=True)]
    if ctx.printer.json:
        ctx.printer.emit(rows)
        return
    ctx.printer.table(None, ["file", "batch", "lines", "bytes", "result"],
                      [[r["file"], r["batch"], r["lines"], human_bytes(r["bytes"]),
                        "landed" if r["landed"] else "already landed"] for r in rows])


@cli.command()
@click.argument("dataset")
@click.option("--ds", required=True, help="Business date (YYYY-MM-DD) whose batches to ingest.")
@pass_ctx
def ingest(ctx: Context, dataset: str, ds: str) -> None:
    """Parse DATASET's raw batches for --ds into its processed table, quarantining bad records."""
    lake = ctx.lake()
    day = parse_day(ds)
    assert day is not None
    result = lake.ingest(dataset, day)
    if ctx.printer.json:
        ctx.printer.emit(result.to_dict())
        return
    from lakeplane.cli.summary import print_ingest

    print_ingest(ctx.printer, result)


@cli.command()
@click.argument("pipeline", required=False)
@click.option("--ds", required=True, help="Business date (YYYY-MM-DD).")
@click.option("--force", is_flag=True,
              help="Without PIPELINE: redo steps whose bookmark says the day is done already.")
@engine_option
@pass_ctx
def run(ctx: Context, pipeline: str | None, ds: str, force: bool) -> None:
    """Run PIPELINE (pipelines/PIPELINE.yaml) for --ds; without one, ingest every landed dataset and
    run every SQL model."""
    lake = ctx.lake()
    day = parse_day(ds)
    assert day is not None
    if pipeline:
        from lakeplane.cli.pipelines import run_pipeline

        run_pipeline(ctx, lake, pipeline, day)
        return
    steps = sum(1 for n in lake.config.datasets if lake.raw.batches(n, day)) + len(lake.models())
    with ctx.printer.progress(f"run {ds}", steps) as advance:
        summary = lake.run(day, progress=advance, force=force)
    if ctx.printer.json:
        ctx.printer.emit(summary.to_dict())
        return
    from lakeplane.cli.summary import print_run

    print_run(ctx.printer, summary)


@cli.command()
@pass_ctx
def tables(ctx: Context) -> None:
    """List the catalog's tables."""
    lake = ctx.lake()
    rows = []
    for ref in lake.tables():
        info = lake.catalog.describe(ref)
        rows.append({"table": str(ref), "records": info["records"], "files": len(info["files"]),
                     "bytes": info["bytes"], "snapshots": len(info["snapshots"])})
    if ctx.printer.json:
        ctx.printer.emit(rows)
        return
    ctx.printer.table(None, ["table", "records", "files", "size", "snapshots"],
                      [[r["table"], r["records"], r["files"], human_bytes(r["bytes"]),
                        r["snapshots"]] for r in rows])


@cli.command()
@click.argument("table")
@pass_ctx
def describe(ctx: Context, table: str) -> None:
    """Show TABLE's schema, partition spec, snapshots and files."""
    info = ctx.lake().describe(table)
    if ctx.printer.json:
        ctx.printer.emit(info)
        return
    p = ctx.printer
    p.line(f"[bold]{info['table']}[/bold]  {info['location']}")
    p.line(f"{info['records']} records in {len(info['files'])} files, {human_bytes(info['bytes'])}")
    p.table("schema", ["id", "column", "type", "required"],
            [[f["id"], f["name"], f["type"], f["required"]] for f in info["schema"]])
    p.table("partition spec", ["source", "transform"],
            [[f["source"], f["transform"]] for f in info["partition_spec"]])
    p.table("snapshots", ["snapshot", "at", "operation", "added", "deleted", "total records"],
            [[s["snapshot_id"], s["at"], s["operation"], s["summary"].get("added-records", ""),
              s["summary"].get("deleted-records", ""), s["summary"].get("total-records", "")]
             for s in info["snapshots"][-10:]])
    p.table("files", ["path", "records", "size", "partition"],
            [["/".join(f["path"].rsplit("/", 3)[-3:]),
              f["records"], human_bytes(f["bytes"]), f["partition"]] for f in info["files"][:20]])


@cli.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default="demo")
@click.option("--days", default=3, show_default=True, help="Days of partner drops to run.")
@click.option("--impressions", default=50_000, show_default=True, help="Impressions per day.")
@click.option("--start", default="2026-11-01", show_default=True, help="First day.")
@pass_ctx
def demo(ctx: Context, path: Path, days: int, impressions: int, start: str) -> None:
    """Build the ad-tech demo project in PATH (afresh) and run its nightly pipeline."""
    from lakeplane.demo.run import run_demo

    run_demo(ctx.printer, path, parse_day(start) or dt.date(2026, 11, 1), days, impressions)


def main() -> None:
    cli(prog_name="lakeplane")


register_bookmarks(cli)
register_governance(cli)
register_pipelines(cli)
register_quality(cli)


if __name__ == "__main__":
    main()

"""Existing data into the lake: ``register TABLE SOURCE...``."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from lakeplane.cli.context import Context, common_options, pass_ctx
from lakeplane.cli.output import Advance
from lakeplane.units import human_bytes


@click.command()
@click.argument("table")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option(
    "--partition-by",
    multiple=True,
    metavar="SPEC",
    help="Partition a new table by SPEC: col, year(col), month(col), day(col), hour(col), "
    "bucket[N](col), truncate[N](col); repeatable or comma-separated. Default: the files' "
    "key=value folders.",
)
@click.option(
    "--copy", "mode", flag_value="copy", help="Copy every file into the table, even files inside the lake."
)
@click.option(
    "--in-place", "mode", flag_value="in-place", help="Refuse files outside the lake instead of copying them."
)
@click.option(
    "--as", "principal", metavar="PRINCIPAL", help="Register as PRINCIPAL (a governed lake needs one)."
)
@click.option(
    "--dry-run", is_flag=True, help="Check every file and show what would be registered; change nothing."
)
@common_options
@pass_ctx
def register(
    ctx: Context,
    table: str,
    sources: tuple[str, ...],
    partition_by: tuple[str, ...],
    mode: str | None,
    principal: str | None,
    dry_run: bool,
) -> None:
    """Register existing data as TABLE (domain.zone.name, zone.name, or name).

    SOURCE is a Parquet file, a folder of them (searched recursively), or an Iceberg table's
    metadata file (*.metadata.json), registered with its snapshots. Files inside the lake's storage
    are added in place, others are copied into the table first. All files land in one commit, or
    none: a file whose schema does not fit, that spans two partition values, is not Parquet or is
    in the table already is refused with the reason.
    """
    lake = ctx.lake()
    with contextlib.ExitStack() as stack:
        bar: list[Advance] = []

        def progress(text: str, total: int) -> None:
            if not bar:
                bar.append(stack.enter_context(ctx.printer.progress(f"register {table}", total)))
            bar[0](text)

        result = lake.register(
            table,
            sources,
            partition_by=partition_by,
            mode="auto" if mode is None else mode,  # type: ignore[arg-type]
            principal=principal,
            dry_run=dry_run,
            progress=progress,
        )
    if ctx.printer.json:
        ctx.printer.emit(result.to_dict())
        return
    p = ctx.printer
    if result.metadata_file:
        verb = "would register" if dry_run else "registered"
        p.line(
            f"{verb} {result.table} from {result.metadata_file}: "
            f"{result.table_rows} rows in {result.table_files} files, snapshots kept"
        )
        return
    p.table(
        None,
        ["file", "rows", "size", "how"],
        [[f.source, f.rows, human_bytes(f.bytes), _how(f.copied)] for f in result.files[:50]],
    )
    if len(result.files) > 50:
        p.line(f"... and {len(result.files) - 50} more files")
    p.line(_summary(result.to_dict(), dry_run))


def _how(copied: bool) -> str:
    return "copied" if copied else "in place"


def _summary(done: dict[str, Any], dry_run: bool) -> str:
    verb = "would register" if dry_run else "registered"
    created = " (new table)" if done["created"] else ""
    return (
        f"{verb} {len(done['files'])} files, {done['rows']} rows, {human_bytes(done['bytes'])} into "
        f"{done['table']}{created}: {done['in_place']} in place, {done['copied']} copied"
    )

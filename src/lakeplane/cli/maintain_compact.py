"""``lakeplane maintain compact`` and ``lakeplane maintain rewrite-manifests``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from lakeplane.cli.context import Context, common_options, engine_option, pass_ctx
from lakeplane.units import human_bytes, parse_size

if TYPE_CHECKING:
    from lakeplane.maintenance.actions import MaintenanceAction


class Size(click.ParamType):
    """A size written ``128MB``, ``1GB`` or in bytes, given to the command as bytes."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            size = parse_size(str(value))
        except ValueError:
            self.fail(f"'{value}' is not a size (e.g. 128MB, 1GB)", param, ctx)
        if size <= 0:
            self.fail(f"'{value}' is not a positive size", param, ctx)
        return size


@click.command()
@click.argument("table")
@click.option(
    "--target-file-size",
    type=Size(),
    default=None,
    help="Size of the compacted files (default: the maintenance: policy, else 128MB).",
)
@click.option(
    "--sort-by",
    metavar="COLS",
    default=None,
    help="Sort each compacted file by these columns (comma-separated).",
)
@click.option(
    "--where",
    metavar="EXPR",
    default=None,
    help="Only partitions matching this filter on partition columns, e.g. \"ds >= '2026-11-01'\".",
)
@click.option("--dry-run", is_flag=True, help="Show what would be rewritten; change nothing.")
@engine_option
@common_options
@pass_ctx
def compact(
    ctx: Context,
    table: str,
    target_file_size: int | None,
    sort_by: str | None,
    where: str | None,
    dry_run: bool,
) -> None:
    """Bin-pack TABLE's small files, per partition, into files near the target size, committed as one
    Iceberg replace snapshot. Partitions with at most one small file are skipped.

    \b
    lakeplane maintain compact processed.impressions
    lakeplane maintain compact processed.impressions --target-file-size 256MB --sort-by campaign_id
    lakeplane maintain compact processed.impressions --where "ds >= '2026-11-01'" --dry-run
    """
    columns = tuple(c.strip() for c in sort_by.split(",") if c.strip()) if sort_by else ()
    action = ctx.lake().compact(
        table, target_file_size=target_file_size, sort_by=columns, where=where, dry_run=dry_run
    )
    if ctx.printer.json:
        ctx.printer.emit(action.to_dict())
        return
    _summary(ctx, action)
    plans = action.details.get("partition_plans", [])
    rows = [
        [
            ", ".join(f"{k}={v}" for k, v in plan["partition"].items()) or "(unpartitioned)",
            plan["files"],
            plan["small_files"],
            plan["rewritten_files"],
            plan["new_files"],
            plan["skipped"] or "",
        ]
        for plan in plans
    ]
    if rows:
        ctx.printer.table(None, ["partition", "files", "small", "rewritten", "new", "skipped"], rows)


@click.command("rewrite-manifests")
@click.argument("table")
@click.option("--dry-run", is_flag=True, help="Show how many manifests there are; change nothing.")
@common_options
@pass_ctx
def rewrite_manifests(ctx: Context, table: str, dry_run: bool) -> None:
    """Rewrite TABLE's manifests into few, grouped by partition, as one replace snapshot (no data
    file changes)."""
    action = ctx.lake().rewrite_manifests(table, dry_run=dry_run)
    if ctx.printer.json:
        ctx.printer.emit(action.to_dict())
        return
    _summary(ctx, action)
    details = action.details
    after = details.get("manifests_after", "-")
    ctx.printer.line(f"manifests: {details.get('manifests_before')} -> {after}")


def _summary(ctx: Context, action: MaintenanceAction) -> None:
    verb = "would change" if action.dry_run else "changed"
    if action.skipped:
        ctx.printer.line(f"{action.table}: nothing to do ({action.skipped})")
        return
    ctx.printer.line(
        f"{action.table}: {action.action} {verb} files {action.files_before} -> {action.files_after}, "
        f"{human_bytes(action.bytes_before)} -> {human_bytes(action.bytes_after)}"
        + (f", snapshot {action.snapshot_id}" if action.snapshot_id else "")
        + (" (dry run: nothing committed)" if action.dry_run else f" in {action.seconds:.1f} s")
    )

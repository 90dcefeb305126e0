"""``lakeplane maintain expire`` and ``lakeplane maintain orphans``: free the storage of old
snapshots, and of files no metadata references."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.maintenance.actions import MaintenanceAction

#: How many deleted paths the table output shows.
SHOWN_PATHS = 20


def _seconds(_ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from lakeplane.units import parse_duration

    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None
    if seconds < 0:
        raise click.BadParameter(f"'{value}' is negative", param=param)
    return seconds


@click.command()
@click.argument("table")
@click.option(
    "--older-than",
    callback=_seconds,
    metavar="DURATION",
    help="Expire snapshots older than this (7d, 12h, 0d). Default: maintenance policy, else 7d.",
)
@click.option(
    "--retain-last",
    type=click.IntRange(min=1),
    default=None,
    help="Always keep main's last N snapshots. Default: maintenance policy, else 1.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be expired and deleted; change nothing.")
@common_options
@pass_ctx
def expire(
    ctx: Context, table: str, older_than: float | None, retain_last: int | None, dry_run: bool
) -> None:
    """Expire TABLE's old snapshots and delete the files only they referenced.

    Main's last N snapshots, every branch head and every tagged snapshot stay, and no file any of
    them reads is deleted. Audit branches of failed quality gates older than the cut-off go too.
    """
    from lakeplane.maintenance.references import retention_for

    lake = ctx.lake()
    full = lake.resolve_table(table)
    policy = retention_for(lake.config, full)
    action = lake.expire_snapshots(
        full,
        older_than=policy.older_than if older_than is None else older_than,
        retain_last=policy.retain_last if retain_last is None else retain_last,
        dry_run=dry_run,
    )
    expired = "would expire" if dry_run else "expired"
    _show(ctx, action, f"{action.details['snapshots_expired']} snapshots {expired}")


@click.command()
@click.argument("table")
@click.option(
    "--older-than",
    callback=_seconds,
    metavar="DURATION",
    help="Grace period: keep unreferenced files modified more recently (default: policy, else 3d).",
)
@click.option("--dry-run", is_flag=True, help="List the orphan files and their sizes; delete nothing.")
@common_options
@pass_ctx
def orphans(ctx: Context, table: str, older_than: float | None, dry_run: bool) -> None:
    """Delete files in TABLE's folder that no metadata references and that are older than the
    grace period (a write in flight is never touched)."""
    from lakeplane.maintenance.references import retention_for

    lake = ctx.lake()
    full = lake.resolve_table(table)
    grace = retention_for(lake.config, full).orphan_grace if older_than is None else older_than
    action = lake.remove_orphans(full, older_than=grace, dry_run=dry_run)
    _show(ctx, action, f"{action.details['recent']} recent unreferenced files kept")


def _show(ctx: Context, action: MaintenanceAction, what: str) -> None:
    from lakeplane.units import human_bytes

    if ctx.printer.json:
        ctx.printer.emit(action.to_dict())
        return
    sizes = action.details.get("deleted_sizes") or [0] * len(action.deleted)
    if action.deleted:
        shown = list(zip(action.deleted, sizes, strict=False))[:SHOWN_PATHS]
        rows: list[list[object]] = [[path, human_bytes(size)] for path, size in shown]
        if len(action.deleted) > SHOWN_PATHS:
            rows.append([f"... and {len(action.deleted) - SHOWN_PATHS} more (--output json lists all)", ""])
        ctx.printer.table(None, ["file", "size"], rows)
    verb = "would delete" if action.dry_run else "deleted"
    ctx.printer.line(
        f"{action.table}: {what}; {verb} {len(action.deleted)} files ({human_bytes(action.deleted_bytes)})"
        + (f"; {action.skipped}" if action.skipped else "")
    )

"""``maintain all``: every table's due housekeeping, by its ``maintenance:`` policy."""

from __future__ import annotations

import sys

import click

from lakeplane.cli.context import EXIT_FAILED, Context, common_options, pass_ctx
from lakeplane.units import human_bytes

ACTIONS = ("compact", "rewrite-manifests", "expire", "orphans")


@click.command("all")
@click.option(
    "--dry-run", is_flag=True, help="Show what would be done, with files and bytes; change nothing."
)
@click.option(
    "--table", "tables", multiple=True, metavar="TABLE", help="Only TABLE (repeatable). Default: every table."
)
@click.option(
    "--action",
    "actions",
    multiple=True,
    type=click.Choice(ACTIONS),
    help="Only this action (repeatable). Default: all four.",
)
@common_options
@pass_ctx
def maintain_all(ctx: Context, dry_run: bool, tables: tuple[str, ...], actions: tuple[str, ...]) -> None:
    """Compact, rewrite manifests, expire snapshots and remove orphan files wherever each table's
    maintenance policy says they are due (lakeplane.yaml, maintenance:).

    Compaction only where a partition holds enough small files, manifests only when a snapshot has
    too many, expiry by the retention (older_than, retain_last), orphans by the grace period. Every
    action taken is recorded and shown by describe. Exits 1 when an action failed (the others run).
    """
    from lakeplane.maintenance.policy import summarize

    done = ctx.lake().maintain_all(dry_run=dry_run, tables=tables or None, actions=actions or None)
    total = summarize(done)
    if ctx.printer.json:
        ctx.printer.emit({"dry_run": dry_run, "actions": [a.to_dict() for a in done], "total": total})
    else:
        ctx.printer.table(
            "housekeeping (dry run: nothing changed)" if dry_run else "housekeeping",
            ["table", "action", "files", "size", "deleted", "seconds", "outcome"],
            [
                [
                    a.table,
                    a.action,
                    f"{a.files_before} -> {a.files_after}",
                    f"{human_bytes(a.bytes_before)} -> {human_bytes(a.bytes_after)}",
                    f"{len(a.deleted)} ({human_bytes(a.deleted_bytes)})",
                    a.seconds,
                    a.skipped or ("would run" if dry_run else "done"),
                ]
                for a in done
            ],
        )
        ctx.printer.line(
            f"{total['tables']} table(s): {total['actions_taken']} actions "
            f"{'due' if dry_run else 'taken'}, {total['nothing_to_do']} found nothing to do, "
            f"{total['not_due']} not due, {total['failed']} failed; "
            f"files {total['files_before']} -> {total['files_after']}, "
            f"{human_bytes(total['bytes_before'])} -> {human_bytes(total['bytes_after'])}; "
            f"{total['deleted']} files {'to delete' if dry_run else 'deleted'} "
            f"({human_bytes(total['deleted_bytes'])})"
        )
    if total["failed"]:
        sys.exit(EXIT_FAILED)

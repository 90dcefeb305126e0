"""The catalog's tables: ``tables`` and ``describe``."""

from __future__ import annotations

from typing import Any

import click

from lakeplane.cli.context import Context, common_options, pass_ctx
from lakeplane.units import human_bytes


@click.command()
@common_options
@pass_ctx
def tables(ctx: Context) -> None:
    """List the catalog's tables."""
    lake = ctx.lake()
    rows = []
    for ref in lake.tables():
        info = lake.catalog.describe(ref)
        rows.append(
            {
                "table": str(ref),
                "records": info["records"],
                "files": len(info["files"]),
                "bytes": info["bytes"],
                "snapshots": len(info["snapshots"]),
            }
        )
    if ctx.printer.json:
        ctx.printer.emit(rows)
        return
    ctx.printer.table(
        None,
        ["table", "records", "files", "size", "snapshots"],
        [[r["table"], r["records"], r["files"], human_bytes(r["bytes"]), r["snapshots"]] for r in rows],
    )


@click.command()
@click.argument("table")
@common_options
@pass_ctx
def describe(ctx: Context, table: str) -> None:
    """Show TABLE's schema, partition spec, snapshots, files and housekeeping history.

    With --output json, ``files`` lists every live data file (path, records, bytes, partition),
    ``health`` its small files, and ``maintenance`` the table's last housekeeping actions.
    """
    from lakeplane.maintenance.policy import small_file_health

    lake = ctx.lake()
    info = lake.describe(table)
    health = small_file_health(info["files"], lake.config.maintenance.for_table(info["table"]))
    info["health"] = health
    if ctx.printer.json:
        ctx.printer.emit(info)
        return
    p = ctx.printer
    p.line(f"[bold]{info['table']}[/bold]  {info['location']}")
    p.line(f"{info['records']} records in {len(info['files'])} files, {human_bytes(info['bytes'])}")
    p.line(
        f"{health['small_files']} of {health['files']} files under "
        f"{human_bytes(health['small_file_threshold'])}; "
        + (
            f"{len(health['partitions_to_compact'])} partitions due for compaction"
            if health["partitions_to_compact"]
            else "no partition due for compaction"
        )
    )
    p.table(
        "schema",
        ["id", "column", "type", "required"],
        [[f["id"], f["name"], f["type"], f["required"]] for f in info["schema"]],
    )
    p.table(
        "partition spec",
        ["source", "transform"],
        [[f["source"], f["transform"]] for f in info["partition_spec"]],
    )
    p.table(
        "snapshots",
        ["snapshot", "at", "operation", "added", "deleted", "total records", "lineage"],
        [
            [
                s["snapshot_id"],
                s["at"],
                s["operation"],
                s["summary"].get("added-records", ""),
                s["summary"].get("deleted-records", ""),
                s["summary"].get("total-records", ""),
                lineage(s, info["current_snapshot_id"]),
            ]
            for s in info["snapshots"][-10:]
        ],
    )
    p.table(
        "files",
        ["path", "records", "size", "partition"],
        [
            [
                "/".join(f["path"].rsplit("/", 3)[-3:]),
                f["records"],
                human_bytes(f["bytes"]),
                partition_text(f["partition"]),
            ]
            for f in info["files"][:20]
        ],
    )
    p.table(
        "housekeeping",
        ["at", "action", "files", "size", "deleted", "outcome"],
        [
            [
                a["started_at"][:19],
                a["action"] + (" (dry run)" if a["dry_run"] else ""),
                f"{a['files_before']} -> {a['files_after']}",
                f"{human_bytes(a['bytes_before'])} -> {human_bytes(a['bytes_after'])}",
                f"{a['deleted_count']} ({human_bytes(a['deleted_bytes'])})",
                a["skipped"] or ("would run" if a["dry_run"] else "done"),
            ]
            for a in info["maintenance"][:10]
        ],
    )


def lineage(snapshot: dict[str, Any], current: int | None) -> str:
    """``main`` (``main, current`` for its head), ``* not on main: branch X`` for a snapshot of
    another branch (an audit pending publish), ``* not on main: abandoned`` for one no branch holds."""
    if snapshot["on_main"]:
        return "main, current" if snapshot["snapshot_id"] == current else "main"
    branch = snapshot["branch"]
    return f"* not on main: branch {branch}" if branch else "* not on main: abandoned"


def partition_text(values: dict[str, Any]) -> str:
    """``ds=2026-11-01/country=US``, as Hive-style folders read; empty for an unpartitioned table."""
    return "/".join(f"{name}={'null' if value is None else value}" for name, value in values.items())

"""``lakeplane lineage``: where a table's or a column's data comes from and where it goes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.lineage.graph import Direction


@click.command()
@click.argument("name", metavar="TABLE[.COLUMN]", required=False)
@click.option("--upstream", "direction", flag_value="upstream", help="Only what feeds it.")
@click.option("--downstream", "direction", flag_value="downstream", help="Only what it feeds.")
@click.option("--depth", type=click.IntRange(min=0), default=None, help="Follow at most N edges each way.")
@click.option(
    "--snapshot", "snapshot_id", type=int, default=None, help="The lineage as of this snapshot of TABLE."
)
@click.option("--refresh", is_flag=True, help="Rebuild every table's lineage from its model, compiled now.")
@common_options
@pass_ctx
def lineage(
    ctx: Context,
    name: str | None,
    direction: str | None,
    depth: int | None,
    snapshot_id: int | None,
    refresh: bool,
) -> None:
    """Show the column lineage of TABLE or TABLE.COLUMN (both ways unless --upstream/--downstream)."""
    from rich.markup import escape

    from lakeplane.lineage.graph import render_tree, split_name

    lake = ctx.lake()
    if refresh:
        rebuilt = lake.refresh_lineage()
        ctx.printer.line(f"rebuilt the lineage of {len(rebuilt)} tables")
        if name is None:
            if ctx.printer.json:
                ctx.printer.emit({"refreshed": [c.table for c in rebuilt]})
            return
    if name is None:
        raise click.UsageError("name a TABLE or TABLE.COLUMN (or give --refresh)")
    way: Direction = "both"
    if direction in ("upstream", "downstream"):
        way = "upstream" if direction == "upstream" else "downstream"
    table, column = split_name(lake, name)
    graph = lake.lineage(table, column, way, depth, snapshot_id=snapshot_id)
    if ctx.printer.json:
        ctx.printer.emit(graph.to_dict())
        return
    for line in render_tree(graph, way):
        ctx.printer.line(escape(line))

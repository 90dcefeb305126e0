"""Keeping a lake made by an older lakeplane readable by today's readers: ``upgrade``."""

from __future__ import annotations

import dataclasses

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

#: How ``upgrade`` shows what it did to a table's name mapping.
NAME_MAPPING_TEXT = {
    "set": "set",
    "updated": "updated (columns added)",
    "present": "already set",
}


@click.command()
@common_options
@pass_ctx
def upgrade(ctx: Context) -> None:
    """Set the name mapping (schema.name-mapping.default) on every table lacking it.

    Other Iceberg readers then read data files written without Parquet field ids. No file is
    rewritten; running it again changes nothing.
    """
    done = ctx.lake().upgrade()
    if ctx.printer.json:
        ctx.printer.emit([dataclasses.asdict(u) for u in done])
        return
    ctx.printer.table(
        None, ["table", "name mapping"], [[u.table, NAME_MAPPING_TEXT[u.name_mapping]] for u in done]
    )
    changed = sum(u.name_mapping != "present" for u in done)
    ctx.printer.line(f"{changed} of {len(done)} tables changed")

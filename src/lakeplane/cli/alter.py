"""``lakeplane alter TABLE ...``: schema and partition evolution, one Iceberg commit per change."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from lakeplane.cli.context import Context, F, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.catalog.evolution import SchemaChange

_TABLE = "lakeplane.alter.table"
_PRINCIPAL = "lakeplane.alter.principal"


def _principal_option(command: F) -> F:
    return click.option(
        "--as",
        "principal",
        envvar="LAKEPLANE_PRINCIPAL",
        default=None,
        help="Who is changing the table (policy principal; needs ALTER on it in a governed lake).",
    )(command)


def change_options(command: F) -> F:
    """``--as``, ``--dry-run``, ``--output`` and ``--debug``: what every change takes."""
    command = click.option(
        "--dry-run", is_flag=True, help="Check the change and show the schema it gives; commit nothing."
    )(command)
    return common_options(_principal_option(command))


@click.group()
@click.argument("table")
@_principal_option
@common_options
@click.pass_context
def alter(ctx: click.Context, table: str, principal: str | None) -> None:
    """Change TABLE's schema or partitioning in one commit; no data file is rewritten.

    Readers bind columns by field id, so a renamed column keeps its data, its grants, tags and masks;
    a dropped column vanishes; an added one is NULL in older files; a widened one reads as the new type.

    \b
    lakeplane alter processed.orders add-column channel string --after order_id
    lakeplane alter processed.orders rename-column qty quantity --as ana
    lakeplane alter processed.orders widen quantity long
    lakeplane alter processed.orders drop-column note
    lakeplane alter processed.orders partition-by 'day(ts)' country 'bucket[16](customer_id)'
    """
    ctx.meta[_TABLE] = table
    ctx.meta[_PRINCIPAL] = principal


@alter.command("add-column")
@click.argument("name")
@click.argument("type_name", metavar="TYPE")
@click.option("--after", metavar="COL", help="Place the column right after COL.")
@click.option("--first", is_flag=True, help="Place the column first.")
@click.option("--doc", help="The column's description.")
@change_options
@pass_ctx
def add_column(
    ctx: Context,
    name: str,
    type_name: str,
    after: str | None,
    first: bool,
    doc: str | None,
    principal: str | None,
    dry_run: bool,
) -> None:
    """Add an optional column NAME of TYPE (int, long, float, double, decimal(P,S), string, date,
    timestamp, timestamptz, boolean, binary, time); last unless --after COL or --first."""
    if after and first:
        raise click.UsageError("give --after COL or --first, not both")

    def change() -> SchemaChange:
        from lakeplane.catalog.evolution import AddColumn

        return AddColumn(name, type_name, after=after, first=first, doc=doc)

    _apply(ctx, change, principal, dry_run)


@alter.command("rename-column")
@click.argument("old")
@click.argument("new")
@change_options
@pass_ctx
def rename_column(ctx: Context, old: str, new: str, principal: str | None, dry_run: bool) -> None:
    """Rename column OLD to NEW (its data, grants, tags and masks follow it)."""

    def change() -> SchemaChange:
        from lakeplane.catalog.evolution import RenameColumn

        return RenameColumn(old, new)

    _apply(ctx, change, principal, dry_run)


@alter.command("drop-column")
@click.argument("name")
@change_options
@pass_ctx
def drop_column(ctx: Context, name: str, principal: str | None, dry_run: bool) -> None:
    """Drop column NAME (refused for a partition source or a column the policy names)."""

    def change() -> SchemaChange:
        from lakeplane.catalog.evolution import DropColumn

        return DropColumn(name)

    _apply(ctx, change, principal, dry_run)


@alter.command("widen")
@click.argument("name")
@click.argument("type_name", metavar="TYPE")
@change_options
@pass_ctx
def widen(ctx: Context, name: str, type_name: str, principal: str | None, dry_run: bool) -> None:
    """Promote column NAME to TYPE: int to long, float to double, decimal(P,S) to decimal(P2,S), P2 > P."""

    def change() -> SchemaChange:
        from lakeplane.catalog.evolution import WidenColumn

        return WidenColumn(name, type_name)

    _apply(ctx, change, principal, dry_run)


@alter.command("partition-by")
@click.argument("fields", nargs=-1, required=True, metavar="FIELD...")
@change_options
@pass_ctx
def partition_by(ctx: Context, fields: tuple[str, ...], principal: str | None, dry_run: bool) -> None:
    """Partition new data by FIELD...: COLUMN, year(COL), month(COL), day(COL), hour(COL),
    bucket[N](COL) or truncate[N](COL). Files written before keep their partitioning."""

    def change() -> SchemaChange:
        from lakeplane.catalog.evolution import PartitionBy

        return PartitionBy(fields)

    _apply(ctx, change, principal, dry_run)


def _apply(ctx: Context, change: Callable[[], SchemaChange], principal: str | None, dry_run: bool) -> None:
    meta = click.get_current_context().meta
    result = ctx.lake().alter(
        meta[_TABLE], change(), principal=principal or meta.get(_PRINCIPAL), dry_run=dry_run
    )
    if ctx.printer.json:
        ctx.printer.emit(dataclasses.asdict(result))
        return
    verb = "would change" if result.dry_run else "changed"
    ctx.printer.line(
        f"{result.table}: {result.change} {verb} schema {result.schema_id_before} -> {result.schema_id}"
        f"{' (dry run: nothing committed)' if result.dry_run else ''}"
    )
    ctx.printer.table(None, ["id", "column", "type", "required", "partition source"], _rows(result.columns))
    ctx.printer.line(f"partitioned by: {', '.join(result.partition_by) or '(nothing)'}")


def _rows(columns: list[dict[str, Any]]) -> list[list[object]]:
    return [
        [
            c["id"],
            c["name"],
            c["type"],
            "yes" if c["required"] else "",
            "yes" if c["partition_source"] else "",
        ]
        for c in columns
    ]

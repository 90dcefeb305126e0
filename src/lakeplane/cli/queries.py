"""``lakeplane queries``: the query history (every path: the CLI, ``Lake.query``, the servers)."""

from __future__ import annotations

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

_COLUMNS = [
    "started",
    "principal",
    "workgroup",
    "outcome",
    "bytes scanned",
    "estimated",
    "rows",
    "seconds",
    "cost $",
    "sql",
]


@click.command()
@click.option("--principal", metavar="P", help="Only the queries of principal P.")
@click.option("--workgroup", metavar="W", help="Only the queries of workgroup W.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="Latest N queries.")
@common_options
@pass_ctx
def queries(ctx: Context, principal: str | None, workgroup: str | None, limit: int) -> None:
    """The latest queries: who ran them, in which workgroup, what they scanned and cost, how they ended."""
    from lakeplane.query.history import QueryHistory

    found = QueryHistory(ctx.lake().catalog.state_engine).list(
        principal=principal, workgroup=workgroup, limit=limit
    )
    if ctx.printer.json:
        ctx.printer.emit([q.to_dict() for q in found])
        return
    rows = [
        [
            q.started_at[:19].replace("T", " "),
            q.principal,
            q.workgroup,
            q.outcome + (" (reused)" if q.cache_hit else ""),
            q.bytes_scanned,
            q.bytes_estimated,
            q.rows,
            None if q.seconds is None else f"{q.seconds:.3f}",
            None if q.cost_usd is None else f"{q.cost_usd:.6f}",
            " ".join(q.sql.split())[:80],
        ]
        for q in found
    ]
    ctx.printer.table(None, _COLUMNS, rows)

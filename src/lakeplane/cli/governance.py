"""Governed queries and the governance commands: ``query``, ``access``, ``policy``, ``audit``."""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import sys
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import click

from lakeplane.cli.context import Context, F, common_options, engine_option, pass_ctx

DIALECTS = click.Choice(["trino", "athena", "duckdb", "spark"])

#: ``audit verify``'s status when the log was tampered with.
EXIT_TAMPERED = 3

#: A SQL argument may start with ``-`` (a ``-- comment`` line): click passes such text on as an
#: argument instead of failing on it as an unknown option.
SQL_COMMAND: dict[str, Any] = {"ignore_unknown_options": True}


def _sql_argument(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # Text that could only be a mistyped option (no space or line break in it) is still an error.
    if value is not None and value.startswith("-") and not any(c.isspace() for c in value):
        options = [
            name for param in ctx.command.params if isinstance(param, click.Option) for name in param.opts
        ]
        raise click.NoSuchOption(value, possibilities=difflib.get_close_matches(value, options, n=1), ctx=ctx)
    return value


def sql_input(command: F) -> F:
    """The SQL, as the SQL argument or read from ``--file FILE`` (``-`` for standard input)."""
    command = click.option(
        "-f",
        "--file",
        "sql_file",
        type=click.File("r"),
        help="Read the SQL from FILE ('-': standard input) instead of SQL.",
    )(command)
    return click.argument("sql", required=False, callback=_sql_argument)(command)


def _read_sql(sql: str | None, sql_file: IO[str] | None) -> str:
    if sql is not None and sql_file is None:
        return sql
    if sql_file is not None and sql is None:
        return sql_file.read()
    raise click.UsageError("give the query as SQL or with --file FILE, one of the two")


def _dialect(name: str) -> str:
    return "trino" if name == "athena" else name


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not an ISO date or time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@click.command(context_settings=SQL_COMMAND)
@sql_input
@click.option("--as", "principal", envvar="LAKEPLANE_PRINCIPAL", help="Who is asking (policy principal).")
@click.option("--dialect", type=DIALECTS, default="trino", show_default=True, help="SQL dialect of SQL.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="How to write the rows.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write rows to a file.")
@click.option("--limit", default=50, show_default=True, help="Rows to print as a table.")
@click.option(
    "--estimate",
    "--dry-run",
    "estimate",
    is_flag=True,
    help="Show what the query would scan (from the manifests) and cost, without running it.",
)
@click.option(
    "--reuse/--no-reuse",
    default=None,
    help="Reuse a stored result of the same secured query on the same snapshots (up to an hour old); "
    "default: as the principal's workgroup says.",
)
@engine_option
@common_options
@pass_ctx
def query(
    ctx: Context,
    sql: str | None,
    sql_file: IO[str] | None,
    principal: str | None,
    dialect: str,
    fmt: str,
    out: Path | None,
    limit: int,
    estimate: bool,
    reuse: bool | None,
) -> None:
    """Run one read-only SQL query; in a governed lake, as --as PRINCIPAL.

    SQL may open with a `-- comment` line; `-f FILE` reads it from a file, `-f -` from standard input.
    """
    lake = ctx.lake()
    text = _read_sql(sql, sql_file)
    if estimate:
        scan = lake.queries.estimate(text, principal=principal, dialect=_dialect(dialect))
        group = lake.queries.admission.workgroup_for(principal)
        if ctx.printer.json:
            ctx.printer.emit({**scan.to_dict(), "workgroup": group.name if group else None})
            return
        ctx.printer.line(f"would scan (workgroup {group.name if group else 'none'}):")
        for line in scan.lines():
            ctx.printer.line(line)
        return
    lake.queries.admission.on_wait = lambda message: click.echo(message, err=True)
    result = lake.query(text, principal=principal, dialect=_dialect(dialect), reuse=reuse)
    if ctx.printer.json or fmt == "json":
        _write_json(result.to_pylist(), out)
        return
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if out is None:
            raise click.UsageError("--format parquet needs --out FILE")
        pq.write_table(result, out)
        ctx.printer.line(f"{result.num_rows} rows written to {out}")
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(result.column_names)
        writer.writerows(list(r.values()) for r in result.to_pylist())
        if out:
            out.write_text(buffer.getvalue())
        else:
            sys.stdout.write(buffer.getvalue())
        return
    ctx.printer.table(
        None, result.column_names, [list(r.values()) for r in result.slice(0, limit).to_pylist()]
    )
    ctx.printer.line(f"{result.num_rows} rows")


@click.group()
@common_options
def access() -> None:
    """Who can see what, and what a query would run."""


@access.command("who-can-see")
@click.argument("column")
@common_options
@pass_ctx
def who_can_see(ctx: Context, column: str) -> None:
    """For every principal: unmasked, masked or denied on TABLE.COLUMN, and which rule says so."""
    answers = ctx.lake().who_can_see(column)
    if ctx.printer.json:
        ctx.printer.emit([a.to_dict() for a in answers])
        return
    ctx.printer.table(
        column,
        ["principal", "sees", "mask", "row filter", "because"],
        [[a.principal, a.sees, a.mask, " AND ".join(a.row_filters), a.because] for a in answers],
    )


@access.command("explain", context_settings=SQL_COMMAND)
@sql_input
@click.option("--as", "principal", required=True, help="Who would be asking.")
@click.option("--dialect", type=DIALECTS, default="trino", show_default=True)
@common_options
@pass_ctx
def explain(ctx: Context, sql: str | None, sql_file: IO[str] | None, principal: str, dialect: str) -> None:
    """The secured SQL that would run for --as PRINCIPAL, with its masks and row filters."""
    plan = ctx.lake().explain(_read_sql(sql, sql_file), principal, _dialect(dialect))
    if ctx.printer.json:
        ctx.printer.emit(plan)
        return
    ctx.printer.line(f"[bold]as {principal}[/bold], policy {plan['policy_version']}")
    ctx.printer.line(plan["sql"])
    ctx.printer.line("masks: " + (", ".join(f"{k} ({v})" for k, v in plan["masks"].items()) or "none"))
    ctx.printer.line("row filters: " + ("; ".join(plan["row_filters"]) or "none"))
    ctx.printer.line("columns read: " + ", ".join(plan["columns_read"]))


@click.group()
@common_options
def policy() -> None:
    """Check and preview changes to the policy."""


@policy.command("diff")
@click.argument("new_policy", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common_options
@pass_ctx
def policy_diff(ctx: Context, new_policy: Path) -> None:
    """Who gains or loses what, on which columns, if NEW_POLICY replaced the current policy."""
    changes = ctx.lake().policy_diff(new_policy)
    if ctx.printer.json:
        ctx.printer.emit([c.to_dict() for c in changes])
        return
    ctx.printer.table(
        f"{len(changes)} changes",
        ["principal", "column", "before", "after", "kind"],
        [[c.principal, c.column, c.before, c.after, c.kind] for c in changes],
    )


@policy.command("versions")
@common_options
@pass_ctx
def policy_versions(ctx: Context) -> None:
    """The recorded versions of the policy."""
    history = ctx.lake().governance.versions()
    rows = [
        {"version": v.label, "applied_at": v.applied_at, "bound_columns": len(v.bindings)} for v in history
    ]
    if ctx.printer.json:
        ctx.printer.emit(rows)
        return
    ctx.printer.table(None, ["version", "applied at", "bound columns"], [list(r.values()) for r in rows])


@click.group()
@common_options
def audit() -> None:
    """The audit log of every governed query, chained with a keyed MAC."""


@audit.command("verify")
@click.option(
    "--head",
    "expected_head",
    help="A head MAC recorded outside the database earlier: the log must still hold it (catches a "
    "rollback to an earlier copy of the database, or a rewrite by someone holding the key).",
)
@common_options
@pass_ctx
def audit_verify(ctx: Context, expected_head: str | None) -> None:
    """Check that no audit record was edited, forged, removed or inserted; exit 3 if one was."""
    log = ctx.lake().governance.audit_log()
    result = log.verify(expected_head=expected_head)
    head = log.head()
    data = {
        "ok": result.ok,
        "records": result.records,
        "first_bad_seq": result.first_bad_seq,
        "problem": result.problem,
        "unkeyed": result.unkeyed,
        "head": head.hash if head else None,
    }
    if ctx.printer.json:
        ctx.printer.emit(data)
    elif result.ok:
        ctx.printer.line(f"audit log intact: {result.records} records, head {data['head']}")
        if result.unkeyed:
            ctx.printer.line(
                f"records 1..{result.unkeyed} predate the audit key: they are proven by the keyed "
                "records and the checkpoint after them, not by MACs of their own"
            )
    else:
        ctx.printer.line(f"[red]audit log tampered[/red]: {result.problem}")
    if not result.ok:
        sys.exit(EXIT_TAMPERED)


@audit.command("search")
@click.option("--principal")
@click.option("--column", help="TABLE.COLUMN (any suffix of domain.zone.table.column).")
@click.option("--table")
@click.option("--since", callback=_since, help="ISO date or time (UTC unless it says otherwise).")
@click.option("--decision", type=click.Choice(["allowed", "denied"]))
@click.option("--limit", default=100, show_default=True)
@common_options
@pass_ctx
def audit_search(
    ctx: Context,
    principal: str | None,
    column: str | None,
    table: str | None,
    since: dt.datetime | None,
    decision: str | None,
    limit: int,
) -> None:
    """Find audit records."""
    records = (
        ctx.lake()
        .governance.audit_log()
        .search(principal=principal, column=column, table=table, since=since, decision=decision, limit=limit)
    )
    if ctx.printer.json:
        ctx.printer.emit([asdict(r) for r in records])
        return
    ctx.printer.table(
        f"{len(records)} records",
        ["seq", "at", "principal", "decision", "rows", "sql"],
        [[r.seq, r.at, r.principal, r.decision, r.rows, r.sql[:80]] for r in records],
    )


def _write_json(rows: list[dict[str, Any]], out: Path | None) -> None:
    import json

    text = json.dumps(rows, indent=2, default=str)
    if out:
        out.write_text(text + "\n")
    else:
        print(text)

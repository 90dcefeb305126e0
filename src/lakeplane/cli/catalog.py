"""The lake's catalog for other engines: ``catalog serve``."""

from __future__ import annotations

import sys

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

#: Addresses from which tokens never leave the machine.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.group()
@common_options
def catalog() -> None:
    """The lake's Iceberg catalog, for other engines to attach to."""


@catalog.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8181, show_default=True, help="Port to listen on (0: any free port).")
@click.option(
    "--allow-write",
    is_flag=True,
    help="Take table commits (appends, overwrites) from principals with INSERT on the table, and "
    "schema or property changes from those with ALTER. Creating and dropping stay refused.",
)
@common_options
@pass_ctx
def serve(ctx: Context, host: str, port: int, allow_write: bool) -> None:
    """Serve the catalog over the Iceberg REST protocol (read-only by default) until SIGTERM or Ctrl-C.

    Clients authenticate with a bearer token (`lakeplane token create PRINCIPAL`) and see only the
    tables their principal may read unrestricted: a direct reader reads whole files, so tables with
    masks, row filters or denied columns for that principal stay with governed SQL.
    """
    from lakeplane.catalog.rest import catalog_server, serve_until_stopped

    lake = ctx.lake()
    server = catalog_server(
        lake.catalog, lake.governance, lake.config.storage, host, port, allow_write=allow_write
    )
    mode = "read-write: table commits" if allow_write else "read-only"
    if host not in LOOPBACK:
        click.echo(
            f"warning: serving plain HTTP on {host}: bearer tokens cross the network in clear text; "
            "put a TLS-terminating proxy in front",
            err=True,
        )

    def ready(url: str) -> None:
        if ctx.printer.json:
            ctx.printer.emit({"url": url, "read_only": not allow_write})
        else:
            ctx.printer.line(f"serving the Iceberg REST catalog of {lake.project_dir} at {url} ({mode})")
        sys.stdout.flush()  # a supervisor waiting for the URL sees it now

    serve_until_stopped(server, ready)
    ctx.printer.line("stopped")

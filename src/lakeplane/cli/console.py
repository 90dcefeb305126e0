"""The web console: ``console``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.console.server import ConsoleServer


@click.command()
@click.option("--host", default=None, help="Address to listen on (console.host; default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (console.port; default 8780; 0: any free).")
@common_options
@pass_ctx
def console(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve the web console (runs, tables, quality, lineage, SLOs, queries, access) in the
    foreground, until SIGTERM or Ctrl-C.

    Log in as a principal of the policy with a token from `lakeplane token create PRINCIPAL`, by
    the form or by HTTP basic authentication (user=PRINCIPAL, password=TOKEN). Every page shows
    only what that principal may see.
    """
    from lakeplane.console.server import ConsoleServer

    lake = ctx.lake()
    options = {"host": host, "port": port}
    config = lake.config.console.model_copy(update={k: v for k, v in options.items() if v is not None})
    server = ConsoleServer(lake, config)

    def ready(listening: ConsoleServer) -> None:
        if ctx.printer.json:
            ctx.printer.emit({"url": listening.url, "host": listening.host, "port": listening.port})
        else:
            ctx.printer.line(f"console of {lake.project_dir}: {listening.url}")
            ctx.printer.line("log in with a principal and a token from `lakeplane token create PRINCIPAL`")
        sys.stdout.flush()

    server.serve(ready)
    ctx.printer.line("stopped")

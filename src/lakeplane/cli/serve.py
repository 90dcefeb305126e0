"""The query service for SQL clients and BI tools: ``serve``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.serve.runner import Listening

_FILE = click.Path(exists=True, dir_okay=False, resolve_path=True)


@click.command()
@click.option("--host", default=None, help="Address to listen on (serve.host; default 127.0.0.1).")
@click.option(
    "--pg-port", type=int, default=None, help="PostgreSQL port (serve.pg_port; default 5433; 0: any free)."
)
@click.option(
    "--flight-port",
    type=int,
    default=None,
    help="Arrow Flight SQL port (serve.flight_port; default 8815; 0: none).",
)
@click.option("--tls-cert", type=_FILE, default=None, help="PEM certificate: clients may connect with TLS.")
@click.option("--tls-key", type=_FILE, default=None, help="PEM private key of --tls-cert.")
@common_options
@pass_ctx
def serve(
    ctx: Context,
    host: str | None,
    pg_port: int | None,
    flight_port: int | None,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Serve governed SQL to PostgreSQL clients (psql, psycopg, JDBC, BI tools) and Arrow Flight SQL
    clients, in the foreground, until SIGTERM or Ctrl-C.

    A client logs in as a principal of the policy with a token from `lakeplane token create
    PRINCIPAL` (PostgreSQL: user=PRINCIPAL password=TOKEN). Every statement runs as that principal
    exactly as `lakeplane query --as PRINCIPAL` does: governed and audited.
    """
    from lakeplane.serve.runner import QueryService, serve_until_signalled

    lake = ctx.lake()
    options: dict[str, Any] = {
        "host": host,
        "pg_port": pg_port,
        "flight_port": flight_port,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
    }
    config = lake.config.serve.model_copy(update={k: v for k, v in options.items() if v is not None})
    service = QueryService(lake, config)

    def ready(listening: Listening) -> None:
        if ctx.printer.json:
            ctx.printer.emit(listening.to_dict())
        else:
            tls = " (TLS on request)" if listening.tls else ""
            ctx.printer.line(f"serving governed SQL of {lake.project_dir}")
            ctx.printer.line(f"PostgreSQL: postgresql://{listening.host}:{listening.pg_port}{tls}")
            if listening.flight_port is not None:
                scheme = "grpc+tls" if listening.tls else "grpc"
                ctx.printer.line(f"Flight SQL: {scheme}://{listening.host}:{listening.flight_port}")
            else:
                ctx.printer.line(f"Flight SQL: {listening.flight_note}")
        sys.stdout.flush()  # a supervisor waiting for the ports sees them now

    serve_until_signalled(service, ready)
    ctx.printer.line("stopped")

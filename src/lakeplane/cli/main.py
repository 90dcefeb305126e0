"""``lakeplane``: each command parses its arguments, calls the ``Lake`` facade, and prints.

This module only names the commands; each lives in the module of its domain and is imported when
it runs (``lakeplane --help`` imports the command modules, which keep heavy imports in their
command bodies).
"""

from __future__ import annotations

import click

from lakeplane.cli.context import Context, common_options
from lakeplane.cli.group import LakeplaneGroup

#: Every command and group of ``lakeplane``, as ``"module:attribute"``.
COMMANDS = {
    "init": "lakeplane.cli.project:init",
    "demo": "lakeplane.cli.project:demo",
    "land": "lakeplane.cli.flow:land",
    "ingest": "lakeplane.cli.flow:ingest",
    "run": "lakeplane.cli.flow:run",
    "tables": "lakeplane.cli.tables:tables",
    "describe": "lakeplane.cli.tables:describe",
    "upgrade": "lakeplane.cli.maintenance:upgrade",
    "maintain": "lakeplane.cli.maintain:maintain",
    "storage": "lakeplane.cli.storage:storage",
    "register": "lakeplane.cli.register:register",
    "alter": "lakeplane.cli.alter:alter",
    "query": "lakeplane.cli.governance:query",
    "queries": "lakeplane.cli.queries:queries",
    "access": "lakeplane.cli.governance:access",
    "policy": "lakeplane.cli.governance:policy",
    "audit": "lakeplane.cli.governance:audit",
    "redrive": "lakeplane.cli.pipelines:redrive",
    "backfill": "lakeplane.cli.pipelines:backfill",
    "runs": "lakeplane.cli.pipelines:runs",
    "run-show": "lakeplane.cli.pipelines:run_show",
    "schedule": "lakeplane.cli.pipelines:schedule",
    "dq": "lakeplane.cli.quality:dq",
    "bookmark": "lakeplane.cli.bookmarks:bookmark",
    "catalog": "lakeplane.cli.catalog:catalog",
    "token": "lakeplane.cli.tokens:token",
    "serve": "lakeplane.cli.serve:serve",
    "advise": "lakeplane.cli.advise:advise",
    "cost": "lakeplane.cli.costs:cost",
    "aws": "lakeplane.cli.aws:aws",
    "console": "lakeplane.cli.console:console",
    "lineage": "lakeplane.cli.lineage:lineage",
    "slo": "lakeplane.cli.slo:slo",
    "metrics": "lakeplane.cli.slo:metrics",
}


@click.group(cls=LakeplaneGroup, lazy_commands=COMMANDS)
@click.option(
    "--lake",
    "lake_dir",
    envvar="LAKEPLANE_LAKE",
    default=None,
    metavar="DIR",
    help="The lake project folder (holding lakeplane.yaml). Default: current folder.",
)
@common_options
@click.version_option(package_name="lakeplane")
@click.pass_context
def cli(ctx: click.Context, lake_dir: str | None) -> None:
    """lakeplane: a zoned data lake, Iceberg tables and engines sized per job."""
    ctx.ensure_object(Context).lake_dir = lake_dir


def main() -> None:
    cli(prog_name="lakeplane")


if __name__ == "__main__":
    main()

"""``lakeplane maintain``: table housekeeping, one subcommand per action, each in its own module."""

from __future__ import annotations

import click

from lakeplane.cli.context import common_options
from lakeplane.cli.group import LazyGroup

#: The subcommands of ``maintain``, as ``"module:attribute"``.
MAINTAIN_COMMANDS = {
    "compact": "lakeplane.cli.maintain_compact:compact",
    "rewrite-manifests": "lakeplane.cli.maintain_compact:rewrite_manifests",
    "expire": "lakeplane.cli.maintain_expire:expire",
    "orphans": "lakeplane.cli.maintain_expire:orphans",
    "all": "lakeplane.cli.maintain_all:maintain_all",
}


@click.group(cls=LazyGroup, lazy_commands=MAINTAIN_COMMANDS)
@common_options
def maintain() -> None:
    """Housekeeping: compact small files, expire snapshots and free their files, remove orphan
    files, rewrite manifests, or all of them by the ``maintenance:`` policy."""

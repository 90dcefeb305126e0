"""``maintain expire`` and ``maintain orphans``: not in this build of lakeplane."""

from __future__ import annotations

import click

from lakeplane.errors import LakeplaneError


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def expire(arguments: tuple[str, ...]) -> None:
    """Expire snapshots (not available in this build)."""
    raise LakeplaneError("maintain expire is not available in this build of lakeplane")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def orphans(arguments: tuple[str, ...]) -> None:
    """Remove orphan files (not available in this build)."""
    raise LakeplaneError("maintain orphans is not available in this build of lakeplane")

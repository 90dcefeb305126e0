"""``maintain compact`` and ``maintain rewrite-manifests``: not in this build of lakeplane."""

from __future__ import annotations

import click

from lakeplane.errors import LakeplaneError


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def compact(arguments: tuple[str, ...]) -> None:
    """Compact small files (not available in this build)."""
    raise LakeplaneError("maintain compact is not available in this build of lakeplane")


@click.command("rewrite-manifests", context_settings={"ignore_unknown_options": True})
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def rewrite_manifests(arguments: tuple[str, ...]) -> None:
    """Rewrite manifests (not available in this build)."""
    raise LakeplaneError("maintain rewrite-manifests is not available in this build of lakeplane")

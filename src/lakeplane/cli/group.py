"""The ``lakeplane`` group: imports a command's module only when that command runs, and prints
lakeplane's own errors as one line."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

import click

from lakeplane.cli.context import EXIT_FAILED, Context
from lakeplane.errors import LakeplaneError


class LazyGroup(click.Group):
    """A group whose commands are named ``"package.module:attribute"`` and imported on first use.

    click's documented lazy-loading pattern: :meth:`list_commands` reads names only, so completion
    and ``--help`` stay fast as long as the command modules import nothing heavy at their top.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        return command


class LakeplaneGroup(LazyGroup):
    """Prints lakeplane's own errors as one line (exit 1); tracebacks only with ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LakeplaneError as exc:
            obj = ctx.find_object(Context)
            if obj and obj.debug:
                raise
            if obj and obj.printer.json:
                obj.printer.emit(exc.to_dict())
            else:
                click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)

"""What every ``lakeplane`` command shares: the lake it works on, how it prints, the common options.

Command modules import from here, never from ``lakeplane.cli.main``, which only lists them.
This module stays light (click and the standard library): ``lakeplane --help`` imports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lakeplane.cli.output import OUTPUTS, Printer

if TYPE_CHECKING:
    from lakeplane.lake import Lake

#: A click command callback, or a command being decorated.
F = TypeVar("F", bound=Callable[..., Any])

#: The exit status of a lakeplane error (printed as one line), of a pipeline run that did not succeed
#: and of a failing DQ rule. Usage errors exit with click's 2 (README, "The nightly flow").
EXIT_FAILED = 1


class Context:
    """What every command gets: where the lake is, how to print, and the engine to run jobs on."""

    def __init__(self, lake_dir: str | None = None, output: str = "table", debug: bool = False) -> None:
        self.lake_dir = lake_dir
        self.printer = Printer(output)
        self.debug = debug
        self.engine: str | None = None

    def lake(self) -> Lake:
        """Open the lake (with ``--engine``'s overrides, if given)."""
        from lakeplane.engines.placement import engine_overrides
        from lakeplane.lake import open_lake

        return open_lake(self.lake_dir, engine_overrides(self.engine) if self.engine else None)


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def _set_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.ensure_object(Context).printer.output = value
    return value


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.ensure_object(Context).debug = True
    return value


def common_options(command: F) -> F:
    """``--output`` and ``--debug``, taken before or after the command name.

    Both set the shared :class:`Context`; one given nowhere keeps the group's value, so
    ``lakeplane --output json tables`` and ``lakeplane tables --output json`` are the same.
    """
    command = click.option(
        "--debug", is_flag=True, expose_value=False, callback=_set_debug, help="Show tracebacks."
    )(command)
    return click.option(
        "--output",
        type=click.Choice(OUTPUTS),
        default=None,
        expose_value=False,
        callback=_set_output,
        help="table for people (default), json for scripts.",
    )(command)


def engine_option(command: F) -> F:
    """``--engine``: run this command's jobs on another engine or Spark shape than the config's."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value:
            ctx.ensure_object(Context).engine = value
        return value

    return click.option(
        "--engine",
        expose_value=False,
        callback=remember,
        metavar="ENGINE",
        help="duckdb, spark (spark.master of lakeplane.yaml), spark-cluster (transient), local[N], "
        "spark://host:port, or auto (by input size). Default: engine.type.",
    )(command)


class Day(click.ParamType):
    """A business date written ``YYYY-MM-DD``, given to the command as a ``datetime.date``."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"'{value}' is not a date (YYYY-MM-DD)", param, ctx)


DAY = Day()

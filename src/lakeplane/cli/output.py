"""Printing for the CLI: rich tables and progress for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

#: ``--output`` values.
OUTPUTS = ("table", "json")

#: Advances a progress bar by one step; the text says what finished.
Advance = Callable[[str], None]


class Printer:
    """Where the CLI prints: ``table`` (people) or ``json`` (scripts, one document on stdout).

    rich is imported on first use, so commands that print nothing (``--help``) never load it.
    """

    def __init__(self, output: str = "table") -> None:
        self.output = output

    @property
    def json(self) -> bool:
        return self.output == "json"

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(highlight=False, width=None if sys.stdout.isatty() else 140)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False)

    def emit(self, data: object) -> None:
        """Print ``data`` as JSON (``--output json``)."""
        print(json.dumps(data, indent=2, default=str))

    def line(self, text: str) -> None:
        if not self.json:
            self.out.print(text)

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        from rich.table import Table

        table = Table(title=title, title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*["" if v is None else str(v) for v in row])
        self.out.print(table)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Advance]:
        """A progress bar on stderr (silent with ``--output json``); yields ``advance(text)``."""
        if self.json:
            yield _silent
            return
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[now]}"),
            TimeElapsedColumn(),
            console=self.err,
            transient=False,
        )
        with bar:
            task = bar.add_task(description, total=total, now="")

            def advance(text: str = "") -> None:
                bar.update(task, advance=1, now=text)

            yield advance


def _silent(text: str = "") -> None:
    """Advances no progress bar (``--output json``)."""

"""Data-quality commands: ``dq check TABLE RULESET``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


def register(cli: click.Group) -> None:
    """Add the ``dq`` group to the ``lakeplane`` group."""
    from lakeplane.cli.main import Context, pass_ctx

    @cli.group()
    def dq() -> None:
        """Data-quality rules in AWS Glue's DQDL."""

    @dq.command("check")
    @click.argument("table")
    @click.argument("ruleset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--ref", "refs", multiple=True, metavar="ALIAS=TABLE",
                  help='A reference dataset the rules name (RowCountMatch "ALIAS"). Repeatable.')
    @click.option("--snapshot", "snapshot_id", type=int, help="Check this snapshot, not the current one.")
    @pass_ctx
    def check(ctx: Context, table: str, ruleset: Path, refs: tuple[str, ...],
              snapshot_id: int | None) -> None:
        """Evaluate the DQDL file RULESET on TABLE; exit 1 if a rule fails."""
        references = {}
        for ref in refs:
            alias, sep, name = ref.partition("=")
            if not (sep and alias and name):
                raise click.BadParameter(f"'{ref}' is not ALIAS=TABLE", param_hint="--ref")
            references[alias] = name
        outcomes = ctx.lake().dq_check(table, ruleset.resolve(), snapshot_id=snapshot_id,
                                       references=references)
        failed = sum(not o["passed"] for o in outcomes)
        if ctx.printer.json:
            ctx.printer.emit(outcomes)
        else:
            rows = [[i, o["rule"], _result(o), _number(o["observed"]), o["failing_rows"], o["message"]]
                    for i, o in enumerate(outcomes, 1)]
            ctx.printer.table(None, ["#", "rule", "result", "observed", "failing rows", "message"], rows)
            ctx.printer.line(f"{len(outcomes) - failed} of {len(outcomes)} rules passed")
        if failed:
            sys.exit(1)


def _result(outcome: dict[str, Any]) -> str:
    return "error" if outcome["error"] else ("pass" if outcome["passed"] else "FAIL")


def _number(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value

"""Data-quality commands: ``dq check TABLE RULESET``."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from lakeplane.cli.context import DAY, EXIT_FAILED, Context, common_options, pass_ctx


@click.group()
@common_options
def dq() -> None:
    """Data-quality rules in AWS Glue's DQDL."""


def _references(_ctx: click.Context, _param: click.Parameter, refs: tuple[str, ...]) -> dict[str, str]:
    return _pairs(refs, "ALIAS=TABLE")


def _labels(_ctx: click.Context, _param: click.Parameter, labels: tuple[str, ...]) -> dict[str, str]:
    return _pairs(labels, "KEY=VALUE")


def _pairs(values: tuple[str, ...], form: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not (sep and key and rest):
            raise click.BadParameter(f"'{value}' is not {form}")
        pairs[key] = rest
    return pairs


@dq.command("check")
@click.argument("table")
@click.argument("ruleset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--ref",
    "references",
    multiple=True,
    metavar="ALIAS=TABLE",
    callback=_references,
    help='A reference dataset the rules name (RowCountMatch "ALIAS"). Repeatable.',
)
@click.option("--snapshot", "snapshot_id", type=int, help="Check this snapshot, not the current one.")
@click.option(
    "--series",
    default="adhoc",
    show_default=True,
    metavar="NAME",
    help="Metric-history series that dynamic rules and DetectAnomalies read and that this check records "
    'into; pipeline gates use "pipeline".',
)
@click.option(
    "--ds",
    type=DAY,
    help="Check only business date DS: its rows, and in file rules the raw batches landed for it.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_labels,
    help="Report only the rules with this label (DQDL labels=[...]). Repeatable: every one must match.",
)
@common_options
@pass_ctx
def check(
    ctx: Context,
    table: str,
    ruleset: Path,
    references: dict[str, str],
    snapshot_id: int | None,
    series: str,
    ds: dt.date | None,
    labels: dict[str, str],
) -> None:
    """Evaluate the DQDL file RULESET on TABLE; exit 1 if a reported rule fails.

    TABLE may be a raw dataset, raw/<source>/<dataset>, checked with file rules (FileFreshness,
    FileSize, FileMatch, FileUniqueness) on its landed batches.
    """
    outcomes = ctx.lake().dq_check(
        table,
        ruleset.resolve(),
        snapshot_id=snapshot_id,
        references=references,
        series=series,
        ds=ds,
        only_ds=ds is not None,
    )
    outcomes = [o for o in outcomes if labels.items() <= (o.get("labels") or {}).items()]
    rules = [o for o in outcomes if not o.get("analyzer")]
    failed = sum(not o["passed"] for o in rules)
    if ctx.printer.json:
        ctx.printer.emit(outcomes)
    else:
        columns = ["#", "rule", "result", "observed", "failing rows", "message"]
        rows = [
            [i, o["rule"], _result(o), _number(o["observed"]), o["failing_rows"], o["message"]]
            for i, o in enumerate(outcomes, 1)
        ]
        if any(o.get("labels") for o in outcomes):
            columns.insert(2, "labels")
            for row, outcome in zip(rows, outcomes, strict=True):
                row.insert(2, format_labels(outcome.get("labels")))
        ctx.printer.table(None, columns, rows)
        shown = f" labelled {format_labels(labels)}" if labels else ""
        ctx.printer.line(f"{len(rules) - failed} of {len(rules)} rules{shown} passed")
    if failed:
        sys.exit(EXIT_FAILED)


def format_labels(labels: dict[str, str] | None) -> str:
    """``team=ads, tier=1``, markup-safe for rich tables."""
    from rich.markup import escape

    return escape(", ".join(f"{k}={v}" for k, v in (labels or {}).items()))


def _result(outcome: dict[str, Any]) -> str:
    if outcome["error"]:
        return "error"
    return "analyzed" if outcome.get("analyzer") else ("pass" if outcome["passed"] else "FAIL")


def _number(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value

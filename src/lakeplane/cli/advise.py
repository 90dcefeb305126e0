"""``lakeplane advise``: the cheapest shape for a job, or a described estate priced."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from lakeplane.cli.context import EXIT_FAILED, Context, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.compute.scenario import ScenarioResult


@click.command()
@click.argument("target", required=False, metavar="[PIPELINE|MODEL]")
@click.option(
    "--scenario",
    "scenario",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Price the estate described in FILE (e.g. scenarios/meridian.yaml) standing and transient.",
)
@common_options
@pass_ctx
def advise(ctx: Context, target: str | None, scenario: Path | None) -> None:
    """Recommend the cheapest shape that meets a job's limits, or price a scenario's estate."""
    if scenario is None and target is None:
        raise click.UsageError("give a PIPELINE or MODEL, or --scenario FILE")
    if scenario is None:
        message = (
            f"advising on {target} needs its run history (a scaling model fitted from past runs); "
            "use --scenario FILE to price a described estate"
        )
        if ctx.printer.json:
            ctx.printer.emit({"error": "NoRunHistory", "message": message, "target": target})
        else:
            click.echo(f"error: {message}", err=True)
        ctx_exit(EXIT_FAILED)
    from lakeplane.compute.scenario import evaluate

    result = evaluate(_find(scenario, ctx.lake_dir))
    if ctx.printer.json:
        ctx.printer.emit(result.to_dict())
        return
    _print(ctx, result)


def ctx_exit(code: int) -> NoReturn:
    raise SystemExit(code)


def _find(scenario: Path, lake_dir: str | None) -> Path:
    if scenario.exists() or scenario.is_absolute() or lake_dir is None:
        return scenario
    beside = Path(lake_dir) / scenario
    return beside if beside.exists() else scenario


def _print(ctx: Context, result: ScenarioResult) -> None:
    printer = ctx.printer
    data = result.to_dict()
    rows = []
    for job in data["jobs"]:
        rows.append(
            [
                job["job"],
                job["choice"] or "none",
                job["runner_up"] or "",
                f"${job['usd_per_run']:,.2f}" if job["usd_per_run"] is not None else "",
                f"${job['usd_per_year']:,.0f}",
            ]
        )
    printer.table(
        f"{data['scenario']}: jobs ({data['region']}, prices as of {data['prices_as_of']})",
        ["job", "shape", "runner-up", "per run", "per year"],
        rows,
    )
    for job in data["jobs"]:
        printer.line(f"[bold]{job['job']}[/bold]")
        for reason in job["reasons"]:
            printer.line(f"  - {reason}")
    transient = data["transient"]
    printer.table(
        "transient estate, per year",
        ["part", "USD"],
        [
            ["jobs on their advised shapes", f"${transient['jobs_usd_per_year']:,.0f}"],
            ["storage", f"${transient['storage_usd_per_year']:,.0f}"],
            ["fixed costs that remain", f"${transient['fixed_usd_per_year']:,.0f}"],
        ],
    )
    nightly = data["nightly_transient_vs_serverless"]
    printer.line(
        f"standing ${data['standing_usd_per_year']:,.0f}/year → transient "
        f"${data['transient_usd_per_year']:,.0f}/year: {data['savings']:.1%} saved"
        + (
            f"; the nightly job on transient EMR with Spot is {nightly:.1%} cheaper than on EMR Serverless"
            if nightly is not None
            else ""
        )
    )

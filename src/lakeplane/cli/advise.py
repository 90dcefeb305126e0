"""``lakeplane advise``: the cheapest shape for a job, or a described estate priced."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.compute.job_advice import HistoryAdvice
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
@click.option(
    "--volume",
    "volumes",
    multiple=True,
    metavar="N[x]",
    help="Advise also for N times today's volume (repeatable: --volume 10x --volume 100x).",
)
@click.option(
    "--deadline", metavar="D", help="The job must end within D (2h, 45m); default placement.deadline."
)
@click.option(
    "--budget", type=float, metavar="USD", help="The most one run may cost; default placement.budget."
)
@common_options
@pass_ctx
def advise(
    ctx: Context,
    target: str | None,
    scenario: Path | None,
    volumes: tuple[str, ...],
    deadline: str | None,
    budget: float | None,
) -> None:
    """Recommend the cheapest shape that meets a job's limits, or price a scenario's estate.

    With PIPELINE or MODEL, the job's scaling model is fitted from its run history and the advice
    is given for today's volume and each --volume multiple, with the prediction's uncertainty.
    """
    if scenario is None and target is None:
        raise click.UsageError("give a PIPELINE or MODEL, or --scenario FILE")
    if scenario is None and target is not None:
        _advise_job(ctx, target, volumes, deadline, budget)
        return
    assert scenario is not None
    from lakeplane.compute.scenario import evaluate

    result = evaluate(_find(scenario, ctx.lake_dir))
    if ctx.printer.json:
        ctx.printer.emit(result.to_dict())
        return
    _print(ctx, result)


def _advise_job(
    ctx: Context, target: str, volumes: tuple[str, ...], deadline: str | None, budget: float | None
) -> None:
    from lakeplane.cli.costs import lake_costs
    from lakeplane.compute.job_advice import parse_multiple
    from lakeplane.units import parse_duration

    try:
        seconds = None if deadline is None else parse_duration(deadline)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--deadline") from None
    try:
        multiples = [parse_multiple(v) for v in volumes]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--volume") from None
    found = lake_costs(ctx.lake()).advise(target, multiples, seconds, budget)
    if ctx.printer.json:
        ctx.printer.emit(found.to_dict())
        return
    _print_job(ctx, found)


def _print_job(ctx: Context, found: HistoryAdvice) -> None:
    printer, model = ctx.printer, found.model
    terms = ", ".join(f"{t} {c:.4g}" for t, c in zip(model.terms, model.coefficients, strict=True))
    printer.line(
        f"[bold]{found.job.name}[/bold] ({found.job.kind}): scaling model from {model.runs} runs: "
        f"seconds = {terms}; mean error {model.fit_error:.1%}, leave-one-out {model.loo_error:.1%}"
    )
    rows = []
    for answer in found.answers:
        choice, runner_up, at = answer.advice.choice, answer.advice.runner_up, answer.predicted
        rows.append(
            [
                f"{answer.multiple:g}x",
                f"{at.seconds:,.1f} s ({at.low:,.1f}-{at.high:,.1f})",
                "none" if choice is None else choice.shape,
                "" if choice is None else f"${choice.usd:,.6f}",
                "" if runner_up is None else f"{runner_up.shape} ${runner_up.usd:,.6f}",
            ]
        )
    printer.table(None, ["volume", "predicted (90 %)", "choice", "per run", "runner-up"], rows)
    for answer in found.answers:
        printer.line(f"[bold]{answer.multiple:g}x[/bold]: {answer.uncertainty}")
        for reason in answer.advice.reasons:
            printer.line(f"  - {reason}")
    for assumption in found.assumptions:
        printer.line(f"assumed: {assumption}")


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

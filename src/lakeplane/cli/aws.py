"""``lakeplane aws render|submit``: a pipeline's or model's job as the AWS request each shape takes."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from lakeplane.cli.context import DAY, EXIT_FAILED, Context, F, common_options, pass_ctx

#: ``lakeplane aws`` targets (lakeplane.aws.render.TARGETS, named here so ``--help`` imports nothing).
TARGET_NAMES = ("emr", "emr-serverless", "glue", "stepfunctions", "athena-workgroup")
RUNNERS = ("emr-serverless", "glue", "emr")


@click.group("aws")
@common_options
def aws() -> None:
    """Jobs on AWS: EMR (instance fleets, Spot task fleet), EMR Serverless, Glue, Step Functions, Athena."""


def _job_options(command: F) -> F:
    for option in reversed(
        [
            click.argument("target", type=click.Choice(TARGET_NAMES)),
            click.argument("name", metavar="PIPELINE|MODEL"),
            click.option("--ds", type=DAY, default=None, help="Business date (default: yesterday, UTC)."),
            click.option(
                "--runs-on",
                type=click.Choice(RUNNERS),
                default=None,
                help="stepfunctions: what runs each step (default aws.stepfunctions.runs_on).",
            ),
            click.option(
                "--workgroup", default=None, help="athena-workgroup: which of workgroups: (default: default)."
            ),
        ]
    ):
        command = option(command)
    return command


def _day(ds: dt.date | None) -> dt.date:
    return ds or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))


@aws.command("render")
@_job_options
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON document here."
)
@common_options
@pass_ctx
def render(
    ctx: Context,
    target: str,
    name: str,
    ds: dt.date | None,
    runs_on: str | None,
    workgroup: str | None,
    out: str | None,
) -> None:
    """Print TARGET's request for PIPELINE|MODEL as boto3 takes it, validated against botocore's model."""
    from lakeplane.aws.render import render_job

    rendered = render_job(ctx.lake(), target, name, _day(ds), runs_on, workgroup)
    document = rendered.to_dict()
    if out:
        Path(out).write_text(json.dumps(document, indent=2, default=str) + "\n")
    if ctx.printer.json:
        ctx.printer.emit(document)
        return
    click.echo(f"# {rendered.target.service} {rendered.target.operation} ({rendered.target.method})")
    click.echo(json.dumps(rendered.request, indent=2, default=str))
    for warning in rendered.warnings:
        click.echo(f"warning: {warning}", err=True)
    if out:
        click.echo(f"wrote {out}", err=True)


@aws.command("submit")
@_job_options
@click.option(
    "--wait", is_flag=True, help="Wait until the job run or execution ends; exit 1 unless it succeeded."
)
@click.option(
    "--timeout", "timeout_s", type=float, default=3600, show_default=True, help="Seconds --wait waits."
)
@common_options
@pass_ctx
def submit(
    ctx: Context,
    target: str,
    name: str,
    ds: dt.date | None,
    runs_on: str | None,
    workgroup: str | None,
    wait: bool,
    timeout_s: float,
) -> None:
    """Upload the code bundle to aws.code_uri, then create or start TARGET's request through boto3."""
    from lakeplane.aws.submit import submit_job

    submission = submit_job(ctx.lake(), target, name, _day(ds), runs_on, workgroup, wait, timeout_s)
    if ctx.printer.json:
        ctx.printer.emit(submission.to_dict())
    else:
        click.echo(
            f"{submission.target} {submission.operation}: "
            + ", ".join(f"{k}={v}" for k, v in submission.ids.items())
        )
        for uri in submission.uploaded:
            click.echo(f"uploaded {uri}")
        if submission.state:
            click.echo(f"state: {submission.state}")
    if submission.succeeded is False:
        sys.exit(EXIT_FAILED)

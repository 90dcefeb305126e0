"""``lakeplane cost``: the price table (``cost prices``) and what runs cost."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.compute.lake_costs import LakeCosts
    from lakeplane.compute.report import CostReport
    from lakeplane.lake import Lake


def lake_costs(lake: Lake) -> LakeCosts:
    """The cost side of ``lake``: its prices, this machine's price, its run history."""
    return lake.costs


@click.group()
@common_options
def cost() -> None:
    """What compute costs: the price table and the cost of runs."""


@cost.command()
@click.option("--region", default="us-east-1", show_default=True, help="The region's prices.")
@click.option(
    "--prices",
    "prices_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="A price table other than the shipped one.",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Fetch the region's EC2 and EMR prices from the AWS Price List API (needs credentials).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("prices.yaml"),
    show_default=True,
    help="Where --refresh writes the refreshed table.",
)
@common_options
@pass_ctx
def prices(ctx: Context, region: str, prices_path: Path | None, refresh: bool, out: Path) -> None:
    """Show the price table for a region, or refresh it from the AWS Price List API."""
    from lakeplane.compute.prices import load_prices

    if refresh:
        from lakeplane.compute.pricelist import refresh_prices

        prices_path = refresh_prices(region, out, source=prices_path)
        ctx.printer.line(f"wrote {prices_path}")
    table = load_prices(prices_path, region)
    rate = {arch: vars(r) for arch, r in table.serverless.rates.items()}
    data: dict[str, Any] = {
        "file": table.path,
        "region": table.region,
        "as_of": table.as_of,
        "sources": dict(table.sources),
        "instances": [
            {
                **vars(i),
                "spot": round(table.spot_hourly(i.name), 6),
                "spot_discount": table.spot_discount.get(i.family, 0.0),
            }
            for i in table.instances.values()
        ],
        "emr_serverless": {**rate, "storage_gb_hour": table.serverless.storage_gb_hour},
        "glue": vars(table.glue),
        "athena": vars(table.athena),
        "s3": {
            "standard_first_tier": table.s3.standard[0].gb_month,
            "standard_ia": table.s3.standard_ia,
            "glacier_instant": table.s3.glacier_instant,
            "glacier_flexible": table.s3.glacier_flexible,
            "glacier_deep_archive": table.s3.glacier_deep_archive,
            "put_per_1000": table.s3.put_per_1000,
            "get_per_1000": table.s3.get_per_1000,
        },
    }
    if ctx.printer.json:
        ctx.printer.emit(data)
        return
    ctx.printer.table(
        f"{table.region} prices as of {table.as_of} ({table.path})",
        ["instance", "vCPU", "GB", "On-Demand $/h", "EMR $/h", "Spot $/h"],
        [
            [i["name"], i["vcpu"], f"{i['memory_gb']:g}", i["on_demand"], i["emr"], f"{i['spot']:.4f}"]
            for i in data["instances"]
        ],
    )
    s = table.serverless.rates
    ctx.printer.line(
        f"EMR Serverless x86_64 ${s['x86_64'].vcpu_hour}/vCPU-h ${s['x86_64'].gb_hour}/GB-h; "
        f"arm64 ${s['arm64'].vcpu_hour}/vCPU-h ${s['arm64'].gb_hour}/GB-h"
    )
    ctx.printer.line(
        f"Glue ${table.glue.dpu_hour}/DPU-h (Flex ${table.glue.flex_dpu_hour}); "
        f"Athena ${table.athena.per_tb}/TB scanned (minimum {table.athena.minimum_mb:g} MB)"
    )


@cost.command()
@click.option(
    "--since", metavar="D", help="Runs started since D: 7d, 12h, or a date (2026-11-01). Default: all."
)
@common_options
@pass_ctx
def report(ctx: Context, since: str | None) -> None:
    """What the runs cost here and on each shape; a standing cluster against transient compute."""
    found = lake_costs(ctx.lake()).report(since)
    if ctx.printer.json:
        ctx.printer.emit(found.to_dict())
        return
    _print_report(ctx, found)


def _print_report(ctx: Context, found: CostReport) -> None:
    printer = ctx.printer
    rows = []
    for part in [*found.pipelines, *([found.total] if found.total and len(found.pipelines) > 1 else [])]:
        rows.append(
            [
                part.name,
                part.runs,
                f"${part.here_usd:,.6f}",
                f"${part.transient_usd:,.6f}",
                f"${part.standing.usd:,.2f} ({part.standing.nodes} x {part.standing.node})",
                f"{part.savings:.1%}",
            ]
        )
    printer.table(
        f"runs {found.since} .. {found.until} ({found.days:.2f} days)",
        ["pipeline", "runs", "here", "transient", "standing", "saved"],
        rows,
    )
    if found.total:
        shapes = [[s, "n/a" if v is None else f"${v:,.6f}"] for s, v in found.total.shapes.items()]
        printer.table("all runs on each shape", ["shape", "USD"], shapes)
    for assumption in found.assumptions:
        printer.line(f"assumed: {assumption}")

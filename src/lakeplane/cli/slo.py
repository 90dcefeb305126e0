"""``lakeplane slo``: the SLOs judged now; ``lakeplane metrics``: the Prometheus text of the lake."""

from __future__ import annotations

import sys

import click

from lakeplane.cli.context import EXIT_FAILED, Context, common_options, pass_ctx

_COLUMNS = ["slo", "kind", "target", "objective", "observed", "ok", "budget left", "burn", "window", "detail"]


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option("--alert", is_flag=True, help="Record each SLO's state and send an alert for each new breach.")
@click.option("--check", is_flag=True, help="Exit 1 if an SLO is breached.")
@common_options
@pass_ctx
def slo(ctx: Context, names: tuple[str, ...], alert: bool, check: bool) -> None:
    """Judge the SLOs of lakeplane.yaml (or those named): observed value, error budget, burn rate."""
    lake = ctx.lake()
    results = lake.slos(list(names) or None)
    sent = []
    if alert:
        from lakeplane.observe.alerts import announce_breaches

        sent = announce_breaches(lake, results)
    if ctx.printer.json:
        ctx.printer.emit([r.to_dict() for r in results])
    elif not results:
        ctx.printer.line("no SLOs: declare them under slos: in lakeplane.yaml (see docs/slos-and-alerts.md)")
    else:
        rows = [
            [
                r.name,
                r.kind,
                f"{r.target_type} {r.target}",
                _value(r.objective, r.unit),
                _value(r.observed, r.unit),
                "ok" if r.ok else "BREACHED",
                f"{r.error_budget_remaining:.1%}",
                f"{r.burn_rate:.2f}",
                r.window,
                r.detail,
            ]
            for r in results
        ]
        ctx.printer.table(None, _COLUMNS, rows)
        for a in sent:
            ctx.printer.line(f"alert {a.key}: " + ("sent" if a.delivered else f"not delivered ({a.error})"))
    if check and not all(r.ok for r in results):
        sys.exit(EXIT_FAILED)


@click.command()
@common_options
@pass_ctx
def metrics(ctx: Context) -> None:
    """Print the lake's metrics in the Prometheus text format (what the console serves at /metrics)."""
    text = ctx.lake().metrics_text()
    if ctx.printer.json:
        from prometheus_client.parser import text_string_to_metric_families

        ctx.printer.emit(
            [
                {"name": f.name, "type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
                for f in text_string_to_metric_families(text)
            ]
        )
        return
    sys.stdout.write(text)


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "seconds":
        return f"{value / 3600:.2f} h"
    if unit == "usd":
        return f"${value:.4f}"
    return f"{value:.2%}"

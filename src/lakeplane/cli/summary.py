"""End-of-work summaries: rows in and out, quarantined, time, bytes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeplane.units import human_bytes

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeplane.cli.output import Printer
    from lakeplane.demo.run import DemoResult
    from lakeplane.ingest.step import IngestResult
    from lakeplane.lake import RunSummary


def print_ingest(printer: Printer, result: IngestResult) -> None:
    printer.table(
        f"{result.dataset} → {result.table} for {result.ds}",
        ["batch", "lines read", "accepted", "quarantined", "parse"],
        [[b.batch_id, b.read, b.accepted, b.quarantined, b.parse_path] for b in result.batches]
        + [["total", result.read, result.accepted, result.quarantined, ""]],
    )
    if result.by_reason:
        printer.line(
            "quarantined by reason: "
            + ", ".join(f"{reason} {count}" for reason, count in result.by_reason.items())
        )
    printer.line(
        f"{result.duplicates} duplicates dropped within the day, {result.duplicates_across_days} "
        f"already published on another day, {result.rows_written} rows written, "
        f"{human_bytes(result.bytes_read)} read, {human_bytes(result.bytes_written)} "
        f"written in {result.seconds:.2f} s"
    )
    for warning in result.warnings:
        printer.line(f"warning: {warning}")


def print_run(printer: Printer, summary: RunSummary) -> None:
    data = summary.to_dict()
    rows: list[list[object]] = [
        [
            "ingest",
            i.table,
            i.read,
            i.accepted,
            i.quarantined,
            i.duplicates,
            i.duplicates_across_days,
            i.rows_written,
            human_bytes(i.bytes_written),
            f"{i.seconds:.2f}",
        ]
        for i in summary.ingests
    ]
    rows += [
        [
            "model",
            m.model,
            "",
            "",
            "",
            "",
            "",
            m.rows if not m.skipped else f"skipped: {m.skipped}",
            human_bytes(m.bytes_written),
            f"{m.seconds:.2f}",
        ]
        for m in summary.models
    ]
    printer.table(
        f"nightly run {summary.ds}",
        [
            "step",
            "table",
            "read",
            "accepted",
            "quarantined",
            "duplicates",
            "other days",
            "rows out",
            "written",
            "seconds",
        ],
        rows,
    )
    for model in summary.models:
        if not model.skipped:
            printer.line(f"{model.model}: ran on {model.engine} ({model.placement})")
    printer.line(
        f"{data['read']} lines read, {data['accepted']} accepted, {data['quarantined']} "
        f"quarantined, {data['duplicates']} duplicates dropped within a day and "
        f"{data['duplicates_across_days']} already published on another day; "
        f"{human_bytes(data['bytes_read'])} raw in, {human_bytes(data['bytes_written'])} written; "
        f"{summary.seconds:.2f} s, peak memory {summary.peak_memory_mb:.0f} MB"
    )
    for warning in (w for i in summary.ingests for w in i.warnings):
        printer.line(f"warning: {warning}")


def print_demo(printer: Printer, demo: DemoResult) -> None:
    """The demo's nightly runs, sample rows, one query as three principals, and what to try next."""
    summaries = demo.summaries
    printer.table(
        "nightly runs",
        ["ds", "run", "state", "lines read", "quarantined", "rows out", "written", "seconds", "steps"],
        [
            [
                s["ds"],
                s["run_id"],
                s["state"],
                s["read"],
                s["quarantined"],
                s["rows_out"],
                s["bytes_written"],
                s["seconds"],
                s["steps"],
            ]
            for s in summaries
        ],
    )
    for ds, step, error in demo.failed_steps():
        printer.line(f"[red]{ds} {step}[/red]: {error}")
    _print_rows(printer, "curated.daily_campaign_stats (top rows of the last published day)", demo.sample)
    _print_rows(printer, "processed.impressions_quarantine by reason", demo.quarantine)
    printer.line(f"\none policy, the same query, three principals:\n  {demo.governed_query}")
    for who, result in demo.governed.items():
        _print_rows(printer, f"as {who} ({demo.roles[who]})", result)
    printer.line(f"as ian (role:intern): {demo.intern}")
    printer.line(
        f"\nnext, from {demo.project}:\n"
        "  lakeplane tables\n"
        "  lakeplane describe curated.daily_campaign_stats\n"
        '  lakeplane query --as fred "SELECT * FROM telco.processed.subscribers LIMIT 5"\n'
        "  lakeplane access who-can-see telco.processed.cdr.msisdn\n"
        '  lakeplane access explain --as eve "SELECT region, count(*) FROM telco.processed.cdr GROUP BY 1"'
        "\n"
        "  lakeplane audit verify\n"
        "  lakeplane runs    # then: lakeplane run-show RUN_ID, with usage and cost\n"
        "  lakeplane advise --scenario scenarios/meridian.yaml\n"
        "  lakeplane aws render emr nightly"
    )
    printer.line(
        "\nopen the web console (runs, tables, quality, lineage, SLOs, queries, access), "
        "logged in as a principal:\n"
        "  lakeplane token create ana    # prints the token to log in with\n"
        "  lakeplane console --port 8780    # then open http://127.0.0.1:8780"
    )


def _print_rows(printer: Printer, title: str, rows: pa.Table) -> None:
    printer.table(title, rows.column_names, [list(r.values()) for r in rows.to_pylist()])

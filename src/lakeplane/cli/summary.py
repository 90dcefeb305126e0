"""End-of-work summaries: rows in and out, quarantined, time, bytes."""

from __future__ import annotations

from lakeplane.cli.output import Printer
from lakeplane.ingest.step import IngestResult
from lakeplane.lake import RunSummary
from lakeplane.units import human_bytes


def print_ingest(printer: Printer, result: IngestResult) -> None:
    printer.table(
        f"{result.dataset} → {result.table} for {result.ds}",
        ["batch", "lines read", "accepted", "quarantined", "parse"],
        [[b.batch_id, b.read, b.accepted, b.quarantined, b.parse_path] for b in result.batches]
        + [["total", result.read, result.accepted, result.quarantined, ""]],
    )
    if result.by_reason:
        printer.line("quarantined by reason: " + ", ".join(
            f"{reason} {count}" for reason, count in result.by_reason.items()))
    printer.line(f"{result.duplicates} duplicates dropped, {result.rows_written} rows written, "
                 f"{human_bytes(result.bytes_read)} read, {human_bytes(result.bytes_written)} "
                 f"written in {result.seconds:.2f} s")


def print_run(printer: Printer, summary: RunSummary) -> None:
    data = summary.to_dict()
    rows: list[list[object]] = [
        ["ingest", i.table, i.read, i.accepted, i.quarantined, i.duplicates,
         i.rows_written, human_bytes(i.bytes_written), f"{i.seconds:.2f}"]
        for i in summary.ingests
    ]
    rows += [["model", m.model, "", "", "", "", m.rows if not m.skipped else f"skipped: {m.skipped}",
              human_bytes(m.bytes_written), f"{m.seconds:.2f}"] for m in summary.models]
    printer.table(f"nightly run {summary.ds}",
                  ["step", "table", "read", "accepted", "quarantined", "duplicates", "rows out",
                   "written", "seconds"], rows)
    for model in summary.models:
        if not model.skipped:
            printer.line(f"{model.model}: ran on {model.engine} ({model.placement})")
    printer.line(
        f"{data['read']} lines read, {data['accepted']} accepted, {data['quarantined']} "
        f"quarantined, {data['duplicates']} duplicates dropped; "
        f"{human_bytes(data['bytes_read'])} raw in, {human_bytes(data['bytes_written'])} written; "
        f"{summary.seconds:.2f} s, peak memory {summary.peak_memory_mb:.0f} MB"
    )

"""Tables as the console shows them: the list, and one table's schema, partitions, snapshots, files,
small-file health and size over time, as its reader may see them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lakeplane.console.viewer import Viewer

if TYPE_CHECKING:
    from lakeplane.lake import Lake


def tables_list(lake: Lake, viewer: Viewer) -> list[dict[str, Any]]:
    """Every table ``viewer`` may read, with its size from the current snapshot's summary."""
    found = []
    for name in sorted(viewer.readable):
        table = lake.catalog.load(name)
        snapshot = table.current_snapshot()
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
        found.append(
            {
                "table": name,
                "records": int(summary.get("total-records", 0)),
                "files": int(summary.get("total-data-files", 0)),
                "bytes": int(summary.get("total-files-size", 0)),
                "snapshots": len(table.snapshots()),
                "last_commit": _iso(snapshot.timestamp_ms) if snapshot else None,
            }
        )
    return found


def table_detail(lake: Lake, viewer: Viewer, table: str, small_file_bytes: int) -> dict[str, Any]:
    """Schema (with what ``viewer`` gets of each column), partitions, snapshots, files, small files
    and size over time of ``table``, which the caller checked ``viewer`` may read."""
    described = lake.catalog.describe(table)
    access = lake.governance.access(viewer.principal, table)
    decisions = {c.column: c for c in access.columns}
    schema = []
    for column in described["schema"]:
        decision = decisions.get(column["name"])
        if decision is None or decision.access == "denied":
            continue
        schema.append(
            {
                **column,
                "access": decision.access,
                "mask": decision.mask.kind if decision.mask else None,
                "because": decision.because,
            }
        )
    files = described["files"]
    partitions: dict[str, dict[str, Any]] = {}
    for f in files:
        key = ", ".join(f"{k}={v}" for k, v in sorted(f["partition"].items())) or "(unpartitioned)"
        part = partitions.setdefault(
            key, {"partition": key, "files": 0, "records": 0, "bytes": 0, "small": 0}
        )
        part["files"] += 1
        part["records"] += f["records"]
        part["bytes"] += f["bytes"]
        part["small"] += f["bytes"] < small_file_bytes
    small = [f for f in files if f["bytes"] < small_file_bytes]
    history = [
        {
            "at": s["at"],
            "snapshot_id": s["snapshot_id"],
            "records": int(s["summary"].get("total-records", 0)),
            "bytes": int(s["summary"].get("total-files-size", 0)),
            "files": int(s["summary"].get("total-data-files", 0)),
        }
        for s in described["snapshots"]
        if s["on_main"]
    ]
    return {
        "table": described["table"],
        "location": described["location"],
        "format_version": described["format_version"],
        "schema": schema,
        "row_filters": [f.sql() for f in access.row_filters],
        "partition_spec": [
            p for p in described["partition_spec"] if p["source"] in {c["name"] for c in schema}
        ],
        "partitions": sorted(partitions.values(), key=lambda p: p["partition"]),
        "snapshots": [
            {k: s[k] for k in ("snapshot_id", "at", "operation", "on_main", "branch")}
            | {"summary": _sizes(s)}
            for s in described["snapshots"]
        ],
        "current_snapshot_id": described["current_snapshot_id"],
        "files": [{"path": f["path"], "records": f["records"], "bytes": f["bytes"]} for f in files],
        "records": described["records"],
        "bytes": described["bytes"],
        "small_files": {
            "threshold_bytes": small_file_bytes,
            "count": len(small),
            "bytes": sum(f["bytes"] for f in small),
            "share": round(len(small) / len(files), 3) if files else 0.0,
        },
        "size_history": history,
    }


def sample_rows(lake: Lake, viewer: Viewer, table: str, limit: int) -> dict[str, Any]:
    """Up to ``limit`` rows of ``table`` read as ``viewer`` through the governed query path."""
    sql = exp.select("*").from_(exp.to_table(table)).limit(limit).sql(dialect="trino")
    result = lake.query(sql, principal=viewer.principal)
    return {"columns": result.column_names, "rows": [list(r.values()) for r in result.to_pylist()]}


def _sizes(snapshot: dict[str, Any]) -> dict[str, str]:
    keep = ("added-records", "deleted-records", "added-data-files", "total-records", "total-files-size")
    return {k: v for k, v in snapshot["summary"].items() if k in keep}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")

"""Lineage and SLOs as the console shows them, from the lake's lineage store and SLO evaluation.

Lineage is cut to what the viewer may read: a node on a table it may not read is dropped with its
edges, so a hidden table is not named even as a neighbour. SLOs on such a table are left out.
When this lake's lakeplane has no lineage or SLO support, the pages say so (``available`` false).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeplane.console.viewer import Viewer
from lakeplane.errors import LakeplaneError

if TYPE_CHECKING:
    from lakeplane.lake import Lake

LINEAGE_MISSING = "column lineage is not available in this build of lakeplane (no lakeplane.lineage)"
SLO_MISSING = "SLOs are not available in this build of lakeplane (no lakeplane.observe)"


def lineage_view(
    lake: Lake, viewer: Viewer, table: str, column: str | None, direction: str, depth: int
) -> dict[str, Any]:
    """The lineage graph around ``table`` (or one of its columns) with only readable nodes."""
    lineage = getattr(lake, "lineage", None)
    if lineage is None:
        return {"available": False, "note": LINEAGE_MISSING, "root": table, "nodes": [], "edges": []}
    try:
        graph = lineage(table if column is None else f"{table}.{column}", direction=direction, depth=depth)
    except LakeplaneError as exc:
        return {"available": True, "note": str(exc), "root": table, "nodes": [], "edges": []}
    data: dict[str, Any] = graph.to_dict()
    nodes = [n for n in data["nodes"] if viewer.can_read(n.get("table"))]
    if not viewer.admin:
        nodes = [n for n in nodes if _column_visible(lake, viewer, n)]
    kept = {n["id"] for n in nodes}
    edges = [e for e in data["edges"] if e["source"] in kept and e["target"] in kept]
    return {"available": True, "note": None, "root": data["root"], "nodes": nodes, "edges": edges}


def _column_visible(lake: Lake, viewer: Viewer, node: dict[str, Any]) -> bool:
    column = node.get("column")
    if not column:
        return True
    decision = lake.governance.access(viewer.principal, str(node["table"])).column(str(column))
    return decision is None or decision.access != "denied"


def slo_view(lake: Lake, viewer: Viewer) -> dict[str, Any]:
    """Every SLO on a pipeline, or on a table ``viewer`` may read, as last evaluated."""
    slos = getattr(lake, "slos", None)
    if slos is None:
        return {"available": False, "note": SLO_MISSING, "slos": []}
    try:
        results = [r.to_dict() for r in slos()]
    except LakeplaneError as exc:
        return {"available": True, "note": str(exc), "slos": []}
    shown = [r for r in results if _target_visible(lake, viewer, str(r.get("target", "")))]
    return {"available": True, "note": None, "slos": shown}


def _target_visible(lake: Lake, viewer: Viewer, target: str) -> bool:
    if viewer.admin or target in {p.name for p in lake.pipelines()}:
        return True
    try:
        return viewer.can_read(lake.resolve_table(target))
    except LakeplaneError:
        return False


def metrics_text(lake: Lake) -> str | None:
    """The lake's Prometheus text exposition, or None without SLO/metrics support."""
    metrics = getattr(lake, "metrics_text", None)
    return None if metrics is None else str(metrics())

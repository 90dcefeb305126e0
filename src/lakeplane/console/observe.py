"""Lineage and SLOs as the console shows them, from the lake's lineage store and SLO evaluation.

Lineage is cut to what the viewer may read: the walk neither shows nor passes a node on a table it
may not read, so a hidden table is not named even as a neighbour. SLOs on such a table are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakeplane.console.viewer import Viewer
from lakeplane.errors import LakeplaneError
from lakeplane.lineage.edges import RAW_PREFIX
from lakeplane.lineage.graph import Direction

if TYPE_CHECKING:
    from lakeplane.lake import Lake


def lineage_view(
    lake: Lake, viewer: Viewer, table: str, column: str | None, direction: Direction, depth: int
) -> dict[str, Any]:
    """The lineage graph around ``table`` (or one of its columns), walked only through nodes
    ``viewer`` may see: a table it may read, a column of one it is not denied, a raw dataset whose
    processed table it may read."""
    visible = _lineage_visibility(lake, viewer)
    try:
        graph = lake.lineage(table, column, direction, depth, visible=visible)
    except LakeplaneError as exc:
        return {"available": True, "note": str(exc), "root": table, "nodes": [], "edges": []}
    data: dict[str, Any] = graph.to_dict()
    return {"available": True, "note": None, **data}


def _lineage_visibility(lake: Lake, viewer: Viewer) -> Callable[[str, str | None], bool]:
    decided: dict[tuple[str, str | None], bool] = {}

    def visible(table: str, column: str | None) -> bool:
        if viewer.admin:
            return True
        if (table, column) not in decided:
            decided[(table, column)] = _node_visible(lake, viewer, table, column)
        return decided[(table, column)]

    return visible


def _node_visible(lake: Lake, viewer: Viewer, table: str, column: str | None) -> bool:
    if table.startswith(RAW_PREFIX):
        try:
            target = lake.resolve_table(lake.dataset(table[len(RAW_PREFIX) :]).table)
        except LakeplaneError:
            return False
        return viewer.can_read(target)
    if not viewer.can_read(table):
        return False
    if column is None:
        return True
    decision = lake.governance.access(viewer.principal, table).column(column)
    return decision is not None and decision.access != "denied"


def slo_view(lake: Lake, viewer: Viewer) -> dict[str, Any]:
    """Every SLO on a pipeline, or on a table ``viewer`` may read, as last evaluated."""
    try:
        results = [r.to_dict() for r in lake.slos()]
    except LakeplaneError as exc:
        return {"available": True, "note": str(exc), "slos": []}
    shown = [
        r
        for r in results
        if viewer.admin
        or r.get("target_type") == "pipeline"
        or _table_visible(lake, viewer, str(r["target"]))
    ]
    return {"available": True, "note": None, "slos": shown}


def _table_visible(lake: Lake, viewer: Viewer, table: str) -> bool:
    try:
        return viewer.can_read(lake.resolve_table(table))
    except LakeplaneError:
        return False


def metrics_text(lake: Lake) -> str:
    """The lake's runs, steps, gates, queries and SLOs in the Prometheus text format."""
    return lake.metrics_text()

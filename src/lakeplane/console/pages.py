"""What each page shows: one function per page, returning the plain data its HTML page draws and its
``/api/`` twin returns as JSON (None: no such thing for this viewer, a 404)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeplane.console import access, observe, quality, runs, tables
from lakeplane.console.steps import StepTables
from lakeplane.console.viewer import Viewer
from lakeplane.errors import LakeplaneError
from lakeplane.lineage.graph import Direction

if TYPE_CHECKING:
    from lakeplane.config_console import ConsoleConfig
    from lakeplane.lake import Lake


@dataclass(frozen=True)
class Ask:
    """One request as a page sees it: who asks, the path's parameters and the query string."""

    viewer: Viewer
    path: dict[str, str]
    query: dict[str, str]

    def number(self, key: str, default: int, low: int = 1, high: int = 10_000) -> int:
        try:
            return min(max(int(self.query.get(key, default)), low), high)
        except ValueError:
            return default


@dataclass(frozen=True)
class Deps:
    """What the pages read: the lake, the console's settings and which table each step writes."""

    lake: Lake
    config: ConsoleConfig
    steps: StepTables


Page = Callable[[Deps, Ask], dict[str, Any] | None]


def overview(deps: Deps, ask: Ask) -> dict[str, Any]:
    latest = runs.runs_page(deps.lake, deps.steps, ask.viewer, 1, 10)
    mine = access.queries_page(deps.lake, ask.viewer, 1, 5)
    return {
        "principal": ask.viewer.principal,
        "admin": ask.viewer.admin,
        "tables": len(ask.viewer.readable),
        "runs_total": latest["total"],
        "latest_runs": latest["runs"],
        "latest_queries": mine["queries"],
    }


def runs_list(deps: Deps, ask: Ask) -> dict[str, Any]:
    return runs.runs_page(
        deps.lake,
        deps.steps,
        ask.viewer,
        ask.number("page", 1),
        deps.config.page_size,
        ask.query.get("pipeline") or None,
        ask.query.get("state") or None,
    )


def run_page(deps: Deps, ask: Ask) -> dict[str, Any] | None:
    return runs.run_detail(deps.lake, deps.steps, ask.viewer, ask.path["run_id"])


def tables_page(deps: Deps, ask: Ask) -> dict[str, Any]:
    return {"tables": tables.tables_list(deps.lake, ask.viewer)}


def table_page(deps: Deps, ask: Ask) -> dict[str, Any] | None:
    name = _readable(deps.lake, ask.viewer, ask.path["table"])
    if name is None:
        return None
    detail = tables.table_detail(deps.lake, ask.viewer, name, deps.config.small_file_bytes)
    if ask.query.get("sample"):
        try:
            detail["sample"] = tables.sample_rows(deps.lake, ask.viewer, name, ask.number("rows", 10, 1, 100))
        except LakeplaneError as exc:
            detail["sample"] = {"columns": [], "rows": [], "note": str(exc)}
    return detail


def lineage_page(deps: Deps, ask: Ask) -> dict[str, Any] | None:
    name = _readable(deps.lake, ask.viewer, ask.path["table"])
    if name is None:
        return None
    asked = ask.query.get("direction", "both")
    direction: Direction = (
        "upstream" if asked == "upstream" else "downstream" if asked == "downstream" else "both"
    )
    column = ask.query.get("column") or None
    depth = ask.number("depth", 2, 1, 20)
    graph = observe.lineage_view(deps.lake, ask.viewer, name, column, direction, depth)
    return graph | {"table": name, "column": column, "direction": direction, "depth": depth}


def quality_page(deps: Deps, ask: Ask) -> dict[str, Any] | None:
    table = ask.query.get("table") or None
    if table is not None:
        table = _readable(deps.lake, ask.viewer, table)
        if table is None:
            return None
    return quality.quality_overview(deps.lake, deps.steps, ask.viewer, table, deps.config.sample_rows)


def slos_page(deps: Deps, ask: Ask) -> dict[str, Any]:
    return observe.slo_view(deps.lake, ask.viewer)


def queries_page(deps: Deps, ask: Ask) -> dict[str, Any]:
    return access.queries_page(deps.lake, ask.viewer, ask.number("page", 1), deps.config.page_size)


def access_page(deps: Deps, ask: Ask) -> dict[str, Any]:
    column = ask.query.get("column") or None
    since = None
    if ask.query.get("since"):
        try:
            since = dt.datetime.fromisoformat(ask.query["since"])
        except ValueError:
            since = None
    decision = ask.query.get("decision") if ask.query.get("decision") in ("allowed", "denied") else None
    return {
        "principal": ask.viewer.principal,
        "admin": ask.viewer.admin,
        "mine": access.my_access(deps.lake, ask.viewer),
        "who_can_see": access.who_can_see(deps.lake, ask.viewer, column) if column else None,
        "audit_filters": {
            k: ask.query.get(k, "") for k in ("principal", "table", "column", "decision", "since")
        },
        "audit": access.audit_search(
            deps.lake,
            ask.viewer,
            principal=ask.query.get("principal") or None,
            table=ask.query.get("table") or None,
            column=ask.query.get("audit_column") or None,
            decision=decision,
            since=since,
            limit=ask.number("limit", 50, 1, 500),
        ),
    }


def _readable(lake: Lake, viewer: Viewer, name: str) -> str | None:
    """The full name of table ``name`` if ``viewer`` may read it; None for a table it may not read
    and for one that does not exist alike, so a page does not tell them apart."""
    try:
        full = lake.resolve_table(name)
    except LakeplaneError:
        return None
    return full if viewer.can_read(full) else None


#: ``(path, template, page)`` for every page; each also answers as JSON under ``/api``.
PAGES: tuple[tuple[str, str, Page], ...] = (
    ("/", "index.html", overview),
    ("/runs", "runs.html", runs_list),
    ("/runs/{run_id}", "run.html", run_page),
    ("/tables", "tables.html", tables_page),
    ("/tables/{table}", "table.html", table_page),
    ("/lineage/{table}", "lineage.html", lineage_page),
    ("/quality", "quality.html", quality_page),
    ("/slos", "slos.html", slos_page),
    ("/queries", "queries.html", queries_page),
    ("/access", "access.html", access_page),
)

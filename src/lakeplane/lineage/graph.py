"""The lineage graph around a table or a column, from the latest commit of every table.

Nodes are tables (``adtech.processed.clicks``), columns (``adtech.processed.clicks.click_id``), raw
datasets (``raw:partner/clicks``) and their fields. A table's lineage follows table-level edges; a
column's follows column edges, and where a column depends on a table's rows (``count(*)``) it goes
on up through the table-level edges of that table. Only names are shown, never data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import sqlalchemy as sa

from lakeplane.errors import LineageError, TableNotFoundError, did_you_mean
from lakeplane.lineage.edges import RAW_PREFIX, Edge
from lakeplane.lineage.store import LineageCommit, LineageStore

Direction = Literal["both", "upstream", "downstream"]
#: Whether a principal may see ``table`` (``column`` None) or ``table.column``.
Visible = Callable[[str, str | None], bool]


class LineageCatalog(Protocol):
    @property
    def state_engine(self) -> sa.Engine: ...


class LineageHost(Protocol):
    """A lake as lineage uses it: its catalog's database, how it resolves a short table name, the
    columns of a table, and how to rebuild the lineage of existing tables."""

    @property
    def catalog(self) -> LineageCatalog: ...

    def resolve_table(self, name: str) -> str: ...

    def table_columns(self, table: str) -> list[str]: ...

    def refresh_lineage(self) -> list[LineageCommit]: ...


@dataclass(frozen=True)
class LineageNode:
    id: str
    table: str
    column: str | None
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "table": self.table, "column": self.column, "kind": self.kind}


@dataclass(frozen=True)
class LineageLink:
    source: str
    target: str
    transform: str | None
    model: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "transform": self.transform,
            "model": self.model,
        }


@dataclass
class LineageGraph:
    """The nodes and edges around ``root`` (a node id)."""

    root: str
    nodes: list[LineageNode] = field(default_factory=list)
    edges: list[LineageLink] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }

    def node(self, node_id: str) -> LineageNode:
        return next(n for n in self.nodes if n.id == node_id)

    def upstream(self, node_id: str) -> list[LineageLink]:
        """The edges into ``node_id``."""
        return [e for e in self.edges if e.target == node_id]

    def downstream(self, node_id: str) -> list[LineageLink]:
        """The edges out of ``node_id``."""
        return [e for e in self.edges if e.source == node_id]


def node_id(table: str, column: str | None) -> str:
    return table if column is None else f"{table}.{column}"


def node_kind(table: str, column: str | None) -> str:
    if table.startswith(RAW_PREFIX):
        return "dataset" if column is None else "field"
    return "table" if column is None else "column"


class LineageIndex:
    """Every edge of the latest commits, indexed both ways by node id."""

    def __init__(self, edges: Iterable[Edge]) -> None:
        self.into: dict[str, list[Edge]] = {}
        self.out_of: dict[str, list[Edge]] = {}
        self.columns: dict[str, set[str]] = {}
        for edge in edges:
            self.into.setdefault(node_id(edge.target_table, edge.target_column), []).append(edge)
            self.out_of.setdefault(node_id(edge.source_table, edge.source_column), []).append(edge)
            for table, column in (
                (edge.source_table, edge.source_column),
                (edge.target_table, edge.target_column),
            ):
                known = self.columns.setdefault(table, set())
                if column is not None:
                    known.add(column)

    @classmethod
    def of(cls, commits: Iterable[LineageCommit]) -> LineageIndex:
        return cls(edge for commit in commits for edge in commit.edges)

    def graph(
        self,
        table: str,
        column: str | None,
        direction: Direction,
        depth: int | None,
        visible: Visible | None = None,
    ) -> LineageGraph:
        """Walk from ``table`` (``column``) ``depth`` edges each way (None: to the end)."""
        root = node_id(table, column)
        seen: dict[str, LineageNode] = {root: LineageNode(root, table, column, node_kind(table, column))}
        links: dict[tuple[str, str, str | None], LineageLink] = {}
        ways: list[tuple[dict[str, list[Edge]], bool]] = []
        if direction in ("both", "upstream"):
            ways.append((self.into, True))
        if direction in ("both", "downstream"):
            ways.append((self.out_of, False))
        for index, upstream in ways:
            queue = deque([(table, column, 0)])
            walked = {root}
            while queue:
                at_table, at_column, steps = queue.popleft()
                if depth is not None and steps >= depth:
                    continue
                for edge in index.get(node_id(at_table, at_column), []):
                    if column is None and (edge.source_column is not None or edge.target_column is not None):
                        continue  # a table's lineage: table-level edges only
                    if upstream and at_column is not None and edge.target_column is None:
                        continue
                    if not upstream and at_column is None and column is not None:
                        continue  # a column's consumers, not every reader of its table
                    far = (
                        (edge.source_table, edge.source_column)
                        if upstream
                        else (edge.target_table, edge.target_column)
                    )
                    if visible is not None and not visible(*far):
                        continue
                    far_id = node_id(*far)
                    seen.setdefault(far_id, LineageNode(far_id, far[0], far[1], node_kind(*far)))
                    source = node_id(edge.source_table, edge.source_column)
                    target = node_id(edge.target_table, edge.target_column)
                    links[(source, target, edge.model)] = LineageLink(
                        source, target, edge.transform, edge.model
                    )
                    if far_id not in walked:
                        walked.add(far_id)
                        queue.append((far[0], far[1], steps + 1))
        return LineageGraph(
            root, sorted(seen.values(), key=lambda n: n.id), sorted(links.values(), key=_link_order)
        )


def _link_order(link: LineageLink) -> tuple[str, str]:
    return (link.target, link.source)


def lineage_graph(
    lake_or_catalog_engine: LineageHost | sa.Engine,
    table: str,
    column: str | None = None,
    direction: Direction = "both",
    depth: int | None = None,
    *,
    snapshot_id: int | None = None,
    visible: Visible | None = None,
) -> LineageGraph:
    """The lineage graph around ``table`` (or its ``column``).

    Args:
        lake_or_catalog_engine: a lake (short table names resolve as elsewhere; an empty store is
            filled by compiling every model now) or the catalog's database.
        table: a table name as written on the command line, or ``raw:<dataset>``.
        column: one of its columns, for column-level lineage.
        direction: upstream (what feeds it), downstream (what it feeds) or both.
        depth: how many edges to follow each way; None follows them to the end.
        snapshot_id: answer with the edges of the commit that made this snapshot of ``table``
            (every other table's latest).
        visible: leaves out (and does not walk past) the nodes for which it is false.

    Raises:
        LineageError: no such table or column in the lineage (with the closest name), or no
            lineage recorded for ``snapshot_id``.
    """
    if depth is not None and depth < 0:
        raise LineageError(f"depth must be 0 or more, not {depth}", table=table)
    host = None if isinstance(lake_or_catalog_engine, sa.Engine) else lake_or_catalog_engine
    engine = (
        lake_or_catalog_engine
        if isinstance(lake_or_catalog_engine, sa.Engine)
        else lake_or_catalog_engine.catalog.state_engine
    )
    store = LineageStore(engine)
    if host is not None and store.is_empty():
        host.refresh_lineage()
    commits = store.latest()
    full = _resolve(host, table, commits)
    if snapshot_id is not None:
        then = store.at(full, snapshot_id)
        if then is None:
            known = [str(c.snapshot_id) for c in store.commits(full)]
            recorded = ", ".join(known) or "none"
            raise LineageError(
                f"no lineage recorded for snapshot {snapshot_id} of {full} (recorded: {recorded})",
                table=full,
                known=known,
            )
        commits[full] = then
    index = LineageIndex.of(commits.values())
    if visible is not None and not visible(full, None):
        raise LineageError(f"no lineage of table '{table}'", table=table)
    if column is not None:
        known_columns = index.columns.get(full, set()) | set(
            host.table_columns(full) if host and not full.startswith(RAW_PREFIX) else []
        )
        if column not in known_columns or (visible is not None and not visible(full, column)):
            shown = sorted(c for c in known_columns if visible is None or visible(full, c))
            raise LineageError(
                f"table {full} has no column '{column}'{did_you_mean(column, shown)}",
                table=full,
                column=column,
                known=shown,
            )
    return index.graph(full, column, direction, depth, visible)


def _resolve(host: LineageHost | None, table: str, commits: dict[str, LineageCommit]) -> str:
    """The full name of ``table``: a raw dataset or a table with lineage as written, else as the
    lake resolves names (or, without a lake, the one table with lineage whose name ends so)."""
    known = {n for c in commits.values() for e in c.edges for n in (e.source_table, e.target_table)}
    if table in known:
        return table
    if host is not None and not table.startswith(RAW_PREFIX):
        return host.resolve_table(table)
    ending = [name for name in known if name.endswith("." + table) or name == RAW_PREFIX + table]
    if len(ending) == 1:
        return ending[0]
    raise LineageError(
        f"no lineage of table '{table}'{did_you_mean(table, known)}", table=table, known=sorted(known)
    )


def split_name(host: LineageHost, name: str) -> tuple[str, str | None]:
    """``TABLE`` or ``TABLE.COLUMN`` as written on the command line: the table's full name (or a
    raw dataset's) and the column, if one was named.

    Raises:
        TableNotFoundError: neither ``name`` nor the part before its last dot is a table.
    """
    if name.startswith(RAW_PREFIX):
        dataset, dot, field = name.partition(".")
        return dataset, (field or None) if dot else None
    try:
        return host.resolve_table(name), None
    except TableNotFoundError:
        table, dot, column = name.rpartition(".")
        if not dot:
            raise
    return host.resolve_table(table), column


def render_tree(graph: LineageGraph, direction: Direction) -> list[str]:
    """``graph`` as indented lines: what feeds the root (upstream), what it feeds (downstream)."""
    lines = [graph.root]
    ways = [("upstream", True), ("downstream", False)]
    for way, upstream in ways:
        if direction not in ("both", way):
            continue
        if direction == "both":
            lines.append(f"  {way}:")
        lines += _branch(graph, graph.root, upstream, "  " if direction == "both" else "", {graph.root})
    return lines


def _branch(graph: LineageGraph, at: str, upstream: bool, indent: str, path: set[str]) -> list[str]:
    links = graph.upstream(at) if upstream else graph.downstream(at)
    lines = []
    for position, link in enumerate(links):
        last = position == len(links) - 1
        far = link.source if upstream else link.target
        arrow = "<-" if upstream else "->"
        how = f"  = {link.transform}" if link.transform else ""
        by = f"  ({link.model})" if link.model else ""
        lines.append(f"{indent}{'└─' if last else '├─'} {arrow} {far}{how}{by}")
        if far not in path:
            lines += _branch(graph, far, upstream, indent + ("   " if last else "│  "), path | {far})
    return lines

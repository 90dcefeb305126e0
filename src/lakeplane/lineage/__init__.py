"""Column lineage from the compiled SQL, kept per commit, and OpenLineage run events.

:func:`lineage_graph` answers the graph around a table or column (``Lake.lineage``);
:mod:`~lakeplane.lineage.edges` traces a model's compiled query to its edges;
:mod:`~lakeplane.lineage.store` keeps each commit's edges in the catalog's database;
:mod:`~lakeplane.lineage.recorder` is what the run paths call; :mod:`~lakeplane.lineage.events`
sends OpenLineage run events.
"""

from lakeplane.lineage.graph import LineageGraph, LineageLink, LineageNode, lineage_graph

__all__ = ["LineageGraph", "LineageLink", "LineageNode", "lineage_graph"]

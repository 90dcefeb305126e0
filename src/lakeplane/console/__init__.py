"""The web console (``lakeplane console``): runs, tables, quality, lineage, SLOs, queries and access,
each page drawn for the principal who logged in and showing only what that principal may see."""

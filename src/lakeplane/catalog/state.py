"""lakeplane's own state, kept in the catalog's database next to the Iceberg catalog's tables.

Everything lakeplane remembers besides the tables themselves lives here, so that whoever shares a
PostgreSQL catalog shares it too:

- ``lakeplane_runs``, ``lakeplane_step_attempts``: pipeline runs (:mod:`~lakeplane.pipelines.store`)
- ``lakeplane_policy_versions``: policy versions (:mod:`~lakeplane.governance.store`)
- ``lakeplane_audit``, ``lakeplane_audit_head``: the audit log (:mod:`~lakeplane.governance.audit`)
- ``lakeplane_dq_metrics``: metric history of dynamic DQ rules (:mod:`~lakeplane.quality.history`)

Each store takes the engine :attr:`lakeplane.catalog.LakeCatalog.state_engine` and creates its tables
with :func:`ensure_tables` when it is first opened.
"""

from __future__ import annotations

import sqlalchemy as sa


def ensure_tables(engine: sa.Engine, *tables: sa.Table) -> None:
    """Create each of ``tables`` (with its indexes) that does not exist yet.

    Safe when several processes open a store at once: a creator that loses the race between the
    existence check and ``CREATE TABLE`` sees the winner's table and carries on.
    """
    for table in tables:
        try:
            table.create(engine, checkfirst=True)
        except sa.exc.DatabaseError:
            # PostgreSQL reports the race as a duplicate pg_type row, SQLite as "already exists".
            if not sa.inspect(engine).has_table(table.name):
                raise

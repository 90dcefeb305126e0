"""lakeplane's own state, kept in the catalog's database next to the Iceberg catalog's tables.

Everything lakeplane remembers besides the tables themselves lives here, so that whoever shares a
PostgreSQL catalog shares it too:

- ``lakeplane_runs``, ``lakeplane_step_attempts``: pipeline runs (:mod:`~lakeplane.pipelines.store`)
- ``lakeplane_policy_versions``: policy versions (:mod:`~lakeplane.governance.store`)
- ``lakeplane_audit``, ``lakeplane_audit_head``: the audit log (:mod:`~lakeplane.governance.audit`)
- ``lakeplane_dq_metrics``: metric history of dynamic DQ rules (:mod:`~lakeplane.quality.history`)
- ``lakeplane_tokens``: access tokens, as digests (:mod:`~lakeplane.governance.tokens`)

Each store takes the engine :attr:`lakeplane.catalog.LakeCatalog.state_engine` and creates its tables
with :func:`ensure_tables` when it is first opened.
"""

from __future__ import annotations

import sqlalchemy as sa


def ensure_tables(engine: sa.Engine, *tables: sa.Table) -> None:
    """Create each of ``tables`` and each of their indexes that does not exist yet.

    Safe when several processes open a store at once: a creator that loses the race between the
    existence check and ``CREATE`` sees the winner's table (or index) and carries on. Indexes are
    made one by one after their table, since on SQLite a table and its indexes are separate
    statements and the process that created the table may not be the one to finish them.
    """
    for table in tables:
        _create(engine, table)
        for index in table.indexes:
            _create(engine, index)


def _create(engine: sa.Engine, element: sa.Table | sa.Index) -> None:
    try:
        element.create(engine, checkfirst=True)
    except sa.exc.DatabaseError:
        # PostgreSQL reports the race as a duplicate pg_type (or pg_class) row, SQLite as "already
        # exists".
        exists = (
            sa.inspect(engine).has_table(element.name)
            if isinstance(element, sa.Table)
            else _has_index(engine, element)
        )
        if not exists:
            raise


def _has_index(engine: sa.Engine, index: sa.Index) -> bool:
    assert index.table is not None
    return index.name in {i["name"] for i in sa.inspect(engine).get_indexes(index.table.name)}

"""Metric-history series on a PostgreSQL catalog: an old metrics table (no ``series`` column) is
migrated once, while several processes open it at once, and keeps its values."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from lakeplane.quality import MetricHistory, RuleOutcome
from lakeplane.quality.history import ADHOC_SERIES
from tests.quality.test_series import OLD_SCHEMA, migrate_at_once

#: Rounds of the race: one process swaps the rebuilt table in while the others read the catalog.
ROUNDS = 60


def test_an_old_metrics_table_is_migrated_once_on_postgresql(pg_catalog_uri: str) -> None:
    uri = pg_catalog_uri.replace("postgresql://", "postgresql+psycopg://")
    setup = sa.create_engine(uri)
    engines = [sa.create_engine(uri) for _ in range(4)]
    for _ in range(ROUNDS):
        with setup.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS lakeplane_dq_metrics")
            conn.exec_driver_sql(OLD_SCHEMA)
            conn.exec_driver_sql(
                "INSERT INTO lakeplane_dq_metrics VALUES "
                "('shop.orders', 'RowCount', '2026-03-01T00:00:00.000000', 10.0), "
                "('shop.orders', 'RowCount', '2026-03-02T00:00:00.000000', 12.0)"
            )
        assert migrate_at_once(engines).count(True) == 1

    history = MetricHistory(setup, "shop.orders")
    assert history("RowCount", 5) == [12.0, 10.0]
    adhoc = history.with_series(ADHOC_SERIES)
    adhoc.record([RuleOutcome("", "RowCount", True, 99.0, metric_key="RowCount")], dt.datetime(2026, 3, 2))
    assert adhoc("RowCount", 5) == [99.0] and history("RowCount", 5) == [12.0, 10.0]
    for engine in [*engines, setup]:
        engine.dispose()

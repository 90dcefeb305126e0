"""lakeplane's own state (runs, policy versions, audit, DQ metric history) on a shared PostgreSQL catalog.

Two projects that share one catalog are two teams, or two machines: each opens its own ``Lake``, and
what one records the other must see.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lakeplane.governance.audit import AuditEvent, AuditLog
from lakeplane.governance.policy import load_policy
from lakeplane.governance.store import PolicyStore
from lakeplane.lake import Lake, open_lake
from lakeplane.pipelines.store import RunStore
from lakeplane.quality.history import MetricHistory

DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
MODEL = "-- partition_by: [ds]\nSELECT :ds AS ds, n FROM (VALUES (1), (2), (3), (4)) AS t(n)\n"
RULES = "Rules = [ RowCount > avg(last(3)) * 0.5 ]\n"
STATE_TABLES = {
    "lakeplane_runs",
    "lakeplane_step_attempts",
    "lakeplane_audit",
    "lakeplane_audit_head",
    "lakeplane_policy_versions",
    "lakeplane_dq_metrics",
}


def project(path: Path, overrides: dict[str, Any]) -> Lake:
    (path / "models" / "curated").mkdir(parents=True)
    (path / "lakeplane.yaml").write_text("name: t\n")
    (path / "models" / "curated" / "counts.sql").write_text(MODEL)
    (path / "rules.dqdl").write_text(RULES)
    return open_lake(path, overrides)


@pytest.mark.postgres
def test_state_written_through_one_lake_is_seen_through_another(tmp_path: Path, pg_catalog_uri: str) -> None:
    shared = {"catalog": {"uri": pg_catalog_uri}, "storage": {"root": str(tmp_path / "lake")}}
    first, second = project(tmp_path / "a", shared), project(tmp_path / "b", shared)
    assert first.catalog.state_engine.dialect.name == "postgresql"

    first.run_model(first.model("curated.counts"), DAY1)
    [checked] = first.dq_check("curated.counts", "rules.dqdl", ds=DAY1)
    assert checked["history_missing"], "nothing recorded yet"
    [seen] = second.dq_check("curated.counts", "rules.dqdl", ds=DAY2, record=False)
    assert not seen["history_missing"] and "(avg(last(3)) * 0.5 = 2)" in seen["message"]
    assert MetricHistory(second.catalog.state_engine, "t.curated.counts")("RowCount", 5) == [4.0]

    run = RunStore(first.catalog.state_engine).start_run("nightly", DAY1.isoformat())
    assert RunStore(second.catalog.state_engine).get(run.run_id) is not None
    audit_key = b"the audit key both lakes share"  # every writer of one log signs with the same key
    AuditLog(first.catalog.state_engine, audit_key).append(AuditEvent("ana", "v1", "SELECT 1", "allowed"))
    assert AuditLog(second.catalog.state_engine, audit_key).verify().records == 1
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("principals:\n  users:\n    ana: {}\n")
    version = PolicyStore(first.catalog.state_engine).record(load_policy(policy_file), dict)
    assert PolicyStore(second.catalog.state_engine).latest() == version

    tables = set(sa.inspect(second.catalog.state_engine).get_table_names())
    assert tables >= STATE_TABLES and "iceberg_tables" in tables
    assert not (tmp_path / "a" / ".lakeplane" / "dq_history.sqlite").exists()

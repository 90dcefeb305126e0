"""The warm path: pooled sessions leak nothing between principals, caches follow the tables, and
concurrent queries get the one-at-a-time answers with every audit record kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.types import StringType

from lakeplane.catalog import TableRef
from lakeplane.errors import EngineError, QueryError
from lakeplane.lake import Lake, open_lake
from lakeplane.query.reuse import cache_hit
from tests.query.conftest import CDR, append_call

REGIONS = f"SELECT region, count(*) AS calls FROM {CDR} GROUP BY region ORDER BY region"
QUERIES = [
    ("ana", REGIONS),
    ("eve", REGIONS),
    ("fred", REGIONS),
    ("ana", f"SELECT msisdn, duration_s FROM {CDR} ORDER BY call_id LIMIT 5"),
    ("eve", f"SELECT msisdn, duration_s FROM {CDR} ORDER BY call_id LIMIT 5"),
    ("fred", f"SELECT call_id FROM {CDR} WHERE region = 'US' ORDER BY call_id LIMIT 3"),
    ("eve", f"SELECT s.card_pan, count(*) AS n FROM {CDR} c JOIN telco.processed.subscribers s "
     "ON s.msisdn = c.msisdn GROUP BY ALL ORDER BY n DESC, 1 LIMIT 3"),
    ("ana", f"SELECT s.card_pan, count(*) AS n FROM {CDR} c JOIN telco.processed.subscribers s "
     "ON s.msisdn = c.msisdn GROUP BY ALL ORDER BY n DESC, 1 LIMIT 3"),
]  # fmt: skip


def rows(lake: Lake, principal: str, sql: str, reuse: bool | None = None) -> list[dict[str, object]]:
    return lake.query(sql, principal=principal, reuse=reuse).to_pylist()


def test_a_warm_query_reuses_its_compile_plan_and_session(shared_lake: Lake) -> None:
    queries = shared_lake.queries
    first = rows(shared_lake, "ana", REGIONS)
    opened, plans = queries.warm.sessions.opened, len(queries.warm.plans)
    for _ in range(3):
        assert rows(shared_lake, "ana", REGIONS) == first
    assert queries.warm.sessions.opened == opened and len(queries.warm.plans) == plans


def test_a_pooled_session_shows_another_principal_only_its_own_rows(shared_lake: Lake) -> None:
    fresh = open_lake(shared_lake.project_dir)  # its own caches: the one-at-a-time answer
    eve_alone = rows(fresh, "eve", REGIONS)
    rows(shared_lake, "fred", REGIONS)  # fred's query leaves a session with the CDR's views
    assert (
        rows(shared_lake, "eve", REGIONS) == eve_alone == [{"region": "EU", "calls": eve_alone[0]["calls"]}]
    )


def test_another_principal_cannot_name_the_view_aliases(shared_lake: Lake) -> None:
    rows(shared_lake, "fred", REGIONS)
    for sql in ("SELECT count(*) AS n FROM __lp_0", 'SELECT count(*) AS n FROM "__lp_0"'):
        with pytest.raises(QueryError, match="not a table"):
            shared_lake.query(sql, principal="eve")


def test_a_pooled_session_stays_sandboxed(shared_lake: Lake) -> None:
    rows(shared_lake, "fred", REGIONS)
    pool = shared_lake.queries.warm.sessions
    assert len(pool) > 0
    key, session = next(iter(pool._idle.items()))
    try:
        for statement in (
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "RESET allowed_directories",
            "SELECT * FROM read_csv('/etc/passwd')",
            "ATTACH '/tmp/other.duckdb' AS other",
        ):
            with pytest.raises(EngineError):
                session.execute(statement)
        assert session.execute("SELECT current_setting('enable_external_access')") == [(False,)]
    finally:
        pool._idle.pop(key, None)
        session.close()


def test_a_schema_change_without_a_snapshot_recompiles(own_lake: Lake) -> None:
    sql = f"SELECT * FROM {CDR} LIMIT 1"
    before = own_lake.query(sql, principal="fred")
    with own_lake.catalog.load(CDR).update_schema() as change:
        change.add_column("carrier", StringType())
    after = own_lake.query(sql, principal="fred")
    assert "carrier" not in before.column_names and "carrier" in after.column_names


def test_a_new_snapshot_is_read_by_the_warm_path(own_lake: Lake) -> None:
    count = f"SELECT count(*) AS n FROM {CDR}"
    before = int(str(rows(own_lake, "fred", count)[0]["n"]))
    append_call(own_lake, "call-warm-1", region="US")
    assert rows(own_lake, "fred", count)[0]["n"] == before + 1
    assert rows(own_lake, "eve", f"SELECT count(*) AS n FROM {CDR} WHERE call_id = 'call-warm-1'") == [
        {"n": 0}
    ]


@pytest.mark.parametrize("reuse", [False, True])
def test_sixteen_threads_of_mixed_principals_get_the_one_at_a_time_answers(
    own_lake: Lake, reuse: bool
) -> None:
    expected = {(who, sql): rows(open_lake(own_lake.project_dir), who, sql) for who, sql in QUERIES}
    records = own_lake.governance.audit_log().verify().records
    work = [QUERIES[i % len(QUERIES)] for i in range(16 * 6)]
    with ThreadPoolExecutor(16) as pool:
        results = list(
            pool.map(lambda item: (item, own_lake.query(item[1], principal=item[0], reuse=reuse)), work)
        )
    for (who, sql), table in results:
        assert table.to_pylist() == expected[(who, sql)], (who, sql)
    assert any(cache_hit(t) for _, t in results) == reuse
    verified = own_lake.governance.audit_log().verify()
    assert verified.ok, verified.problem
    assert verified.records == records + len(work)


SCRIPT = """
import sys, threading
from lakeplane.lake import open_lake
lake = open_lake(sys.argv[1])
sql = "SELECT region, count(*) AS calls FROM telco.processed.cdr GROUP BY region"
def client():
    for _ in range(int(sys.argv[2])):
        lake.query(sql, principal="ana")
        print("acknowledged", flush=True)
threads = [threading.Thread(target=client) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
"""


def _run_script(lake: Lake, per_thread: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(lake.project_dir), str(per_thread)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_no_audit_record_is_lost_when_the_process_exits(own_lake: Lake) -> None:
    records = own_lake.governance.audit_log().verify().records
    process = _run_script(own_lake, 5)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0 and out.count("acknowledged") == 40
    verified = own_lake.governance.audit_log().verify()
    assert verified.ok and verified.records == records + 40


def test_kill_9_loses_no_acknowledged_query_s_record(own_lake: Lake, tmp_path: Path) -> None:
    """A record is committed before its query's rows are handed over: whatever the kill interrupts,
    every query that returned has its record, and the chain still verifies."""
    records = own_lake.governance.audit_log().verify().records
    process = _run_script(own_lake, 1000)
    assert process.stdout is not None
    acknowledged = 0
    deadline = time.monotonic() + 60
    while acknowledged < 60 and time.monotonic() < deadline:
        if process.stdout.readline().startswith("acknowledged"):
            acknowledged += 1
    os.kill(process.pid, signal.SIGKILL)
    rest, _ = process.communicate(timeout=30)
    acknowledged += rest.count("acknowledged")
    verified = own_lake.governance.audit_log().verify()
    assert verified.ok, verified.problem
    assert verified.records - records >= acknowledged >= 60


def test_a_new_table_that_takes_a_short_name_recompiles(own_lake: Lake) -> None:
    """``processed.cdr`` means the project's domain's table once there is one."""
    sql = "SELECT count(*) AS n FROM processed.cdr"
    assert (
        rows(own_lake, "ana", sql)[0]["n"]
        == rows(own_lake, "ana", f"SELECT count(*) AS n FROM {CDR}")[0]["n"]
    )
    telco_cdr = own_lake.catalog.load(CDR)
    own_lake.catalog.create(
        TableRef("adtech", "processed", "cdr"), telco_cdr.schema(), UNPARTITIONED_PARTITION_SPEC
    )
    assert rows(own_lake, "ana", sql) == [{"n": 0}]

"""Result reuse hits only when it may: same secured SQL, same policy version, same snapshots."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pytest

from lakeplane.config import ResultReuseConfig
from lakeplane.errors import AccessDenied
from lakeplane.governance.masks import keyed_pads
from lakeplane.lake import Lake
from lakeplane.query.compiler import parse_single_select
from lakeplane.query.reuse import (
    ResultCache,
    ReusePolicy,
    cache_hit,
    volatile_reason,
    workgroup_reuse,
)
from tests.query.conftest import CDR, append_call

CALLS_BY_REGION = (
    f"SELECT region, count(*) AS calls, min(msisdn) AS first FROM {CDR} GROUP BY region ORDER BY region"
)


def audit_count(lake: Lake) -> int:
    return lake.governance.audit_log().verify().records


def test_same_principal_sql_and_snapshot_hits(own_lake: Lake) -> None:
    first = own_lake.query(CALLS_BY_REGION, principal="ana", reuse=True)
    second = own_lake.query(CALLS_BY_REGION, principal="ana", reuse=True)
    assert not cache_hit(first) and cache_hit(second)
    assert second.equals(first)
    assert second.schema.metadata is not None and b"lakeplane.stored_at" not in second.schema.metadata


def test_a_principal_with_other_masks_or_filters_misses(own_lake: Lake) -> None:
    ana = own_lake.query(CALLS_BY_REGION, principal="ana", reuse=True)
    eve = own_lake.query(CALLS_BY_REGION, principal="eve", reuse=True)
    assert not cache_hit(eve)
    assert ana.column("region").to_pylist() == ["EU", "US"]
    assert eve.column("region").to_pylist() == ["EU"]  # eve's row filter, not ana's answer
    assert ana.column("first")[0].as_py() != eve.column("first")[0].as_py()  # ana's msisdn is hashed
    assert cache_hit(own_lake.query(CALLS_BY_REGION, principal="eve", reuse=True))


def test_identical_secured_sql_under_one_policy_is_shared(own_lake: Lake) -> None:
    """fred and role:fraud see the CDR unmasked and unfiltered: their secured SQL is the same."""
    fred = own_lake.query(CALLS_BY_REGION, principal="fred", reuse=True)
    fraud = own_lake.query(CALLS_BY_REGION, principal="role:fraud", reuse=True)
    assert cache_hit(fraud) and fraud.equals(fred)


def test_a_denied_principal_is_refused_not_served_from_the_cache(own_lake: Lake) -> None:
    own_lake.query(CALLS_BY_REGION, principal="ana", reuse=True)
    before = audit_count(own_lake)
    with pytest.raises(AccessDenied):
        own_lake.query(CALLS_BY_REGION, principal="ian", reuse=True)
    assert audit_count(own_lake) == before + 1  # the denial is audited


def test_a_new_snapshot_misses(own_lake: Lake) -> None:
    sql = f"SELECT count(*) AS calls FROM {CDR}"
    first = own_lake.query(sql, principal="fred", reuse=True)
    assert cache_hit(own_lake.query(sql, principal="fred", reuse=True))
    append_call(own_lake, "call-new-1")
    after = own_lake.query(sql, principal="fred", reuse=True)
    assert not cache_hit(after)
    assert after.column("calls")[0].as_py() == first.column("calls")[0].as_py() + 1


def test_a_changed_policy_misses(own_lake: Lake) -> None:
    sql = f"SELECT msisdn FROM {CDR} ORDER BY call_id LIMIT 3"
    hashed = own_lake.query(sql, principal="ana", reuse=True)
    assert cache_hit(own_lake.query(sql, principal="ana", reuse=True))
    policy = own_lake.governance.path
    text = policy.read_text()
    assert "    mask: hash " in text
    policy.write_text(text.replace("    mask: hash ", "    mask: redact ", 1))
    os.utime(policy, (time.time() + 5, time.time() + 5))  # a new mtime even on a coarse clock
    redacted = own_lake.query(sql, principal="ana", reuse=True)
    assert not cache_hit(redacted)
    assert redacted.column("msisdn").to_pylist() != hashed.column("msisdn").to_pylist()


def test_an_entry_older_than_max_age_misses(own_lake: Lake) -> None:
    short = ReusePolicy(max_age_s=0.3)
    own_lake.query(CALLS_BY_REGION, principal="ana", reuse=short)
    assert cache_hit(own_lake.query(CALLS_BY_REGION, principal="ana", reuse=short))
    time.sleep(0.4)
    assert not cache_hit(own_lake.query(CALLS_BY_REGION, principal="ana", reuse=short))
    # a reader allowing an older entry still finds the one just stored
    assert cache_hit(own_lake.query(CALLS_BY_REGION, principal="ana", reuse=ReusePolicy(max_age_s=60)))


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT count(*) AS n, random() AS r FROM {CDR}",
        f"SELECT count(*) AS n FROM {CDR} WHERE started_at < now()",
        f"SELECT count(*) AS n, current_timestamp AS t FROM {CDR}",
        f"SELECT count(*) AS n FROM {CDR} WHERE CAST(started_at AS DATE) <= current_date",
        f"SELECT uuid() AS u FROM {CDR} LIMIT 1",
    ],
)
def test_non_deterministic_queries_are_never_reused(shared_lake: Lake, sql: str) -> None:
    results = [shared_lake.query(sql, principal="fred", reuse=True) for _ in range(2)]
    assert not any(cache_hit(r) for r in results)


def test_a_governed_table_sample_is_kept(shared_lake: Lake) -> None:
    compiled = shared_lake.queries.compile(
        f"SELECT count(*) AS n FROM {CDR} TABLESAMPLE BERNOULLI (50)",
        None,
        "fred",
        read="trino",
        write="duckdb",
    )
    assert volatile_reason(compiled.expression) == "TABLESAMPLE"
    sql = f"SELECT count(*) AS n FROM {CDR} TABLESAMPLE BERNOULLI (50)"
    results = [shared_lake.query(sql, principal="fred", reuse=True) for _ in range(2)]
    assert not any(cache_hit(r) for r in results)


def test_volatile_calls_are_found_on_the_tree() -> None:
    assert volatile_reason(parse_single_select("SELECT a FROM t WHERE b = 1", "trino")) is None
    assert volatile_reason(parse_single_select("SELECT date_trunc('day', ts) FROM t", "trino")) is None
    for sql, dialect in [
        ("SELECT rand() FROM t", "spark"),
        ("SELECT gen_random_uuid()", "duckdb"),
        ("SELECT today()", "duckdb"),
        ("SELECT localtimestamp", "trino"),
        ("SELECT * FROM (SELECT setseed(0.5)) s", "duckdb"),
        ("SELECT * FROM t USING SAMPLE 10%", "duckdb"),
        ("SELECT a FROM t WHERE a IN (SELECT b FROM u WHERE c < current_date)", "trino"),
    ]:
        assert volatile_reason(parse_single_select(sql, dialect)) is not None, sql


def test_a_hit_is_audited(own_lake: Lake) -> None:
    own_lake.query(CALLS_BY_REGION, principal="ana", reuse=True)
    before = audit_count(own_lake)
    hit = own_lake.query(CALLS_BY_REGION, principal="ana", reuse=True)
    assert cache_hit(hit)
    assert audit_count(own_lake) == before + 1
    record = own_lake.governance.audit_log().head()
    assert record is not None and record.principal == "ana" and record.rows == hit.num_rows
    assert record.masks  # the hit's record still names the masks its rows carry


def test_no_reuse_unless_asked_or_configured(shared_lake: Lake) -> None:
    for _ in range(2):
        assert not cache_hit(shared_lake.query(CALLS_BY_REGION, principal="ana"))
    shared_lake.query(CALLS_BY_REGION, principal="ana", reuse=True)
    assert not cache_hit(shared_lake.query(CALLS_BY_REGION, principal="ana", reuse=False))


def test_the_store_holds_no_key_material_and_no_sql(own_lake: Lake) -> None:
    own_lake.query(f"SELECT msisdn, call_id FROM {CDR} LIMIT 5", principal="ana", reuse=True)
    folder = own_lake.state_dir / "results"
    files = list(folder.iterdir())
    assert files and all(f.stat().st_mode & 0o077 == 0 for f in files)
    blob = b"".join(f.name.encode() + f.read_bytes() for f in files)
    for secret in (own_lake.governance.key().decode(), *keyed_pads(own_lake.governance.key())):
        assert secret.encode() not in blob
    assert b"SELECT" not in blob.upper()


def test_the_store_stays_under_its_bound(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "results", max_bytes=40_000)
    table = pa.table({"x": pa.array(range(1000), pa.int64())})
    for number in range(8):
        assert cache.put(f"{number:064x}", table)
        time.sleep(0.01)  # distinct mtimes: the oldest go first
    kept = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert sum((tmp_path / "results" / name).stat().st_size for name in kept) <= 40_000
    assert f"{7:064x}.arrow" in kept and f"{0:064x}.arrow" not in kept
    assert cache.get(f"{7:064x}", 60) is not None and cache.get(f"{0:064x}", 60) is None
    assert not cache.put("f" * 64, pa.table({"x": pa.array(range(100_000), pa.int64())}))


def test_workgroup_settings_decide_reuse() -> None:
    assert workgroup_reuse(None) is None
    assert workgroup_reuse(ResultReuseConfig.model_validate({"enabled": False, "max_age": "1h"})) is None
    assert workgroup_reuse(
        ResultReuseConfig.model_validate({"enabled": True, "max_age": "30m"})
    ) == ReusePolicy(max_age_s=1800)
    assert workgroup_reuse(ResultReuseConfig(enabled=True)) == ReusePolicy(max_age_s=3600)

"""The audit log on real SQLite files: append, verify against tampering (without the key and with it),
concurrent writers, search."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeplane.errors import AuditError
from lakeplane.governance.audit import GENESIS_HASH, AuditEvent, AuditLog, AuditRecord, checkpoint_mac
from lakeplane.lake import Lake

ORDERS = "sales.curated.orders"
KEY = b"audit key of the test lake"
FORGED = "was edited or forged (MAC mismatch: not signed with this lake's audit key)"


def event(n: int = 0, **overrides: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "principal": "ana",
        "policy_version": "v3",
        "sql": f"SELECT amount FROM curated.orders LIMIT {n}",
        "decision": "allowed",
        "reason": "role analyst",
        "tables": [ORDERS],
        "columns": [f"{ORDERS}.amount"],
        "masks": {f"{ORDERS}.email": "hash"},
        "filters": ["region = 'EU'"],
        "rows": n,
    }
    return AuditEvent(**(fields | overrides))


def new_engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{path}")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = new_engine(tmp_path / "catalog.db")
    yield engine
    engine.dispose()


@pytest.fixture
def log(engine: sa.Engine) -> AuditLog:
    return AuditLog(engine, KEY)


def filled(log: AuditLog, count: int) -> list[AuditRecord]:
    return [log.append(event(n)) for n in range(1, count + 1)]


def run_sql(engine: sa.Engine, statement: str, params: dict[str, Any] | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params or {})


# -- append and read back ------------------------------------------------------------------------
def test_append_returns_and_stores_the_record(log: AuditLog) -> None:
    assert log.head() is None
    first = log.append(event(1))
    second = log.append(event(2, decision="denied", reason="no grant on pii", rows=None, masks={}))

    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    assert first.hash == first.mac(KEY) != first.computed_hash() and len(first.hash) == 64
    assert dt.datetime.fromisoformat(first.at).tzinfo == dt.UTC
    assert log.head() == second
    assert log.search() == [second, first]
    assert second.rows is None and second.masks == {} and second.decision == "denied"
    result = log.verify()
    assert result.ok and result.records == 2


def test_empty_log_verifies(log: AuditLog) -> None:
    result = log.verify()
    assert result.ok and result.records == 0 and result.problem is None


def test_reopening_keeps_the_log(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 3)
    again = AuditLog(engine, KEY)
    assert again.append(event(4)).seq == 4
    assert again.verify().ok


def test_log_lives_in_the_catalog_database(demo_lake: Lake) -> None:
    log = AuditLog(demo_lake.catalog.state_engine, KEY)
    log.append(event(1))
    tables = sa.inspect(demo_lake.catalog.state_engine).get_table_names()
    assert {"lakeplane_audit", "iceberg_tables"} <= set(tables)  # next to the Iceberg catalog's own
    assert AuditLog(demo_lake.catalog.state_engine, KEY).verify().records == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"decision": "maybe"},
        {"principal": ""},
        {"rows": -1},
    ],
)
def test_bad_events_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(AuditError):
        event(1, **bad)


# -- tampering -----------------------------------------------------------------------------------
EDITS = {
    "at": "'2020-01-01T00:00:00.000000+00:00'",
    "principal": "'mallory'",
    "policy_version": "'v0'",
    "sql": "'SELECT 1'",
    "tables": "'[]'",
    "columns": "'[\"sales.curated.orders.id\"]'",
    "masks": "'{}'",
    "filters": "'[]'",
    "rows": "rows + 1",
    "decision": "'denied'",
    "reason": "''",
    "prev_hash": f"'{'1' * 64}'",
    "hash": f"'{'2' * 64}'",
}


@pytest.mark.parametrize("column", list(EDITS))
def test_editing_any_field_of_a_middle_record_is_detected(
    engine: sa.Engine, log: AuditLog, column: str
) -> None:
    filled(log, 5)
    run_sql(engine, f'UPDATE lakeplane_audit SET "{column}" = {EDITS[column]} WHERE seq = 3')
    result = log.verify()
    assert not result.ok
    assert result.first_bad_seq == 3
    assert result.problem == f"record 3 {FORGED}"


def test_malformed_json_is_reported_as_an_edit(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 3)
    run_sql(engine, "UPDATE lakeplane_audit SET columns = 'not json' WHERE seq = 2")
    assert log.verify().problem == "record 2 was edited (a field is malformed)"
    with pytest.raises(AuditError, match="record 2 is malformed"):
        log.search()


def test_deleting_a_middle_record_is_detected(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 5)
    run_sql(engine, "DELETE FROM lakeplane_audit WHERE seq = 3")
    result = log.verify()
    assert (result.first_bad_seq, result.problem) == (3, "record 3 is missing (seq jumps 2 -> 4)")


def test_deleting_the_first_record_is_detected(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 3)
    run_sql(engine, "DELETE FROM lakeplane_audit WHERE seq = 1")
    assert log.verify().first_bad_seq == 1


def test_deleting_the_tail_is_detected_by_the_anchor(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 5)
    run_sql(engine, "DELETE FROM lakeplane_audit WHERE seq = 5")
    result = log.verify()
    assert (result.first_bad_seq, result.problem) == (
        5,
        "the last record was deleted (the log ends at 4, its head anchor is at 5)",
    )
    run_sql(engine, "DELETE FROM lakeplane_audit WHERE seq = 4")
    assert (
        log.verify().problem == "the last 2 records were deleted (the log ends at 3, its head anchor is at 5)"
    )
    # later appends chain from the anchor, so the hole stays visible
    assert log.append(event(6)).seq == 6
    assert log.verify().problem == "record 4 is missing (seq jumps 3 -> 6)"


def test_deleting_everything_is_detected(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 3)
    run_sql(engine, "DELETE FROM lakeplane_audit")
    assert (
        log.verify().problem == "the last 3 records were deleted (the log ends at 0, its head anchor is at 3)"
    )


def test_a_missing_anchor_is_detected_and_stops_appends(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 2)
    run_sql(engine, "DELETE FROM lakeplane_audit_head")
    assert log.verify().problem == "the audit head anchor (lakeplane_audit_head) is missing"
    AuditLog(engine, KEY)  # reopening must not invent a new anchor over the existing records
    assert not log.verify().ok
    with pytest.raises(AuditError, match="anchor .* is missing"):
        log.append(event(3))


def forge(record: AuditRecord, **changes: Any) -> dict[str, Any]:
    """A record an attacker builds with the published hash rule, as column values."""
    forged = dataclasses.replace(record, **changes)
    values = dataclasses.asdict(dataclasses.replace(forged, hash=forged.computed_hash()))
    return {
        k: json.dumps(v) if k in ("tables", "columns", "masks", "filters") else v for k, v in values.items()
    }


def insert(engine: sa.Engine, values: dict[str, Any]) -> None:
    names = ", ".join(f'"{k}"' for k in values)
    run_sql(
        engine, f"INSERT INTO lakeplane_audit ({names}) VALUES ({', '.join(':' + k for k in values)})", values
    )


def test_a_forged_record_with_a_wrong_hash_is_detected(engine: sa.Engine, log: AuditLog) -> None:
    records = filled(log, 4)
    run_sql(engine, "DELETE FROM lakeplane_audit WHERE seq = 2")
    insert(engine, forge(records[1], principal="mallory") | {"hash": "f" * 64})
    assert log.verify().problem == f"record 2 {FORGED}"


def test_a_forged_record_with_the_unkeyed_hash_is_detected_at_itself(
    engine: sa.Engine, log: AuditLog
) -> None:
    records = filled(log, 4)
    run_sql(engine, "DELETE FROM lakeplane_audit WHERE seq = 2")
    insert(engine, forge(records[1], principal="mallory"))
    result = log.verify()
    assert (result.first_bad_seq, result.problem) == (2, f"record 2 {FORGED}")


def test_a_forged_record_appended_behind_the_logs_back_is_detected(engine: sa.Engine, log: AuditLog) -> None:
    records = filled(log, 3)
    last = records[-1]
    insert(engine, forge(last, seq=4, prev_hash=last.hash, decision="denied"))
    result = log.verify()
    assert (result.first_bad_seq, result.problem) == (4, f"record 4 {FORGED}")
    # appending still works, and still chains from the anchor, so the forgery stays visible
    assert log.append(event(5)).seq == 5
    assert log.verify().problem == f"record 4 {FORGED}"


def test_an_edited_anchor_is_detected(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 3)
    run_sql(engine, "UPDATE lakeplane_audit_head SET hash = :h", {"h": "e" * 64})
    assert log.verify().problem == "record 3 does not match the head anchor (hash mismatch)"


def test_swapping_two_records_is_detected(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 5)
    run_sql(engine, "UPDATE lakeplane_audit SET seq = -3 WHERE seq = 3")
    run_sql(engine, "UPDATE lakeplane_audit SET seq = 3 WHERE seq = 4")
    run_sql(engine, "UPDATE lakeplane_audit SET seq = 4 WHERE seq = -3")
    assert log.verify().problem == f"record 3 {FORGED}"


def test_renumbering_is_detected(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 5)
    run_sql(engine, "DELETE FROM lakeplane_audit WHERE seq = 3")
    run_sql(engine, "UPDATE lakeplane_audit SET seq = seq - 1 WHERE seq > 3")  # close the gap
    run_sql(engine, "UPDATE lakeplane_audit_head SET seq = 4")
    assert log.verify().problem == f"record 3 {FORGED}"
    run_sql(engine, "UPDATE lakeplane_audit SET seq = seq + 10")
    assert log.verify().problem == "record 1 is missing (seq jumps 0 -> 11)"
    run_sql(engine, "UPDATE lakeplane_audit SET seq = seq - 20")
    assert log.verify().problem == "record -9 is out of sequence (expected 1)"


def rewrite(engine: sa.Engine, records: list[AuditRecord], key: bytes | None, **changes: Any) -> str:
    """Rewrite ``records`` as a consistent chain (MACs under ``key``, or the unkeyed hash when None) and
    move the anchor and the checkpoint onto it, as someone with write access to the database would.
    Returns the new head MAC."""
    prev = records[0].prev_hash
    for record in records:
        forged = dataclasses.replace(record, prev_hash=prev, **changes)
        forged = dataclasses.replace(forged, hash=forged.mac(key) if key else forged.computed_hash())
        run_sql(engine, "DELETE FROM lakeplane_audit WHERE seq = :seq", {"seq": record.seq})
        insert(
            engine,
            {
                k: json.dumps(v) if isinstance(v, list | dict) else v
                for k, v in dataclasses.asdict(forged).items()
            },
        )
        prev = forged.hash
    last = records[-1].seq
    checkpoint = checkpoint_mac(key, last, prev) if key else prev
    run_sql(
        engine, "UPDATE lakeplane_audit_head SET seq = :s, hash = :h WHERE id = 1", {"s": last, "h": prev}
    )
    run_sql(
        engine,
        "UPDATE lakeplane_audit_head SET seq = :s, hash = :h WHERE id = 2",
        {"s": last, "h": checkpoint},
    )
    return prev


@pytest.mark.parametrize("attacker_key", [None, b"a key the attacker made up"])
def test_a_full_rewrite_without_the_key_is_detected(
    engine: sa.Engine, log: AuditLog, attacker_key: bytes | None
) -> None:
    records = filled(log, 4)
    rewrite(engine, records, attacker_key, principal="mallory")
    result = log.verify()
    problem = (
        "all 4 records carry unkeyed hashes, yet the log has a keyed checkpoint: it was rewritten without the key"
        if attacker_key is None  # the hashes of a log written before keys: they pass for nothing here
        else f"record 1 {FORGED}"
    )
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 1, problem)


def test_rewriting_from_a_middle_record_is_detected_there(engine: sa.Engine, log: AuditLog) -> None:
    records = filled(log, 5)
    rewrite(engine, records[2:], b"not the key", principal="mallory")
    assert (log.verify().first_bad_seq, log.verify().problem) == (3, f"record 3 {FORGED}")


def test_deleting_the_tail_and_moving_the_anchor_is_detected_by_the_checkpoint(
    engine: sa.Engine, log: AuditLog
) -> None:
    records = filled(log, 5)
    run_sql(engine, "DELETE FROM lakeplane_audit WHERE seq > 3")
    run_sql(engine, "UPDATE lakeplane_audit_head SET seq = 3, hash = :h WHERE id = 1", {"h": records[2].hash})
    result = log.verify()
    assert (result.first_bad_seq, result.problem) == (
        4,
        "the last 2 records were deleted (the log ends at 3, its checkpoint is at 5)",
    )
    # Moving the checkpoint too takes its MAC, which takes the key: neither the old one nor the anchor's do.
    for forged in (records[2].hash, checkpoint_mac(b"not the key", 3, records[2].hash)):
        run_sql(engine, "UPDATE lakeplane_audit_head SET seq = 3, hash = :h WHERE id = 2", {"h": forged})
        result = log.verify()
        assert (result.first_bad_seq, result.problem) == (
            4,
            "the checkpoint at 3 is not signed with this lake's audit key: the log's end was moved "
            "(records deleted from its tail) or the log was written with another key",
        )


def test_appending_a_forged_chained_record_and_moving_the_head_is_detected(
    engine: sa.Engine, log: AuditLog
) -> None:
    records = filled(log, 3)
    pinned = records[-1].hash
    template = dataclasses.replace(records[-1], seq=4, prev_hash=pinned, decision="denied")
    forged = rewrite(engine, [template], b"not the key")
    assert forged != pinned
    for head in (None, pinned):
        result = log.verify(expected_head=head)
        assert (result.first_bad_seq, result.problem) == (4, f"record 4 {FORGED}")


def test_a_deleted_checkpoint_is_detected(engine: sa.Engine, log: AuditLog) -> None:
    filled(log, 2)
    run_sql(engine, "DELETE FROM lakeplane_audit_head WHERE id = 2")
    assert log.verify().problem == "the audit checkpoint (lakeplane_audit_head) is missing"


def test_a_log_written_with_another_key_fails(engine: sa.Engine, log: AuditLog) -> None:
    assert AuditLog(engine, b"another lake's key").verify().problem == (
        "the checkpoint at 0 is not signed with this lake's audit key: the log's end was moved "
        "(records deleted from its tail) or the log was written with another key"
    )
    filled(log, 2)
    result = AuditLog(engine, b"another lake's key").verify()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 1, f"record 1 {FORGED}")
    assert log.verify().ok


def test_a_rollback_to_an_earlier_copy_is_caught_by_the_head_file_or_a_pinned_head(tmp_path: Path) -> None:
    path, head_file = tmp_path / "catalog.db", tmp_path / ".lakeplane" / "audit.head"
    engine = new_engine(path)
    log = AuditLog(engine, KEY, head_file=head_file)
    filled(log, 3)
    engine.dispose()
    shutil.copy(path, tmp_path / "copy.db")  # someone keeps a copy of the database...
    pinned = log.append(event(4)).hash
    log.append(event(5))
    assert json.loads(head_file.read_text())["seq"] == 5
    engine.dispose()
    shutil.copy(tmp_path / "copy.db", path)  # ...and later puts it back: every MAC in it is genuine

    # The key alone cannot tell a rollback from a log that ended there (the documented limit)...
    assert AuditLog(engine, KEY).verify().ok
    # ...the head file next to the key can, and so can a head recorded elsewhere.
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert result.problem == (
        f"the log no longer holds record 5 with the MAC this project noted in {head_file}: "
        "it was rolled back, truncated or rewritten"
    )
    result = AuditLog(engine, KEY).verify(expected_head=pinned)
    assert result.problem == f"the pinned head {pinned} is not in the log: it was rewritten or truncated"
    engine.dispose()


def test_a_pinned_head_catches_a_rewrite_by_someone_holding_the_key(engine: sa.Engine, log: AuditLog) -> None:
    records = filled(log, 4)
    pinned = records[1].hash
    rewrite(engine, records[1:], KEY, principal="mallory")  # the key leaked
    assert log.verify().ok
    assert not log.verify(expected_head=pinned).ok


# -- logs written before records were keyed ------------------------------------------------------
def unkeyed_log(engine: sa.Engine, count: int) -> list[AuditRecord]:
    """A log as lakeplane wrote it before audit keys: SHA-256 hashes, a plain anchor, no checkpoint."""
    keyed = filled(AuditLog(engine, KEY), count)
    rewrite(engine, keyed, None)
    run_sql(engine, "DELETE FROM lakeplane_audit_head WHERE id = 2")
    return sorted(AuditLog(engine, KEY).search(limit=100), key=lambda r: r.seq)


def test_an_unkeyed_log_is_reported_until_the_first_keyed_append_seals_it(engine: sa.Engine) -> None:
    records = unkeyed_log(engine, 3)
    assert all(r.hash == r.computed_hash() for r in records)
    log = AuditLog(engine, KEY)
    result = log.verify()
    assert (result.ok, result.first_bad_seq, result.unkeyed) == (False, 1, 3)
    assert result.problem == (
        "the log is unkeyed: its 3 records were written before lakeplane signed audit records, and "
        "nothing proves them yet (the next governed query seals them under the key)"
    )
    sealing = log.append(event(4))
    assert sealing.prev_hash == records[-1].hash and sealing.hash == sealing.mac(KEY)
    result = log.verify()
    assert (result.ok, result.records, result.unkeyed) == (True, 4, 3)

    # Once sealed, the unkeyed records are held by the keyed chain after them.
    rewrite(engine, records, None, principal="mallory")
    run_sql(engine, "UPDATE lakeplane_audit_head SET seq = 4, hash = :h WHERE id = 1", {"h": sealing.hash})
    result = log.verify()
    assert (result.first_bad_seq, result.problem) == (
        4,
        "record 4 does not follow record 3 (prev_hash mismatch)",
    )


def test_unkeyed_records_after_keyed_ones_are_forgeries(engine: sa.Engine, log: AuditLog) -> None:
    records = filled(log, 3)
    rewrite(engine, records[2:], None)
    assert (log.verify().first_bad_seq, log.verify().problem) == (3, f"record 3 {FORGED}")


def test_a_log_made_to_look_unkeyed_is_not_sealed_by_the_project_that_keyed_it(tmp_path: Path) -> None:
    engine = new_engine(tmp_path / "catalog.db")
    log = AuditLog(engine, KEY, head_file=tmp_path / "audit.head")
    records = filled(log, 3)
    rewrite(engine, records, None, principal="mallory")
    run_sql(engine, "DELETE FROM lakeplane_audit_head WHERE id = 2")
    assert not log.verify().ok
    with pytest.raises(
        AuditError, match="checkpoint .* is missing although this project wrote keyed records"
    ):
        log.append(event(4))
    engine.dispose()


def test_the_log_needs_a_key(engine: sa.Engine) -> None:
    with pytest.raises(AuditError, match="needs a key"):
        AuditLog(engine, b"")


# -- concurrency ---------------------------------------------------------------------------------
def test_concurrent_writers_give_a_gapless_verified_chain(tmp_path: Path) -> None:
    path, threads, each = tmp_path / "catalog.db", 8, 25
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        engine = new_engine(path)  # one engine per writer, as separate processes would have
        try:
            start.wait()
            log = AuditLog(engine, KEY)  # the tables do not exist yet: creating them races too
            for n in range(each):
                log.append(event(n, principal=f"writer-{number}"))
        except BaseException as error:
            errors.append(error)
        finally:
            engine.dispose()

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []

    engine = new_engine(path)
    log = AuditLog(engine, KEY)
    result = log.verify()
    assert result.ok and result.records == threads * each, result
    records = log.search(limit=1000)
    assert sorted(r.seq for r in records) == list(range(1, threads * each + 1))
    for number in range(threads):
        assert len(log.search(principal=f"writer-{number}", limit=1000)) == each
    engine.dispose()


def test_a_writer_waits_out_a_lock_and_gives_up_when_it_stays(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.02})
    log = AuditLog(engine, KEY)
    log.append(event(1))
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holding the database's write lock
        with pytest.raises(AuditError, match="other writers won 10 times") as raised:
            log.append(event(2))
        assert raised.value.retryable
        release = threading.Timer(0.05, blocker.rollback)
        release.start()
        assert log.append(event(2)).seq == 2  # retried until the lock went away
        release.join()
    finally:
        blocker.close()
        engine.dispose()
    assert AuditLog(new_engine(path), KEY).verify().records == 2


# -- search --------------------------------------------------------------------------------------
def test_search_by_principal_decision_and_limit(log: AuditLog) -> None:
    log.append(event(1, principal="ana"))
    log.append(event(2, principal="bo", decision="denied"))
    log.append(event(3, principal="ana", decision="denied"))
    log.append(event(4, principal="ana"))

    assert [r.rows for r in log.search(principal="ana")] == [4, 3, 1]
    assert [r.rows for r in log.search(decision="denied")] == [3, 2]
    assert [r.rows for r in log.search(principal="ana", decision="denied")] == [3]
    assert [r.rows for r in log.search(limit=2)] == [4, 3]
    assert log.search(principal="nobody") == []


@pytest.mark.parametrize(
    ("wanted", "hits"),
    [
        ("sales.curated.orders.unit_price", [2]),
        ("curated.orders.unit_price", [2]),
        ("orders.unit_price", [2]),
        ("unit_price", [2]),
        ("nit_price", []),  # a suffix must start at a dot
        ("unit%price", []),
        ("orders.amount", [3, 1]),
        ("customers.email", [3]),
        ("sales.curated.orders", []),  # a table is not a column
    ],
)
def test_search_by_column(log: AuditLog, wanted: str, hits: list[int]) -> None:
    log.append(event(1))
    log.append(event(2, columns=[f"{ORDERS}.unit_price"]))
    log.append(event(3, columns=[f"{ORDERS}.amount", "sales.curated.customers.email"]))
    assert [r.rows for r in log.search(column=wanted)] == hits


def test_search_by_table(log: AuditLog) -> None:
    log.append(event(1))
    log.append(event(2, tables=["sales.raw.orders"]))
    log.append(event(3, tables=["sales.curated.customers"]))
    assert [r.rows for r in log.search(table="curated.orders")] == [1]
    assert [r.rows for r in log.search(table="orders")] == [2, 1]
    assert [r.rows for r in log.search(table="sales.curated.customers")] == [3]


def test_search_since(log: AuditLog) -> None:
    log.append(event(1))
    time.sleep(0.002)
    mark = dt.datetime.now(dt.UTC)
    time.sleep(0.002)
    log.append(event(2))
    assert [r.rows for r in log.search(since=mark)] == [2]
    assert [r.rows for r in log.search(since=mark.replace(tzinfo=None))] == [2]  # naive means UTC
    in_paris = mark.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert [r.rows for r in log.search(since=in_paris)] == [2]
    assert log.search(since=mark + dt.timedelta(hours=1)) == []


@pytest.mark.parametrize("bad", [{"limit": 0}, {"decision": "maybe"}])
def test_bad_searches_are_refused(log: AuditLog, bad: dict[str, Any]) -> None:
    with pytest.raises(AuditError):
        log.search(**bad)


# -- properties ----------------------------------------------------------------------------------
names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
events = st.builds(
    AuditEvent,
    principal=names.filter(bool),
    policy_version=names,
    sql=names,
    decision=st.sampled_from(["allowed", "denied"]),
    reason=names,
    tables=st.lists(names, max_size=3),
    columns=st.lists(names, max_size=3),
    masks=st.dictionaries(names, st.sampled_from(["hash", "null", "redact"]), max_size=2),
    filters=st.lists(names, max_size=2),
    rows=st.none() | st.integers(0, 2**62),
)
TEXT_FIELDS = ["at", "principal", "policy_version", "sql", "decision", "reason", "prev_hash", "hash"]
LIST_FIELDS = ["tables", "columns", "filters"]
databases = itertools.count()


def edited(record: AuditRecord, name: str, extra: str) -> Any:
    """A value of ``name`` that differs from the record's, as stored in the column."""
    value = getattr(record, name)
    if name in TEXT_FIELDS:
        return value + extra
    if name in LIST_FIELDS:
        return json.dumps([*value, extra])
    if name == "masks":
        return json.dumps(value | {extra: "forged" + value.get(extra, "")})
    if name == "rows":
        return 7 if value is None else value + 1
    return value + 1000  # seq: move the record out of its place


@settings(max_examples=25, deadline=None)
@given(
    batch=st.lists(events, min_size=1, max_size=8),
    target=st.integers(0, 7),
    name=st.sampled_from([*TEXT_FIELDS, *LIST_FIELDS, "masks", "rows", "seq"]),
    extra=names.filter(bool),
)
def test_any_single_edit_is_reported_at_its_seq(
    tmp_path_factory: pytest.TempPathFactory, batch: list[AuditEvent], target: int, name: str, extra: str
) -> None:
    engine = new_engine(tmp_path_factory.getbasetemp() / f"audit-{next(databases)}.db")
    try:
        log = AuditLog(engine, KEY)
        records = [log.append(e) for e in batch]
        assert log.verify().ok and log.verify().records == len(batch)
        assert [r.seq for r in records] == list(range(1, len(batch) + 1))

        record = records[target % len(records)]
        with engine.begin() as conn:
            table = sa.table("lakeplane_audit", sa.column("seq"), sa.column(name))
            conn.execute(
                sa.update(table).where(table.c.seq == record.seq).values({name: edited(record, name, extra)})
            )
        result = log.verify()
        assert not result.ok and result.first_bad_seq == record.seq, result
    finally:
        engine.dispose()


def test_an_empty_log_made_before_keys_gets_its_checkpoint_with_its_first_record(engine: sa.Engine) -> None:
    log = AuditLog(engine, KEY)
    run_sql(engine, "DELETE FROM lakeplane_audit_head WHERE id = 2")  # as an older lakeplane made it
    assert log.verify().problem == (
        "the audit checkpoint (lakeplane_audit_head) is missing: deleted, or an empty log made "
        "before audit keys (its first record will add it)"
    )
    log.append(event(1))
    result = log.verify()
    assert (result.ok, result.records, result.unkeyed) == (True, 1, 0)


def test_a_key_made_by_racing_threads_is_one_whole_key(tmp_path: Path) -> None:
    """Threads (or processes) making the audit key at once all read the same complete key: none reads
    the file while another is still writing it."""
    from concurrent.futures import ThreadPoolExecutor

    from lakeplane.governance.plane import _secret

    for attempt in range(20):
        path = tmp_path / f"{attempt}" / "audit.key"
        with ThreadPoolExecutor(max_workers=8) as pool:
            keys = list(pool.map(_secret, ["LAKEPLANE_NO_SUCH_KEY_ENV"] * 8, [path] * 8))
        assert len(set(keys)) == 1 and len(keys[0]) == 64
        assert [p.name for p in path.parent.iterdir()] == ["audit.key"]  # no partial file left

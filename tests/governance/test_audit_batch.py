"""Group commit of audit appends: concurrent appends share transactions, nothing is lost or reordered."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from lakeplane.errors import AuditError
from lakeplane.governance.audit import AuditEvent, AuditLog
from lakeplane.governance.audit_batch import GroupCommit
from lakeplane.governance.audit_records import AuditRecord

KEY = b"group commit test key"


def event(number: int) -> AuditEvent:
    return AuditEvent(principal=f"p{number}", policy_version="v1", sql=f"SELECT {number}", decision="allowed")


def test_concurrent_appends_share_transactions_and_the_chain_verifies(tmp_path: object) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/audit.db")
    log = AuditLog(engine, KEY)
    with ThreadPoolExecutor(16) as pool:
        records = list(pool.map(lambda n: log.append(event(n)), range(200)))
    assert sorted(r.seq for r in records) == list(range(1, 201))
    assert {r.principal for r in records} == {f"p{n}" for n in range(200)}
    assert log._group.batches < 200  # some appends rode along in another's transaction
    verified = log.verify()
    assert verified.ok and verified.records == 200


def test_each_waiter_gets_its_own_record_in_arrival_order() -> None:
    committed: list[list[str]] = []
    gate = threading.Event()

    def commit(events: list[AuditEvent]) -> list[AuditRecord]:
        if not committed:
            gate.wait(5)  # hold the first batch so the others queue up behind it
        committed.append([e.sql for e in events])
        return [_record(e, number) for number, e in enumerate(events)]

    group = GroupCommit(commit)
    results: dict[int, AuditRecord] = {}
    threads = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, group.submit(event(n)))) for n in range(6)
    ]
    threads[0].start()
    time.sleep(0.05)
    for thread in threads[1:]:
        thread.start()
        time.sleep(0.01)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert committed[0] == ["SELECT 0"]
    assert committed[1] == [f"SELECT {n}" for n in range(1, 6)]  # one transaction, in order
    assert all(results[n].sql == f"SELECT {n}" for n in range(6))


def test_a_failed_commit_fails_every_record_of_its_batch_and_the_next_batch_goes_on() -> None:
    calls = 0

    def commit(events: list[AuditEvent]) -> list[AuditRecord]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise AuditError("the audit head anchor is missing")
        return [_record(e, 1) for e in events]

    group = GroupCommit(commit)
    with pytest.raises(AuditError, match="anchor"):
        group.submit(event(1))
    assert group.submit(event(2)).sql == "SELECT 2"


def _record(source: AuditEvent, seq: int) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        at="2026-11-30T00:00:00+00:00",
        principal=source.principal,
        policy_version=source.policy_version,
        sql=source.sql,
        tables=[],
        columns=[],
        masks={},
        filters=[],
        rows=None,
        decision=source.decision,
        reason="",
        prev_hash="",
        hash="",
    )

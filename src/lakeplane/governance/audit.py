"""The governance audit log: every access decision, append-only and chained with a keyed MAC.

Each record says who ran what SQL under which policy version, which tables and columns it read, the
masks and row filters applied, how many rows came back, and whether it was allowed or denied and why.
Records live in ``lakeplane_audit`` in the catalog's own database, so a PostgreSQL catalog shares one
log between all its users.

The chain: record ``n`` carries ``prev_hash``, the MAC of record ``n - 1`` (64 zeros for record 1), and
``hash``, its own MAC: HMAC-SHA256 under the audit key (held outside the database, see
:meth:`lakeplane.governance.plane.Governance.audit_key`) of the canonical JSON (sorted keys, no
whitespace, non-ASCII escaped) of all its other fields, ``seq`` and ``prev_hash`` included. Editing a
record breaks its MAC, deleting one leaves a gap in ``seq`` (renumbering breaks the MACs), and
without the key nobody can write a record, or a whole log, that verifies.

A chain cannot show that its *last* records were deleted. A one-row anchor in ``lakeplane_audit_head``
(id 1) holds the last seq and MAC and a second row (id 2), the *checkpoint*, holds the same seq and a
MAC of (seq, last MAC) under the key; both move in the same transaction as each append, and
:meth:`AuditLog.verify` checks the chain ends exactly at them. Deleting the tail means moving the
checkpoint back, which takes the key.

What the key does not stop: someone who can write the database and kept an *earlier copy* of it (or
of its rows) can put that copy back: every record and checkpoint in it was genuinely signed, so the
log looks as if it simply ended there. Two things catch such a rollback: the head file
(``.lakeplane/audit.head``, next to the key), where each append records the last seq and MAC this
project wrote and which :meth:`AuditLog.verify` requires the log to still hold; and a head MAC copied
somewhere the database's users cannot write (a ticket, a write-once bucket) and passed later to
``verify(expected_head=...)``. A pinned head also keeps its worth should the key ever leak.

Logs written before records were keyed hold plain SHA-256 hashes. They are accepted as the first
records of a log only once a keyed checkpoint covers them: the first append with a key *seals* such
a log (its first keyed record chains from the last unkeyed one), unless this project's head file shows
it had already written keyed records (then the checkpoint was deleted: tampering). Until sealed,
verify reports the log as unkeyed. ``at`` is each writer's clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables
from lakeplane.errors import AuditError
from lakeplane.governance.audit_batch import GroupCommit
from lakeplane.governance.audit_records import DECISIONS, AuditEvent, AuditRecord

GENESIS_HASH = "0" * 64
#: Domain separator: a checkpoint's MAC never stands for a record's (audit_records.py), nor the reverse.
_CHECKPOINT_MAC = b"lakeplane audit checkpoint v1\n"
_ANCHOR, _CHECKPOINT = 1, 2  # the rows of lakeplane_audit_head
_APPEND_ATTEMPTS = 10
_PAGE = 1000

_metadata = sa.MetaData()
_seq_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER keeps SQLite's rowid key
audit_table = sa.Table(
    "lakeplane_audit",
    _metadata,
    sa.Column("seq", _seq_type, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False, index=True),
    sa.Column("principal", sa.Text, nullable=False, index=True),
    sa.Column("policy_version", sa.Text, nullable=False),
    sa.Column("sql", sa.Text, nullable=False),
    sa.Column("tables", sa.Text, nullable=False),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Column("masks", sa.Text, nullable=False),
    sa.Column("filters", sa.Text, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=True),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
head_table = sa.Table(
    "lakeplane_audit_head",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # 1: the anchor, 2: the checkpoint
    sa.Column("seq", _seq_type, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
_JSON_FIELDS = ("tables", "columns", "masks", "filters")


def checkpoint_mac(key: bytes, seq: int, last_mac: str) -> str:
    """The checkpoint's MAC: the log ends at ``seq``, whose record's MAC is ``last_mac``."""
    return hmac.new(key, _CHECKPOINT_MAC + f"{seq}:{last_mac}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`AuditLog.verify` found in the ``records`` it read; ``first_bad_seq`` may be None.

    ``unkeyed``: how many records, from the first, were written before records were keyed (sealed by
    the checkpoint and the keyed records after them).
    """

    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None
    unkeyed: int = 0


class AuditLog:
    """The audit log in ``engine``'s database; creates its two tables if they are missing.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``).
        key: the audit key records are signed with (:meth:`Governance.audit_key`), never stored in
            the database.
        head_file: where each append notes the last seq and MAC this project wrote (next to the key),
            so that verify catches the log being rolled back to an earlier copy; None keeps no note.
    """

    def __init__(self, engine: sa.Engine, key: bytes, head_file: Path | None = None) -> None:
        if not key:
            raise AuditError("the audit log needs a key")
        self.engine = engine
        self.key = key
        self.head_file = head_file
        self._group = GroupCommit(self.append_many)
        ensure_tables(engine, audit_table, head_table)
        try:
            with engine.begin() as conn:
                # Only a brand-new log gets an anchor and a checkpoint: inventing them over existing
                # records would hide deleted ones, which verify must report.
                rows = {r.id for r in conn.execute(sa.select(head_table.c.id))}
                if conn.execute(sa.select(audit_table.c.seq).limit(1)).first() is None and not rows:
                    conn.execute(
                        sa.insert(head_table),
                        [
                            {"id": _ANCHOR, "seq": 0, "hash": GENESIS_HASH},
                            {"id": _CHECKPOINT, "seq": 0, "hash": checkpoint_mac(key, 0, GENESIS_HASH)},
                        ],
                    )
        except sa.exc.IntegrityError:
            pass  # another process wrote them first

    def append(self, event: AuditEvent) -> AuditRecord:
        """Store ``event`` as the next record and move the anchor and checkpoint, in one transaction
        shared with the appends other threads make at the same time; returns once it is committed
        (:mod:`lakeplane.governance.audit_batch`).

        Raises:
            AuditError: the anchor or checkpoint is missing (the log was tampered with: run verify),
                or other writers won the race for the next seq too many times (retryable).
        """
        return self._group.submit(event)

    def append_many(self, events: list[AuditEvent]) -> list[AuditRecord]:
        """Store ``events`` as the next records, in order, in one transaction (see :meth:`append`)."""
        if not events:
            return []
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    records = self._append_in(conn, events)
                self._note_head(records[-1])
                return records
            except sa.exc.IntegrityError:
                pass  # another writer inserted this seq first
            except sa.exc.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
            time.sleep(random.uniform(0, 0.002 * 2**attempt))  # jitter so colliding writers spread out
        raise AuditError(
            f"could not append to the audit log: other writers won {_APPEND_ATTEMPTS} times", retryable=True
        )

    def _append_in(self, conn: sa.Connection, events: list[AuditEvent]) -> list[AuditRecord]:
        # Writing the anchor first takes the write lock before anything is read: a row lock on
        # PostgreSQL, the database's RESERVED lock on SQLite, so concurrent appends queue up here.
        # Should two writers still pick the same seq, the primary key refuses one and it retries.
        anchor = head_table.c
        moved = sa.update(head_table).where(anchor.id == _ANCHOR).values(seq=anchor.seq)
        if conn.execute(moved).rowcount != 1:
            raise AuditError(
                "the audit head anchor (lakeplane_audit_head) is missing: the log was "
                "tampered with; run 'lakeplane audit verify'"
            )
        head = conn.execute(sa.select(anchor.seq, anchor.hash).where(anchor.id == _ANCHOR)).one()
        sealed = conn.execute(sa.select(anchor.seq).where(anchor.id == _CHECKPOINT)).first() is not None
        if not sealed and self._noted_head() is not None:
            raise AuditError(
                "the audit checkpoint (lakeplane_audit_head) is missing although this project wrote "
                "keyed records: the log was tampered with; run 'lakeplane audit verify'"
            )
        last_seq = conn.execute(sa.select(sa.func.max(audit_table.c.seq))).scalar() or 0
        # Chain from the anchor's MAC even past a record inserted behind the log's back, so verify
        # still sees the forgery as a break in the chain.
        seq, prev_hash = max(head.seq, last_seq), head.hash
        records, rows = [], []
        for event in events:
            seq += 1
            draft = AuditRecord(
                seq=seq,
                at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
                principal=event.principal,
                policy_version=event.policy_version,
                sql=event.sql,
                tables=list(event.tables),
                columns=list(event.columns),
                masks=dict(event.masks),
                filters=list(event.filters),
                rows=event.rows,
                decision=event.decision,
                reason=event.reason,
                prev_hash=prev_hash,
                hash="",
            )
            record = replace(draft, hash=draft.mac(self.key))
            values = asdict(record)
            for name in _JSON_FIELDS:
                values[name] = json.dumps(values[name], sort_keys=True)
            records.append(record)
            rows.append(values)
            prev_hash = record.hash
        conn.execute(sa.insert(audit_table), rows)
        last = records[-1]
        conn.execute(sa.update(head_table).where(anchor.id == _ANCHOR).values(seq=last.seq, hash=last.hash))
        checkpoint = {"seq": last.seq, "hash": checkpoint_mac(self.key, last.seq, last.hash)}
        if sealed:
            conn.execute(sa.update(head_table).where(anchor.id == _CHECKPOINT).values(**checkpoint))
        else:  # the first keyed record of a log written before keys: it seals the unkeyed records
            conn.execute(sa.insert(head_table).values(id=_CHECKPOINT, **checkpoint))
        return records

    def _noted_head(self) -> tuple[int, str] | None:
        """The last seq and MAC this project appended, from the head file (None without one)."""
        if self.head_file is None or not self.head_file.exists():
            return None
        try:
            noted = json.loads(self.head_file.read_text())
            return int(noted["seq"]), str(noted["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditError(f"the audit head file {self.head_file} is malformed") from None

    def _note_head(self, record: AuditRecord) -> None:
        if self.head_file is None:
            return
        noted = self._noted_head()
        if noted is not None and noted[0] >= record.seq:
            return  # another process of this project noted a later record already
        self.head_file.parent.mkdir(parents=True, exist_ok=True)
        # One partial file per writing thread: threads of one server append at once.
        partial = self.head_file.with_name(f"{self.head_file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_text(json.dumps({"seq": record.seq, "hash": record.hash}) + "\n")
        partial.replace(self.head_file)  # atomic: a reader sees the old note or the new one

    def verify(self, expected_head: str | None = None) -> VerifyResult:
        """Check every record's MAC, the seq order, the links, the anchor, the checkpoint and the
        head file.

        Args:
            expected_head: a head MAC recorded outside the database earlier; it must still be in the log.
        """
        noted = self._noted_head()
        count, unkeyed, pinned_seen, noted_seen = 0, 0, expected_head is None, noted is None
        last: AuditRecord | None = None
        with self.engine.connect() as conn:
            while True:  # appends may land while we read; rescan until the anchor is no longer ahead
                progressed = False
                for row in _rows_after(conn, last.seq if last else None):
                    progressed, count = True, count + 1
                    seq = row.seq
                    expected = last.seq + 1 if last else 1
                    if seq > expected:
                        return _bad(
                            count,
                            expected,
                            f"record {expected} is missing (seq jumps {expected - 1} -> {seq})",
                        )
                    if seq < expected:
                        return _bad(count, seq, f"record {seq} is out of sequence (expected {expected})")
                    try:
                        record = _to_record(row)
                    except AuditError:
                        return _bad(count, seq, f"record {seq} was edited (a field is malformed)")
                    if not _same(record.mac(self.key), record.hash):
                        if unkeyed == count - 1 and record.computed_hash() == record.hash:
                            unkeyed += 1  # written before keys; the checkpoint must cover it
                        else:
                            return _bad(count, seq, f"record {seq} was edited or forged ({_NOT_KEYED})")
                    if record.prev_hash != (last.hash if last else GENESIS_HASH):
                        return _bad(
                            count, seq, f"record {seq} does not follow record {seq - 1} (prev_hash mismatch)"
                        )
                    pinned_seen = pinned_seen or record.hash == expected_head
                    noted_seen = noted_seen or (noted is not None and (seq, record.hash) == noted)
                    last = record
                heads = {r.id: r for r in conn.execute(sa.select(head_table))}
                head = heads.get(_ANCHOR)
                if head is None or not progressed or head.seq <= (last.seq if last else 0):
                    break
        end_seq, end_hash = (last.seq, last.hash) if last else (0, GENESIS_HASH)
        problem = _end_problem(heads, end_seq, end_hash, self.key, count, unkeyed)
        if problem is not None:
            return VerifyResult(False, count, problem[0], problem[1], unkeyed)
        if not noted_seen:
            assert noted is not None
            return _bad(
                count,
                noted[0] if noted[0] <= end_seq else end_seq + 1,
                f"the log no longer holds record {noted[0]} with the MAC this project noted in "
                f"{self.head_file}: it was rolled back, truncated or rewritten",
            )
        if not pinned_seen:
            return _bad(
                count,
                None,
                f"the pinned head {expected_head} is not in the log: it was rewritten or truncated",
            )
        return VerifyResult(True, count, unkeyed=unkeyed)

    def search(
        self,
        principal: str | None = None,
        column: str | None = None,
        table: str | None = None,
        since: dt.datetime | None = None,
        decision: str | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Records matching every given filter, newest first.

        Args:
            principal: exactly this principal.
            column: a column read, as ``domain.zone.table.column`` or a suffix (``table.column``).
            table: a table read, as ``domain.zone.table`` or a suffix (``zone.table``, ``table``).
            since: at or after this time (a naive datetime is taken as UTC).
            decision: ``allowed`` or ``denied``.
            limit: at most this many records.
        """
        if limit < 1:
            raise AuditError(f"limit {limit}: expected at least 1", limit=limit)
        if decision is not None and decision not in DECISIONS:
            raise AuditError(f"decision '{decision}': expected 'allowed' or 'denied'", decision=decision)
        query = sa.select(audit_table).order_by(audit_table.c.seq.desc())
        if principal is not None:
            query = query.where(audit_table.c.principal == principal)
        if decision is not None:
            query = query.where(audit_table.c.decision == decision)
        if since is not None:
            since = (since if since.tzinfo else since.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
            query = query.where(audit_table.c.at >= since.isoformat(timespec="microseconds"))
        for name, wanted in (("columns", column), ("tables", table)):
            if wanted is not None:  # a cheap superset in SQL; _names_match decides exactly
                query = query.where(audit_table.c[name].like(_like_json_suffix(wanted), escape="!"))
        found: list[AuditRecord] = []
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=_PAGE).execute(query):
                record = _to_record(row)
                if _names_match(record.columns, column) and _names_match(record.tables, table):
                    found.append(record)
                    if len(found) == limit:
                        break
        return found

    def head(self) -> AuditRecord | None:
        """The last record, whose ``hash`` an operator can keep elsewhere for ``verify(expected_head=)``."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(audit_table).order_by(audit_table.c.seq.desc()).limit(1)).first()
        return None if row is None else _to_record(row)


_NOT_KEYED = "MAC mismatch: not signed with this lake's audit key"


def _same(mac: str, stored: str) -> bool:
    """Whether a stored MAC is the expected one, in constant time (stored text may be anything)."""
    return hmac.compare_digest(mac.encode(), str(stored).encode())


def _bad(count: int, seq: int | None, problem: str) -> VerifyResult:
    return VerifyResult(False, count, seq, problem)


def _end_problem(
    heads: dict[int, Any], end_seq: int, end_hash: str, key: bytes, count: int, unkeyed: int
) -> tuple[int | None, str] | None:
    """Whether the chain ends where its anchor and its keyed checkpoint say: (first bad seq, problem)."""
    anchor, checkpoint = heads.get(_ANCHOR), heads.get(_CHECKPOINT)
    if anchor is None:
        return None, "the audit head anchor (lakeplane_audit_head) is missing"
    for name, head in (("head anchor", anchor), ("checkpoint", checkpoint)):
        if head is None:
            continue
        if head.seq > end_seq:
            lost = head.seq - end_seq
            what = "the last record was" if lost == 1 else f"the last {lost} records were"
            return end_seq + 1, f"{what} deleted (the log ends at {end_seq}, its {name} is at {head.seq})"
        if head.seq < end_seq:
            return head.seq + 1, (
                f"records {head.seq + 1}..{end_seq} were not appended through the audit log "
                f"({name} at {head.seq})"
            )
    if anchor.hash != end_hash:
        return end_seq, f"record {end_seq} does not match the head anchor (hash mismatch)"
    if checkpoint is None and count > 0 and unkeyed == count:
        return 1, (
            f"the log is unkeyed: its {count} records were written before lakeplane signed audit "
            "records, and nothing proves them yet (the next governed query seals them under the key)"
        )
    if checkpoint is None and count == 0:
        return None, (
            "the audit checkpoint (lakeplane_audit_head) is missing: deleted, or an empty log made "
            "before audit keys (its first record will add it)"
        )
    if checkpoint is None:
        return None, "the audit checkpoint (lakeplane_audit_head) is missing"
    if count > 0 and unkeyed == count:  # sealing always writes a keyed record after unkeyed ones
        return 1, (
            f"all {count} records carry unkeyed hashes, yet the log has a keyed checkpoint: "
            "it was rewritten without the key"
        )
    if not _same(checkpoint.hash, checkpoint_mac(key, end_seq, end_hash)):
        return end_seq + 1, (
            f"the checkpoint at {end_seq} is not signed with this lake's audit key: the log's end was "
            "moved (records deleted from its tail) or the log was written with another key"
        )
    return None


def _rows_after(conn: sa.Connection, seq: int | None) -> Iterator[sa.Row[Any]]:
    """Records after ``seq`` (all when None) in seq order, a page at a time so no lock is held long."""
    while True:
        query = sa.select(audit_table).order_by(audit_table.c.seq).limit(_PAGE)
        if seq is not None:
            query = query.where(audit_table.c.seq > seq)
        rows = conn.execute(query).fetchall()
        yield from rows
        if len(rows) < _PAGE:
            return
        seq = rows[-1].seq


def _to_record(row: sa.Row[Any]) -> AuditRecord:
    values = dict(row._mapping)
    try:
        for name in _JSON_FIELDS:
            values[name] = json.loads(values[name])
    except (TypeError, ValueError):
        raise AuditError(
            f"audit record {values['seq']} is malformed; run 'lakeplane audit verify'", seq=values["seq"]
        ) from None
    return AuditRecord(**values)


def _like_json_suffix(name: str) -> str:
    """A LIKE pattern for JSON text holding a string that ends with ``name``."""
    encoded = json.dumps(name)[1:-1]
    return "%" + encoded.replace("!", "!!").replace("%", "!%").replace("_", "!_") + '"%'


def _names_match(names: list[str], wanted: str | None) -> bool:
    if wanted is None:
        return True
    return any(isinstance(n, str) and (n == wanted or n.endswith("." + wanted)) for n in names)

"""The governance audit log: every access decision, append-only and hash-chained.

Each record says who ran what SQL under which policy version, which tables and columns it read, the
masks and row filters applied, how many rows came back, and whether it was allowed or denied and why.
Records live in ``lakeplane_audit`` in the catalog's own database, so a PostgreSQL catalog shares one
log between all its users.

The chain: record ``n`` carries ``prev_hash``, the hash of record ``n - 1`` (64 zeros for record 1), and
``hash``, the SHA-256 of the canonical JSON (sorted keys, no whitespace, non-ASCII escaped) of all its
other fields, ``seq`` and ``prev_hash`` included. Editing a record breaks its own hash, deleting one
leaves a gap in ``seq``, and re-hashing an edited record breaks the ``prev_hash`` of the one after it.

A chain cannot show that its *last* records were deleted, so a one-row anchor table,
``lakeplane_audit_head``, holds the last seq and hash and moves in the same transaction as each append;
:meth:`AuditLog.verify` checks the chain ends exactly there. Appends chain from the anchor, so records
deleted from the tail stay visible as a gap even after later appends.

Limits: whoever can write both tables can rewrite the whole log consistently (re-hash every record, move
the anchor). Only a hash kept outside the database defeats that: copy :meth:`AuditLog.head`'s hash
somewhere the database's users cannot write (a ticket, a write-once bucket) and pass it later to
``verify(expected_head=...)``, which checks it is still part of the chain. ``at`` is each writer's clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables
from lakeplane.errors import AuditError

GENESIS_HASH = "0" * 64
DECISIONS = ("allowed", "denied")
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
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1: a single row
    sa.Column("seq", _seq_type, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
_JSON_FIELDS = ("tables", "columns", "masks", "filters")


@dataclass(frozen=True)
class AuditEvent:
    """One access decision as a caller records it; :meth:`AuditLog.append` adds seq, time and hashes."""

    principal: str
    policy_version: str
    sql: str
    decision: str
    reason: str = ""
    tables: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    masks: dict[str, str] = field(default_factory=dict)
    filters: list[str] = field(default_factory=list)
    rows: int | None = None

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise AuditError(
                f"decision '{self.decision}': expected 'allowed' or 'denied'", decision=self.decision
            )
        if not self.principal:
            raise AuditError("an audit event needs a principal")
        if self.rows is not None and self.rows < 0:
            raise AuditError(f"rows {self.rows}: expected a count >= 0 or None", rows=self.rows)


@dataclass(frozen=True)
class AuditRecord:
    """One stored record of the log."""

    seq: int
    at: str
    principal: str
    policy_version: str
    sql: str
    tables: list[str]
    columns: list[str]
    masks: dict[str, str]
    filters: list[str]
    rows: int | None
    decision: str
    reason: str
    prev_hash: str
    hash: str

    def computed_hash(self) -> str:
        """SHA-256 of the canonical JSON of every field but ``hash``."""
        fields = asdict(self)
        del fields["hash"]
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`AuditLog.verify` found in the ``records`` it read; ``first_bad_seq`` may be None."""

    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None


class AuditLog:
    """The audit log in ``engine``'s database; creates its two tables if they are missing.

    Args:
        engine: the catalog's database (``lake.catalog.state_engine``).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, audit_table, head_table)
        try:
            with engine.begin() as conn:
                # Only a brand-new log gets an anchor: inventing one over existing records would hide
                # a deleted anchor, which verify must report.
                if (
                    conn.execute(sa.select(head_table.c.id)).first() is None
                    and conn.execute(sa.select(audit_table.c.seq).limit(1)).first() is None
                ):
                    conn.execute(sa.insert(head_table).values(id=1, seq=0, hash=GENESIS_HASH))
        except sa.exc.IntegrityError:
            pass  # another process wrote the anchor first

    def append(self, event: AuditEvent) -> AuditRecord:
        """Store ``event`` as the next record and move the head anchor, in one transaction.

        Raises:
            AuditError: the head anchor is missing (the log was tampered with: run verify), or other
                writers won the race for the next seq too many times (retryable).
        """
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    return self._append_in(conn, event)
            except sa.exc.IntegrityError:
                pass  # another writer inserted this seq first
            except sa.exc.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
            time.sleep(random.uniform(0, 0.002 * 2**attempt))  # jitter so colliding writers spread out
        raise AuditError(
            f"could not append to the audit log: other writers won {_APPEND_ATTEMPTS} times", retryable=True
        )

    def _append_in(self, conn: sa.Connection, event: AuditEvent) -> AuditRecord:
        # Writing the anchor first takes the write lock before anything is read: a row lock on
        # PostgreSQL, the database's RESERVED lock on SQLite, so concurrent appends queue up here.
        # Should two writers still pick the same seq, the primary key refuses one and it retries.
        anchor = head_table.c
        if conn.execute(sa.update(head_table).where(anchor.id == 1).values(seq=anchor.seq)).rowcount != 1:
            raise AuditError(
                "the audit head anchor (lakeplane_audit_head) is missing: the log was "
                "tampered with; run 'lakeplane audit verify'"
            )
        head = conn.execute(sa.select(anchor.seq, anchor.hash).where(anchor.id == 1)).one()
        last_seq = conn.execute(sa.select(sa.func.max(audit_table.c.seq))).scalar() or 0
        # Chain from the anchor's hash even past a record inserted behind the log's back, so verify
        # still sees the forgery as a break in the chain.
        draft = AuditRecord(
            seq=max(head.seq, last_seq) + 1,
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
            prev_hash=head.hash,
            hash="",
        )
        record = replace(draft, hash=draft.computed_hash())
        values = asdict(record)
        for name in _JSON_FIELDS:
            values[name] = json.dumps(values[name], sort_keys=True)
        conn.execute(sa.insert(audit_table).values(**values))
        conn.execute(sa.update(head_table).where(anchor.id == 1).values(seq=record.seq, hash=record.hash))
        return record

    def verify(self, expected_head: str | None = None) -> VerifyResult:
        """Check every record's hash, the seq order, the links between records and the head anchor.

        Args:
            expected_head: a head hash recorded outside the database earlier; it must still be in the log.
        """
        count, pinned_seen = 0, expected_head is None
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
                    if record.computed_hash() != record.hash:
                        return _bad(count, seq, f"record {seq} was edited (hash mismatch)")
                    if record.prev_hash != (last.hash if last else GENESIS_HASH):
                        return _bad(
                            count, seq, f"record {seq} does not follow record {seq - 1} (prev_hash mismatch)"
                        )
                    pinned_seen = pinned_seen or record.hash == expected_head
                    last = record
                head = conn.execute(sa.select(head_table.c.seq, head_table.c.hash)).first()
                if head is None or not progressed or head.seq <= (last.seq if last else 0):
                    break
        end_seq, end_hash = (last.seq, last.hash) if last else (0, GENESIS_HASH)
        if head is None:
            return _bad(count, None, "the audit head anchor (lakeplane_audit_head) is missing")
        if head.seq > end_seq:
            lost = head.seq - end_seq
            what = "the last record was" if lost == 1 else f"the last {lost} records were"
            return _bad(
                count,
                end_seq + 1,
                f"{what} deleted (the log ends at {end_seq}, its head anchor is at {head.seq})",
            )
        if head.seq < end_seq:
            return _bad(
                count,
                head.seq + 1,
                f"records {head.seq + 1}..{end_seq} were not appended "
                f"through the audit log (head anchor at {head.seq})",
            )
        if head.hash != end_hash:
            return _bad(count, end_seq, f"record {end_seq} does not match the head anchor (hash mismatch)")
        if not pinned_seen:
            return _bad(
                count,
                None,
                f"the pinned head {expected_head} is not in the log: it was rewritten or truncated",
            )
        return VerifyResult(True, count)

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


def _bad(count: int, seq: int | None, problem: str) -> VerifyResult:
    return VerifyResult(False, count, seq, problem)


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

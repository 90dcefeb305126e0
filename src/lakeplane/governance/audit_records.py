"""The records of the audit log: an access decision as a caller records it, and as it is stored."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field

from lakeplane.errors import AuditError

DECISIONS = ("allowed", "denied")
#: Domain separator: a record's MAC can never stand for a checkpoint's (see ``audit.py``).
_RECORD_MAC = b"lakeplane audit record v1\n"


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

    def canonical(self) -> bytes:
        """The canonical JSON of every field but ``hash``."""
        fields = asdict(self)
        del fields["hash"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def computed_hash(self) -> str:
        """SHA-256 of :meth:`canonical`: the unkeyed hash of records written before audit keys."""
        return hashlib.sha256(self.canonical()).hexdigest()

    def mac(self, key: bytes) -> str:
        """HMAC-SHA256 of :meth:`canonical` under the audit ``key``."""
        return hmac.new(key, _RECORD_MAC + self.canonical(), hashlib.sha256).hexdigest()

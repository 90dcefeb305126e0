"""Prepared statements and results waiting for their ``DoGet``, each usable by its principal only.

A result is read once and waits at most :data:`RESULT_TTL` seconds; a prepared statement no call has
used for :data:`STATEMENT_TTL` seconds is forgotten (clients close theirs, but a client that dies
cannot). Handles are 128 random bits.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakeplane.errors import QueryError

#: How long a result waits for the ``DoGet`` that reads it, in seconds.
RESULT_TTL = 600.0
#: How long an unused prepared statement is kept, in seconds.
STATEMENT_TTL = 3600.0


@dataclass
class _Prepared:
    principal: str
    sql: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    used: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Result:
    principal: str
    table: pa.Table
    at: float


class Statements:
    """What the Flight SQL service keeps between calls; safe to use from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prepared: dict[bytes, _Prepared] = {}
        self._results: dict[bytes, _Result] = {}

    def prepare(self, principal: str, sql: str) -> bytes:
        handle = secrets.token_bytes(16)
        now = time.monotonic()
        with self._lock:
            for old in [h for h, p in self._prepared.items() if now - p.used > STATEMENT_TTL]:
                del self._prepared[old]
            self._prepared[handle] = _Prepared(principal, sql, used=now)
        return handle

    def bind(self, principal: str, handle: bytes, rows: list[dict[str, Any]]) -> None:
        """Parameter rows for the statement's next runs (each row runs it once)."""
        with self._lock:
            self._statement(principal, handle).rows = rows

    def prepared(self, principal: str, handle: bytes) -> tuple[str, list[dict[str, Any]]]:
        """The statement's SQL and its bound parameter rows.

        Raises:
            QueryError: no such statement of ``principal``.
        """
        with self._lock:
            found = self._statement(principal, handle)
            found.used = time.monotonic()
            return found.sql, list(found.rows)

    def close(self, principal: str, handle: bytes) -> None:
        with self._lock:
            if handle in self._prepared:
                self._statement(principal, handle)
                del self._prepared[handle]

    def keep(self, principal: str, table: pa.Table) -> bytes:
        """Keep ``table`` for one ``DoGet``; the handle its ticket carries."""
        handle = secrets.token_bytes(16)
        now = time.monotonic()
        with self._lock:
            for old in [h for h, r in self._results.items() if now - r.at > RESULT_TTL]:
                del self._results[old]
            self._results[handle] = _Result(principal, table, now)
        return handle

    def take(self, principal: str, handle: bytes) -> pa.Table:
        """The result kept under ``handle``, given once.

        Raises:
            QueryError: none for ``principal`` (read already, cancelled, expired, or another's).
        """
        with self._lock:
            result = self._results.get(handle)
            if result is not None and result.principal == principal:
                del self._results[handle]
                return result.table
        raise QueryError("no result for this ticket: it was read, cancelled or expired")

    def drop(self, principal: str, handles: list[bytes]) -> bool:
        """Forget the results of ``principal`` under ``handles``; whether there was one."""
        dropped = False
        with self._lock:
            for handle in handles:
                result = self._results.get(handle)
                if result is not None and result.principal == principal:
                    del self._results[handle]
                    dropped = True
        return dropped

    def _statement(self, principal: str, handle: bytes) -> _Prepared:
        found = self._prepared.get(handle)
        if found is None or found.principal != principal:
            raise QueryError("no such prepared statement: it was closed, or never made on this connection")
        return found

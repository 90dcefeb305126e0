"""One PostgreSQL client connection: startup, password login, simple and extended query protocol.

Each statement runs in a worker thread under a :class:`~lakeplane.engines.cancel.CancelScope` while
the connection's thread watches the socket: a client that hangs up mid-statement has its statement
interrupted, and so does a CancelRequest naming this connection's backend key.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from lakeplane.engines.cancel import CancelScope
from lakeplane.errors import LakeplaneError
from lakeplane.serve import pgwire_messages as m
from lakeplane.serve.pgwire_messages import PgError, pg_error
from lakeplane.serve.pgwire_state import (
    ClientGone,
    Outcome,
    PgStatementError,
    Portal,
    Prepared,
    conform,
    ends_transaction,
)
from lakeplane.serve.pgwire_statements import (
    STARTUP_SETTINGS,
    SessionState,
    session_statement,
    split_statements,
)
from lakeplane.serve.pgwire_types import TEXT, PgColumn, decode_parameter, describe_columns

if TYPE_CHECKING:
    from lakeplane.serve.pgwire import PgWireServer

T = TypeVar("T")
_ROWS_PER_WRITE = 2_000


class PgConnection:
    """Serves one client until it terminates, hangs up, or the server stops."""

    def __init__(self, server: PgWireServer, sock: socket.socket, pid: int, key: int) -> None:
        self.server = server
        self.sock: socket.socket = sock
        self.pid, self.key = pid, key
        self.buffer = bytearray()
        self.out = bytearray()
        self.state = SessionState()
        self.user = ""
        self.prepared: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.scope: CancelScope | None = None
        self.busy = False
        self._scope_lock = threading.Lock()

    # -- socket -------------------------------------------------------------------------------
    def _fill(self, wanted: int, idle: bool) -> None:
        while len(self.buffer) < wanted:
            self.sock.settimeout(0.5)
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                if idle and not self.buffer and self.server.stopping:
                    raise ClientGone("server stopping") from None
                continue
            except OSError:
                raise ClientGone("connection lost") from None
            if not chunk:
                raise ClientGone("client hung up")
            self.buffer += chunk

    def _take(self, n: int, idle: bool = False) -> bytes:
        self._fill(n, idle)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def read_message(self) -> tuple[bytes, bytes]:
        self.flush()
        kind = self._take(1, idle=True)
        (length,) = struct.unpack("!i", self._take(4))
        return kind, self._take(length - 4)

    def send(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self.out:
            try:
                self.sock.sendall(bytes(self.out))
            except OSError:
                raise ClientGone("connection lost") from None
            self.out.clear()

    def _peer_gone(self) -> bool:
        """Whether the client hung up (what it sent meanwhile is kept for later)."""
        try:
            self.sock.settimeout(0.0)
            chunk = self.sock.recv(65536)
        except (BlockingIOError, TimeoutError, ssl.SSLWantReadError, InterruptedError):
            return False
        except OSError:
            return True
        if not chunk:
            return True
        self.buffer += chunk
        return False

    # -- startup ------------------------------------------------------------------------------
    def serve(self) -> None:
        try:
            if not self._startup():
                return
            self._loop()
        except ClientGone as gone:
            if str(gone) == "server stopping":
                self.send(
                    PgError(
                        m.ADMIN_SHUTDOWN,
                        "terminating connection due to administrator command",
                        severity="FATAL",
                    ).encode()
                )
        finally:
            self.flush_quietly()

    def flush_quietly(self) -> None:
        with contextlib.suppress(ClientGone):
            self.flush()

    def _startup(self) -> bool:
        while True:
            (length,) = struct.unpack("!i", self._take(4))
            body = self._take(length - 4)
            (code,) = struct.unpack("!i", body[:4])
            if code == m.SSL_REQUEST:
                context = self.server.ssl_context
                self.sock.sendall(b"S" if context else b"N")
                if context is not None:
                    self.sock.settimeout(10)
                    self.sock = context.wrap_socket(self.sock, server_side=True)
                continue
            if code == m.GSSENC_REQUEST:
                self.sock.sendall(b"N")
                continue
            if code == m.CANCEL_REQUEST:
                pid, key = struct.unpack("!ii", body[4:12])
                self.server.cancel(pid, key)
                return False
            if code != m.PROTOCOL_V3:
                self.send(
                    PgError(
                        m.FEATURE_NOT_SUPPORTED,
                        f"unsupported protocol {code >> 16}.{code & 0xFFFF}",
                        severity="FATAL",
                    ).encode()
                )
                return False
            return self._login(body[4:])

    def _login(self, payload: bytes) -> bool:
        params: dict[str, str] = {}
        at = 0
        while at < len(payload) and payload[at] != 0:
            name, at = m.read_cstring(payload, at)
            value, at = m.read_cstring(payload, at)
            params[name] = value
        self.user = params.get("user", "")
        if (
            self.server.ssl_context is not None
            and self.server.require_tls
            and not isinstance(self.sock, ssl.SSLSocket)
        ):
            self.send(
                PgError("28000", "this server requires TLS (sslmode=require)", severity="FATAL").encode()
            )
            return False
        self.send(m.authentication(3))  # cleartext password
        kind, body = self.read_message()
        if kind != b"p":
            self.send(PgError(m.PROTOCOL_VIOLATION, "expected a password message", severity="FATAL").encode())
            return False
        secret = body.rstrip(b"\x00").decode(errors="replace")
        if not self.server.authenticate(self.user, secret):
            self.send(
                PgError(
                    m.INVALID_PASSWORD,
                    f'password authentication failed for user "{self.user}"',
                    severity="FATAL",
                    hint="log in as a principal of the policy with a token from `lakeplane token create`",
                ).encode()
            )
            return False
        self.send(m.authentication(0))
        if "application_name" in params:
            self.state.settings["application_name"] = params["application_name"]
        for name in STARTUP_SETTINGS:
            self.send(m.parameter_status(name, self.state.settings[name]))
        self.send(m.backend_key_data(self.pid, self.key))
        self.send(m.ready_for_query("I"))
        return True

    # -- the message loop ---------------------------------------------------------------------
    def _loop(self) -> None:
        skipping = False  # after an error in the extended protocol, until Sync
        while True:
            kind, body = self.read_message()
            if kind == b"X":
                return
            if kind == b"Q":
                self._simple_query(body.rstrip(b"\x00").decode())
                continue
            if kind == b"S":
                skipping = False
                self.send(m.ready_for_query(self.state.transaction))
                continue
            if kind == b"H":
                self.flush()
                continue
            if skipping:
                continue
            try:
                self._extended(kind, body)
            except ClientGone:
                raise
            except Exception as exc:
                self._error(exc)
                skipping = True

    def _error(self, exc: BaseException) -> None:
        error = self._error_of(exc)
        if error.code == "XX000" and not isinstance(exc, LakeplaneError):
            self.server.log_exception(exc)
        if self.state.transaction == "T":
            self.state.transaction = "E"
        self.send(error.encode())

    def _error_of(self, exc: BaseException) -> PgError:
        if isinstance(exc, PgStatementError):
            return exc.error
        return pg_error(exc)

    def _simple_query(self, sql: str) -> None:
        statements = split_statements(sql)
        if not statements:
            self.send(m.message(b"I"))
        for statement in statements:
            try:
                outcome = self._run(statement, [])
                if outcome.table is not None:
                    columns = describe_columns(outcome.table.schema)
                    formats = [0] * len(columns)
                    self.send(m.row_description(columns, formats))
                    self._send_rows(outcome.table, columns, formats, 0, outcome.table.num_rows)
                self.send(m.command_complete(outcome.tag))
            except ClientGone:
                raise
            except Exception as exc:
                self._error(exc)
                break
        self.send(m.ready_for_query(self.state.transaction))

    def _send_rows(
        self, table: pa.Table, columns: Sequence[PgColumn], formats: Sequence[int], start: int, stop: int
    ) -> None:
        for at in range(start, stop, _ROWS_PER_WRITE):
            self.send(m.data_rows(table.slice(at, min(_ROWS_PER_WRITE, stop - at)), columns, formats))

    # -- extended query protocol --------------------------------------------------------------
    def _extended(self, kind: bytes, body: bytes) -> None:
        if kind == b"P":
            name, at = m.read_cstring(body, 0)
            sql, at = m.read_cstring(body, at)
            (count,) = struct.unpack("!h", body[at : at + 2])
            oids = list(struct.unpack(f"!{count}i", body[at + 2 : at + 2 + 4 * count]))
            if len(split_statements(sql)) > 1:
                raise PgStatementError(
                    PgError("42601", "cannot insert multiple commands into a prepared statement")
                )
            self.prepared[name] = Prepared(sql, oids)
            self.send(m.message(b"1"))
        elif kind == b"B":
            self._bind(body)
        elif kind == b"D":
            what, name = body[:1], m.read_cstring(body, 1)[0]
            if what == b"S":
                self._describe_statement(self._statement(name))
            else:
                self._describe_portal(self._portal(name))
        elif kind == b"E":
            name, at = m.read_cstring(body, 0)
            (limit,) = struct.unpack("!i", body[at : at + 4])
            self._execute(self._portal(name), limit)
        elif kind == b"C":
            what, name = body[:1], m.read_cstring(body, 1)[0]
            if what == b"S":
                self.prepared.pop(name, None)
            else:
                self.portals.pop(name, None)
            self.send(m.message(b"3"))
        else:
            raise PgStatementError(PgError(m.PROTOCOL_VIOLATION, f"unexpected message {kind.decode()!r}"))

    def _statement(self, name: str) -> Prepared:
        if name not in self.prepared:
            raise PgStatementError(PgError("26000", f'prepared statement "{name}" does not exist'))
        return self.prepared[name]

    def _portal(self, name: str) -> Portal:
        if name not in self.portals:
            raise PgStatementError(PgError("34000", f'portal "{name}" does not exist'))
        return self.portals[name]

    def _bind(self, body: bytes) -> None:
        portal, at = m.read_cstring(body, 0)
        name, at = m.read_cstring(body, at)
        statement = self._statement(name)
        (count,) = struct.unpack("!h", body[at : at + 2])
        at += 2
        codes = list(struct.unpack(f"!{count}h", body[at : at + 2 * count]))
        at += 2 * count
        (nparams,) = struct.unpack("!h", body[at : at + 2])
        at += 2
        params = []
        for i in range(nparams):
            (size,) = struct.unpack("!i", body[at : at + 4])
            at += 4
            raw = None if size < 0 else body[at : at + size]
            at += max(size, 0)
            code = codes[i] if len(codes) > 1 else (codes[0] if codes else 0)
            oid = statement.param_oids[i] if i < len(statement.param_oids) else 0
            params.append(decode_parameter(raw, oid, code == 1))
        (nformats,) = struct.unpack("!h", body[at : at + 2])
        formats = list(struct.unpack(f"!{nformats}h", body[at + 2 : at + 2 + 2 * nformats]))
        self.portals[portal] = Portal(statement, params, formats)
        self.send(m.message(b"2"))

    def _describe_statement(self, statement: Prepared) -> None:
        self.send(m.parameter_description([oid or TEXT for oid in statement.param_oids]))
        nulls = [None] * len(statement.param_oids)
        probe = SessionState(dict(self.state.settings), self.state.transaction)
        answer = session_statement(statement.sql, probe)
        if answer is not None:
            self.send(self._single_column(answer.column) if answer.column else m.message(b"n"))
            return
        if not split_statements(statement.sql):
            self.send(m.message(b"n"))
            return
        schema = self._watched(lambda: self.server.result_schema(statement.sql, nulls, self.user))
        statement.schema = schema
        columns = describe_columns(schema)
        self.send(m.row_description(columns, [0] * len(columns)) if columns else m.message(b"n"))

    def _single_column(self, name: str) -> bytes:
        return m.row_description([PgColumn(name, TEXT, -1)], [0])

    def _describe_portal(self, portal: Portal) -> None:
        outcome = self._outcome(portal)
        if outcome.table is None:
            self.send(m.message(b"n"))
            return
        self.send(m.row_description(portal.columns, self._formats(portal)))

    def _formats(self, portal: Portal) -> list[int]:
        n = len(portal.columns)
        return portal.formats * n if len(portal.formats) == 1 else (portal.formats or [0] * n)

    def _outcome(self, portal: Portal) -> Outcome:
        if portal.outcome is None:
            outcome = self._run(portal.statement.sql, portal.params)
            if outcome.table is not None and portal.statement.schema is not None:
                outcome.table = conform(outcome.table, portal.statement.schema)
            portal.outcome = outcome
            portal.columns = describe_columns(outcome.table.schema) if outcome.table is not None else []
        return portal.outcome

    def _execute(self, portal: Portal, limit: int) -> None:
        if not split_statements(portal.statement.sql):
            self.send(m.message(b"I"))
            return
        outcome = self._outcome(portal)
        table = outcome.table
        if table is None:
            self.send(m.command_complete(outcome.tag))
            return
        stop = table.num_rows if limit <= 0 else min(table.num_rows, portal.sent + limit)
        self._send_rows(table, portal.columns, self._formats(portal), portal.sent, stop)
        portal.sent = stop
        if stop < table.num_rows:
            self.send(m.message(b"s"))
        else:
            self.send(m.command_complete(outcome.tag))

    # -- running a statement ------------------------------------------------------------------
    def _run(self, sql: str, params: list[Any]) -> Outcome:
        if self.state.transaction == "E" and not ends_transaction(sql):
            raise PgStatementError(
                PgError(
                    m.IN_FAILED_TRANSACTION,
                    "current transaction is aborted, commands ignored until end of transaction block",
                )
            )
        answer = session_statement(sql, self.state)
        if answer is not None:
            if answer.deallocate is not None:
                if answer.deallocate.upper() == "ALL":
                    self.prepared = {k: v for k, v in self.prepared.items() if k == ""}
                else:
                    self.prepared.pop(answer.deallocate, None)
            if answer.discard_all:
                self.prepared.clear()
                self.portals.clear()
            if answer.column is not None:
                return Outcome(answer.tag, pa.table({answer.column: [answer.value]}))
            return Outcome(answer.tag)
        table, tag = self._watched(lambda: self.server.run_statement(sql, params, self.user))
        return Outcome(tag, table)

    def _watched(self, work: Callable[[], T]) -> T:
        """``work()`` in a worker thread, interrupted if the client hangs up or cancels it."""
        scope = CancelScope()
        result: list[Any] = []
        failure: list[BaseException] = []

        def run() -> None:
            with scope:
                try:
                    result.append(work())
                except BaseException as exc:
                    failure.append(exc)

        with self._scope_lock:
            self.scope, self.busy = scope, True
        self.flush()
        worker = threading.Thread(target=run, name=f"pg-{self.pid}-statement", daemon=True)
        worker.start()
        gone = False
        try:
            while worker.is_alive():
                worker.join(0.1)
                if worker.is_alive() and not gone and self._peer_gone():
                    gone = True
                    scope.cancel("client disconnect")
            if gone:
                raise ClientGone("client hung up mid-statement")
            if failure and scope.cancelled:
                raise PgStatementError(
                    PgError(m.QUERY_CANCELED, f"canceling statement due to {scope.reason}")
                )
            if failure:
                raise failure[0]
            return result[0]
        finally:
            self.sock.settimeout(0.5)
            with self._scope_lock:
                self.busy = False
                self.scope = None

    def cancel(self, reason: str) -> None:
        """Interrupt the statement running now (a CancelRequest; the server stopping)."""
        with self._scope_lock:
            if self.scope is not None:
                self.scope.cancel(reason)

"""The PostgreSQL wire protocol (v3) listener of ``lakeplane serve``: psql, psycopg, JDBC, BI tools.

One thread per client connection. A client logs in with ``user=PRINCIPAL password=TOKEN`` (a token
from ``lakeplane token create PRINCIPAL``; any database name). Every statement is a metadata answer
(:func:`lakeplane.query.introspection.answer_metadata`) or runs through ``Lake.query`` as that
principal: compiled, governed and audited exactly as ``lakeplane query --as PRINCIPAL``.

Written here rather than on riffq: riffq publishes no wheel for this platform and its source build
needs Rust crates that cannot be fetched here.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import socket
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakeplane.errors import AuthenticationError, PolicyError
from lakeplane.governance.tokens import access_tokens
from lakeplane.query.introspection import introspection
from lakeplane.serve.pgwire_session import PgConnection

if TYPE_CHECKING:
    from lakeplane.lake import Lake

_EXPLAIN = re.compile(r"^\s*EXPLAIN\b", re.I)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context from a PEM certificate (chain) and its private key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class PgWireServer:
    """Listens on ``host:port`` (0: a free port, see :attr:`port`) for PostgreSQL clients; with
    ``ssl_context`` clients may ask for TLS, and with ``require_tls`` they must.

    Raises:
        ConfigError: the lake has no policy (a client logs in as one of its principals).
    """

    def __init__(
        self,
        lake: Lake,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        require_tls: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        lake.governance.require_enabled()
        self.lake = lake
        self.tokens = access_tokens(lake.governance)
        self.introspection = introspection(lake)
        self.ssl_context = ssl_context
        self.require_tls = require_tls and ssl_context is not None
        self.log = log or _stderr
        self.stopping = False
        self._auth_lock = threading.Lock()
        self._connections: dict[int, tuple[PgConnection, threading.Thread]] = {}
        self._connections_lock = threading.Lock()
        self._pids = itertools.count(random.randrange(1000, 30000))
        self._listener = socket.create_server((host, port), backlog=128)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._accepting: threading.Thread | None = None
        self._stopped_accepting = threading.Event()
        lake.governance.version()  # record the policy version once, before clients race to

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> PgWireServer:
        """Accept clients in a background thread."""
        accepting = threading.Thread(target=self.serve, name="pgwire-accept", daemon=True)
        self._accepting = accepting
        accepting.start()
        return self

    def serve(self) -> None:
        """Accept clients until :meth:`shutdown` (blocking)."""
        self._accepting = threading.current_thread()
        self._stopped_accepting.clear()
        try:
            self._accept_until_stopped()
        finally:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._stopped_accepting.set()

    def _accept_until_stopped(self) -> None:
        self._listener.settimeout(0.2)
        while not self.stopping:
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self.stopping:
                    return
                raise
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pid, key = next(self._pids), random.randrange(-(2**31), 2**31)
            connection = PgConnection(self, sock, pid, key)
            thread = threading.Thread(
                target=self._serve_one, args=(connection,), name=f"pg-{pid}", daemon=True
            )
            with self._connections_lock:
                self._connections[pid] = (connection, thread)
            thread.start()

    def _serve_one(self, connection: PgConnection) -> None:
        try:
            connection.serve()
        except Exception as exc:
            self.log_exception(exc)
        finally:
            with contextlib.suppress(OSError):
                connection.sock.close()
            with self._connections_lock:
                self._connections.pop(connection.pid, None)

    def shutdown(self, grace_s: float = 30.0) -> None:
        """Stop accepting; idle clients are told the server is shutting down; statements running
        may finish within ``grace_s`` seconds, then they are cancelled and their connections closed."""
        self.stopping = True
        if self._accepting is None:
            with contextlib.suppress(OSError):
                self._listener.close()
        elif self._accepting is not threading.current_thread():
            self._stopped_accepting.wait(timeout=5)  # the accept loop closes the listener
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self.connections():
            time.sleep(0.05)
        for connection in self.connections():
            connection.cancel("server shutdown")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.connections():
            time.sleep(0.05)
        for connection in self.connections():
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    def connections(self) -> list[PgConnection]:
        with self._connections_lock:
            return [c for c, _ in self._connections.values()]

    def __enter__(self) -> PgWireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown(grace_s=5)

    # -- what connections ask -----------------------------------------------------------------
    def authenticate(self, user: str, secret: str) -> bool:
        """Whether ``secret`` is a live token of the principal ``user`` names."""
        with self._auth_lock:
            try:
                who = self.lake.governance.principal(user)
                return self.tokens.authenticate(secret) == f"{who.kind}:{who.name}"
            except (AuthenticationError, PolicyError):
                return False

    def cancel(self, pid: int, key: int) -> None:
        """A CancelRequest: interrupt the statement of backend ``pid`` if ``key`` is its key."""
        with self._connections_lock:
            found = self._connections.get(pid)
        if found is not None and found[0].key == key:
            found[0].cancel("user request")

    def run_statement(self, sql: str, params: Sequence[Any], principal: str) -> tuple[pa.Table, str]:
        """The rows of one statement and its command tag: a metadata answer, else the governed query."""
        answer = self.introspection.answer(sql, principal, params)
        if answer is not None:
            return answer, "EXPLAIN" if _EXPLAIN.match(sql) else f"SELECT {answer.num_rows}"
        table = self.lake.query(
            self.introspection.lake_sql(sql, params), principal=principal, dialect="duckdb"
        )
        return table, f"SELECT {table.num_rows}"

    def result_schema(self, sql: str, params: Sequence[Any], principal: str) -> pa.Schema:
        """The columns ``sql`` returns (for a Describe before Bind), with NULL for every parameter."""
        answer = self.introspection.answer(sql, principal, params)
        if answer is not None:
            return answer.schema
        lake_sql = self.introspection.lake_sql(sql, params)
        return self.lake.query(
            f"SELECT * FROM ({lake_sql}) AS described LIMIT 0", principal=principal, dialect="duckdb"
        ).schema

    def log_exception(self, exc: BaseException) -> None:
        self.log("".join(traceback.format_exception(exc)).rstrip())


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)

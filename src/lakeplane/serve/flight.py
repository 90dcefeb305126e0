"""Arrow Flight SQL over the lake: ADBC's Flight SQL driver and other Flight SQL clients query it as a
principal and get Arrow batches back.

pyarrow.flight provides the Flight RPC server; the Flight SQL layer (its commands, tickets and actions,
:mod:`lakeplane.serve.flight_protocol`) is answered here:

- ``Handshake`` with basic authentication ``user=PRINCIPAL password=TOKEN`` answers
  ``authorization: Bearer TOKEN``, sent on every later call (:mod:`lakeplane.serve.flight_auth`).
- ``CommandStatementQuery`` and prepared statements (``CreatePreparedStatement``, parameters sent with
  ``DoPut``, ``CommandPreparedStatementQuery``, ``ClosePreparedStatement``): ``GetFlightInfo`` runs the
  statement through :meth:`Lake.query` as the caller's principal, so it is compiled, governed and
  audited exactly as ``lakeplane query --as PRINCIPAL`` would; the FlightInfo's one ticket
  (``TicketStatementQuery``) is read once with ``DoGet``. Parameters are ``?`` (by position) or
  ``:name`` (by the bound column's name); several bound rows run the statement once each.
- ``CommandGetCatalogs``, ``CommandGetDbSchemas``, ``CommandGetTables`` (with ``include_schema``),
  ``CommandGetTableTypes`` and ``CommandGetSqlInfo`` answer from what the principal may see
  (:mod:`lakeplane.serve.flight_catalog`).
- Writes (``CommandStatementUpdate``, ``CommandPreparedStatementUpdate``, ingest) are refused: the
  service is read-only. Keys, cross references, XDBC type info, transactions and Substrait are not
  served.
- A client that gives up on ``GetFlightInfo`` interrupts its statement in the engine;
  ``CancelFlightInfo`` (and the older ``CancelQuery``) drops a result not yet read; a ``DoGet`` stream
  stops at the next batch when its client goes away or the service shuts down.

Errors keep lakeplane's message: a bad, expired or revoked token is ``FlightUnauthenticatedError``, a
refusal of the policy (naming the principal and the column) or a write ``FlightUnauthorizedError``,
anything else ``FlightServerError``.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pyarrow as pa
import pyarrow.flight as flight

from lakeplane.engines.cancel import CancelScope
from lakeplane.errors import (
    AccessDenied,
    AuthenticationError,
    ConfigError,
    LakeplaneError,
    QueryError,
    ReadOnlyError,
)
from lakeplane.governance.tokens import access_tokens
from lakeplane.lake import Lake
from lakeplane.serve import flight_catalog
from lakeplane.serve.flight_auth import CALLER, HeaderHandshake, TokenAuthentication
from lakeplane.serve.flight_parameters import parameter_sets, positional_to_named
from lakeplane.serve.flight_protocol import (
    Command,
    GetCatalogs,
    GetDbSchemas,
    GetSqlInfo,
    GetTables,
    GetTableTypes,
    PreparedStatementQuery,
    StatementQuery,
    StatementTicket,
    StatementUpdate,
    action_handle,
    action_query,
    cancel_result,
    cancelled_flight_info,
    encode,
    pack_any,
    parse_command,
    prepared_statement_result,
    put_prepared_statement_result,
    statement_ticket,
    unpack_any,
)
from lakeplane.serve.flight_statements import Statements

MetadataAnswer = Callable[[Lake, str, str], pa.Table | None]
#: Answers SHOW, DESCRIBE, EXPLAIN and the catalog views from what the principal may see (None for
#: other statements); asked before :meth:`Lake.query`, as the PostgreSQL listener asks it.
metadata_answer: MetadataAnswer | None
try:
    from lakeplane.query.introspection import answer_metadata as _found

    metadata_answer = _found
except ImportError:
    metadata_answer = None

#: Rows per Arrow batch sent by ``DoGet``.
BATCH_ROWS = 65_536
#: How long :meth:`FlightSqlService.shutdown` waits for calls in flight, in seconds.
SHUTDOWN_GRACE = 10.0
#: How often a running statement checks whether its client cancelled the call, in seconds.
CANCEL_POLL_S = 0.1
_CANCELLED, _NOT_CANCELLABLE = 1, 3

_P = ParamSpec("_P")
_R = TypeVar("_R")


class FlightSqlService:
    """A Flight SQL listener on ``host:port`` (port 0: any free port), already bound when made.

    Args:
        lake: a governed lake (one with a policy): every call is made as a token's principal.
        host: the address to listen on.
        port: the port; :attr:`port` is the one bound.
        tls: ``(certificate file, key file)`` in PEM to serve ``grpc+tls``; None for plain ``grpc``.
        log: gets one line per statement and the details of internal errors (default: stderr).

    Raises:
        ConfigError: the lake has no policy, a TLS file cannot be read, or the address cannot be bound.
    """

    def __init__(
        self,
        lake: Lake,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[str | Path, str | Path] | None = None,
        *,
        log: Callable[[str], None] | None = None,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        tokens = access_tokens(lake.governance)
        certificates = [flight.CertKeyPair(*(_pem(path) for path in tls))] if tls else None
        address = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URI writes it
        try:
            location = (
                flight.Location.for_grpc_tls(address, port)
                if tls
                else flight.Location.for_grpc_tcp(address, port)
            )
            self._server = _FlightSqlServer(
                lake,
                location,
                log or _stderr,
                batch_rows,
                auth_handler=HeaderHandshake(),
                tls_certificates=certificates,
                middleware={CALLER: TokenAuthentication(tokens)},
            )
        except (pa.ArrowException, OSError) as exc:
            raise ConfigError(
                f"cannot serve Flight SQL on {host}:{port}: {exc}", value=f"{host}:{port}"
            ) from None
        self.host = host
        self._address = address
        self.tls = tls is not None
        self._stopping = threading.Lock()
        self._stopped = threading.Event()
        self._closer: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.port)

    @property
    def uri(self) -> str:
        """What a client connects to: ``grpc://host:port`` or ``grpc+tls://host:port``."""
        return f"grpc{'+tls' if self.tls else ''}://{self._address}:{self.port}"

    def serve(self) -> None:
        """Block until :meth:`shutdown` is called (calls are taken from construction on).

        Signals are left to the process: whoever runs the service decides what stops it.
        """
        while not self._stopped.wait(0.2):
            pass

    def shutdown(self, grace: float = SHUTDOWN_GRACE) -> bool:
        """Stop taking calls, end open result streams at their next batch, and wait for calls in flight.

        A stream whose client stopped reading while the network's buffers are full cannot be ended
        from here; after ``grace`` seconds this returns anyway, and the process's exit closes what is
        left. Safe to call more than once, from any thread but one serving a call.

        Returns:
            whether every call had finished.
        """
        with self._stopping:
            if not self._stopped.is_set():
                self._server.stopping.set()
                self._closer = threading.Thread(
                    target=self._server.shutdown, name="flight-shutdown", daemon=True
                )
                self._closer.start()
                self._stopped.set()
        assert self._closer is not None
        self._closer.join(grace)
        if self._closer.is_alive():
            self._server.log(f"Flight SQL: calls still open {grace:g}s after shutdown; leaving them to exit")
        return not self._closer.is_alive()


def _flight_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """lakeplane's errors as the Flight errors a client sees, with lakeplane's message."""

    @functools.wraps(method)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except (flight.FlightError, NotImplementedError):
            raise
        except AuthenticationError as exc:
            raise flight.FlightUnauthenticatedError(str(exc)) from None
        except (AccessDenied, ReadOnlyError) as exc:
            raise flight.FlightUnauthorizedError(str(exc)) from None
        except LakeplaneError as exc:
            raise flight.FlightServerError(str(exc)) from None
        except Exception:  # a bug or a lost database: answer, and keep the details in the log
            server = args[0]
            assert isinstance(server, _FlightSqlServer)
            server.log(traceback.format_exc().rstrip())
            raise flight.FlightServerError("internal error (see the server log)") from None

    return call


def _until_cancelled(context: Any, work: Callable[[], pa.Table]) -> pa.Table:
    """``work()``, its engine sessions interrupted as soon as the client cancels the call or goes away
    (gRPC marks the call cancelled; it is polled, since pyarrow gives no callback)."""
    done = threading.Event()
    with CancelScope() as scope:

        def watch() -> None:
            while not done.wait(CANCEL_POLL_S):
                if context.is_cancelled():
                    scope.cancel("the client cancelled the call")
                    return

        watcher = threading.Thread(target=watch, name="flight-cancel-watch", daemon=True)
        watcher.start()
        try:
            return work()
        except LakeplaneError:
            if scope.cancelled:
                raise flight.FlightCancelledError(f"statement interrupted: {scope.reason}") from None
            raise
        finally:
            done.set()
            watcher.join()


class _FlightSqlServer(flight.FlightServerBase):
    def __init__(
        self, lake: Lake, location: Any, log: Callable[[str], None], batch_rows: int, **options: Any
    ) -> None:
        self.lake = lake
        self.log = log
        self.batch_rows = batch_rows
        self.stopping = threading.Event()
        self.browse = flight_catalog.FlightCatalog(lake.catalog, lake.governance)
        self._browse_lock = threading.Lock()
        self.statements = Statements()
        # Build the lake's services now, not in racing calls.
        lake.governance.version()
        _ = lake.queries
        super().__init__(location, **options)

    # -- RPCs ----------------------------------------------------------------------------------
    @_flight_errors
    def get_flight_info(self, context: Any, descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        principal = _principal(context)
        command = _command(descriptor)
        table = _until_cancelled(context, lambda: self._answer(principal, command))
        if context.is_cancelled():  # the client gave up while the statement ran: keep nothing
            raise flight.FlightCancelledError("the client cancelled the call")
        handle = self.statements.keep(principal, table)
        endpoint = flight.FlightEndpoint(statement_ticket(handle), [])
        return flight.FlightInfo(table.schema, descriptor, [endpoint], table.num_rows, table.nbytes)

    @_flight_errors
    def get_schema(self, context: Any, descriptor: flight.FlightDescriptor) -> flight.SchemaResult:
        return flight.SchemaResult(self._answer(_principal(context), _command(descriptor)).schema)

    @_flight_errors
    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.FlightDataStream:
        principal = _principal(context)
        command = parse_command(ticket.ticket)
        if not isinstance(command, StatementTicket):
            raise QueryError(f"a ticket holds TicketStatementQuery, not {type(command).__name__}")
        table = self.statements.take(principal, command.handle)
        return flight.GeneratorStream(table.schema, self._stream(principal, table, context))

    @_flight_errors
    def do_put(
        self,
        context: Any,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        principal = _principal(context)
        command = _command(descriptor)
        if not isinstance(command, PreparedStatementQuery):
            raise ReadOnlyError(
                "this Flight SQL service is read-only: updates, inserts and ingest are refused",
                operation=type(command).__name__,
            )
        self.statements.bind(principal, command.handle, reader.read_all().to_pylist())
        writer.write(pa.py_buffer(put_prepared_statement_result(command.handle)))

    @_flight_errors
    def do_action(self, context: Any, action: flight.Action) -> list[flight.Result]:
        principal = _principal(context)
        body = action.body.to_pybytes() if action.body is not None else b""
        if action.type == "CreatePreparedStatement":
            handle = self.statements.prepare(principal, action_query(body))
            return [flight.Result(prepared_statement_result(handle))]
        if action.type == "ClosePreparedStatement":
            self.statements.close(principal, action_handle(body))
            return []
        if action.type == "CancelFlightInfo":
            return [flight.Result(cancel_result(self._cancel(principal, cancelled_flight_info(body))))]
        if action.type == "CancelQuery":
            status = self._cancel(principal, unpack_any(body)[1].bytes(1) or b"")
            return [flight.Result(pack_any("ActionCancelQueryResult", encode([(1, status)])))]
        raise NotImplementedError(f"action '{action.type}' is not served")

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [
            ("CreatePreparedStatement", "prepare a query"),
            ("ClosePreparedStatement", "forget a prepared query"),
            ("CancelFlightInfo", "drop a result not yet read"),
        ]

    # -- answers -------------------------------------------------------------------------------
    def _answer(self, principal: str, command: Command) -> pa.Table:
        if isinstance(command, StatementQuery):
            return self._run(principal, command.query, [])
        if isinstance(command, PreparedStatementQuery):
            return self._run(principal, *self.statements.prepared(principal, command.handle))
        if isinstance(command, GetTableTypes):
            return flight_catalog.table_types()
        if isinstance(command, GetSqlInfo):
            return flight_catalog.sql_info(command.info)
        if isinstance(command, StatementUpdate):
            raise ReadOnlyError(
                "this Flight SQL service is read-only: updates, inserts and ingest are refused",
                operation="CommandStatementUpdate",
            )
        if isinstance(command, GetCatalogs | GetDbSchemas | GetTables):
            with self._browse_lock:
                who = self.lake.governance.principal(principal)
                if isinstance(command, GetCatalogs):
                    return self.browse.catalogs(who)
                if isinstance(command, GetDbSchemas):
                    return self.browse.db_schemas(who, command)
                return self.browse.tables(who, command)
        raise NotImplementedError(f"{getattr(command, 'name', type(command).__name__)} is not served")

    def _run(self, principal: str, sql: str, rows: list[dict[str, Any]]) -> pa.Table:
        started = time.perf_counter()
        try:
            tables = [self._run_one(principal, sql, params) for params in parameter_sets(sql, rows)]
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        except LakeplaneError as exc:
            self._log_statement(principal, sql, f"refused: {type(exc).__name__}", started)
            raise
        self._log_statement(principal, sql, f"{table.num_rows} rows", started)
        return table

    def _run_one(self, principal: str, sql: str, params: dict[str, Any]) -> pa.Table:
        if metadata_answer is not None:
            answered = metadata_answer(self.lake, sql, principal)
            if answered is not None:
                return answered
        return self.lake.query(positional_to_named(sql), params or None, principal=principal)

    def _stream(self, principal: str, table: pa.Table, context: Any) -> Iterator[pa.RecordBatch]:
        sent = 0
        try:
            for batch in table.to_batches(max_chunksize=self.batch_rows):
                if self.stopping.is_set():
                    raise flight.FlightUnavailableError("the Flight SQL service is shutting down")
                if context.is_cancelled():
                    return
                yield batch
                sent += batch.num_rows
        finally:
            if sent < table.num_rows:
                at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                self.log(f"{at} {principal} result stream ended after {sent} of {table.num_rows} rows")

    def _cancel(self, principal: str, serialized_info: bytes) -> int:
        tickets = [
            parse_command(e.ticket.ticket) for e in flight.FlightInfo.deserialize(serialized_info).endpoints
        ]
        handles = [t.handle for t in tickets if isinstance(t, StatementTicket)]
        return _CANCELLED if self.statements.drop(principal, handles) else _NOT_CANCELLABLE

    def _log_statement(self, principal: str, sql: str, outcome: str, started: float) -> None:
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        one_line = " ".join(sql.split())
        self.log(f"{at} {principal} {outcome} {time.perf_counter() - started:.3f}s {one_line[:200]}")


def _command(descriptor: flight.FlightDescriptor) -> Command:
    if descriptor.descriptor_type != flight.DescriptorType.CMD:
        raise QueryError("a Flight SQL descriptor holds a command, not a path")
    return parse_command(descriptor.command)


def _principal(context: Any) -> str:
    caller = context.get_middleware(CALLER)
    if caller is None:
        raise AuthenticationError("not authenticated", reason="missing")
    return str(caller.principal)


def _pem(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file {path}: {exc.strerror or exc}", file=str(path)) from None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)

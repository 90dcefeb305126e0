"""The Flight SQL messages a client and this server exchange, on the protobuf wire format.

Flight SQL (apache/arrow ``format/FlightSql.proto``) puts its commands, tickets and action bodies in
the opaque bytes of Flight RPCs, each command wrapped in a ``google.protobuf.Any``. Only a handful of
messages are needed, all of flat scalar fields, so they are read and written here directly rather
than through generated code: a message is a sequence of fields, each a varint key
(``field << 3 | wire type``) followed by a varint (type 0), 8 bytes (1), a length-prefixed run of
bytes (2) or 4 bytes (5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lakeplane.errors import QueryError

#: The prefix of every Flight SQL message name in an ``Any``'s type URL.
SQL_PACKAGE = "arrow.flight.protocol.sql."
_TYPE_URL = "type.googleapis.com/"
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5

Scalar = int | bytes | str | bool


class Fields:
    """The fields of one decoded message, by number, in the order they came."""

    def __init__(self, data: bytes) -> None:
        self.values: dict[int, list[int | bytes]] = {}
        at = 0
        while at < len(data):
            key, at = _read_varint(data, at)
            number, wire = key >> 3, key & 7
            value: int | bytes
            if wire == _VARINT:
                value, at = _read_varint(data, at)
            elif wire == _BYTES:
                size, at = _read_varint(data, at)
                value, at = data[at : at + size], at + size
                if len(value) != size:
                    raise _malformed("a field runs past the end of the message")
            elif wire in (_FIXED64, _FIXED32):
                width = 8 if wire == _FIXED64 else 4
                value, at = data[at : at + width], at + width
            else:
                raise _malformed(f"wire type {wire} of field {number}")
            self.values.setdefault(number, []).append(value)

    def string(self, number: int) -> str | None:
        found = self.bytes(number)
        return None if found is None else found.decode()

    def bytes(self, number: int) -> bytes | None:
        found = [v for v in self.values.get(number, []) if isinstance(v, bytes)]
        return found[-1] if found else None

    def strings(self, number: int) -> list[str]:
        return [v.decode() for v in self.values.get(number, []) if isinstance(v, bytes)]

    def flag(self, number: int) -> bool:
        found = [v for v in self.values.get(number, []) if isinstance(v, int)]
        return bool(found and found[-1])

    def unsigned(self, number: int) -> list[int]:
        """A repeated integer field, packed (proto3's default) or not."""
        out: list[int] = []
        for value in self.values.get(number, []):
            if isinstance(value, int):
                out.append(value)
                continue
            at = 0
            while at < len(value):
                item, at = _read_varint(value, at)
                out.append(item)
        return out


def encode(fields: Iterable[tuple[int, Scalar | None]]) -> bytes:
    """A message of ``(field number, value)`` pairs; None values are left out."""
    out = bytearray()
    for number, value in fields:
        if value is None:
            continue
        if isinstance(value, bool | int):
            out += _varint(number << 3 | _VARINT) + _varint(int(value))
        else:
            raw = value.encode() if isinstance(value, str) else value
            out += _varint(number << 3 | _BYTES) + _varint(len(raw)) + raw
    return bytes(out)


def pack_any(message: str, body: bytes) -> bytes:
    """``body`` wrapped in a ``google.protobuf.Any`` naming the Flight SQL ``message``."""
    return encode([(1, _TYPE_URL + SQL_PACKAGE + message), (2, body)])


def unpack_any(data: bytes) -> tuple[str, Fields]:
    """The Flight SQL message name (``CommandStatementQuery``) in an ``Any``, and its fields.

    Raises:
        QueryError: the bytes are not an ``Any`` holding a Flight SQL message.
    """
    wrapper = Fields(data)
    url = wrapper.string(1) or ""
    name = url.rsplit("/", 1)[-1]
    if not name.startswith(SQL_PACKAGE):
        raise _malformed(f"expected a Flight SQL command, got '{url or 'no type'}'")
    return name[len(SQL_PACKAGE) :], Fields(wrapper.bytes(2) or b"")


# -- the commands and what the server answers with -----------------------------------------------
@dataclass(frozen=True)
class StatementQuery:
    query: str


@dataclass(frozen=True)
class PreparedStatementQuery:
    handle: bytes


@dataclass(frozen=True)
class StatementUpdate:
    query: str


@dataclass(frozen=True)
class GetCatalogs:
    pass


@dataclass(frozen=True)
class GetDbSchemas:
    catalog: str | None = None
    schema_pattern: str | None = None


@dataclass(frozen=True)
class GetTables:
    catalog: str | None = None
    schema_pattern: str | None = None
    table_pattern: str | None = None
    table_types: list[str] = field(default_factory=list)
    include_schema: bool = False


@dataclass(frozen=True)
class GetTableTypes:
    pass


@dataclass(frozen=True)
class GetSqlInfo:
    info: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class StatementTicket:
    """``TicketStatementQuery``: where a result waits for the DoGet that reads it."""

    handle: bytes


@dataclass(frozen=True)
class Unsupported:
    """A Flight SQL message this server does not answer (keys, transactions, Substrait, ingest)."""

    name: str


Command = (
    StatementQuery
    | PreparedStatementQuery
    | StatementUpdate
    | GetCatalogs
    | GetDbSchemas
    | GetTables
    | GetTableTypes
    | GetSqlInfo
    | StatementTicket
    | Unsupported
)


def parse_command(data: bytes) -> Command:
    """The command in a FlightDescriptor's ``cmd`` or a Ticket.

    Raises:
        QueryError: the bytes hold no Flight SQL message.
    """
    name, body = unpack_any(data)
    if name == "CommandStatementQuery":
        return StatementQuery(body.string(1) or "")
    if name in ("CommandPreparedStatementQuery", "CommandPreparedStatementUpdate"):
        handle = body.bytes(1) or b""
        return PreparedStatementQuery(handle) if name.endswith("Query") else Unsupported(name)
    if name == "CommandStatementUpdate":
        return StatementUpdate(body.string(1) or "")
    if name == "CommandGetCatalogs":
        return GetCatalogs()
    if name == "CommandGetDbSchemas":
        return GetDbSchemas(body.string(1), body.string(2))
    if name == "CommandGetTables":
        return GetTables(body.string(1), body.string(2), body.string(3), body.strings(4), body.flag(5))
    if name == "CommandGetTableTypes":
        return GetTableTypes()
    if name == "CommandGetSqlInfo":
        return GetSqlInfo(body.unsigned(1))
    if name == "TicketStatementQuery":
        return StatementTicket(body.bytes(1) or b"")
    return Unsupported(name)


def statement_ticket(handle: bytes) -> bytes:
    return pack_any("TicketStatementQuery", encode([(1, handle)]))


def prepared_statement_result(
    handle: bytes, dataset_schema: bytes = b"", parameter_schema: bytes = b""
) -> bytes:
    """``ActionCreatePreparedStatementResult`` in an ``Any`` (schemas as serialized IPC, or empty)."""
    body = encode([(1, handle), (2, dataset_schema or None), (3, parameter_schema or None)])
    return pack_any("ActionCreatePreparedStatementResult", body)


def put_prepared_statement_result(handle: bytes) -> bytes:
    """``DoPutPreparedStatementResult``: the handle to use from now on (here: the same one)."""
    return encode([(1, handle)])


def action_query(body: bytes) -> str:
    """The query of an ``ActionCreatePreparedStatementRequest`` (sent in an ``Any``)."""
    name, fields = unpack_any(body)
    if name != "ActionCreatePreparedStatementRequest":
        raise _malformed(f"expected ActionCreatePreparedStatementRequest, got {name}")
    return fields.string(1) or ""


def action_handle(body: bytes) -> bytes:
    """The handle of an ``ActionClosePreparedStatementRequest`` (sent in an ``Any``)."""
    _, fields = unpack_any(body)
    return fields.bytes(1) or b""


def cancelled_flight_info(body: bytes) -> bytes:
    """The serialized FlightInfo in a ``CancelFlightInfoRequest`` (Flight's own message, no ``Any``)."""
    return Fields(body).bytes(1) or b""


def cancel_result(status: int) -> bytes:
    """``CancelFlightInfoResult``: 1 cancelled, 2 cancelling, 3 not cancellable."""
    return encode([(1, status)])


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise _malformed("a varint runs past the end of the message")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _malformed(what: str) -> QueryError:
    return QueryError(f"not a Flight SQL message: {what}")

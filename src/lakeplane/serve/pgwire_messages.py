"""PostgreSQL protocol v3 messages: the backend messages lakeplane sends, and SQLSTATEs for its errors.

Message layouts: PostgreSQL documentation, "Frontend/Backend Protocol", "Message Formats".
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from lakeplane.errors import (
    AccessDenied,
    AuthenticationError,
    ConfigError,
    EngineError,
    LakeplaneError,
    NamespaceNotFoundError,
    PolicyError,
    QueryError,
    QueryRefused,
    TableNotFoundError,
)
from lakeplane.serve.pgwire_types import PgColumn, encode_value

PROTOCOL_V3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def cstring(text: str) -> bytes:
    return text.encode() + b"\x00"


def read_cstring(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\x00", at)
    return data[at:end].decode(), end + 1


def authentication(code: int) -> bytes:
    return message(b"R", struct.pack("!i", code))


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstring(name) + cstring(value))


def backend_key_data(pid: int, key: int) -> bytes:
    return message(b"K", struct.pack("!ii", pid, key))


def ready_for_query(status: str) -> bytes:
    return message(b"Z", status.encode())


def command_complete(tag: str) -> bytes:
    return message(b"C", cstring(tag))


def parameter_description(oids: Sequence[int]) -> bytes:
    return message(b"t", struct.pack(f"!h{len(oids)}i", len(oids), *oids))


def row_description(columns: Sequence[PgColumn], formats: Sequence[int]) -> bytes:
    payload = bytearray(struct.pack("!h", len(columns)))
    for column, fmt in zip(columns, formats, strict=True):
        payload += cstring(column.name)
        payload += struct.pack("!ihihih", 0, 0, column.oid, column.length, column.modifier, fmt)
    return message(b"T", bytes(payload))


def data_rows(table: pa.Table, columns: Sequence[PgColumn], formats: Sequence[int]) -> bytes:
    """DataRow messages for every row of ``table``."""
    out = bytearray()
    values = [table.column(i).to_pylist() for i in range(table.num_columns)]
    header = struct.pack("!h", len(columns))
    for row in range(table.num_rows):
        payload = bytearray(header)
        for i, column in enumerate(columns):
            value = values[i][row]
            if value is None:
                payload += b"\xff\xff\xff\xff"
            else:
                field = encode_value(value, column.oid, formats[i] == 1)
                payload += struct.pack("!i", len(field)) + field
        out += b"D" + struct.pack("!i", len(payload) + 4) + payload
    return bytes(out)


@dataclass(frozen=True)
class PgError:
    """An ErrorResponse or NoticeResponse."""

    code: str
    message: str
    severity: str = "ERROR"
    detail: str | None = None
    hint: str | None = None

    def encode(self, notice: bool = False) -> bytes:
        fields = [b"S" + cstring(self.severity), b"V" + cstring(self.severity), b"C" + cstring(self.code)]
        fields.append(b"M" + cstring(self.message))
        if self.detail:
            fields.append(b"D" + cstring(self.detail))
        if self.hint:
            fields.append(b"H" + cstring(self.hint))
        return message(b"N" if notice else b"E", b"".join(fields) + b"\x00")


#: SQLSTATEs (PostgreSQL Appendix A) for the refusals that carry no more specific one.
QUERY_CANCELED = "57014"
ADMIN_SHUTDOWN = "57P01"
INVALID_PASSWORD = "28P01"
PROTOCOL_VIOLATION = "08P01"
FEATURE_NOT_SUPPORTED = "0A000"
READ_ONLY = "25006"
IN_FAILED_TRANSACTION = "25P02"


def pg_error(exc: BaseException) -> PgError:
    """The ErrorResponse for an exception of a statement (never a traceback)."""
    text = str(exc)
    if isinstance(exc, AccessDenied):
        return PgError("42501", text)
    if isinstance(exc, TableNotFoundError):
        return PgError("42P01", text)
    if isinstance(exc, NamespaceNotFoundError):
        return PgError("3F000", text)
    if isinstance(exc, AuthenticationError):
        return PgError(INVALID_PASSWORD, text, severity="FATAL")
    if isinstance(exc, QueryError):
        if exc.statement is not None or exc.statements is not None:
            return PgError(READ_ONLY if exc.statement else "42601", text)
        if "does not parse" in text:
            return PgError("42601", text)
        if exc.column is not None:
            return PgError("42703", text)
        if exc.table is not None:
            return PgError("42P01", text)
        return PgError("42000", text)
    if isinstance(exc, QueryRefused):
        # a workgroup's refusal: a per-query or daily cap (54000), a full queue or its timeout (53000)
        return PgError("53000" if exc.reason.startswith("queue") else "54000", text)
    if isinstance(exc, EngineError):
        if "Binder Error" in text and "not found" in text:
            return PgError("42703" if "column" in text.lower() else "42P01", text)
        if "Parser Error" in text:
            return PgError("42601", text)
        if exc.out_of_memory:
            return PgError("53200", text)
        return PgError("XX000" if not exc.retryable else "58000", text)
    if isinstance(exc, PolicyError | ConfigError):
        return PgError("F0000", text)
    if isinstance(exc, LakeplaneError):
        return PgError("XX000", text)
    return PgError("XX000", f"internal error: {type(exc).__name__} (see the server log)")

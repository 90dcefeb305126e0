"""A governed demo lake with a token per principal, and the PostgreSQL listener over it in-process."""

from __future__ import annotations

import datetime as dt
import socket
import struct
from collections.abc import Iterator

import pytest

from lakeplane.governance.tokens import access_tokens
from lakeplane.lake import Lake
from lakeplane.serve.pgwire import PgWireServer
from tests.conftest import governed_demo

DAY = dt.date(2026, 11, 1)
PRINCIPALS = ("ana", "eve", "ian", "role:pipeline")


@pytest.fixture(scope="session")
def pg_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The governed demo lake with one small telco and ad-tech day."""
    root = tmp_path_factory.mktemp("pgwire")
    return governed_demo(root, 300, 200, DAY)


@pytest.fixture(scope="session")
def pg_secrets(pg_lake: Lake) -> dict[str, str]:
    tokens = access_tokens(pg_lake.governance)
    return {p: tokens.create(p, label=f"pg-{p}").secret for p in PRINCIPALS}


@pytest.fixture(scope="session")
def pg_server(pg_lake: Lake) -> Iterator[PgWireServer]:
    lines: list[str] = []
    with PgWireServer(pg_lake, log=lines.append) as running:
        yield running
    assert not [line for line in lines if "Traceback" in line], lines


def dsn(server: PgWireServer, user: str, password: str, **extra: str) -> str:
    options = {"host": "127.0.0.1", "port": str(server.port), "user": user, "password": password}
    options |= {"dbname": "lake", "sslmode": "disable"} | extra
    return " ".join(f"{k}={v}" for k, v in options.items())


class RawClient:
    """A minimal protocol v3 client, to send messages exactly as written and read every reply."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        params = b"user\x00" + user.encode() + b"\x00database\x00lake\x00\x00"
        self.sock.sendall(struct.pack("!ii", len(params) + 8, 196608) + params)
        kind, _ = self.read()
        assert kind == b"R"
        self.send(b"p", password.encode() + b"\x00")
        self.until(b"Z")

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.sock.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def read(self) -> tuple[bytes, bytes]:
        kind = self._exact(1)
        (length,) = struct.unpack("!i", self._exact(4))
        return kind, self._exact(length - 4)

    def until(self, last: bytes) -> list[tuple[bytes, bytes]]:
        replies = []
        while True:
            reply = self.read()
            replies.append(reply)
            if reply[0] == last:
                return replies

    def close(self) -> None:
        self.send(b"X")
        self.sock.close()

"""The PostgreSQL listener at the protocol level: portals and row limits, cancelling (CancelRequest, a
client hanging up), TLS, and the ``lakeplane serve`` process stopping on SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from lakeplane.serve.pgwire import PgWireServer, tls_context
from tests.serve.conftest import RawClient, dsn

#: Minutes of work for DuckDB: four copies of the impressions table, joined.
SLOW = (
    "SELECT count(*) FROM adtech.processed.impressions a, adtech.processed.impressions b, "
    "adtech.processed.impressions c, adtech.processed.impressions d "
    "WHERE a.bid_price + b.bid_price > c.bid_price * d.win_price"
)


def statement_threads(pid: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"pg-{pid}-statement"]


def cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def test_execute_with_a_row_limit_suspends_the_portal(pg_server, pg_secrets):
    client = RawClient(pg_server.port, "ana", pg_secrets["ana"])
    try:
        sql = "SELECT event_id FROM adtech.processed.impressions WHERE bid_price > $1 ORDER BY event_id"
        client.send(b"P", cstr("s1") + cstr(sql) + struct.pack("!hi", 1, 701))
        client.send(b"D", b"S" + cstr("s1"))
        client.send(
            b"B",
            cstr("p1")
            + cstr("s1")
            + struct.pack("!hhhih", 1, 1, 1, 8, 1)
            + struct.pack("!d", 0.0)
            + struct.pack("!hh", 1, 0),
        )
        client.send(b"E", cstr("p1") + struct.pack("!i", 3))
        client.send(b"E", cstr("p1") + struct.pack("!i", 0))
        client.send(b"S")
        replies = client.until(b"Z")
        kinds = [k for k, _ in replies]
        assert kinds[:4] == [b"1", b"t", b"T", b"2"]
        assert kinds[4:8] == [b"D", b"D", b"D", b"s"]  # three rows, then PortalSuspended
        assert kinds[-2:] == [b"C", b"Z"]
        rows = kinds.count(b"D")
        assert replies[-2][1] == cstr(f"SELECT {rows}") and rows > 3
        client.send(b"Q", cstr(""))  # an empty query
        assert [k for k, _ in client.until(b"Z")] == [b"I", b"Z"]
        client.send(b"P", cstr("") + cstr("SELECT nope FROM nowhere") + struct.pack("!h", 0))
        client.send(b"B", cstr("") + cstr("") + struct.pack("!hhh", 0, 0, 0))
        client.send(b"E", cstr("") + struct.pack("!i", 0))
        client.send(b"E", cstr("") + struct.pack("!i", 0))  # skipped after the error, until Sync
        client.send(b"S")
        replies = client.until(b"Z")
        assert [k for k, _ in replies] == [b"1", b"2", b"E", b"Z"]
        assert b"42P01" in replies[2][1]
    finally:
        client.close()


def test_ssl_and_gssenc_requests_are_declined_without_tls(pg_server):
    for code in (80877103, 80877104):
        with socket.create_connection(("127.0.0.1", pg_server.port), timeout=10) as sock:
            sock.sendall(struct.pack("!ii", 8, code))
            assert sock.recv(1) == b"N"


def test_cancel_request_stops_the_running_statement(pg_server, pg_secrets):
    with psycopg.connect(dsn(pg_server, "ana", pg_secrets["ana"]), autocommit=True) as con:
        started = time.monotonic()
        threading.Timer(1.0, con.cancel_safe).start()  # a CancelRequest with the backend key
        with pytest.raises(psycopg.errors.QueryCanceled, match="user request"):
            con.execute(SLOW)
        assert time.monotonic() - started < 10
        assert con.execute("SELECT 1").fetchone() == (1,)


def test_a_cancel_request_with_the_wrong_key_cancels_nothing(pg_server, pg_secrets):
    with psycopg.connect(dsn(pg_server, "ana", pg_secrets["ana"]), autocommit=True) as con:
        pid = con.info.backend_pid

        def wrong_key() -> None:
            time.sleep(0.3)
            with socket.create_connection(("127.0.0.1", pg_server.port)) as sock:
                sock.sendall(struct.pack("!iiii", 16, 80877102, pid, 12345))
                assert sock.recv(1) == b""  # answered by closing, as PostgreSQL does

        sender = threading.Thread(target=wrong_key)
        sender.start()
        medium = "SELECT count(*) FROM adtech.processed.impressions a, adtech.processed.impressions b, "
        medium += "adtech.processed.impressions c WHERE a.bid_price + b.bid_price > c.win_price"
        counted = con.execute(medium).fetchone()
        assert counted is not None and counted[0] > 0
        sender.join()


def test_a_client_hanging_up_mid_query_stops_it(pg_server, pg_secrets, pg_lake):
    con = psycopg.connect(dsn(pg_server, "ana", pg_secrets["ana"]), autocommit=True)
    pid = con.info.backend_pid
    failed: list[BaseException] = []

    def run() -> None:
        try:
            con.execute(SLOW + " AND a.event_id <> 'hang-up'")
        except psycopg.Error as exc:
            failed.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 10
    while not statement_threads(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert statement_threads(pid), "the statement never started"
    time.sleep(0.5)
    os.dup2(os.open(os.devnull, os.O_RDWR), con.pgconn.socket)  # the client's socket, gone
    stopped = time.monotonic()
    while statement_threads(pid) and time.monotonic() - stopped < 10:
        time.sleep(0.05)
    assert not statement_threads(pid), "DuckDB kept running after the client hung up"
    assert time.monotonic() - stopped < 5
    assert pid not in [c.pid for c in pg_server.connections()]
    runner.join(timeout=10)
    records = pg_lake.governance.audit_log().search(principal="ana", limit=50)
    assert not any("hang-up" in r.sql and r.decision == "allowed" for r in records)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "server.crt", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_tls_with_a_self_signed_certificate(pg_lake, pg_secrets, tls_files):
    cert, key = tls_files
    with PgWireServer(pg_lake, ssl_context=tls_context(str(cert), str(key))) as server:
        options = {"sslmode": "verify-full", "sslrootcert": str(cert)}
        with psycopg.connect(dsn(server, "eve", pg_secrets["eve"], **options)) as con:
            assert con.pgconn.ssl_in_use
            counted = con.execute("SELECT count(*) FROM telco.processed.subscribers").fetchone()
            assert counted is not None and counted[0] > 0
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(dsn(server, "eve", pg_secrets["ana"], **options))
        psycopg.connect(dsn(server, "eve", pg_secrets["eve"])).close()  # TLS offered, not required
    with PgWireServer(pg_lake, ssl_context=tls_context(str(cert), str(key)), require_tls=True) as server:
        with pytest.raises(psycopg.OperationalError, match="requires TLS"):
            psycopg.connect(dsn(server, "eve", pg_secrets["eve"]))
        psycopg.connect(dsn(server, "eve", pg_secrets["eve"], sslmode="require")).close()


@pytest.mark.slow
def test_serve_command_finishes_statements_in_flight_on_sigterm(pg_lake, pg_secrets):
    command = [sys.executable, "-m", "lakeplane.cli.main", "--lake", str(pg_lake.project_dir)]
    process = subprocess.Popen(
        [*command, "--output", "json", "serve", "--pg-port", "0", "--flight-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )
    try:
        assert process.stdout is not None
        text = process.stdout.readline()
        while not text.rstrip().endswith("}") or text.count("{") != text.count("}"):
            text += process.stdout.readline()
        started = json.loads(text)
        assert started["host"] == "127.0.0.1" and started["flight_port"] is None
        assert "flight port 0" in started["flight"]
        params = {
            "host": "127.0.0.1",
            "port": started["pg_port"],
            "user": "eve",
            "password": pg_secrets["eve"],
        }
        idle = psycopg.connect(**params, dbname="lake", sslmode="disable", autocommit=True)
        busy = psycopg.connect(**params, dbname="lake", sslmode="disable", autocommit=True)
        answer: list[object] = []

        def run() -> None:  # a few seconds of work
            slow = (
                "SELECT count(*) FROM telco.processed.cdr a, telco.processed.cdr b, telco.processed.cdr c, "
                "(SELECT name FROM telco.processed.subscribers LIMIT 20) d "
                "WHERE a.duration_s + b.duration_s > c.duration_s + length(d.name)"
            )
            answer.append(busy.execute(slow).fetchone())
            answer.append(time.monotonic())

        runner = threading.Thread(target=run)
        runner.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        runner.join(timeout=60)
        assert answer and answer[0][0] > 0  # type: ignore[index]
        assert answer[1] > signalled  # type: ignore[operator]  # it was in flight, and finished
        assert process.wait(timeout=30) == 0
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")  # told the server shut down
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(**params, dbname="lake", sslmode="disable", connect_timeout=2)
    finally:
        if process.poll() is None:
            process.kill()

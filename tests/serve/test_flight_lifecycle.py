"""The Flight SQL service's life: shutting down with a stream open, a client that goes away, TLS with
a self-signed certificate, and what stops it from starting."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
import time
from pathlib import Path

import adbc_driver_manager
import pyarrow.flight as flight
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lakeplane.demo.run import build_project
from lakeplane.errors import ConfigError
from lakeplane.lake import Lake
from lakeplane.query.history import QueryRecord
from lakeplane.serve.flight import FlightSqlService
from lakeplane.serve.flight_protocol import encode, pack_any
from tests.serve import flight_fixtures
from tests.serve.flight_fixtures import (
    Running,
    connect,
    fetch,
    raw_client,
    statement,
)

# the shared fixtures, by the names the tests take them
lake = flight_fixtures.lake
secrets_of = flight_fixtures.secrets_of
server = flight_fixtures.server
tokens = flight_fixtures.tokens


def test_shutdown_ends_an_open_stream(lake, secrets_of):
    running = Running(FlightSqlService(lake, "127.0.0.1", 0, log=lambda _: None, batch_rows=1))
    client, options = raw_client(running.service, "ana", secrets_of["ana"])
    with client:
        info = client.get_flight_info(statement("SELECT * FROM cdr"), options)
        reader = client.do_get(info.endpoints[0].ticket, options)
        first = reader.read_chunk()
        assert first.data.num_rows == 1
        assert running.stop() < 10
        read = 1
        with pytest.raises(flight.FlightError):
            while True:
                read += reader.read_chunk().data.num_rows
        assert read < 400  # the stream ended early
    with pytest.raises(flight.FlightError):
        flight.connect(running.service.uri).authenticate_basic_token("ana", secrets_of["ana"])


CLIENT = """
import sys, pyarrow.flight as flight
client = flight.connect(sys.argv[1])
options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("ana", sys.argv[2])])
info = client.get_flight_info(flight.FlightDescriptor.for_command(bytes.fromhex(sys.argv[3])), options)
reader = client.do_get(info.endpoints[0].ticket, options)
print(reader.read_chunk().data.num_rows, flush=True)
sys.stdin.read()
"""
#: 160,000 rows: far more than gRPC buffers when the client stops reading.
LARGE = "SELECT a.call_id, b.msisdn FROM cdr a CROSS JOIN cdr b"


def test_a_client_that_goes_away_ends_its_stream(lake, secrets_of):
    lines: list[str] = []
    running = Running(FlightSqlService(lake, "127.0.0.1", 0, log=lines.append, batch_rows=100))
    try:
        command = pack_any("CommandStatementQuery", encode([(1, LARGE)])).hex()
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, running.service.uri, secrets_of["ana"], command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdout is not None and client.stdout.readline().strip() == "100"
        client.kill()
        client.wait()
        deadline = time.monotonic() + 10
        while not any("result stream ended" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        (ended,) = [line for line in lines if "result stream ended" in line]
        assert ended.split()[1] == "ana" and ended.endswith("of 160000 rows")
        assert int(ended.split("after ")[1].split()[0]) < 160_000
    finally:
        assert running.stop() < 10


def test_shutdown_does_not_wait_forever_on_a_client_that_stopped_reading(lake, secrets_of):
    running = Running(FlightSqlService(lake, "127.0.0.1", 0, log=lambda _: None, batch_rows=100))
    client, options = raw_client(running.service, "ana", secrets_of["ana"])
    info = client.get_flight_info(statement(LARGE), options)
    reader = client.do_get(info.endpoints[0].ticket, options)
    reader.read_chunk()
    client.close()  # the stream stays open, unread: the server's writes wait on flow control
    time.sleep(2)
    started = time.perf_counter()
    assert running.service.shutdown(grace=1) is False
    assert time.perf_counter() - started < 5
    reader.cancel()  # now the call ends, and the server with it
    assert running.stop() < 10


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "server.pem", folder / "server.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, private


def test_tls_with_a_certificate_and_key(lake, secrets_of, tmp_path):
    cert, key = self_signed(tmp_path)
    running = Running(FlightSqlService(lake, "127.0.0.1", 0, tls=(cert, key), log=lambda _: None))
    try:
        assert running.service.uri.startswith("grpc+tls://")
        trusted = {"adbc.flight.sql.client_option.tls_root_certs": cert.read_text()}
        with connect(running.service, "ana", secrets_of["ana"], **trusted) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT count(*) AS n FROM cell_daily")
            expected = lake.query("SELECT count(*) AS n FROM cell_daily", principal="ana")
            assert cursor.fetchall() == [(expected["n"][0].as_py(),)]
        # a client that does not trust the certificate, and one speaking plain gRPC, get nowhere
        with pytest.raises(adbc_driver_manager.Error):
            fetch(running.service, "ana", secrets_of["ana"], "SELECT 1 AS one")
        plain = flight.connect(f"grpc://127.0.0.1:{running.service.port}")
        with pytest.raises(flight.FlightError):
            plain.authenticate_basic_token("ana", secrets_of["ana"], flight.FlightCallOptions(timeout=5))
    finally:
        running.stop()


def test_ipv6_loopback(lake, secrets_of):
    running = Running(FlightSqlService(lake, "::1", 0, log=lambda _: None))
    try:
        assert running.service.uri == f"grpc://[::1]:{running.service.port}"
        assert fetch(running.service, "ian", secrets_of["ian"], "SELECT 1 AS one").to_pylist() == [{"one": 1}]
    finally:
        running.stop()


def test_an_ungoverned_lake_or_a_taken_port_is_a_config_error(server, lake, tmp_path):
    with pytest.raises(ConfigError, match="cannot serve Flight SQL"):
        FlightSqlService(lake, "127.0.0.1", server.port)
    with pytest.raises(ConfigError, match="cannot read TLS file"):
        FlightSqlService(lake, "127.0.0.1", 0, tls=(tmp_path / "none.pem", tmp_path / "none.key"))
    bare = build_project(tmp_path / "bare")
    (bare.project_dir / "policy.yaml").unlink()
    with pytest.raises(ConfigError, match="governance is off"):
        FlightSqlService(Lake(bare.project_dir), "127.0.0.1", 0)


def test_a_client_giving_up_interrupts_its_running_statement(
    server: FlightSqlService, lake: Lake, secrets_of
) -> None:
    """A client whose call ends (here its deadline) stops the statement it started: the engine is
    interrupted, the query is recorded as failed, and no row of it is ever allowed out."""
    slow = "SELECT count(*) AS n FROM cdr a, cdr b, cdr c, cdr d, cdr e -- flight: given up"
    client, options = raw_client(server, "ana", secrets_of["ana"])
    deadline = flight.FlightCallOptions(headers=options.headers, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(flight.FlightError):
        client.get_flight_info(statement(slow), deadline)
    history = lake.queries.admission.history
    ended: list[QueryRecord] = []
    while time.monotonic() - started < 15 and not ended:
        ended = [
            r for r in history.list(principal="ana", limit=20) if r.sql == slow and r.outcome != "running"
        ]
        time.sleep(0.1)
    assert ended and ended[0].outcome == "failed" and "nterrupt" in (ended[0].reason or ""), ended
    assert time.monotonic() - started < 15
    allowed = lake.governance.audit_log().search(principal="ana", decision="allowed", limit=50)
    assert not [r for r in allowed if "given up" in (r.sql or "")]

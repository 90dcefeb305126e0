"""Real backends for integration tests: an S3 endpoint (moto server) and a PostgreSQL cluster.

Both are started once per test run on loopback and free ports, and always stopped at the end. No
environment variable is set: credentials and endpoints reach lakeplane through config overrides.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lakeplane.demo.generator import DayDrop, generate_day
from tests.moto_server import moto_server

S3_KEY = "testing"
S3_REGION = "us-east-1"
STARTUP_TIMEOUT = 60.0
DAY1 = dt.date(2026, 11, 1)
DAY2 = dt.date(2026, 11, 2)
IMPRESSIONS_PER_DAY = 3_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- S3 ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Endpoint:
    """A running S3-compatible endpoint and the dummy credentials it accepts."""

    url: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=S3_REGION,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_KEY,
        )

    def storage_overrides(self, root: str) -> dict[str, Any]:
        """Config overrides putting the lake at ``root`` (``s3://bucket/prefix``) on this endpoint."""
        return {
            "storage": {
                "root": root,
                "s3": {
                    "endpoint": self.url,
                    "region": S3_REGION,
                    "access_key_id": S3_KEY,
                    "secret_access_key": S3_KEY,
                },
            }
        }

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` below ``prefix``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A moto S3 server on loopback, with the bucket ``lakeplane-tests``; stopped at the end."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        endpoint = S3Endpoint(url)
        endpoint.client().create_bucket(Bucket="lakeplane-tests")
        yield endpoint


@pytest.fixture
def s3_bucket(moto_s3: S3Endpoint, request: pytest.FixtureRequest) -> str:
    """A fresh, empty bucket for one test (named after it, so listings see only its objects)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    bucket = f"t-{slug}"[:63].rstrip("-")
    moto_s3.client().create_bucket(Bucket=bucket)
    return bucket


# -- PostgreSQL ----------------------------------------------------------------------------------
def _postgres_bin_dir() -> Path:
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if versions:
        return Path(versions[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin "
        "or on PATH; install them with `make system-deps` (apt-get install postgresql)"
    )


def _as_server_user(command: list[str]) -> list[str]:
    """``command`` run as ``postgres`` when we are root (the server refuses to run as root)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(map(_shell_quote, command))]


def _shell_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def _run(command: list[str], cwd: Path, what: str, log_path: Path | None = None) -> None:
    done = subprocess.run(
        _as_server_user(command),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        log = log_path.read_text() if log_path and log_path.exists() else ""
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A private PostgreSQL cluster on 127.0.0.1 with trust auth; yields the URI of database ``lakeplane``."""
    bin_dir = _postgres_bin_dir()
    # Not under pytest's tmp dir: that one is private to this user, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="lakeplane-pg-"))
    data, sockets, log_path = base / "data", base / "sockets", base / "server.log"
    sockets.mkdir()
    log_path.touch()
    if os.geteuid() == 0:
        for path in (base, sockets, log_path):
            shutil.chown(path, "postgres", "postgres")
    port = free_port()
    started = False
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            base,
            "initdb",
        )
        # -F: no fsync, the cluster is thrown away; listen on loopback TCP and a private socket dir.
        options = f"-p {port} -h 127.0.0.1 -k {sockets} -F"
        started = True
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log_path),
                "-o",
                options,
                "-w",
                "-t",
                str(int(STARTUP_TIMEOUT)),
                "start",
            ],
            base,
            "pg_ctl start",
            log_path,
        )
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _create_database(admin, "lakeplane")
        yield f"postgresql://postgres@127.0.0.1:{port}/lakeplane"
    finally:
        if started:
            with contextlib.suppress(Exception):
                subprocess.run(
                    _as_server_user(
                        [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                    ),
                    cwd=base,
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
        shutil.rmtree(base, ignore_errors=True)


def _create_database(uri: str, name: str) -> None:
    import psycopg

    # CREATE DATABASE cannot run in a transaction
    with psycopg.connect(uri, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture
def pg_catalog_uri(postgres_server: str, request: pytest.FixtureRequest) -> str:
    """A fresh database on the session's server for one test, so catalogs never see another's tables."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:50]
    _create_database(postgres_server, slug)
    return postgres_server.rsplit("/", 1)[0] + f"/{slug}"


# -- demo data -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def backend_drops(tmp_path_factory: pytest.TempPathFactory) -> dict[dt.date, DayDrop]:
    """Two small days of demo partner files, generated once for the backend tests."""
    out = tmp_path_factory.mktemp("backend-drops")
    return {day: generate_day(out, day, IMPRESSIONS_PER_DAY) for day in (DAY1, DAY2)}

"""A moto server on loopback (every AWS service moto emulates, on one port), for the S3 lake tests
and the AWS target tests.

``MOTO_PORT`` is set to the server's own port: moto's Step Functions interpreter calls the services
a state machine's tasks name through that port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "moto_server"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
    return [*base, "-H", "127.0.0.1", "-p", str(port)]


@contextmanager
def moto_server(log_path: Path) -> Iterator[str]:
    """Start ``moto_server`` on a free loopback port, yield its URL, and stop it at the end."""
    port = free_port()
    env = {**os.environ, "MOTO_PORT": str(port)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _moto_command(port), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http(url, process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_http(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto_server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except OSError:
            time.sleep(0.1)
    pytest.fail(
        f"moto_server did not answer on {url} within {STARTUP_TIMEOUT:.0f} s:\n{log_path.read_text()}"
    )

"""Serving the console with uvicorn, in the foreground or on a thread (tests, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from lakeplane.console.app import create_app

if TYPE_CHECKING:
    from lakeplane.config_console import ConsoleConfig
    from lakeplane.lake import Lake


class ConsoleServer:
    """The console of ``lake`` on ``config.host:config.port`` (port 0: a free one, see :attr:`port`)."""

    def __init__(self, lake: Lake, config: ConsoleConfig) -> None:
        self.app = create_app(lake, config)
        self.sock = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((config.host, config.port))
        self.host = config.host
        self.port = int(self.sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve(self, ready: Callable[[ConsoleServer], None] | None = None) -> None:
        """Serve until SIGINT/SIGTERM (uvicorn handles them), calling ``ready`` once listening."""
        if ready is not None:
            threading.Thread(target=self._when_started, args=(ready,), daemon=True).start()
        self.server.run(sockets=[self.sock])

    def start(self) -> ConsoleServer:
        """Serve on a thread; returns once the server accepts connections."""
        self.server.config.install_signal_handlers = False  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _when_started(self, ready: Callable[[ConsoleServer], None]) -> None:
        while not self.server.started:
            time.sleep(0.02)
        ready(self)

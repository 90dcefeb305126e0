"""Serving the console with uvicorn on a thread: in the foreground until a signal (the CLI), or in
the background (tests)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from lakeplane.console.app import create_app
from lakeplane.errors import ConfigError

if TYPE_CHECKING:
    from lakeplane.config_console import ConsoleConfig
    from lakeplane.lake import Lake


class ConsoleServer:
    """The console of ``lake`` on ``config.host:config.port`` (port 0: a free one, see :attr:`port`).

    Raises:
        ConfigError: the lake has no policy, or the address cannot be listened on (a port in use).
    """

    def __init__(self, lake: Lake, config: ConsoleConfig) -> None:
        self.app = create_app(lake, config)
        self.sock = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((config.host, config.port))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(
                f"console: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
                key="console.port",
            ) from None
        self.host = config.host
        self.port = int(self.sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve(self, ready: Callable[[ConsoleServer], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, calling ``ready`` once listening; returns after a clean stop."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            if ready is not None:
                ready(self)
            while not stop.wait(0.2) and self._thread is not None and self._thread.is_alive():
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def start(self) -> ConsoleServer:
        """Serve on a thread (where uvicorn leaves signals alone); returns once it accepts connections."""
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

"""``lakeplane serve``: one foreground process with the PostgreSQL listener and, when the Flight SQL
service is installed, the Arrow Flight SQL listener; both stop gracefully on SIGTERM or SIGINT."""

from __future__ import annotations

import importlib
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lakeplane.config import ServeConfig
from lakeplane.errors import ConfigError
from lakeplane.serve.pgwire import PgWireServer, tls_context

if TYPE_CHECKING:
    from lakeplane.lake import Lake


class FlightListener(Protocol):
    port: int

    def serve(self) -> None: ...

    def shutdown(self) -> None: ...


@dataclass(frozen=True)
class Listening:
    """Where the service listens (``flight_port`` None: no Flight SQL listener, and why)."""

    host: str
    pg_port: int
    flight_port: int | None
    tls: bool
    flight_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pg_port": self.pg_port,
            "flight_port": self.flight_port,
            "tls": self.tls,
            "flight": self.flight_note or "listening",
        }


def flight_service() -> type | None:
    """The Flight SQL service class, when it is installed."""
    try:
        module = importlib.import_module("lakeplane.serve.flight")
    except ImportError:
        return None
    found = getattr(module, "FlightSqlService", None)
    return found if isinstance(found, type) else None


class QueryService:
    """The listeners of one ``lakeplane serve`` process over one governed lake.

    Raises:
        ConfigError: the lake has no policy, or the TLS certificate or key cannot be read.
    """

    def __init__(self, lake: Lake, config: ServeConfig, log: Callable[[str], None] | None = None) -> None:
        lake.governance.require_enabled()
        self.config = config
        tls = None
        if bool(config.tls_cert) != bool(config.tls_key):
            raise ConfigError("serve: give both tls_cert and tls_key (or neither)", key="serve.tls_cert")
        if config.tls_cert and config.tls_key:
            cert, key = (lake.project_dir / config.tls_cert, lake.project_dir / config.tls_key)
            tls = (str(cert), str(key))
            try:
                context = tls_context(*tls)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"serve: cannot load TLS certificate {cert} and key {key}: {exc}",
                    key="serve.tls_cert",
                    file=str(cert),
                ) from None
        else:
            context = None
        # passwords (tokens) never cross a network in clear text once a certificate is given
        remote = config.host not in ("127.0.0.1", "localhost", "::1")
        self.pg = PgWireServer(
            lake, config.host, config.pg_port, ssl_context=context, require_tls=remote, log=log
        )
        self.flight: FlightListener | None = None
        note = None
        service = flight_service()
        if config.flight_port == 0:
            note = "off (flight port 0)"
        elif service is None:
            note = "off (lakeplane.serve.flight is not installed)"
        else:
            self.flight = service(lake, config.host, config.flight_port, tls=tls)
        self.listening = Listening(
            config.host, self.pg.port, self.flight.port if self.flight else None, context is not None, note
        )
        self._threads: list[threading.Thread] = []

    def start(self) -> Listening:
        self._threads.append(threading.Thread(target=self.pg.serve, name="pgwire", daemon=True))
        if self.flight is not None:
            self._threads.append(threading.Thread(target=self.flight.serve, name="flight", daemon=True))
        for thread in self._threads:
            thread.start()
        return self.listening

    def shutdown(self) -> None:
        """Stop accepting on both; let statements in flight finish within the grace period."""
        stoppers = [threading.Thread(target=self.pg.shutdown, args=(self.config.grace_s,))]
        if self.flight is not None:
            stoppers.append(threading.Thread(target=self.flight.shutdown))
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()


def serve_until_signalled(service: QueryService, ready: Callable[[Listening], None]) -> None:
    """Run ``service`` in the foreground until SIGTERM or SIGINT, then shut it down gracefully."""
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        ready(service.start())
        while not stop.wait(0.2):
            pass
    finally:
        service.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

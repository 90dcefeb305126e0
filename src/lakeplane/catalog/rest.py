"""The Iceberg REST catalog protocol over the lake's catalog (``lakeplane catalog serve``).

Served with the standard library's threading HTTP server, so it needs no dependency. Every request
but the OAuth2 token exchange carries ``Authorization: Bearer <token>``, a token made with
``lakeplane token create``; what the token's principal may list and load is decided by
:mod:`lakeplane.catalog.served`.

Endpoints (spec: apache/iceberg ``open-api/rest-catalog-open-api.yaml``):

- ``GET /v1/config``
- ``GET /v1/namespaces[?parent=]``, ``GET|HEAD /v1/namespaces/{namespace}``
- ``GET /v1/namespaces/{namespace}/tables``, ``GET|HEAD /v1/namespaces/{namespace}/tables/{table}``
- ``GET /v1/namespaces/{namespace}/views`` (always empty), ``HEAD .../views/{view}`` (404)
- ``POST /v1/oauth/tokens``: the client-credentials grant; ``client_id`` names the token's principal,
  ``client_secret`` is the token, and the access token handed back is that same token.

Writes (creating, committing, renaming, dropping) answer 403; other methods 405. With
``allow_write`` (``--allow-write``) table commits are taken:
``POST /v1/namespaces/{namespace}/tables/{table}``, governed by :meth:`ServedCatalog.commit`; creating,
renaming and dropping tables or namespaces still answer 403. Errors follow the protocol's ErrorModel:
``{"error": {"message", "type", "code"}}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

from pydantic import ValidationError
from pyiceberg.table import CommitTableRequest

from lakeplane.catalog.catalog import LakeCatalog
from lakeplane.catalog.served import Namespace, ServedCatalog
from lakeplane.config import StorageConfig
from lakeplane.errors import (
    AccessDenied,
    AuthenticationError,
    CommitConflictError,
    ConfigError,
    LakeplaneError,
    NamespaceNotFoundError,
    PolicyError,
    ReadOnlyError,
    TableNotFoundError,
)
from lakeplane.governance.plane import Governance
from lakeplane.governance.policy import Principal
from lakeplane.governance.tokens import AccessTokens, access_tokens

#: The separator of a multi-level namespace in a URL path or ``parent`` (the spec's unit separator).
NAMESPACE_SEPARATOR = "\x1f"

_ENDPOINTS = [
    "GET /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "GET /v1/{prefix}/namespaces/{namespace}/views",
]
_COMMIT_ENDPOINT = "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}"
_ROUTES = [
    ("namespaces", re.compile(r"^/v1/namespaces$")),
    ("namespace", re.compile(r"^/v1/namespaces/(?P<namespace>[^/]+)$")),
    ("tables", re.compile(r"^/v1/namespaces/(?P<namespace>[^/]+)/tables$")),
    ("table", re.compile(r"^/v1/namespaces/(?P<namespace>[^/]+)/tables/(?P<name>[^/]+)$")),
    ("views", re.compile(r"^/v1/namespaces/(?P<namespace>[^/]+)/views$")),
    ("view", re.compile(r"^/v1/namespaces/(?P<namespace>[^/]+)/views/(?P<name>[^/]+)$")),
    ("config", re.compile(r"^/v1/config$")),
    ("oauth", re.compile(r"^/v1/oauth/tokens$")),
    ("catalog", re.compile(r"^/v1/(?:tables/rename|transactions/commit|namespaces/[^/]+/[^/]+(?:/.*)?)$")),
]
_STATUS = {
    AuthenticationError: (HTTPStatus.UNAUTHORIZED, "NotAuthorizedException"),
    AccessDenied: (HTTPStatus.FORBIDDEN, "ForbiddenException"),
    ReadOnlyError: (HTTPStatus.FORBIDDEN, "ForbiddenException"),
    TableNotFoundError: (HTTPStatus.NOT_FOUND, "NoSuchTableException"),
    NamespaceNotFoundError: (HTTPStatus.NOT_FOUND, "NoSuchNamespaceException"),
    CommitConflictError: (HTTPStatus.CONFLICT, "CommitFailedException"),
}


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, JSON body (None for none) and extra headers."""

    status: int
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


def error_reply(status: int, kind: str, message: str) -> Reply:
    """The protocol's ErrorModel."""
    headers = (("WWW-Authenticate", 'Bearer realm="lakeplane"'),) if status == HTTPStatus.UNAUTHORIZED else ()
    return Reply(status, {"error": {"message": message, "type": kind, "code": int(status)}}, headers)


class RestCatalogApp:
    """Answers one request: authenticates it, routes it, and turns lakeplane's errors into ErrorModels.

    Args:
        served: the lake's catalog as principals see it.
        tokens: the lake's access tokens.
        allow_write: take table commits (``POST .../tables/{table}``), as
            :meth:`ServedCatalog.commit` governs them; everything else stays read-only.
    """

    def __init__(self, served: ServedCatalog, tokens: AccessTokens, allow_write: bool = False) -> None:
        self.served = served
        self.tokens = tokens
        self.allow_write = allow_write

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[Reply, str]:
        """The reply to one request, and who asked (``-`` when nobody was authenticated)."""
        url = urlsplit(target)
        route, params = _route(url.path)
        try:
            if route == "oauth":
                return self._oauth(method, headers.get("authorization", ""), body), "-"
            who = self._authenticate(headers.get("authorization", ""))
        except AuthenticationError as exc:
            return error_reply(HTTPStatus.UNAUTHORIZED, "NotAuthorizedException", str(exc)), "-"
        try:
            if self.allow_write and method == "POST" and route == "table":
                return self._commit(params, body, who), who.name
            return self._answer(method, route, params, parse_qs(url.query), who), who.name
        except LakeplaneError as exc:
            status, kind = next(
                (s for cls, s in _STATUS.items() if isinstance(exc, cls)),
                (HTTPStatus.INTERNAL_SERVER_ERROR, "ServiceFailureException"),
            )
            return error_reply(status, kind, str(exc)), who.name

    def _authenticate(self, authorization: str) -> Principal:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise AuthenticationError(
                "this catalog needs 'Authorization: Bearer <token>' (lakeplane token create PRINCIPAL)",
                reason="missing",
            )
        try:
            return self.served.principal(self.tokens.authenticate(secret.strip()))
        except PolicyError as exc:
            raise AuthenticationError(str(exc), reason="unknown principal") from None

    def _answer(
        self,
        method: str,
        route: str | None,
        params: dict[str, str],
        query: dict[str, list[str]],
        who: Principal,
    ) -> Reply:
        if route is None:
            return error_reply(HTTPStatus.NOT_FOUND, "NoSuchEndpointException", "no such endpoint")
        if method in ("POST", "PUT", "DELETE") and route != "config":
            served = "takes table commits only" if self.allow_write else "is served read-only"
            raise ReadOnlyError(
                f"{method} refused: this catalog {served}; create, rename and drop through lakeplane",
                operation=method,
            )
        if method not in ("GET", "HEAD"):
            return error_reply(
                HTTPStatus.METHOD_NOT_ALLOWED, "MethodNotAllowedException", f"{method} not allowed"
            )
        namespace = _namespace(params.get("namespace", ""))
        name = unquote(params.get("name", ""))
        if method == "HEAD":
            if route == "namespace":
                self.served.namespace(who, namespace)
                return Reply(HTTPStatus.NO_CONTENT)
            if route == "table":
                found = self.served.exists(who, namespace, name)
                return Reply(HTTPStatus.NO_CONTENT if found else HTTPStatus.NOT_FOUND)
            return Reply(HTTPStatus.NOT_FOUND)
        if route == "config":
            endpoints = _ENDPOINTS + [_COMMIT_ENDPOINT] * self.allow_write
            return Reply(HTTPStatus.OK, {"defaults": {}, "overrides": {}, "endpoints": endpoints})
        if route == "namespaces":
            parent = _namespace(query.get("parent", [""])[0])
            children = self.served.namespaces(who, parent)
            return Reply(HTTPStatus.OK, {"namespaces": [list(n) for n in children]})
        if route == "namespace":
            return Reply(
                HTTPStatus.OK, {"namespace": list(self.served.namespace(who, namespace)), "properties": {}}
            )
        if route == "tables":
            tables = self.served.tables(who, namespace)
            return Reply(
                HTTPStatus.OK,
                {"identifiers": [{"namespace": list(t.namespace), "name": t.name} for t in tables]},
            )
        if route == "table":
            return Reply(HTTPStatus.OK, self.served.load(who, namespace, name))
        if route == "views":
            self.served.namespace(who, namespace)
            return Reply(HTTPStatus.OK, {"identifiers": []})
        if route == "view":
            return error_reply(HTTPStatus.NOT_FOUND, "NoSuchViewException", "this catalog serves no views")
        return error_reply(HTTPStatus.NOT_FOUND, "NoSuchEndpointException", "no such endpoint")

    def _commit(self, params: dict[str, str], body: bytes, who: Principal) -> Reply:
        try:
            request = CommitTableRequest.model_validate_json(body)
        except ValidationError as exc:
            return error_reply(HTTPStatus.BAD_REQUEST, "BadRequestException", f"not a table commit: {exc}")
        namespace, name = _namespace(params["namespace"]), unquote(params["name"])
        return Reply(HTTPStatus.OK, self.served.commit(who, namespace, name, request))

    def _oauth(self, method: str, authorization: str, body: bytes) -> Reply:
        """The OAuth2 client-credentials grant: the token itself is the client secret and the answer.

        The client's id and secret come in the form (pyiceberg) or as HTTP Basic credentials (DuckDB).
        """
        if method != "POST":
            return error_reply(
                HTTPStatus.METHOD_NOT_ALLOWED, "MethodNotAllowedException", "POST a token request"
            )
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(HTTPStatus.BAD_REQUEST, "unsupported_grant_type", "only client_credentials")
        scheme, _, basic = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(basic.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return _oauth_error(HTTPStatus.BAD_REQUEST, "invalid_request", "malformed Basic credentials")
            client_id, _, client_secret = pair.partition(":")
            form |= {"client_id": unquote_plus(client_id), "client_secret": unquote_plus(client_secret)}
        secret = form.get("client_secret", "")
        try:
            principal = self.tokens.authenticate(secret)
        except AuthenticationError as exc:
            return _oauth_error(HTTPStatus.UNAUTHORIZED, "invalid_client", str(exc))
        client = form.get("client_id", "")
        if client and client not in (principal, principal.split(":", 1)[1]):
            return _oauth_error(
                HTTPStatus.UNAUTHORIZED,
                "invalid_client",
                f"client_id '{client}' is not the token's principal",
            )
        return Reply(
            HTTPStatus.OK,
            {
                "access_token": secret,
                "token_type": "bearer",
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            },
        )


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply(status, {"error": error, "error_description": description})


def _route(path: str) -> tuple[str | None, dict[str, str]]:
    for name, pattern in _ROUTES:
        found = pattern.match(path)
        if found:
            return name, found.groupdict()
    return None, {}


def _namespace(encoded: str) -> Namespace:
    text = unquote(encoded)
    return tuple(text.split(NAMESPACE_SEPARATOR)) if text else ()


class CatalogServer:
    """The REST catalog on ``host:port`` (port 0: any free port), one thread per request.

    Args:
        app: what answers requests.
        log: gets one line per request (time, principal, method, path, status); tokens never appear.
    """

    def __init__(
        self,
        app: RestCatalogApp,
        host: str = "127.0.0.1",
        port: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.log = log or _stderr
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as exc:
            raise ConfigError(
                f"cannot serve on {host}:{port}: {exc.strerror or exc}", value=f"{host}:{port}"
            ) from None
        # Requests in flight finish before close() returns.
        self.httpd.daemon_threads = False
        self.httpd.block_on_close = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> CatalogServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="lakeplane-rest", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop taking requests, let those in flight finish, and free the port."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> CatalogServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(server: CatalogServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: shutting down never waits on idle ones
        server_version = "lakeplane-rest"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                reply, who = server.app.handle(self.command, self.path, headers, body)
            except Exception:  # a bug or a lost database: answer, and keep the details in the log
                server.log(traceback.format_exc().rstrip())
                reply, who = (
                    error_reply(500, "ServiceFailureException", "internal error (see the server log)"),
                    "-",
                )
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            for key, value in reply.headers:
                self.send_header(key, value)
            if reply.body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            server.log(f"{at} {who} {self.command} {urlsplit(self.path).path} {reply.status}")

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # _serve logs each request once, in its own format

    return Handler


def catalog_server(
    catalog: LakeCatalog,
    governance: Governance,
    storage: StorageConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    log: Callable[[str], None] | None = None,
    allow_write: bool = False,
) -> CatalogServer:
    """The REST catalog of a governed lake, not yet started (read-only unless ``allow_write``).

    Raises:
        ConfigError: the lake has no policy (no principal a token could stand for).
    """
    served = ServedCatalog(catalog, governance, file_config(storage))
    return CatalogServer(RestCatalogApp(served, access_tokens(governance), allow_write), host, port, log)


def file_config(storage: StorageConfig) -> dict[str, str]:
    """What a reader needs to reach the lake's files: the S3 endpoint settings of a lake on S3.

    Keys are never handed out: a reader brings its own credentials for the bucket.
    """
    if not storage.root.startswith("s3://"):
        return {}
    config = {"s3.region": storage.s3.region, "s3.path-style-access": str(storage.s3.path_style).lower()}
    if storage.s3.endpoint:
        config["s3.endpoint"] = storage.s3.endpoint
    return config


def serve_until_stopped(server: CatalogServer, ready: Callable[[str], None]) -> None:
    """Serve in the foreground until SIGTERM or SIGINT, then finish the requests in flight and stop."""
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        server.start()
        ready(server.url)
        while not stop.wait(0.2):
            pass
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)

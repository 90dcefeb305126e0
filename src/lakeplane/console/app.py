"""The console's web application: login, every page and its ``/api/`` twin, ``/metrics``.

Pages are Jinja2 templates drawn on the server (charts as inline SVG); there is no script and no
front-end build. A page asked for without a login is sent to ``/login``; an ``/api/`` call without
one gets 401 with a basic-auth challenge. Requests are served one at a time against the lake: the
catalog's and governance's caches are not made for threads, and a page takes milliseconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, Form, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from lakeplane.console import charts
from lakeplane.console.auth import COOKIE, Authenticator, Login
from lakeplane.console.observe import metrics_text
from lakeplane.console.pages import PAGES, Ask, Deps, Page
from lakeplane.console.steps import StepTables
from lakeplane.console.viewer import Viewer, Viewers
from lakeplane.units import human_bytes

if TYPE_CHECKING:
    from lakeplane.config_console import ConsoleConfig
    from lakeplane.lake import Lake

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="lakeplane console", charset="UTF-8"'}


class Console:
    """The console of one lake: who is logged in, and each page drawn for them.

    Raises:
        ConfigError: the lake has no policy (a login is a principal of the policy).
    """

    def __init__(self, lake: Lake, config: ConsoleConfig) -> None:
        lake.governance.require_enabled()
        self.deps = Deps(lake, config, StepTables(lake))
        self.auth = Authenticator(lake.governance, config.session_hours)
        self.viewers = Viewers(lake, config.admins)
        self.lock = threading.RLock()
        #: ``/metrics`` as last worked out, and when (monotonic seconds).
        self.metrics: tuple[float, str] | None = None
        self.templates = Environment(
            loader=PackageLoader("lakeplane.console", "templates"), autoescape=select_autoescape()
        )
        self.templates.globals |= {
            "gantt": lambda attempts: Markup(charts.gantt(attempts)),
            "series": lambda points, title, unit="": Markup(charts.series(points, title, unit)),
            "strip": lambda history: Markup(charts.outcome_strip(history)),
            "lineage_svg": lambda g: Markup(charts.lineage_graph(g["nodes"], g["edges"], g["root"])),
            "human_bytes": lambda n: human_bytes(int(n)) if n is not None else "",
            "quote": lambda text: quote(str(text), safe=""),
            "size_points": lambda history, key: [(h["at"], float(h[key])) for h in history],
        }

    def login_of(self, request: Request) -> Login | None:
        with self.lock:
            return self.auth.from_basic(request.headers.get("authorization")) or self.auth.from_cookie(
                request.cookies.get(COOKIE)
            )

    def viewer_of(self, request: Request, api: bool) -> Viewer:
        """The viewer of ``request``; raises the 401 or the redirect to /login an anonymous one gets."""
        login = self.login_of(request)
        if login is None:
            if api:
                raise HTTPException(401, "log in: basic auth with a principal and its token", _CHALLENGE)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "log in", {"Location": f"/login?next={quote(target, safe='')}"})
        with self.lock:
            return self.viewers.get(login.principal)

    def answer(self, page: Page, request: Request, api: bool) -> tuple[Viewer, dict[str, Any]]:
        viewer = self.viewer_of(request, api)
        ask = Ask(viewer, dict(request.path_params), dict(request.query_params))
        with self.lock:
            data = page(self.deps, ask)
        if data is None:
            raise HTTPException(404, "not found")
        return viewer, data

    def render(self, template: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(viewer=viewer, **context)
        return HTMLResponse(html, status_code=status)


def create_app(lake: Lake, config: ConsoleConfig) -> FastAPI:
    """The console's ASGI application for ``lake``."""
    console = Console(lake, config)
    app = FastAPI(title="lakeplane console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    app.mount("/static", StaticFiles(packages=[("lakeplane.console", "static")]), name="static")

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        if exc.status_code in (404, 403) and not request.url.path.startswith(("/api/", "/metrics")):
            return console.render(
                "error.html", None, exc.status_code, code=exc.status_code, detail=exc.detail
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.middleware("http")
    async def server_timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/login", response_class=HTMLResponse)
    def login_form(next: str = "/") -> HTMLResponse:
        return console.render("login.html", None, next=_local(next), error=None)

    @app.post("/login", response_class=HTMLResponse)
    def login(principal: str = Form(...), token: str = Form(...), next: str = Form("/")) -> Response:
        with console.lock:
            found = console.auth.check(principal.strip(), token.strip())
        if found is None:
            return console.render(
                "login.html", None, 401, next=_local(next), error="unknown principal or token not valid"
            )
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(
            COOKIE,
            console.auth.cookie_for(found),
            max_age=console.auth.max_age_s,
            httponly=True,
            samesite="lax",
        )
        return response

    @app.get("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics(request: Request) -> Response:
        if not config.metrics_public:
            viewer = console.viewer_of(request, api=True)
            if not viewer.admin:
                raise HTTPException(403, "/metrics is for principals in console.admins")
        with console.lock:
            now = time.monotonic()
            if console.metrics is None or now - console.metrics[0] >= config.metrics_cache_s:
                console.metrics = (now, metrics_text(lake))
            text = console.metrics[1]
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/api/me")
    def me(request: Request) -> JSONResponse:
        viewer = console.viewer_of(request, api=True)
        return JSONResponse(
            {"principal": viewer.principal, "admin": viewer.admin, "tables": sorted(viewer.readable)}
        )

    for path, template, page in PAGES:
        _route(app, console, path, template, page)
    return app


def _route(app: FastAPI, console: Console, path: str, template: str, page: Page) -> None:
    api_path = "/api/overview" if path == "/" else f"/api{path}"

    def as_html(request: Request) -> HTMLResponse:
        viewer, data = console.answer(page, request, api=False)
        return console.render(template, viewer, data=data, path=request.url.path)

    def as_json(request: Request) -> JSONResponse:
        data = console.answer(page, request, api=True)[1]
        return JSONResponse(jsonable_encoder(data, custom_encoder={bytes: bytes.hex}))

    app.add_api_route(path, as_html, methods=["GET"], response_class=HTMLResponse, name=template)
    app.add_api_route(api_path, as_json, methods=["GET"], name=f"api {template}")


def _local(target: str) -> str:
    """``target`` if it is a path on this server, else ``/`` (no redirect to another site)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"

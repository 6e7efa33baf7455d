"""The health view's FastAPI app, mounted in Airflow's API server by plugins/vyapar_health_plugin.py.

Same login as the UI: the caller is Airflow's `get_user` dependency (the `_token` JWT cookie the UI's login sets,
or an `Authorization: Bearer` token from /auth/token), validated by Airflow's auth manager. A browser without a
valid session is redirected to Airflow's login page and comes back here after it; API clients get 401.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.base import BaseHTTPMiddleware

from include.vyapar.alerting.config import RUNBOOKS_PATH
from include.vyapar.health import render, runbooks, snapshot

log = logging.getLogger(__name__)
URL_PREFIX = "/vyapar-health"
RUNBOOKS_ROUTE = RUNBOOKS_PATH.removeprefix(URL_PREFIX)  # where every alert's runbook link points by default
# Cosmos's plugin serves the dbt docs (compiled SQL, columns, lineage) without checking who asks: same login here.
LOGIN_REQUIRED_PREFIXES = ("/cosmos/",)


async def current_user(request: Request):  # noqa: ANN201 — Airflow's BaseUser
    """Airflow's own authentication (JWT in the `_token` cookie or a bearer header), as for the UI and REST API."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user, oauth2_scheme

    return await get_user(request, await oauth2_scheme(request), await bearer_scheme(request))


User = Annotated[object, Depends(current_user)]


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and not request.url.path.rstrip("/").endswith("/api/health")


def login_redirect(request: Request) -> RedirectResponse:
    from airflow.api_fastapi.app import get_auth_manager

    # Back to this view after logging in (a path on this server: Airflow only follows safe, same-site `next`s).
    next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(get_auth_manager().get_url_login(next_url=next_url), status_code=303)


def create_app() -> FastAPI:
    app = FastAPI(title="VyaparBazaar pipeline health", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def _unauthenticated(request: Request, exc: HTTPException) -> Response:
        if exc.status_code in (401, 403) and _wants_html(request):
            return login_redirect(request)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse)
    async def health_page(user: User, days: int = snapshot.WINDOW_DAYS) -> HTMLResponse:
        snap = await asyncio.to_thread(snapshot.collect, days=max(1, min(days, 31)))
        return HTMLResponse(
            render.page(snap),
            headers={"Cache-Control": "no-store", "Server-Timing": _server_timing(snap)},
        )

    @app.get(RUNBOOKS_ROUTE, response_class=HTMLResponse)
    async def runbooks_page(user: User) -> HTMLResponse:
        return HTMLResponse(await asyncio.to_thread(runbooks.page), headers={"Cache-Control": "no-cache"})

    @app.get("/api/health")
    async def health_json(user: User, days: int = snapshot.WINDOW_DAYS) -> JSONResponse:
        snap = await asyncio.to_thread(snapshot.collect, days=max(1, min(days, 31)))
        return JSONResponse(snap.to_dict(), headers={"Cache-Control": "no-store"})

    return app


def _server_timing(snap: snapshot.Snapshot) -> str:
    """Per-panel gathering time, visible in the browser's devtools (and the UI test's timing)."""
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in snap.timings.items())


def route_path(request: Request) -> str:
    """The path the app routes on: without the root path Airflow serves under (`[api] base_url`'s path, e.g.
    /airflow), whether or not a proxy already stripped it — as Starlette's own routing does."""
    path, root = request.scope["path"], request.scope.get("root_path", "").rstrip("/")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class RequireLogin(BaseHTTPMiddleware):
    """Root middleware (a plugin's `fastapi_root_middlewares`): the UI's login in front of other plugins' pages
    that have none (the dbt docs). Browsers go to the login page and back; other clients get 401."""

    async def dispatch(self, request: Request, call_next):  # noqa: ANN201
        if route_path(request).startswith(LOGIN_REQUIRED_PREFIXES):
            try:
                await current_user(request)
            except HTTPException as exc:
                if "text/html" in request.headers.get("accept", ""):
                    return login_redirect(request)
                return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return await call_next(request)

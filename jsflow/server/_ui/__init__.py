"""The web view of ``jsflow serve``: server-rendered pages under ``/ui/``.

Why a subpackage with one entry point: the HTTP API's ``create_app`` only
calls ``mount_ui``; everything about pages (templates, session cookie, CSRF,
security headers, static files) stays here. One module per page, each page
backed by the same data as JSON (``?format=json``)::

    _login_page     /ui/login, /ui/logout      API key -> signed session cookie
    _list_page      /ui/                       instances, filters, counts
    _instance_page  /ui/workflows/{id}         waits, inbox, timeline, actions
    _scripts_page   /ui/scripts                versions, sources, instances
    _schedules_page /ui/schedules              cron schedules with their next run
    _core           shared request handling; _data the page data;
    _render         templates and headers;   _session cookie and CSRF
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from jsflow.host import WorkflowHost

from . import _instance_page, _list_page, _login_page, _schedules_page, _scripts_page
from ._core import UI, FailureGate, Runner, ThreadRunner
from ._render import STATIC, UI_PREFIX
from ._session import KeyLookup, MappingKeys, Sessions

__all__ = ["mount_ui"]


def mount_ui(
    app: FastAPI,
    host: WorkflowHost,
    *,
    api_keys: Mapping[str, Iterable[str]] | KeyLookup,
    secret_key: str | bytes | None = None,
    runner: Runner | None = None,
    public_url: str | None = None,
    gate: FailureGate | None = None,
) -> None:
    """Add the web view to ``app``; ``/`` redirects to ``/ui/``.

    ``api_keys``: what sign-in accepts: ``{key: scopes}`` or an object with
    ``lookup(key)`` (the server's key ring). ``secret_key`` signs session
    cookies; None makes a random one, so sessions end with the process.
    ``runner``: where host work runs (the server's engine pool; default a
    thread pool). ``public_url``: where browsers reach the server; when it
    is ``https://`` the session cookie is marked Secure. ``gate``: rate
    limits failed sign-ins per client address (``create_app`` passes the
    server's limiter; default none).
    """
    keys = MappingKeys(api_keys) if isinstance(api_keys, Mapping) else api_keys
    secure = (public_url or "").lower().startswith("https://")
    sessions = Sessions(secret_key or secrets.token_bytes(32), secure=secure)
    ui = UI(host, keys, sessions, runner or ThreadRunner(), gate)
    router = APIRouter(prefix=UI_PREFIX)
    for page in (_login_page, _list_page, _scripts_page, _schedules_page, _instance_page):
        page.register(router, ui)
    app.include_router(router)
    app.mount(f"{UI_PREFIX}/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=307)

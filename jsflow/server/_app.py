"""``create_app``: the FastAPI application over a ``WorkflowHost``.

Why a factory over a host the caller built: the host carries the code
(steps, suspend functions, an ``--app``'s registrations) that no HTTP
request can supply, so a Python backend builds its host as usual and mounts
this app inside its own ASGI application; ``jsflow serve`` does the same
with the host it opens from flags.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from jsflow.host import TokenInfo, WorkflowHost

from . import (
    _errors,
    _routes_hooks,
    _routes_lifecycle,
    _routes_ops,
    _routes_schedules,
    _routes_scripts,
    _routes_workflows,
)
from ._auth import KeyRing
from ._deps import ServerContext
from ._hot import HotPaths
from ._http import EncodedSlashMiddleware, HeadMiddleware
from ._limits import BodyLimitMiddleware, RateLimiter, SignInGate
from ._logs import redact_logs
from ._metrics import Metrics
from ._runner import Runner
from ._settings import ServerSettings, generate_key, keys_from_env
from ._ui import mount_ui
from ._worker import WorkerThread

log = logging.getLogger("jsflow.server")
#: forms anyone may post (no session yet): their bodies are kept small
SIGN_IN_PATHS = ("/ui/login", "/ui/logout")
SIGN_IN_MAX_BODY = 64 * 1024
#: where the API explorer's bundled Swagger UI and ReDoc assets are served
EXPLORER_ASSETS = "/docs/assets"
DESCRIPTION = """Start jsflow workflows, send them events and resume their waits over HTTP.

Authenticate with `Authorization: Bearer KEY`. `POST /hooks/{token}` needs no key:
the token a `createHook` handed out is the credential."""


def create_app(
    host: WorkflowHost,
    *,
    api_keys: Mapping[str, Iterable[str]] | Iterable[str] | str | None = None,
    public_url: str | None = None,
    rate_limit: str | None = None,
    worker: bool = True,
    settings: ServerSettings | None = None,
    **options: Any,
) -> FastAPI:
    """The ASGI app serving ``host``.

    ``api_keys``: ``{"KEY": ["admin"]}``, ``["KEY", "KEY2:read"]`` or a
    whitespace-separated string; None reads ``$JSFLOW_API_KEYS``; with none at
    all a random admin key is generated (``app.state.jsflow.generated_key``)
    and logged once: the server never runs open. ``public_url`` makes
    createHook URLs ``{public_url}/hooks/{token}``. ``rate_limit`` per API key
    and per client address on ``/hooks`` (default ``100/minute``).
    ``hook_max_body``: the largest ``/hooks`` body (bytes or ``"1MiB"``,
    default 1 MiB). ``worker``
    runs the host worker (timers, recovery) while the app is up. Other
    ``ServerSettings`` fields may be passed as keywords, or a whole
    ``settings`` instead of all of these.
    """
    if settings is None:
        fields: dict[str, Any] = {"worker": worker, **options}
        if api_keys is not None:
            fields["api_keys"] = api_keys
        if public_url is not None:
            fields["public_url"] = public_url
        if rate_limit is not None:
            fields["rate_limit"] = rate_limit
        settings = ServerSettings(**fields)
    ctx = _context(host, settings)
    if log_issued_token not in host.token_listeners:  # whoever issues it: a request, the worker
        host.add_token_listener(log_issued_token)
    app = _explorer_app(ctx)
    app.state.jsflow = ctx
    app.state.metrics = ctx.metrics
    _errors.install(app)
    for module in (
        _routes_workflows,
        _routes_lifecycle,
        _routes_schedules,
        _routes_hooks,
        _routes_scripts,
        _routes_ops,
    ):
        app.include_router(module.router)
    mount_ui(
        app,
        host,
        api_keys=ctx.keys,
        runner=ctx.runner,
        public_url=settings.public_url,
        gate=SignInGate(ctx.limiter),
    )
    limit = settings.payload_limit or host.engine.limits.payload
    small = dict.fromkeys(SIGN_IN_PATHS, min(limit, SIGN_IN_MAX_BODY))
    app.add_middleware(
        BodyLimitMiddleware, limit=limit, on_refused=lambda: ctx.metrics.error(413), small=small
    )
    app.add_middleware(EncodedSlashMiddleware)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(HotPaths, ctx=ctx, limit=limit)  # outermost: hot requests skip the rest
    redact_logs()
    return app


def log_issued_token(info: TokenInfo) -> None:
    """One log line per resume token issued: instance, wait, kind and expiry, never the token."""
    log.info(
        "resume token issued: workflow %r, wait %s (%s %s), expires %s",
        info.workflow_id,
        info.wait_id,
        info.kind,
        info.function_name,
        info.expires_at.isoformat() if info.expires_at is not None else "never",
    )


def _explorer_app(ctx: ServerContext) -> FastAPI:
    """The FastAPI app, whose API explorer (``/docs``, Swagger UI) loads its JavaScript and CSS
    from the server itself (the assets ship in the pinned ``fastapi-offline`` package), never
    from a CDN: the explorer works on a machine without internet. No ReDoc: its page fetches
    a logo from a CDN."""
    return FastAPIOffline(
        redoc_url=None,
        title="jsflow",
        version="1",
        description=DESCRIPTION,
        lifespan=_lifespan(ctx),
        static_url=EXPLORER_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
    )


def _context(host: WorkflowHost, settings: ServerSettings) -> ServerContext:
    keys = dict(settings.api_keys) or keys_from_env()
    generated = None
    if not keys:
        generated = generate_key()
        keys = {generated: frozenset({"admin"})}  # type: ignore[dict-item]
        # the key itself is never logged: it is on app.state.jsflow.generated_key
        log.warning("no API key configured; generated an admin key (app.state.jsflow.generated_key)")
    if settings.public_url is not None:
        host.hook_base_url = settings.public_url + "/hooks"
    return ServerContext(
        host=host,
        settings=settings,
        keys=KeyRing(ServerSettings(api_keys=keys).api_keys),
        limiter=RateLimiter(
            settings.rate_limit, settings.hook_rate_limit or settings.rate_limit, settings.failure_rate_limit
        ),
        metrics=Metrics(host.count_by_status),
        runner=Runner(host, settings.threads),
        generated_key=generated,
    )


def _lifespan(ctx: ServerContext) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact_logs()
        worker = WorkerThread(ctx.host, ctx.settings.worker_poll_interval) if ctx.settings.worker else None
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            ctx.runner.close()

    return lifespan

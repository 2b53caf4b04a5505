"""What every page of the web view shares: the host, the session, rendering,
and one way to answer a request as HTML, JSON or a change stamp.

Why one ``UI`` object: the page modules stay thin (parse, call the host,
render) and cannot forget the sign-in check, the CSRF token or the
security headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from jsflow.host import WorkflowHost

from ._render import SECURITY_HEADERS, UI_PREFIX, Renderer, json_ready, json_response
from ._session import Actor, KeyLookup, Sessions, ensure_csrf

T = TypeVar("T")
log = logging.getLogger("jsflow.server")


class Runner(Protocol):
    """Where host work runs (``jsflow.server``'s engine pool fits): ``run`` for
    reads, ``advance`` for changes, one at a time per workflow id."""

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]: ...

    def advance(self, key: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]: ...


class ThreadRunner:
    """The default ``Runner``: Starlette's thread pool, no per-instance ordering
    (the host's version check still keeps concurrent changes correct)."""

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(fn, *args, **kwargs)

    async def advance(self, key: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(fn, *args, **kwargs)


class FailureGate(Protocol):
    """Rate limits failed sign-ins per client address (the server's limiter fits)."""

    async def check(self, address: str) -> tuple[str, str] | None:
        """None to go on, or (why, Retry-After seconds) when ``address`` must wait."""
        ...

    async def failed(self, address: str) -> None:
        """Count a failed sign-in from ``address``."""
        ...


class OpenGate:
    """The default ``FailureGate``: no limit (for embedding without ``create_app``)."""

    async def check(self, address: str) -> tuple[str, str] | None:
        return None

    async def failed(self, address: str) -> None:
        return None


@dataclass
class Visit:
    """One request's session: who is signed in, and whether the cookie must be re-sent."""

    session: dict[str, Any]
    actor: Actor | None
    dirty: bool = False


class UI:
    """Shared state of the web view, built once by ``mount_ui``."""

    def __init__(
        self,
        host: WorkflowHost,
        keys: KeyLookup,
        sessions: Sessions,
        runner: Runner,
        gate: FailureGate | None = None,
    ) -> None:
        self.host = host
        self.keys = keys
        self.sessions = sessions
        self.runner = runner
        self.gate: FailureGate = gate or OpenGate()
        self._background: set[asyncio.Task[Any]] = set()
        self.renderer = Renderer()

    def now(self) -> datetime:
        return self.host.clock()

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a host read (SQLite) off the event loop."""
        return await self.runner.run(fn, *args, **kwargs)

    async def advance(self, workflow_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a change to one instance (the JS engine) off the event loop, after
        any other change to it that this server is running."""
        return await self.runner.advance(workflow_id, fn, *args, **kwargs)

    def deliver_later(self, workflow_id: str) -> asyncio.Task[Any]:
        """Deliver the instance's buffered events in a background task (after any
        other change to it this server runs); the caller may wait for it or not."""
        task = asyncio.get_running_loop().create_task(
            self.runner.advance(workflow_id, self.host.deliver_events, workflow_id)
        )
        self._background.add(task)
        task.add_done_callback(self._delivered)
        return task

    def _delivered(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the worker retries it
            log.warning("delivering an event failed: %s", type(task.exception()).__name__)

    def visit(self, request: Request) -> Visit:
        session = self.sessions.load(request)
        return Visit(session, Actor.from_session(session.get("actor")))

    def login_redirect(self, request: Request) -> Response:
        """Where a request without a session goes: sign-in, then back here."""
        if request.query_params.get("format") in ("json", "stamp"):
            return JSONResponse(
                {"error": {"type": "NotSignedIn", "message": "sign in at /ui/login"}},
                status_code=401,
                headers=SECURITY_HEADERS,
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{UI_PREFIX}/login?next={quote(target, safe='')}", status_code=303)

    def finish(self, response: Response, visit: Visit) -> Response:
        if visit.dirty:
            self.sessions.save(response, visit.session)
        return response

    def answer(
        self,
        request: Request,
        visit: Visit,
        template: str,
        data: dict[str, Any],
        *,
        stamp: str,
        status_code: int = 200,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        """``?format=json``: the data; ``?format=stamp``: a digest that changes when
        the page would (polled by ``ui.js``); else the rendered page."""
        fmt = request.query_params.get("format")
        if fmt == "json":
            return json_response(data, status_code)
        if fmt == "stamp":
            return json_response({"stamp": stamp})
        if "csrf" not in visit.session:
            visit.dirty = True
        csrf = ensure_csrf(visit.session)
        flash = visit.session.pop("flash", None)
        if flash is not None:
            visit.dirty = True
        context = {
            "data": data,
            "csrf_token": csrf,
            "csrf_field": "csrf_token",
            "flash": flash,
            "actor": visit.actor,
            "stamp": stamp,
            "stamp_url": _stamp_url(request),
            "server_now": self.now(),
            **(extra or {}),
        }
        return self.finish(self.renderer.page(template, context, status_code), visit)


def _stamp_url(request: Request) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "format"]
    params.append(("format", "stamp"))
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(request.url.path)
    return f"{path}?{query}"


def digest(value: Any) -> str:
    """A short stable digest of JSON-able data (the change stamp of a page)."""
    text = json.dumps(json_ready(value), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]

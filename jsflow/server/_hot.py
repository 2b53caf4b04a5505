"""The hot paths: event, token-resume and hook requests answered without
FastAPI's per-request machinery.

Why: an event request is the call external systems make most, and its own work
is one insert (the delivery runs after the reply). Through FastAPI it paid more
for the framework than for the insert: a dozen ASGI layers, routing over every
route, dependency solving (path, query, header and auth parameters validated
through pydantic), the response model validated and serialized again
(bench/profile.py: about 1 ms of CPU per request). ``HotPaths`` is a raw ASGI
middleware in front of the app that answers the common, well-formed request
itself with plain calls, and hands everything else to the app unchanged.
``POST /v1/resume`` and ``POST /hooks/{token}`` (204 once the token is consumed)
take the same path; they still wait for the resume's first journal write.

What stays the app's: the OpenAPI schema (the FastAPI routes are still there and
still document the endpoints), and every request the hot path has any doubt
about before it starts (a query string such as ``?wait``, an app mounted under
a prefix, a percent-encoded or unusual path segment, a body without
``Content-Length`` or over ``MAX_HOT_BODY``, an ``Idempotency-Key`` over its
limit). Those requests reach
the FastAPI routes, which validate and answer them as before. Once the hot
path takes a request it answers it fully, by the same rules and with the same
bodies as the routes: ``authorize`` (scopes, rate limits, failed
authentications), ``check_text``, ``parse_json``, the host's own errors mapped
by ``error_reply``; tests send the same requests both ways and compare.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from jsflow.host import EventReceipt

from ._deps import ServerContext, accept_event, address_limits, as_model, authorize, check_text, parse_json
from ._errors import error_reply
from ._routes_hooks import resume_token, token_owner
from ._schemas import TokenResumeIn
from ._settings import Scope as KeyScope

#: the largest body the hot path reads itself (larger ones go through the app,
#: whose body limit refuses them while they stream in)
MAX_HOT_BODY = 64 * 1024
#: ``Idempotency-Key`` longer than this is the route's 400 (``Header(max_length=200)``)
MAX_IDEMPOTENCY_KEY = 200
#: a path segment taken as it is: unreserved and sub-delimiter characters, no
#: ``%`` (escapes are decoded by the app's rules, ``_http``), nothing JSON escapes
_PLAIN_SEGMENT = re.compile(rb"[A-Za-z0-9._~!$&'()*+,;=:@-]+")
#: a path name (``PathName``) or a hook token is at most this long
MAX_NAME = 1000
_JSON = b"application/json"

Handler = Callable[[ServerContext, Scope, Receive, Send, dict[bytes, bytes], list[str]], Awaitable[None]]


class HotPaths:
    """Answers hot requests itself, passes every other request to ``app``."""

    def __init__(self, app: ASGIApp, ctx: ServerContext, limit: int) -> None:
        self.app = app
        self.ctx = ctx
        self.max_body = min(limit, MAX_HOT_BODY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("query_string")
            and not scope.get("root_path")  # mounted under a prefix: the app routes it
        ):
            found = self._match(scope)
            if found is not None:
                handler, headers, params = found
                await handler(self.ctx, scope, receive, send, headers, params)
                return
        await self.app(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[Handler, dict[bytes, bytes], list[str]] | None:
        """The handler, headers and path parameters of a request the hot path
        answers, or None (the app answers it)."""
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        parts = raw.split(b"/")
        max_body = self.max_body
        if len(parts) == 6 and parts[1] == b"v1" and parts[2] == b"workflows" and parts[4] == b"events":
            handler, params = _event, [parts[3], parts[5]]
        elif len(parts) == 3 and parts[1] == b"hooks":
            handler, params = _hook, [parts[2]]
            max_body = min(max_body, self.ctx.settings.hook_max_body)
        elif raw == b"/v1/resume":
            handler, params = _token_resume, []
        else:
            return None
        if not all(_PLAIN_SEGMENT.fullmatch(p) for p in params) or any(len(p) > MAX_NAME for p in params):
            return None
        headers = _headers(scope)
        if headers is None or not _plain_body(headers, max_body):
            return None
        key = headers.get(b"idempotency-key")
        if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
            return None
        return handler, headers, [p.decode("ascii") for p in params]


def _headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The headers the hot path reads, the first of each name as Starlette
    reads them (None: a header it leaves to the app)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return None
        found.setdefault(name, value)
    return found


def _plain_body(headers: dict[bytes, bytes], limit: int) -> bool:
    declared = headers.get(b"content-length")
    return declared is not None and declared.isdigit() and int(declared) <= limit


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (at most the ``Content-Length`` checked before), or None
    if the client went away."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _reply(send: Send, status: int, content: Any, headers: dict[str, str] | None = None) -> None:
    """A JSON response, byte for byte as Starlette's ``JSONResponse`` renders it."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    data = body.encode("utf-8")
    raw = [(b"content-length", str(len(data)).encode("latin-1")), (b"content-type", _JSON)]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def _refuse(ctx: ServerContext, scope: Scope, send: Send, exc: Exception, has_key: bool) -> None:
    status, headers, body = error_reply(exc, scope["method"], scope["path"], has_key, ctx.metrics)
    await _reply(send, status, body, headers)


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _authorization(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"authorization")
    return value.decode("latin-1") if value else None


def receipt_json(receipt: EventReceipt) -> dict[str, Any]:
    """An event receipt as ``EventReceiptOut`` renders it (no ``?wait``: no
    status, no instance; no ``wait_id`` when there is none)."""
    out: dict[str, Any] = {
        "event_id": receipt.event_id,
        "workflow_id": receipt.workflow_id,
        "name": receipt.name,
        "delivered": receipt.delivered,
        "buffered": not receipt.delivered,
    }
    if receipt.wait_id is not None:
        out["wait_id"] = receipt.wait_id
    out["duplicate"] = receipt.duplicate
    return out


async def _event(
    ctx: ServerContext,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: dict[bytes, bytes],
    params: list[str],
) -> None:
    """``POST /v1/workflows/{id}/events/{name}`` without ``?wait``: as ``send_event``."""
    workflow_id, name = params
    has_key = False
    try:
        await authorize(ctx, _authorization(headers), _address(scope), KeyScope.RESUME)
        has_key = True
        check_text(workflow_id, "workflow id")
        check_text(name, "event name")
        raw = await _read_body(receive)
        if raw is None:
            return
        payload = parse_json(raw)
        key = headers.get(b"idempotency-key")
        idempotency_key = key.decode("latin-1") if key is not None else None
        receipt = await accept_event(ctx, workflow_id, name, payload, idempotency_key)
    except Exception as exc:
        await _refuse(ctx, scope, send, exc, has_key)
        return
    await _reply(send, 202, receipt_json(receipt))


async def _token_resume(
    ctx: ServerContext, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], _: list[str]
) -> None:
    """``POST /v1/resume`` without ``?wait``: as ``resume_by_token``."""
    has_key = False
    try:
        address = _address(scope)
        await authorize(ctx, _authorization(headers), address, KeyScope.RESUME)
        has_key = True
        raw = await _read_body(receive)
        if raw is None:
            return
        body = as_model(parse_json(raw), TokenResumeIn)
        owner = await token_owner(ctx, address, body.token)
        await resume_token(ctx, owner, body.token, body.payload)
    except Exception as exc:
        await _refuse(ctx, scope, send, exc, has_key)
        return
    await _no_content(send)


async def _hook(
    ctx: ServerContext, scope: Scope, receive: Receive, send: Send, _: dict[bytes, bytes], params: list[str]
) -> None:
    """``POST /hooks/{token}``: as ``resume_hook`` (the token is the credential:
    the address's limits first, the token looked up before the body is read)."""
    (token,) = params
    try:
        address = _address(scope)
        await address_limits(ctx, address)
        owner = await token_owner(ctx, address, token)
        raw = await _read_body(receive)
        if raw is None:
            return
        await resume_token(ctx, owner, token, parse_json(raw))
    except Exception as exc:
        await _refuse(ctx, scope, send, exc, False)
        return
    await _no_content(send)


async def _no_content(send: Send) -> None:
    """204 as Starlette's ``Response(status_code=204)`` sends it: no headers, no body."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})

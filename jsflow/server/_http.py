"""Two HTTP details every route relies on, as raw ASGI middleware.

``HeadMiddleware``: ``HEAD`` on any ``GET`` route answers like ``GET``
without the body (FastAPI routes list only the methods they declare, so it
was 405). ``EncodedSlashMiddleware``: a workflow id may hold any character,
``/`` included, so a per-instance path must carry it percent-encoded
(``/v1/workflows/a%2Fb/events/go``). ASGI servers decode the path before
routing, which turns that ``%2F`` into a path separator; for API paths this
middleware routes on the raw path with every escape decoded except ``%2F``
and ``%25``, and ``decode_segment`` (the route parameters' validator)
decodes those two, so an id arrives whole and no id is ambiguous.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: paths whose segments carry workflow ids and event names
API_PREFIX = "/v1/"
_KEEP = re.compile(r"(%2[fF]|%25)")


def decode_segment(value: str) -> str:
    """A path segment routed by ``EncodedSlashMiddleware``: decode what it left encoded."""
    return unquote(value) if "%" in value else value


def _route_path(raw: str) -> str:
    """``raw`` decoded except ``%2F`` and ``%25`` (kept as they are, upper-cased)."""
    parts = _KEEP.split(raw)
    return "".join(part.upper() if i % 2 else unquote(part) for i, part in enumerate(parts))


class EncodedSlashMiddleware:
    """Route API paths on the raw path, keeping ``%2F`` inside a segment."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw and b"%" in raw and scope.get("path", "").startswith(API_PREFIX):
            routed = _route_path(raw.decode("latin-1"))
            if unquote(routed) == scope["path"]:
                scope = dict(scope, path=routed)
        await self.app(scope, receive, send)


class HeadMiddleware:
    """``HEAD`` runs the ``GET`` route and sends its status and headers only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(dict(scope, method="GET"), receive, headers_only)

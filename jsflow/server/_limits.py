"""Rate limits (per API key, per client address on ``/hooks``) and the body
size limit.

Why the ``limits`` library: moving-window counting with correct reset times
is easy to get subtly wrong, and it offers shared storage backends (Redis,
memcached) should several server processes need one budget. Why a raw ASGI
middleware for bodies: a 60 MiB upload must be refused after at most the
limit's worth of bytes, whatever the ``Content-Length`` claims (or without
one, chunked), and before any JSON parser sees it.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from limits import parse as parse_rate
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import ApiError, error_body


class RateLimiter:
    """One moving-window budget per identifier (a key id, or ``addr:IP``).

    The asyncio flavour of the ``limits`` memory storage: it expires entries
    with a task on the event loop, where the synchronous one starts a timer
    thread every few requests (measured: a thread per two requests, each one
    competing with the engine threads for the GIL)."""

    def __init__(self, per_key: str, per_address: str) -> None:
        self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._per_key = parse_rate(per_key)
        self._per_address = parse_rate(per_address)
        self.hits = 0  # how many requests were refused (for metrics)

    async def check_key(self, key_id: str) -> None:
        await self._check(self._per_key, "key", key_id)

    async def check_address(self, address: str) -> None:
        await self._check(self._per_address, "address", address)

    async def _check(self, item: Any, kind: str, ident: str) -> None:
        if await self._limiter.hit(item, kind, ident):
            return
        stats = await self._limiter.get_window_stats(item, kind, ident)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        self.hits += 1
        raise ApiError(
            429,
            "RateLimitedError",
            f"rate limit of {item} per {kind} exceeded; retry in {retry_after}s",
            headers={"Retry-After": str(retry_after)},
            limit=str(item),
            retry_after=retry_after,
        )


class BodyTooLargeError(ApiError):
    """The request body passed the payload limit while it was being received."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "PayloadTooLargeError",
            f"request body is over the limit of {limit} bytes",
            limit=limit,
            headers={"Connection": "close"},
        )


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes: at once when ``Content-Length`` says so,
    else as soon as the received chunks add up past it."""

    def __init__(self, app: ASGIApp, limit: int, on_refused: Any = None) -> None:
        self.app = app
        self.limit = limit
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(send)
            return
        received = 0
        limit = self.limit

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send) -> None:
        if self.on_refused is not None:
            self.on_refused()
        err = BodyTooLargeError(self.limit)
        body = json.dumps(error_body(err.type, err.message, err.fields)).encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

"""Rate limits (per API key, per client address on ``/hooks``, failed
authentications per client address) and the body size limits.

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
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import ApiError, error_body

#: failed authentications (unknown key or token, refused sign-in) per client address
DEFAULT_FAILURE_LIMIT = "20/minute"


class RateLimiter:
    """One moving-window budget per identifier (a key id, or a client address).

    Failures have their own budget per client address (``per_failure``): an
    unknown API key, an unknown hook token or a refused web sign-in each
    spend one, and once it is spent every credential that address presents
    is refused with 429 before it is even looked up, so guessing keys or
    tokens costs the guesser time, not the server work.

    The asyncio flavour of the ``limits`` memory storage: it expires entries
    with a task on the event loop, where the synchronous one starts a timer
    thread every few requests (measured: a thread per two requests, each one
    competing with the engine threads for the GIL)."""

    def __init__(self, per_key: str, per_address: str, per_failure: str = DEFAULT_FAILURE_LIMIT) -> None:
        self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._per_key = parse_rate(per_key)
        self._per_address = parse_rate(per_address)
        self._per_failure = parse_rate(per_failure)
        self.hits = 0  # how many requests were refused (for metrics)

    async def check_key(self, key_id: str) -> None:
        await self._check(self._per_key, "key", key_id)

    async def check_address(self, address: str) -> None:
        await self._check(self._per_address, "address", address)

    async def check_failures(self, address: str) -> None:
        """429 when ``address`` has used up its budget of failed authentications."""
        if not await self._limiter.test(self._per_failure, "failure", address):
            await self._refuse(self._per_failure, "failure", address, "failed authentications")

    async def record_failure(self, address: str) -> None:
        """Spend one of ``address``'s failed-authentication budget."""
        await self._limiter.hit(self._per_failure, "failure", address)

    async def _check(self, item: Any, kind: str, ident: str) -> None:
        if await self._limiter.hit(item, kind, ident):
            return
        await self._refuse(item, kind, ident, f"requests per {kind}")

    async def _refuse(self, item: Any, kind: str, ident: str, what: str) -> None:
        stats = await self._limiter.get_window_stats(item, kind, ident)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        self.hits += 1
        raise ApiError(
            429,
            "RateLimitedError",
            f"too many {what} (limit: {item}); retry in {retry_after}s",
            headers={"Retry-After": str(retry_after)},
            limit=str(item),
            retry_after=retry_after,
        )


class SignInGate:
    """The web view's ``FailureGate`` over a ``RateLimiter``: failed sign-ins share
    the failed-authentication budget of API keys and hook tokens."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def check(self, address: str) -> tuple[str, str] | None:
        try:
            await self._limiter.check_failures(address)
        except ApiError as exc:
            return exc.message, exc.headers.get("Retry-After", "60")
        return None

    async def failed(self, address: str) -> None:
        await self._limiter.record_failure(address)


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
    else as soon as the received chunks add up past it. ``small`` maps exact
    paths anyone may post to (the sign-in form) to a smaller limit."""

    def __init__(
        self, app: ASGIApp, limit: int, on_refused: Any = None, small: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.on_refused = on_refused
        self.small = dict(small or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.small.get(scope.get("path", ""), self.limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, limit)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        if self.on_refused is not None:
            self.on_refused()
        err = BodyTooLargeError(limit)
        body = json.dumps(error_body(err.type, err.message, err.fields)).encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes
    (at once when ``Content-Length`` says so): never more than ``limit`` bytes
    of it are held."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise BodyTooLargeError(limit)
        body += chunk
    return bytes(body)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

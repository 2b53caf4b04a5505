"""Rate limits (per API key, per client address on ``/hooks``, failed
authentications per client address) and the body size limits.

Rates are parsed by the ``limits`` library (``100/minute``, ``5/second``); the
moving windows are counted in memory here (``RateLimiter`` says why). Why a raw ASGI
middleware for bodies: a 60 MiB upload must be refused after at most the
limit's worth of bytes, whatever the ``Content-Length`` claims (or without
one, chunked), and before any JSON parser sees it.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from typing import Any

from limits import RateLimitItem
from limits import parse as parse_rate
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

    The windows are counted here (``MovingWindows``), the rates parsed by the
    ``limits`` library. Why not its memory storages: the asyncio one runs an
    expiry task on almost every hit, and that task hops to a thread per
    identifier (``asyncio.to_thread``); the synchronous one starts a timer
    thread every few requests (measured: a thread per two requests). Either
    costs more than the request it limits."""

    def __init__(self, per_key: str, per_address: str, per_failure: str = DEFAULT_FAILURE_LIMIT) -> None:
        self._windows = MovingWindows()
        self._per_key = parse_rate(per_key)
        self._per_address = parse_rate(per_address)
        self._per_failure = parse_rate(per_failure)
        self.hits = 0  # how many requests were refused (for metrics)

    async def check_key(self, key_id: str) -> None:
        self._check(self._per_key, "key", key_id)

    async def check_address(self, address: str) -> None:
        self._check(self._per_address, "address", address)

    async def check_failures(self, address: str) -> None:
        """429 when ``address`` has used up its budget of failed authentications."""
        retry_after = self._windows.wait(_budget(self._per_failure), ("failure", address), time.monotonic())
        if retry_after is not None:
            self._refuse(self._per_failure, retry_after, "failed authentications")

    async def record_failure(self, address: str) -> None:
        """Spend one of ``address``'s failed-authentication budget."""
        self._windows.hit(_budget(self._per_failure), ("failure", address), time.monotonic())

    def _check(self, item: RateLimitItem, kind: str, ident: str) -> None:
        retry_after = self._windows.hit(_budget(item), (kind, ident), time.monotonic())
        if retry_after is not None:
            self._refuse(item, retry_after, f"requests per {kind}")

    def _refuse(self, item: RateLimitItem, wait: float, what: str) -> None:
        retry_after = max(1, math.ceil(wait))
        self.hits += 1
        raise ApiError(
            429,
            "RateLimitedError",
            f"too many {what} (limit: {item}); retry in {retry_after}s",
            headers={"Retry-After": str(retry_after)},
            limit=str(item),
            retry_after=retry_after,
        )


def _budget(item: RateLimitItem) -> tuple[int, float]:
    return item.amount, float(item.get_expiry())


class MovingWindows:
    """Moving-window counters in memory: per identifier, the times of its hits
    within the last window. A hit is allowed while fewer than ``amount`` hits
    fall in the ``window`` seconds before it; a refused hit is not counted.
    Identifiers idle for a whole window are swept out every ``SWEEP_EVERY``
    hits, so memory follows the callers of the last window. Event-loop thread only."""

    SWEEP_EVERY = 1024

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], tuple[float, deque[float]]] = {}
        self._since_sweep = 0

    def hit(self, budget: tuple[int, float], ident: tuple[str, str], now: float) -> float | None:
        """Count a hit at ``now``: None if allowed, else the seconds until one would be."""
        amount, window = budget
        times = self._times(ident, window, now)
        if len(times) >= amount:
            return times[0] + window - now if times else window
        times.append(now)
        self._since_sweep += 1
        if self._since_sweep >= self.SWEEP_EVERY:
            self._sweep(now)
        return None

    def wait(self, budget: tuple[int, float], ident: tuple[str, str], now: float) -> float | None:
        """Like ``hit`` without counting: None if a hit now would be allowed."""
        amount, window = budget
        entry = self._hits.get(ident)
        if entry is None:
            return None if amount > 0 else window
        times = self._times(ident, window, now)
        if len(times) < amount:
            return None
        return times[0] + window - now if times else window

    def _times(self, ident: tuple[str, str], window: float, now: float) -> deque[float]:
        entry = self._hits.get(ident)
        if entry is None:
            entry = self._hits[ident] = (window, deque())
        times = entry[1]
        while times and times[0] <= now - window:
            times.popleft()
        return times

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        idle = [k for k, (window, times) in self._hits.items() if not times or times[-1] <= now - window]
        for key in idle:
            del self._hits[key]


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

"""What every route needs: the server context, authentication with rate
limiting, and JSON bodies parsed under the server's rules.

Why the server parses bodies itself instead of letting FastAPI do it: the
error table needs "not JSON" (400) told apart from "JSON of the wrong shape
or too deeply nested" (422), and a body nested ten thousand levels deep must
be refused before a recursive parser sees it. Routes declare their body
schema with ``body_spec`` so the OpenAPI document still shows it.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from js_runtime import MAX_NESTING, nesting_over
from jsflow import text_problem
from jsflow.host import EventReceipt, WorkflowHost

from ._auth import KeyRing, Principal
from ._errors import ApiError
from ._limits import RateLimiter
from ._metrics import Metrics
from ._runner import Runner
from ._settings import Scope, ServerSettings

M = TypeVar("M", bound=BaseModel)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_bearer = HTTPBearer(auto_error=False, description="An API key: Authorization: Bearer KEY")


@dataclass
class ServerContext:
    """Everything the routes share; kept on ``app.state.jsflow``."""

    host: WorkflowHost
    settings: ServerSettings
    keys: KeyRing
    limiter: RateLimiter
    metrics: Metrics
    runner: Runner
    generated_key: str | None = None


async def context(request: Request) -> ServerContext:
    """Dependencies are coroutines: FastAPI runs plain functions in a thread pool,
    a thread hop per request that costs more than the work."""
    return request.app.state.jsflow  # type: ignore[no-any-return]


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's key must have ``scope``; counts against its rate limit."""

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        header = f"Bearer {credentials.credentials}" if credentials is not None else None
        if header is None and request.headers.get("authorization"):
            header = request.headers["authorization"]  # malformed: let the key ring say why
        principal = await authorize(request.app.state.jsflow, header, client_address(request), scope)
        request.state.principal = principal
        return principal

    return dependency


async def authorize(ctx: ServerContext, header: str | None, address: str, scope: Scope) -> Principal:
    """The caller's principal for an ``Authorization`` header, by the one rule every
    route follows (the ``require`` dependency and the hot paths of ``_hot``): an address
    over its failed-authentication budget is refused (429) before the key is looked up,
    an unknown key spends one of that budget (401), a key without ``scope`` is 403, and
    an accepted key counts against its own rate limit (429)."""
    if header is not None:
        await ctx.limiter.check_failures(address)
    try:
        principal = ctx.keys.authenticate(header, scope)
    except ApiError as exc:
        if exc.status == 401 and header is not None:
            await ctx.limiter.record_failure(address)
        raise
    await ctx.limiter.check_key(principal.key_id)
    return principal


def client_address(request: Request) -> str:
    """Who rate limits count against: the peer's address."""
    return request.client.host if request.client is not None else "unknown"


def principal_of(request: Request) -> Principal | None:
    """The caller's principal once ``require`` accepted its key (None: no key)."""
    return getattr(request.state, "principal", None)


async def by_address(request: Request) -> None:
    """A dependency for ``/hooks``: ``address_limits`` of the client's address."""
    await address_limits(request.app.state.jsflow, client_address(request))


async def address_limits(ctx: ServerContext, address: str) -> None:
    """The limits of a caller without a key (``/hooks``): the address's requests,
    then its failed token lookups (429 when either is spent)."""
    await ctx.limiter.check_address(address)
    await ctx.limiter.check_failures(address)


#: longest integer literal Python converts by default (``sys.get_int_max_str_digits``)
MAX_INT_DIGITS = 4300


class _TooLongInteger(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _TooLongInteger
    return int(text)


async def json_body(request: Request) -> Any:
    """The request body as a JSON value; an empty body is ``null``."""
    return parse_json(await request.body())


def parse_json(raw: bytes) -> Any:
    """``raw`` as a JSON value under the server's rules; empty is ``null``."""
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "BadRequestError", "request body is not UTF-8 text") from None
    if nesting_over(text):
        raise ApiError(422, "ValidationError", f"JSON body nests more than {MAX_NESTING} levels deep")
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except _TooLongInteger:
        raise ApiError(
            422, "ValidationError", f"JSON body has an integer over {MAX_INT_DIGITS} digits"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "BadRequestError", f"request body is not JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(422, "ValidationError", "JSON body contains an unpaired surrogate") from None
    return value


async def model_body(request: Request, model: type[M]) -> M:
    """The body validated as ``model`` (422 with pydantic's errors under ``body``)."""
    return as_model(await json_body(request), model)


def as_model(value: Any, model: type[M]) -> M:
    """A parsed body validated as ``model`` (422 with pydantic's errors under ``body``)."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def body_spec(model: type[BaseModel] | None, description: str, *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` declaring the JSON body (any JSON value when ``model`` is None)."""
    schema = _inline_defs(model.model_json_schema()) if model is not None else {}
    return {
        "requestBody": {
            "required": required,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace pydantic's ``#/$defs/X`` references by the definitions themselves: inside an
    OpenAPI document they would resolve against the document root, where nothing is, and the
    API explorer and the HTTP reference page could not show the nested fields."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


def check_text(value: str, what: str) -> str:
    """Path parameters reach the store as text: refuse what no store can hold
    (NUL, unpaired surrogates) with 422, by the one rule (``jsflow.text_problem``)."""
    problem = text_problem(value)
    if problem is not None:
        raise ApiError(422, "ValidationError", f"{what} {problem}")
    return value


async def accept_event(
    ctx: ServerContext, workflow_id: str, name: str, payload: Any, idempotency_key: str | None
) -> EventReceipt:
    """Store an event and have it delivered (``Runner.accept``), counted in the
    metrics: the one way both the hot path and the route take an event in."""
    started = time.perf_counter()
    host = ctx.host
    receipt = await ctx.runner.accept(
        workflow_id,
        functools.partial(host.store_event, workflow_id, name, payload, idempotency_key=idempotency_key),
        functools.partial(host.deliver_events, workflow_id),
    )
    ctx.metrics.advances.labels("event").inc()
    ctx.metrics.latency.labels("event").observe(time.perf_counter() - started)
    return receipt

"""Token resumes: ``POST /v1/resume`` (API key) and ``POST /hooks/{token}``
(the token is the credential: the URL a JS ``createHook`` hands out).

Both answer 204 with no body as soon as the resume is stored (the token
consumed with the journal write that hands the payload to the script): the
caller is an external system that only needs to know the token was accepted
(404 unknown, 409 used, 410 expired), and the workflow code that follows
runs on in the server. ``/v1/resume?wait=N`` answers 200 with the status the
instance reached within N seconds (and, for an admin key, the instance).

Why ``/hooks`` looks the token up before it reads the body: anyone may post
there, so a request with a token that does not exist must cost one indexed
read, not the parsing of a large body; the body is then read under its own
small limit (``hook_max_body``), counted while it streams in. An unknown
token also spends one of the address's failed-authentication budget.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from ._auth import Principal
from ._deps import (
    ServerContext,
    body_spec,
    by_address,
    check_text,
    client_address,
    context,
    model_body,
    parse_json,
    require,
)
from ._errors import ApiError
from ._limits import read_limited
from ._render import instance_out
from ._routes_common import AUTH, WaitQuery, errors
from ._schemas import TokenReceiptOut, TokenResumeIn
from ._settings import Scope

router = APIRouter(tags=["tokens"])
Ctx = Annotated[ServerContext, Depends(context)]


async def token_owner(ctx: ServerContext, address: str, token: str) -> str:
    """The id of the instance ``token`` belongs to; an unknown one is a 404 that
    counts as a failed authentication of the caller's ``address``."""
    check_text(token, "token")
    owner = await ctx.runner.token_owner(token)
    if owner is None:
        await ctx.limiter.record_failure(address)
        raise ApiError(404, "TokenNotFoundError", "unknown token")
    return owner


async def resume_token(ctx: ServerContext, owner: str, token: str, payload: Any) -> None:
    """Resume, answering once the token is consumed (or the advance ended)."""
    started = time.perf_counter()
    host = ctx.host

    def used() -> bool:
        return host.token_used(token)

    inst = await ctx.runner.until_stored(owner, used, host.resume_with_token, token, payload)
    ctx.metrics.advances.labels("token").inc()
    if inst is not None and inst.status == "faulted":
        ctx.metrics.faults.labels("token").inc()
    ctx.metrics.latency.labels("resume").observe(time.perf_counter() - started)


@router.post(
    "/v1/resume",
    status_code=204,
    response_class=Response,
    summary="Resume the wait a token belongs to",
    responses={
        200: {"model": TokenReceiptOut, "description": "with ?wait: the status the instance reached"},
        **errors(*AUTH, 404, 409, 410, 422),
    },
    openapi_extra=body_spec(
        TokenResumeIn, "`{token, payload}`: the resume token and the payload the wait resolves with"
    ),
)
async def resume_by_token(
    request: Request,
    ctx: Ctx,
    caller: Annotated[Principal, Depends(require(Scope.RESUME))],
    wait: float | None = WaitQuery,
) -> Response:
    deadline = time.monotonic() + min(wait or 0.0, ctx.settings.max_wait)
    body = await model_body(request, TokenResumeIn)
    owner = await token_owner(ctx, client_address(request), body.token)
    await resume_token(ctx, owner, body.token, body.payload)
    if not wait:
        return Response(status_code=204)
    inst, _ = await ctx.runner.settle_id(owner, deadline - time.monotonic())
    if inst is None:
        inst = await ctx.runner.run(ctx.host.get, owner)
    out = TokenReceiptOut(status=inst.status)
    if caller.allows(Scope.ADMIN):
        out.instance = await ctx.runner.run(instance_out, ctx.host, inst)
    return JSONResponse(out.model_dump(mode="json", exclude_none=True))


@router.post(
    "/hooks/{token}",
    status_code=204,
    response_class=Response,
    summary="Resume a createHook wait (the token in the URL is the credential)",
    responses=errors(400, 404, 409, 410, 413, 422, 429, 503),
    openapi_extra=body_spec(None, "the payload the hook resolves with (any JSON value)", required=False),
    dependencies=[Depends(by_address)],
)
async def resume_hook(
    token: Annotated[str, Path(min_length=1, max_length=1000)], request: Request, ctx: Ctx
) -> Response:
    owner = await token_owner(ctx, client_address(request), token)
    payload = parse_json(await read_limited(request, ctx.settings.hook_max_body))
    await resume_token(ctx, owner, token, payload)
    return Response(status_code=204)

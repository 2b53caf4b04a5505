"""Token resumes: ``POST /v1/resume`` (API key) and ``POST /hooks/{token}``
(the token is the credential: the URL a JS ``createHook`` hands out).

Both answer 204 with no body: the caller is an external system that only
needs to know the token was accepted (404 unknown, 409 used, 410 expired).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from ._deps import ServerContext, body_spec, by_address, check_text, context, json_body, model_body, require
from ._routes_common import AUTH, errors
from ._schemas import TokenResumeIn
from ._settings import Scope

router = APIRouter(tags=["tokens"])
Ctx = Annotated[ServerContext, Depends(context)]


async def _resume(ctx: ServerContext, token: str, payload: Any) -> Response:
    check_text(token, "token")
    started = time.perf_counter()
    key = await ctx.runner.token_key(token)
    inst = await ctx.runner.advance(key, ctx.host.resume_with_token, token, payload)
    ctx.metrics.advances.labels("token").inc()
    if inst.status == "faulted":
        ctx.metrics.faults.labels("token").inc()
    ctx.metrics.latency.labels("resume").observe(time.perf_counter() - started)
    return Response(status_code=204)


@router.post(
    "/v1/resume",
    status_code=204,
    response_class=Response,
    summary="Resume the wait a token belongs to",
    responses=errors(*AUTH, 404, 409, 410, 422),
    openapi_extra=body_spec(
        TokenResumeIn, "`{token, payload}`: the resume token and the payload the wait resolves with"
    ),
    dependencies=[Depends(require(Scope.RESUME))],
)
async def resume_by_token(request: Request, ctx: Ctx) -> Response:
    body = await model_body(request, TokenResumeIn)
    return await _resume(ctx, body.token, body.payload)


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
    payload = await json_body(request)
    return await _resume(ctx, token, payload)

"""``/healthz`` (liveness, store reachable) and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from ._deps import ServerContext, context, require
from ._metrics import CONTENT_TYPE
from ._routes_common import errors
from ._schemas import Health
from ._settings import Scope

router = APIRouter(tags=["operations"])
Ctx = Annotated[ServerContext, Depends(context)]


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness: the server answers and the store is reachable",
    responses=errors(503),
)
async def healthz(ctx: Ctx) -> Health:
    await ctx.runner.run(ctx.host.ping)  # one indexed read
    return Health(status="ok")


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics: instances by status, advances, latencies, faults, limits hit",
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}, **errors(401, 403, 429)},
    dependencies=[Depends(require(Scope.READ))],
)
async def metrics(ctx: Ctx) -> Response:
    body = await ctx.runner.run(ctx.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)

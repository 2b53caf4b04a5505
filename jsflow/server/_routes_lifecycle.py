"""Issue 20 over HTTP: start-with-event (``POST /v1/events``) and queries
(``GET /v1/workflows/{id}/queries/{name}``). Schedules are in ``_routes_schedules``.

Scopes: sending an event needs ``resume``; starting the instance as well
(``start`` in the body) needs ``admin``, checked before anything is stored.
A query needs ``read`` and changes nothing.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import Field

from jsflow.host import EventReceipt, StartSpec

from ._auth import Principal
from ._deps import ServerContext, body_spec, check_text, context, model_body, require
from ._errors import ApiError
from ._routes_common import AUTH, PathName, WaitQuery, WorkflowId, errors
from ._routes_workflows import deadline_of, receipt_reply
from ._schemas import EventReceiptOut, _In, _Out
from ._settings import Scope

router = APIRouter(prefix="/v1", tags=["lifecycle"])
Ctx = Annotated[ServerContext, Depends(context)]


class StartSpecIn(_In):
    script: str = Field(min_length=1, max_length=200, description="a registered script name")
    args: list[Any] = Field(default_factory=list, description="the entry point's arguments")
    entry_point: str = Field(default="main", min_length=1, max_length=200)


class EventIn(_In):
    workflow_id: str = Field(min_length=1, description="the host's id rule applies")
    name: str = Field(min_length=1, max_length=200, description="the event name")
    payload: Any = None
    start: StartSpecIn | None = Field(
        default=None, description="start the instance with this if it does not exist (admin scope)"
    )


class QueryOut(_Out):
    value: Any = Field(description="the query handler's answer (any JSON value)")


def _start_and_send(ctx: ServerContext, body: EventIn, key: str | None) -> EventReceipt:
    """Start the instance if it does not exist and send the event, in one
    transaction (the start runs the script to its first wait)."""
    assert body.start is not None
    spec = StartSpec(body.start.script, body.start.args, entry_point=body.start.entry_point)
    return ctx.host.send_event(body.workflow_id, body.name, body.payload, idempotency_key=key, start=spec)


@router.post(
    "/events",
    status_code=202,
    response_model=EventReceiptOut,
    summary="Send an event; with start, start the instance first if it does not exist (atomic)",
    description=(
        "Scope: `resume` to send an event to an existing instance; `admin` when the body "
        "has `start`. The event is stored first (buffered until a waitForEvent listens for it). "
        "With `start`, an instance that does not exist is created from it in the same "
        "transaction, so concurrent calls start it once and every event arrives; an existing "
        "id under another script is 409 WorkflowExistsError. `Idempotency-Key` stores the "
        "event once per key and instance; `?wait=` holds the reply until the instance "
        "suspends again or finishes (at most that long), adding the instance's status and, "
        "for admin keys, the instance."
    ),
    responses=errors(*AUTH, 404, 409, 422),
    openapi_extra=body_spec(EventIn, "the event, and optionally how to start its instance"),
)
async def post_event(
    request: Request,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(require(Scope.RESUME))],
    wait: float | None = WaitQuery,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> EventReceiptOut:
    body = await model_body(request, EventIn)
    if body.start is not None and not principal.allows(Scope.ADMIN):
        raise ApiError(
            403,
            "PermissionDeniedError",
            "starting an instance (start in the body) needs the 'admin' scope",
            needed_scope=Scope.ADMIN.value,
            scopes=sorted(s.value for s in principal.scopes),
        )
    check_text(body.workflow_id, "workflow id")
    check_text(body.name, "event name")
    deadline = deadline_of(ctx, wait)
    started = time.perf_counter()
    wid = body.workflow_id
    if body.start is None:  # answered once stored; delivered after the reply
        receipt = await ctx.runner.accept(
            wid,
            functools.partial(
                ctx.host.store_event, wid, body.name, body.payload, idempotency_key=idempotency_key
            ),
            functools.partial(ctx.host.deliver_events, wid),
        )
    else:
        receipt = await ctx.runner.advance(wid, _start_and_send, ctx, body, idempotency_key)
    ctx.metrics.advances.labels("event").inc()
    ctx.metrics.latency.labels("event").observe(time.perf_counter() - started)
    return await receipt_reply(ctx, principal, receipt, wait, deadline)


def _query_errors() -> dict[int | str, dict[str, Any]]:
    out = errors(*AUTH, 404, 422)
    out[404] = {**out[404], "description": "unknown workflow, or the script defines no such query"}
    out[422] = {
        **out[422],
        "description": "QueryError: the handler threw, was async, or called a step, suspend or "
        "wait (the script's TypeError); or ?args is not a JSON array",
    }
    return out


@router.get(
    "/workflows/{workflow_id}/queries/{name}",
    response_model=QueryOut,
    summary="Answer a query the script defines (defineQuery), read-only",
    description=(
        "Scope: `read`. Answers from the instance's current state (a finished instance "
        "from its final state) without journaling or changing anything. `args` is a "
        "JSON array of arguments for the handler."
    ),
    responses=_query_errors(),
    dependencies=[Depends(require(Scope.READ))],
)
async def get_query(
    workflow_id: WorkflowId,
    name: PathName,
    ctx: Ctx,
    args: Annotated[
        str | None, Query(max_length=1000, description="a JSON array (kept short: it travels in the URL)")
    ] = None,
) -> QueryOut:
    check_text(workflow_id, "workflow id")
    check_text(name, "query name")
    values = _args(args)
    value = await ctx.runner.run(ctx.host.query, workflow_id, name, *values)
    return QueryOut(value=value)


def _args(text: str | None) -> list[Any]:
    if text is None or not text.strip():
        return []
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise ApiError(422, "ValidationError", "args is not JSON (expected a JSON array)") from None
    if not isinstance(value, list):
        raise ApiError(422, "ValidationError", "args must be a JSON array")
    return value

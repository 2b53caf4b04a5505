"""``/v1/workflows``: start, list, read, history, events, resume, cancel, retry."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from jsflow.host import WAITING_ON, EventReceipt, UnknownWorkflowError, WorkflowInstance

from ._auth import Principal
from ._deps import (
    ServerContext,
    accept_event,
    body_spec,
    check_text,
    context,
    json_body,
    model_body,
    require,
)
from ._errors import ApiError
from ._render import history_out, instance_out, without_credentials
from ._routes_common import AUTH, PathName, WaitQuery, WorkflowId, errors
from ._schemas import (
    CancelIn,
    EventReceiptOut,
    HistoryList,
    InstanceList,
    InstanceOut,
    IssuedTokenOut,
    ResumeIn,
    StartIn,
)
from ._settings import Scope

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])
Ctx = Annotated[ServerContext, Depends(context)]
#: a caller with the read scope (or admin); only admin sees hook URLs and tokens
Reader = Annotated[Principal, Depends(require(Scope.READ))]
#: a caller with the resume scope (or admin); only admin sees instance bodies
Sender = Annotated[Principal, Depends(require(Scope.RESUME))]
Status = Literal["running", "suspended", "completed", "faulted", "cancelled"]
WaitingOn = Literal[WAITING_ON]  # type: ignore[valid-type]  # the categories and every wait kind


def deadline_of(ctx: ServerContext, wait: float | None) -> float:
    """When a ``?wait=N`` reply is due (``time.monotonic`` clock)."""
    return time.monotonic() + min(wait or 0.0, ctx.settings.max_wait)


async def _settled(ctx: ServerContext, workflow_id: str, deadline: float) -> InstanceOut:
    """``?wait``: the instance once it settled, or as it is at the deadline."""
    inst, _ = await ctx.runner.settle_id(workflow_id, deadline - time.monotonic())
    if inst is None:
        inst = await ctx.runner.run(ctx.host.get, workflow_id)
    return await ctx.runner.run(instance_out, ctx.host, inst)


async def _advanced(
    ctx: ServerContext, workflow_id: str, fn: Callable[[], WorkflowInstance], wait: float | None
) -> InstanceOut:
    """Run ``fn`` on the instance and answer once its change is stored (the
    instance is running it), or when it ended; with ``?wait``, at the latest at
    the deadline, settled if it settled by then."""
    deadline = deadline_of(ctx, wait)
    inst = await ctx.runner.until_stored(workflow_id, _running(ctx, workflow_id), fn)
    if wait and (inst is None or inst.status == "running"):
        return await _settled(ctx, workflow_id, deadline)
    if inst is None:
        inst = await ctx.runner.run(ctx.host.get, workflow_id)
    return await ctx.runner.run(instance_out, ctx.host, inst)


def _running(ctx: ServerContext, workflow_id: str) -> Callable[[], bool]:
    """Whether the instance shows "running": in this process, where one change
    per instance runs at a time, that is the change just started, stored."""

    def check() -> bool:
        return ctx.host.get(workflow_id).status == "running"

    return check


def _counted(ctx: ServerContext, op: str, inst: WorkflowInstance) -> InstanceOut:
    ctx.metrics.advances.labels(op).inc()
    if inst.status == "faulted":
        ctx.metrics.faults.labels(op).inc()
    return instance_out(ctx.host, inst)


def _start(ctx: ServerContext, body: StartIn) -> tuple[bool, InstanceOut]:
    """Start, or return the instance the id already names. The rule for an existing
    id is the host's (``WorkflowExistsError`` for another script or arguments)."""
    host = ctx.host
    existed = False
    if body.workflow_id is not None:
        try:
            host.get(body.workflow_id)
            existed = True
        except UnknownWorkflowError:
            pass
    inst = host.start(
        body.script,
        *body.args,
        workflow_id=body.workflow_id,
        entry_point=body.entry_point,
        version=body.version,
        metadata=body.metadata,
    )
    if existed:
        return False, instance_out(host, inst)
    return True, _counted(ctx, "start", inst)


@router.post(
    "",
    status_code=201,
    response_model=InstanceOut,
    summary="Start a workflow (idempotent on workflow_id)",
    responses={
        200: {"model": InstanceOut, "description": "the instance already existed"},
        **errors(*AUTH, 404, 409, 422),
    },
    openapi_extra=body_spec(StartIn, "the script to run and its arguments"),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def start_workflow(
    request: Request, response: Response, ctx: Ctx, wait: float | None = WaitQuery
) -> InstanceOut:
    deadline = deadline_of(ctx, wait)
    body = await model_body(request, StartIn)
    if body.workflow_id is None:
        created, out = await ctx.runner.work(_start, ctx, body)
    else:
        check_text(body.workflow_id, "workflow_id")
        task = ctx.runner.spawn(body.workflow_id, _start, ctx, body)
        if wait:  # at most until the deadline, whatever the script does
            await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
            if not task.done():  # still running its first turn: stored, answered as it is
                response.status_code = 201
                with contextlib.suppress(UnknownWorkflowError):  # not stored yet: wait for it
                    return await _settled(ctx, body.workflow_id, deadline)
        created, out = await task
    response.status_code = 201 if created else 200
    if wait and out.status == "running":
        return await _settled(ctx, out.workflow_id, deadline)
    return out


def _page(ctx: ServerContext, kwargs: dict[str, Any]) -> InstanceList:
    page = ctx.host.list_page(**kwargs)
    return InstanceList(items=[instance_out(ctx.host, i) for i in page.items], next_cursor=page.next_cursor)


@router.get(
    "",
    response_model=InstanceList,
    summary="List instances, newest first",
    responses=errors(*AUTH),
)
async def list_workflows(
    ctx: Ctx,
    caller: Reader,
    status: Annotated[list[Status] | None, Query()] = None,
    script: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    waiting_on: Annotated[list[WaitingOn] | None, Query()] = None,
    search: Annotated[
        str | None, Query(max_length=1000, description="a substring of the workflow id")
    ] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
) -> InstanceList:
    for value, what in ((script, "script"), (search, "search"), (cursor, "cursor")):
        if value is not None:
            check_text(value, what)
    kwargs = {
        "status": status,
        "script": script,
        "waiting_on": waiting_on,
        "search": search,
        "created_after": created_after,
        "created_before": created_before,
        "limit": limit,
        "cursor": cursor,
    }
    for key in ("created_after", "created_before"):
        if kwargs[key] is not None and kwargs[key].tzinfo is None:
            raise ApiError(400, "BadRequestError", f"{key} needs a time zone (e.g. 2026-01-01T00:00:00Z)")
    page = await ctx.runner.run(_page, ctx, kwargs)
    if not caller.allows(Scope.ADMIN):
        page.items = [without_credentials(i) for i in page.items]
    return page


@router.get(
    "/{workflow_id}",
    response_model=InstanceOut,
    summary="One instance with its pending waits and buffered events",
    responses=errors(*AUTH, 404, 422),
)
async def get_workflow(workflow_id: WorkflowId, ctx: Ctx, caller: Reader) -> InstanceOut:
    check_text(workflow_id, "workflow id")
    out = await ctx.runner.run(lambda: instance_out(ctx.host, ctx.host.get(workflow_id)))
    return out if caller.allows(Scope.ADMIN) else without_credentials(out)


@router.get(
    "/{workflow_id}/history",
    response_model=HistoryList,
    summary="The timeline: lifecycle events and journal entries, oldest first",
    responses=errors(*AUTH, 404, 422),
    dependencies=[Depends(require(Scope.READ))],
)
async def get_history(
    workflow_id: WorkflowId,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
) -> HistoryList:
    check_text(workflow_id, "workflow id")
    if cursor is not None:
        check_text(cursor, "cursor")
    page = await ctx.runner.run(ctx.host.history_page, workflow_id, limit=limit, cursor=cursor)
    return HistoryList(items=[history_out(i) for i in page.items], next_cursor=page.next_cursor)


def receipt_out(receipt: EventReceipt) -> EventReceiptOut:
    return EventReceiptOut(
        event_id=receipt.event_id,
        workflow_id=receipt.workflow_id,
        name=receipt.name,
        delivered=receipt.delivered,
        buffered=not receipt.delivered,
        wait_id=receipt.wait_id,
        duplicate=receipt.duplicate,
    )


@router.post(
    "/{workflow_id}/events/{name}",
    status_code=202,
    response_model=EventReceiptOut,
    response_model_exclude_none=True,
    summary="Send an event (stored first, then delivered while the reply goes out)",
    responses=errors(*AUTH, 404, 409, 422),
    openapi_extra=body_spec(None, "the event payload (any JSON value)", required=False),
)
async def send_event(
    workflow_id: WorkflowId,
    name: PathName,
    request: Request,
    ctx: Ctx,
    caller: Sender,
    wait: float | None = WaitQuery,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> EventReceiptOut:
    """Answers as soon as the event is stored; the server delivers it after the
    reply. With ``?wait=N`` the reply waits (at most N seconds) for the instance
    to settle and says whether the event was delivered, the instance's status
    and, for an admin key, the instance."""
    deadline = deadline_of(ctx, wait)
    check_text(workflow_id, "workflow id")
    check_text(name, "event name")
    payload = await json_body(request)
    receipt = await accept_event(ctx, workflow_id, name, payload, idempotency_key)
    return await receipt_reply(ctx, caller, receipt, wait, deadline)


async def receipt_reply(
    ctx: ServerContext, caller: Principal, receipt: EventReceipt, wait: float | None, deadline: float
) -> EventReceiptOut:
    """An event's receipt; with ``?wait``, once the instance settled or at the
    deadline: whether the event was delivered by then, the instance's status
    and, for an admin key only, the instance (a resume key gets no instance
    body, a read key no credential)."""
    out = receipt_out(receipt)
    if not wait:
        return out
    inst, pending = await ctx.runner.settle_id(receipt.workflow_id, deadline - time.monotonic())
    if inst is None:
        return out
    if not out.delivered and receipt.event_id not in pending:
        out.delivered, out.buffered = True, False
    out.status = inst.status
    if caller.allows(Scope.ADMIN):
        out.instance = await ctx.runner.run(instance_out, ctx.host, inst)
    return out


@router.post(
    "/{workflow_id}/resume",
    response_model=InstanceOut,
    summary="Complete a pending suspend or token wait",
    responses=errors(*AUTH, 404, 409, 422),
    openapi_extra=body_spec(
        ResumeIn,
        "`{value, wait_id?}`: the value the wait resolves with; without wait_id, the single pending suspend "
        "or token wait (none or several: 409 WaitSelectionError listing the pending waits)",
        required=False,
    ),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def resume_workflow(
    workflow_id: WorkflowId, request: Request, ctx: Ctx, wait: float | None = WaitQuery
) -> InstanceOut:
    check_text(workflow_id, "workflow id")
    body = await model_body(request, ResumeIn) if (await request.body()).strip() else ResumeIn()
    started = time.perf_counter()

    def resume() -> WorkflowInstance:
        return ctx.host.resume(workflow_id, body.value, body.wait_id)

    out = await _advanced(ctx, workflow_id, resume, wait)
    ctx.metrics.advances.labels("resume").inc()
    ctx.metrics.latency.labels("resume").observe(time.perf_counter() - started)
    return out


@router.post(
    "/{workflow_id}/cancel",
    response_model=InstanceOut,
    summary="Cancel a running or suspended instance",
    responses=errors(*AUTH, 404, 409, 422),
    openapi_extra=body_spec(CancelIn, "why (optional), and whether the script cleans up", required=False),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def cancel_workflow(workflow_id: WorkflowId, request: Request, ctx: Ctx) -> InstanceOut:
    check_text(workflow_id, "workflow id")
    body = await model_body(request, CancelIn) if (await request.body()).strip() else CancelIn()
    if body.reason is not None:
        check_text(body.reason, "reason")
    return await ctx.runner.advance(
        workflow_id,
        lambda: instance_out(ctx.host, ctx.host.cancel(workflow_id, body.reason, cleanup=body.cleanup)),
    )


@router.post(
    "/{workflow_id}/retry",
    response_model=InstanceOut,
    summary="Run a faulted instance again from its last good state",
    responses=errors(*AUTH, 404, 409, 422),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def retry_workflow(workflow_id: WorkflowId, ctx: Ctx, wait: float | None = WaitQuery) -> InstanceOut:
    check_text(workflow_id, "workflow id")

    def retry() -> WorkflowInstance:
        return ctx.host.retry(workflow_id)

    out = await _advanced(ctx, workflow_id, retry, wait)
    ctx.metrics.advances.labels("retry").inc()
    return out


@router.post(
    "/{workflow_id}/waits/{wait_id}/token",
    status_code=201,
    response_model=IssuedTokenOut,
    summary="Issue a fresh resume token for a pending token wait; the old token stops working",
    responses=errors(*AUTH, 404, 409, 422),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def reissue_token(workflow_id: WorkflowId, wait_id: int, ctx: Ctx) -> IssuedTokenOut:
    check_text(workflow_id, "workflow id")

    def reissue() -> IssuedTokenOut:
        info = ctx.host.reissue_token(workflow_id, wait_id)
        return IssuedTokenOut(
            wait_id=info.wait_id,
            function_name=info.function_name,
            kind=info.kind,
            token=info.token,
            expires_at=info.expires_at,
            url=info.url,
        )

    return await ctx.runner.advance(workflow_id, reissue)

"""``/v1/schedules``: cron schedules that start workflows (issue 20).

Scopes: ``read`` lists them; ``admin`` adds, replaces, pauses, resumes and
removes. The body of ``POST /v1/schedules`` uses the parameter names of
``WorkflowHost.add_schedule``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import Field

from jsflow.host import Schedule

from ._deps import ServerContext, body_spec, check_text, context, model_body, require
from ._routes_common import AUTH, errors
from ._schemas import _In, _Out
from ._settings import Scope

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])
Ctx = Annotated[ServerContext, Depends(context)]
Name = Annotated[str, Path(min_length=1, max_length=200, description="the schedule name")]


class ScheduleIn(_In):
    name: str = Field(min_length=1, max_length=200)
    cron: str = Field(min_length=1, max_length=200, description="a cron expression, like '0 9 * * 1-5'")
    script: str = Field(min_length=1, max_length=200, description="a registered script name")
    args: list[Any] = Field(default_factory=list)
    timezone: str = Field(default="UTC", max_length=100)
    overlap: Literal["skip", "allow"] = "skip"
    catch_up: Literal["latest", "all", "none"] = "latest"


class ScheduleOut(_Out):
    name: str
    cron: str
    script: str
    args: list[Any]
    timezone: str
    overlap: str
    catch_up: str
    paused: bool
    next_run: datetime | None = Field(description="the next slot (UTC); null while paused")
    last_instance: str | None = Field(description="the instance of the latest started slot")
    created_at: datetime
    updated_at: datetime


class ScheduleList(_Out):
    items: list[ScheduleOut]


def schedule_out(s: Schedule) -> ScheduleOut:
    return ScheduleOut(
        name=s.name,
        cron=s.cron,
        script=s.script,
        args=s.args,
        timezone=s.timezone,
        overlap=s.overlap,
        catch_up=s.catch_up,
        paused=s.paused,
        next_run=s.next_run,
        last_instance=s.last_instance,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _errors_with(**why: str) -> dict[int | str, dict[str, Any]]:
    out = errors(*AUTH, *(int(k[1:]) for k in why))
    for key, text in why.items():
        out[int(key[1:])] = {**out[int(key[1:])], "description": text}
    return out


@router.post(
    "",
    status_code=201,
    response_model=ScheduleOut,
    summary="Add a schedule (an existing name is replaced)",
    description="Scope: `admin`. The body fields are the parameters of `WorkflowHost.add_schedule`.",
    responses=_errors_with(
        s404="unknown script", s422="a bad cron expression, time zone, option or body (InvalidScheduleError)"
    ),
    openapi_extra=body_spec(ScheduleIn, "the schedule"),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def add_schedule(request: Request, ctx: Ctx) -> ScheduleOut:
    body = await model_body(request, ScheduleIn)
    for value, what in (
        (body.name, "name"),
        (body.cron, "cron"),
        (body.script, "script"),
        (body.timezone, "timezone"),
    ):
        check_text(value, what)
    s = await ctx.runner.run(
        ctx.host.add_schedule,
        body.name,
        body.cron,
        body.script,
        body.args,
        timezone=body.timezone,
        overlap=body.overlap,
        catch_up=body.catch_up,
    )
    return schedule_out(s)


@router.get(
    "",
    response_model=ScheduleList,
    summary="The schedules, each with its next run",
    description="Scope: `read`.",
    responses=errors(*AUTH),
    dependencies=[Depends(require(Scope.READ))],
)
async def list_schedules(ctx: Ctx) -> ScheduleList:
    items = await ctx.runner.run(ctx.host.list_schedules)
    return ScheduleList(items=[schedule_out(s) for s in items])


@router.post(
    "/{name}/pause",
    response_model=ScheduleOut,
    summary="Pause a schedule: slots that fall while paused are never started",
    description="Scope: `admin`.",
    responses=_errors_with(s404="unknown schedule", s422="a name that is not valid text"),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def pause_schedule(name: Name, ctx: Ctx) -> ScheduleOut:
    check_text(name, "schedule name")
    return schedule_out(await ctx.runner.run(ctx.host.pause_schedule, name))


@router.post(
    "/{name}/resume",
    response_model=ScheduleOut,
    summary="Resume a schedule from its next slot after now",
    description="Scope: `admin`.",
    responses=_errors_with(s404="unknown schedule", s422="a name that is not valid text"),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def resume_schedule(name: Name, ctx: Ctx) -> ScheduleOut:
    check_text(name, "schedule name")
    return schedule_out(await ctx.runner.run(ctx.host.resume_schedule, name))


@router.delete(
    "/{name}",
    status_code=204,
    response_class=Response,
    summary="Remove a schedule (the instances it started stay)",
    description="Scope: `admin`.",
    responses=_errors_with(s404="unknown schedule", s422="a name that is not valid text"),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def remove_schedule(name: Name, ctx: Ctx) -> Response:
    check_text(name, "schedule name")
    await ctx.runner.run(ctx.host.remove_schedule, name)
    return Response(status_code=204)

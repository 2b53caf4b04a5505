"""``/v1/scripts``: register a script version, list versions, read one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from jsflow.host.store import ScriptVersion

from ._deps import ServerContext, body_spec, check_text, context, model_body, require
from ._routes_common import AUTH, errors
from ._schemas import ScriptDetail, ScriptIn, ScriptList, ScriptOut
from ._settings import Scope

router = APIRouter(prefix="/v1/scripts", tags=["scripts"])
Ctx = Annotated[ServerContext, Depends(context)]


def _out(version: ScriptVersion) -> ScriptOut:
    return ScriptOut(name=version.name, hash=version.hash, created_at=version.created_at)


@router.post(
    "",
    status_code=201,
    response_model=ScriptOut,
    summary="Register a script version (content-addressed; the newest is the default for starts)",
    responses=errors(*AUTH, 422),
    openapi_extra=body_spec(ScriptIn, "the script's name and JavaScript source"),
    dependencies=[Depends(require(Scope.ADMIN))],
)
async def register_script(request: Request, ctx: Ctx) -> ScriptOut:
    body = await model_body(request, ScriptIn)
    check_text(body.name, "name")
    check_text(body.source, "source")
    return _out(await ctx.runner.run(ctx.host.register_script, body.name, body.source))


@router.get(
    "",
    response_model=ScriptList,
    summary="Every stored script version, by name, oldest first",
    responses=errors(*AUTH),
    dependencies=[Depends(require(Scope.READ))],
)
async def list_scripts(ctx: Ctx) -> ScriptList:
    versions = await ctx.runner.run(ctx.host.list_scripts)
    return ScriptList(items=[_out(v) for v in versions])


def _script(ctx: ServerContext, name: str, version: str | None) -> ScriptVersion:
    return ctx.host.get_script(name, version)


@router.get(
    "/{name}",
    response_model=ScriptDetail,
    summary="A script's latest version (or ?version=HASH) with its source",
    responses=errors(*AUTH, 404, 422),
    dependencies=[Depends(require(Scope.READ))],
)
async def get_script(
    name: Annotated[str, Path(min_length=1, max_length=200)],
    ctx: Ctx,
    version: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> ScriptDetail:
    check_text(name, "name")
    if version is not None:
        check_text(version, "version")
    found = await ctx.runner.run(_script, ctx, name, version)
    return ScriptDetail(name=found.name, hash=found.hash, created_at=found.created_at, source=found.source)

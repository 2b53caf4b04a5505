"""``/ui/scripts``: every script name, its versions (newest first) with their
sources, and the instances that run on each version."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ._core import UI, digest
from ._data import scripts_data


def change_stamp(ui: UI) -> str:
    versions = sorted((s.name, s.hash) for s in ui.host.list_scripts())
    return digest([versions, ui.host.count_by_status()])


def register(router: APIRouter, ui: UI) -> None:
    @router.get("/scripts", include_in_schema=False)
    async def scripts(request: Request) -> Response:
        visit = ui.visit(request)
        if visit.actor is None:
            return ui.login_redirect(request)
        stamp = await ui.read(change_stamp, ui)
        if request.query_params.get("format") == "stamp":
            return ui.answer(request, visit, "", {}, stamp=stamp)
        data = await ui.read(scripts_data, ui.host)
        return ui.answer(request, visit, "scripts.html", data, stamp=stamp)

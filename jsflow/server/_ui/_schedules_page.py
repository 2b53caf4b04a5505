"""``/ui/schedules``: the cron schedules, each with its next run, state and the
instance of its latest started slot (issue 20)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from jsflow.host import WorkflowHost

from ._core import UI, digest


def schedules_data(host: WorkflowHost) -> dict[str, Any]:
    items = []
    for s in host.list_schedules():
        history = host.schedule_history(s.name, limit=5)
        items.append(
            {
                "name": s.name,
                "cron": s.cron,
                "timezone": s.timezone,
                "script": s.script,
                "args": s.args,
                "overlap": s.overlap,
                "catch_up": s.catch_up,
                "paused": s.paused,
                "next_run": s.next_run,
                "last_instance": s.last_instance,
                "history": [{"at": e.at, "kind": e.kind, "detail": e.detail} for e in history],
            }
        )
    return {"schedules": items}


def change_stamp(ui: UI) -> str:
    return digest([(s.name, s.paused, s.next_run, s.last_instance) for s in ui.host.list_schedules()])


def register(router: APIRouter, ui: UI) -> None:
    @router.get("/schedules", include_in_schema=False)
    async def schedules(request: Request) -> Response:
        visit = ui.visit(request)
        if visit.actor is None:
            return ui.login_redirect(request)
        stamp = await ui.read(change_stamp, ui)
        if request.query_params.get("format") == "stamp":
            return ui.answer(request, visit, "", {}, stamp=stamp)
        data = await ui.read(schedules_data, ui.host)
        return ui.answer(request, visit, "schedules.html", data, stamp=stamp)

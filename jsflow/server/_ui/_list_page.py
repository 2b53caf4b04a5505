"""``/ui/``: instances newest first, filtered by status, script and what they
wait on, searched by id, paged by cursor, with counts per status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from jsflow.host import InvalidCursorError

from ._core import UI, digest
from ._data import LIST_LIMIT, MAX_LIST_LIMIT, STATUSES, WAITING_ON, ListFilters, list_data
from ._render import UI_PREFIX


def filters_from(request: Request) -> tuple[ListFilters, str | None]:
    """The filters in the query string; unknown values are dropped with a note."""
    q = request.query_params
    status = q.get("status") or None
    waiting_on = q.get("waiting_on") or None
    problem = None
    if status is not None and status not in STATUSES:
        problem, status = f"unknown status {status!r}: showing all", None
    if waiting_on is not None and waiting_on not in WAITING_ON:
        problem, waiting_on = f"unknown waiting-on kind {waiting_on!r}: showing all", None
    limit = LIST_LIMIT
    if q.get("limit"):
        try:
            limit = int(q["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIST_LIMIT:
            problem, limit = f"limit must be 1 to {MAX_LIST_LIMIT}: showing {LIST_LIMIT}", LIST_LIMIT
    filters = ListFilters(
        status=status,
        script=q.get("script") or None,
        waiting_on=waiting_on,
        search=(q.get("q") or "").strip() or None,
        cursor=q.get("cursor") or None,
        limit=limit,
    )
    return filters, problem


def build(ui: UI, filters: ListFilters) -> tuple[dict[str, Any], str | None]:
    host, problem = ui.host, None
    kwargs: dict[str, Any] = {
        "status": filters.status,
        "script": filters.script,
        "waiting_on": filters.waiting_on,
        "search": filters.search,
        "limit": filters.limit,
    }
    try:
        page = host.list_page(cursor=filters.cursor, **kwargs)
    except InvalidCursorError as exc:
        problem = f"{exc}: showing the first page"
        page = host.list_page(**kwargs)
    return list_data(host, filters, page, ui.now()), problem


def register(router: APIRouter, ui: UI) -> None:
    @router.get("", include_in_schema=False)
    async def no_slash() -> Response:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=307)

    @router.get("/", include_in_schema=False)
    async def instances(request: Request) -> Response:
        visit = ui.visit(request)
        if visit.actor is None:
            return ui.login_redirect(request)
        filters, problem = filters_from(request)
        data, cursor_problem = await ui.read(build, ui, filters)
        stamp = digest(
            [data["counts"], [(i["workflow_id"], i["status"], i["updated_at"]) for i in data["items"]]]
        )
        return ui.answer(
            request,
            visit,
            "list.html",
            data,
            stamp=stamp,
            extra={"problem": "; ".join(p for p in (problem, cursor_problem) if p), "cursor": filters.cursor},
        )

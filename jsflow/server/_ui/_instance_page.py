"""``/ui/workflows/{id}``: one instance, its waits, buffered events and timeline,
and the forms that steer it (send an event, resume a wait, cancel, retry).

Why one POST endpoint with an ``action`` field: a workflow id may hold any
character, ``/`` included, so the id is the whole rest of the path and
nothing may follow it. A refused action re-renders the page with the host's
error in words and the form as it was typed; a done one redirects back
(POST/redirect/GET) with a one-line notice.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from jsflow import WorkflowError
from jsflow.host import HostError, InvalidCursorError, UnknownWorkflowError

from .._errors import http_status
from ._core import UI, Visit, digest
from ._data import HISTORY_LIMIT, history_data, instance_data, without_credentials
from ._render import workflow_url
from ._session import CSRF_FIELD, CSRFError, check_csrf

ACTIONS = ("event", "resume", "cancel", "retry")
#: how long the event form waits for the delivery before it answers
DELIVERY_WAIT = 2.0


class FormError(ValueError):
    """A form value the view cannot use (not JSON, missing name, bad wait id); ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_json(field: str, text: object) -> Any:
    """A JSON form field; empty means null."""
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise FormError(field, f"the {field} is not valid JSON: {exc}") from exc


def build(ui: UI, workflow_id: str, cursor: str | None) -> dict[str, Any]:
    host = ui.host
    inst = host.get(workflow_id)
    data = instance_data(host, inst, ui.now())
    problem = None
    try:
        page = host.history_page(workflow_id, limit=HISTORY_LIMIT, cursor=cursor)
    except InvalidCursorError as exc:
        problem, cursor = f"{exc}: showing the first page", None
        page = host.history_page(workflow_id, limit=HISTORY_LIMIT)
    data["history"] = history_data(page, cursor)
    data["problem"] = problem
    data["queries"] = query_answers(ui, workflow_id)
    return data


def query_answers(ui: UI, workflow_id: str) -> list[dict[str, Any]]:
    """Each query the script defines (``defineQuery``), answered with no arguments;
    a handler that fails (or needs arguments) shows its error instead."""
    host = ui.host
    try:
        inst = host.get(workflow_id)
        if "defineQuery" not in host.get_script(inst.script_name, inst.script_hash).source:
            return []  # no replay for a script without queries (a long journal opens at once)
        names = host.list_queries(workflow_id)
    except (HostError, WorkflowError):
        return []
    out: list[dict[str, Any]] = []
    for name in names[:20]:
        try:
            out.append({"name": name, "value": host.query(workflow_id, name), "error": None})
        except (HostError, WorkflowError) as exc:
            out.append({"name": name, "value": None, "error": str(exc)})
    return out


def change_stamp(ui: UI, workflow_id: str) -> str:
    """What changes when the page would: status, save time, waits, buffered events."""
    inst = ui.host.get(workflow_id)
    inbox = [e.event_id for e in ui.host.pending_events(workflow_id)]
    waits = [(w.wait_id, w.resume_at) for w in inst.waits]
    return digest([inst.status, inst.updated_at, waits, inbox])


def perform(ui: UI, workflow_id: str, action: str, form: FormData) -> str:
    """Run one form action on the host; returns the notice shown after it."""
    host = ui.host
    if action == "resume":
        try:
            wait_id = int(str(form.get("wait_id") or ""))
        except ValueError as exc:
            raise FormError("wait_id", "choose the wait to resume") from exc
        inst = host.resume(workflow_id, parse_json("value", form.get("value")), wait_id)
        return f"Wait #{wait_id} resumed; the instance is now {inst.status}."
    if action == "cancel":
        cleanup = str(form.get("cleanup") or "yes") != "no"
        inst = host.cancel(workflow_id, str(form.get("reason") or "").strip() or None, cleanup=cleanup)
        if inst.status != "cancelled":
            return "Cancellation requested: a worker that can run this workflow delivers it and cleans up."
        how = " after the script's cleanup" if cleanup else " at once, without cleanup"
        return f"Cancelled{how}; the instance is now {inst.status}."
    inst = host.retry(workflow_id)
    return f"Retried; the instance is now {inst.status}."


async def send_event(ui: UI, workflow_id: str, form: FormData) -> str:
    """The event form: store the event, then deliver it in the background. The
    page waits for the delivery at most ``DELIVERY_WAIT`` seconds, so a slow
    step after the wait never holds the form's answer; the notice says what
    became of the event by then."""
    name = str(form.get("name") or "").strip()
    if not name:
        raise FormError("name", "an event needs a name")
    payload = parse_json("payload", form.get("payload"))
    receipt = await ui.read(ui.host.store_event, workflow_id, name, payload)
    delivery = ui.deliver_later(workflow_id)
    await asyncio.wait({delivery}, timeout=DELIVERY_WAIT)
    delivered = receipt.delivered
    if not delivered and delivery.done():
        pending = await ui.read(ui.host.pending_events, workflow_id)
        delivered = receipt.event_id not in {e.event_id for e in pending}
    if delivered:
        how = "delivered to the waiting script"
    elif delivery.done():
        how = "buffered until the script waits"
    else:
        how = "being delivered (the script is still running)"
    return f"Event {name!r} stored as #{receipt.event_id}, {how}."


def status_for(exc: Exception) -> int:
    """The API's status for a host error; a form the view could not read is a 400."""
    return 400 if isinstance(exc, FormError) else http_status(exc)


def register(router: APIRouter, ui: UI) -> None:
    @router.get("/workflows/{workflow_id:path}", include_in_schema=False)
    async def instance(request: Request, workflow_id: str) -> Response:
        visit = ui.visit(request)
        if visit.actor is None:
            return ui.login_redirect(request)
        return await _show(ui, request, visit, workflow_id)

    @router.post("/workflows/{workflow_id:path}", include_in_schema=False)
    async def act(request: Request, workflow_id: str) -> Response:
        visit = ui.visit(request)
        if visit.actor is None:
            return ui.login_redirect(request)
        form = await request.form()
        action = str(form.get("action") or "")
        try:
            check_csrf(visit.session, form.get(CSRF_FIELD))
        except CSRFError as exc:
            return await _show(ui, request, visit, workflow_id, error=(action, str(exc)), status_code=403)
        if action not in ACTIONS:
            return await _show(ui, request, visit, workflow_id, error=("", "unknown action"), status_code=400)
        if not visit.actor.may(action):
            scopes = ", ".join(sorted(visit.actor.scopes))
            message = f"your API key (scopes: {scopes}) may not {action} here"
            return await _show(ui, request, visit, workflow_id, error=(action, message), status_code=403)
        try:
            if action == "event":
                notice = await send_event(ui, workflow_id, form)
            else:
                notice = await ui.advance(workflow_id, perform, ui, workflow_id, action, form)
        except (HostError, WorkflowError, ValueError, TypeError) as exc:
            error = (action, f"{type(exc).__name__}: {exc}")
            values = {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
            return await _show(
                ui, request, visit, workflow_id, error=error, values=values, status_code=status_for(exc)
            )
        visit.session["flash"] = notice
        visit.dirty = True
        return ui.finish(RedirectResponse(workflow_url(workflow_id), status_code=303), visit)


async def _show(
    ui: UI,
    request: Request,
    visit: Visit,
    workflow_id: str,
    *,
    error: tuple[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    cursor = request.query_params.get("cursor") or None
    try:
        # the stamp is taken first: a change while the page is built shows up as a new stamp
        stamp = await ui.read(change_stamp, ui, workflow_id)
        if request.query_params.get("format") == "stamp":
            return ui.answer(request, visit, "", {}, stamp=stamp)
        data = await ui.read(build, ui, workflow_id, cursor)
        if visit.actor is None or "admin" not in visit.actor.scopes:  # read keys see no token
            data = without_credentials(data)
    except UnknownWorkflowError as exc:
        return ui.answer(
            request,
            visit,
            "missing.html",
            {"error": {"type": type(exc).__name__, "message": str(exc)}, "workflow_id": workflow_id},
            stamp="",
            status_code=404,
        )
    return ui.answer(
        request,
        visit,
        "instance.html",
        data,
        stamp=stamp,
        status_code=status_code,
        extra={"error": error, "values": values or {}},
    )

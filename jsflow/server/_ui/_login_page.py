"""``/ui/login`` and ``/ui/logout``: an API key in, a signed session cookie out.

The login form is CSRF-protected too (a token in a pre-session cookie), so
another site cannot sign a browser in under the attacker's key.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from ._core import UI, Visit
from ._render import UI_PREFIX
from ._session import CSRF_FIELD, Actor, CSRFError, check_csrf, ensure_csrf


def safe_next(target: str | None) -> str:
    """Only a path inside the view: never another host (``//evil``, ``\\\\evil``)."""
    if not target or not target.startswith(f"{UI_PREFIX}/") or target.startswith("//") or "\\" in target:
        return f"{UI_PREFIX}/"
    return target


def register(router: APIRouter, ui: UI) -> None:
    @router.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        visit = ui.visit(request)
        nxt = safe_next(request.query_params.get("next"))
        return _form(ui, visit, nxt, error=None, status_code=200)

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        visit = ui.visit(request)
        form = await request.form()
        nxt = safe_next(str(form.get("next") or ""))
        try:
            check_csrf(visit.session, form.get(CSRF_FIELD))
        except CSRFError as exc:
            return _form(ui, visit, nxt, error=str(exc), status_code=403)
        address = request.client.host if request.client is not None else "unknown"
        refused = await ui.gate.check(address)
        if refused is not None:
            page = _form(ui, visit, nxt, error=refused[0], status_code=429)
            page.headers["Retry-After"] = refused[1]
            return page
        key = form.get("key")
        principal = ui.keys.lookup(key) if isinstance(key, str) and key else None
        if principal is None:
            await ui.gate.failed(address)
            return _form(ui, visit, nxt, error="That API key is not valid here.", status_code=401)
        actor = Actor(principal.key_id, frozenset(str(s) for s in principal.scopes))
        if not actor.may("read"):
            scopes = ", ".join(sorted(actor.scopes))
            message = f"This key has the scopes {scopes}; the web view needs read or admin."
            return _form(ui, visit, nxt, error=message, status_code=403)
        # a fresh session (and CSRF token) on every sign-in: no fixation
        visit.session = {"actor": actor.to_session()}
        ui.sessions.begin(visit.session)
        ensure_csrf(visit.session)
        visit.dirty = True
        return ui.finish(RedirectResponse(nxt, status_code=303), visit)

    @router.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        visit = ui.visit(request)
        form = await request.form()
        try:
            check_csrf(visit.session, form.get(CSRF_FIELD))
        except CSRFError as exc:
            return _form(ui, visit, f"{UI_PREFIX}/", error=str(exc), status_code=403)
        ui.sessions.end(visit.session)
        response = RedirectResponse(f"{UI_PREFIX}/login", status_code=303)
        ui.sessions.clear(response)
        return response


def _form(ui: UI, visit: Visit, nxt: str, *, error: str | None, status_code: int) -> Response:
    if "csrf" not in visit.session:
        visit.dirty = True
    token = ensure_csrf(visit.session)
    page = ui.renderer.page(
        "login.html",
        {"csrf_token": token, "csrf_field": CSRF_FIELD, "next": nxt, "error": error, "actor": None}
        | {"flash": None},
        status_code,
    )
    return ui.finish(page, visit)

"""Sign-in, the session cookie and the CSRF check of the web view.

Why this shape: an operator signs in once with an API key and then browses,
so the key must not travel with every page load, and a page must not be
usable by another site. The session is a small dict (``actor``: a digest of
the key's id, never the key; ``csrf``: a random token) signed with itsdangerous
into an HttpOnly, SameSite=Lax cookie scoped to ``/ui``. Every POST carries
the session's CSRF token in a hidden form field and is refused (403) unless
it matches: a cross-site form can neither read the token nor set the cookie.
The cookie also carries the key's scopes as they were at sign-in: keys are
fixed for the life of a server. A signed-in session also names a random
session id that the server keeps while the session lives: signing out
forgets it, so a copy of the cookie stops working at once, not when it
expires; a restart forgets every id, which ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "jsflow_session"
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf_token"
#: a session older than this needs a new sign-in
MAX_AGE_SECONDS = 12 * 3600
#: what each scope may do in the view, as in the HTTP API: ``read`` the GET
#: endpoints, ``resume`` events (and token resumes), ``admin`` everything
SCOPE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "event", "resume", "cancel", "retry"}),
    "read": frozenset({"read"}),
    "resume": frozenset({"event"}),
}


class CSRFError(Exception):
    """A POST whose CSRF token is missing or does not match the session's."""


class Principal(Protocol):
    """What a key lookup returns (``jsflow.server``'s principals fit)."""

    @property
    def key_id(self) -> str: ...

    @property
    def scopes(self) -> Iterable[str]: ...


class KeyLookup(Protocol):
    """Finds the principal of a presented API key, comparing in constant time."""

    def lookup(self, presented: str) -> Principal | None: ...


@dataclass(frozen=True)
class Actor:
    """Who is signed in: ``actor_id`` identifies their key (a digest prefix, never
    the key); ``scopes`` as configured when they signed in."""

    actor_id: str
    scopes: frozenset[str]

    def may(self, action: str) -> bool:
        return any(action in SCOPE_ACTIONS.get(str(scope), frozenset()) for scope in self.scopes)

    def to_session(self) -> dict[str, Any]:
        return {"id": self.actor_id, "scopes": sorted(self.scopes)}

    @classmethod
    def from_session(cls, value: object) -> Actor | None:
        if not isinstance(value, dict):
            return None
        actor_id, scopes = value.get("id"), value.get("scopes")
        if not isinstance(actor_id, str) or not isinstance(scopes, list):
            return None
        return cls(actor_id, frozenset(str(s) for s in scopes))


@dataclass(frozen=True)
class _MappedPrincipal:
    key_id: str
    scopes: frozenset[str]


class MappingKeys:
    """A ``KeyLookup`` over a plain ``{key: scopes}`` mapping (for embedding
    ``mount_ui`` without ``create_app``); keys are kept as sha256 digests."""

    def __init__(self, keys: Mapping[str, Iterable[str]]) -> None:
        self._entries = [(_digest(k), frozenset(str(s) for s in scopes)) for k, scopes in keys.items()]

    def lookup(self, presented: str) -> Principal | None:
        wanted = _digest(presented)
        found: Principal | None = None
        for digest, scopes in self._entries:  # every key compared, match or not
            if hmac.compare_digest(digest, wanted) and found is None:
                found = _MappedPrincipal(digest.hex()[:16], scopes)
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class Sessions:
    """Reads and writes the signed session cookie, and keeps the ids of the
    signed-in sessions that have not signed out (in memory, event-loop thread)."""

    def __init__(self, secret_key: str | bytes, *, secure: bool = False) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="jsflow.ui.session")
        self._secure = secure
        self._live: dict[str, float] = {}  # session id -> when it expires (time.time())

    def load(self, request: Request) -> dict[str, Any]:
        """The request's session; a signed-in one whose id was ended loses its actor."""
        raw = request.cookies.get(COOKIE_NAME)
        if not raw:
            return {}
        try:
            data = self._serializer.loads(raw, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return {}
        if not isinstance(data, dict):
            return {}
        if "actor" in data and self._live.get(str(data.get("sid")), 0.0) <= time.time():
            return {k: v for k, v in data.items() if k not in ("actor", "sid")}
        return data

    def begin(self, session: dict[str, Any]) -> None:
        """Give a session that just signed in a fresh id the server will accept."""
        now = time.time()
        self._live = {sid: until for sid, until in self._live.items() if until > now}
        sid = secrets.token_urlsafe(24)
        self._live[sid] = now + MAX_AGE_SECONDS
        session["sid"] = sid

    def end(self, session: dict[str, Any]) -> None:
        """Sign out: the session's id is forgotten, so no copy of its cookie works."""
        self._live.pop(str(session.get("sid")), None)

    def save(self, response: Response, session: dict[str, Any]) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self._serializer.dumps(session),
            max_age=MAX_AGE_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=self._secure,
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="lax")


def ensure_csrf(session: dict[str, Any]) -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf(session: dict[str, Any], submitted: object) -> None:
    """Raise ``CSRFError`` unless ``submitted`` equals the session's token."""
    expected = session.get("csrf")
    if not isinstance(expected, str) or not isinstance(submitted, str) or not submitted:
        raise CSRFError("the form has no valid CSRF token; reload the page and try again")
    if not hmac.compare_digest(expected.encode(), submitted.encode("utf-8", "surrogatepass")):
        raise CSRFError("the form's CSRF token does not match this session; reload the page")

"""Sign-in, the session cookie and the CSRF check of the web view.

Why this shape: an operator signs in once with an API key and then browses,
so the key must not travel with every page load, and a page must not be
usable by another site. The session is a small dict (``actor``: a digest of
the key, never the key; ``csrf``: a random token) signed with itsdangerous
into an HttpOnly, SameSite=Lax cookie scoped to ``/ui``. Every POST carries
the session's CSRF token in a hidden form field and is refused (403) unless
it matches: a cross-site form can neither read the token nor set the cookie.
The key's scopes are looked up again on every request, so removing a key
from the server ends the sessions made with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "jsflow_session"
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf_token"
#: a session older than this needs a new sign-in
MAX_AGE_SECONDS = 12 * 3600
#: what each scope may do in the view (the API's scopes: admin, read, resume)
SCOPE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "event", "resume", "cancel", "retry"}),
    "read": frozenset({"read"}),
    "resume": frozenset({"read", "event", "resume"}),
}


class CSRFError(Exception):
    """A POST whose CSRF token is missing or does not match the session's."""


@dataclass
class Actor:
    """Who is signed in: ``actor_id`` is a digest of their key; ``scopes`` as configured."""

    actor_id: str
    scopes: frozenset[str]

    def may(self, action: str) -> bool:
        return any(action in SCOPE_ACTIONS.get(scope, frozenset()) for scope in self.scopes)


def key_digest(key: str) -> str:
    """The actor id stored in the cookie: a key's sha256, never the key itself."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass
class KeyRing:
    """The configured API keys by digest, for constant-time sign-in checks."""

    scopes_by_digest: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_keys(cls, api_keys: Mapping[str, Iterable[str]] | Iterable[Any]) -> KeyRing:
        """``api_keys``: a mapping key -> scopes, or objects with ``key`` and ``scopes``."""
        pairs = api_keys.items() if isinstance(api_keys, Mapping) else ((k.key, k.scopes) for k in api_keys)
        return cls({key_digest(key): frozenset(scopes) for key, scopes in pairs})

    def check(self, key: str) -> Actor | None:
        """The actor for ``key`` if it is configured (compared in constant time)."""
        wanted = key_digest(key)
        found: Actor | None = None
        for digest, scopes in self.scopes_by_digest.items():
            if hmac.compare_digest(digest, wanted):
                found = Actor(digest, scopes)
        return found

    def actor(self, actor_id: object) -> Actor | None:
        if not isinstance(actor_id, str) or actor_id not in self.scopes_by_digest:
            return None
        return Actor(actor_id, self.scopes_by_digest[actor_id])


class Sessions:
    """Reads and writes the signed session cookie."""

    def __init__(self, secret_key: str | bytes, *, secure: bool = False) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="jsflow.ui.session")
        self._secure = secure

    def load(self, request: Request) -> dict[str, Any]:
        raw = request.cookies.get(COOKIE_NAME)
        if not raw:
            return {}
        try:
            data = self._serializer.loads(raw, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

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

"""API keys: ``Authorization: Bearer KEY``, scopes, constant-time comparison.

Why compare against every key with ``hmac.compare_digest``: the time a
lookup takes must not tell an attacker how much of a guess was right, nor
which configured key it was close to. Keys are kept only as sha256 digests
(compared digest to digest, all of the same length), and the principal
carries a short key id (a digest prefix) for rate limiting and logs, never
the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import ApiError
from ._settings import Scope

BEARER = "bearer"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who called: the key's id (sha256 prefix) and its scopes."""

    key_id: str
    scopes: frozenset[Scope]

    def allows(self, needed: Scope) -> bool:
        return Scope.ADMIN in self.scopes or needed in self.scopes


class KeyRing:
    """The configured keys, by digest."""

    def __init__(self, keys: Mapping[str, frozenset[Scope]]) -> None:
        self._entries = [(hashlib.sha256(k.encode("utf-8")).digest(), frozenset(s)) for k, s in keys.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, presented: str) -> Principal | None:
        """The principal for ``presented``; every key is compared, match or not."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found: Principal | None = None
        for key_digest, scopes in self._entries:
            if hmac.compare_digest(digest, key_digest) and found is None:
                found = Principal(key_digest.hex()[:16], scopes)
        return found

    def authenticate(self, authorization: str | None, needed: Scope) -> Principal:
        """The caller's principal, or ``ApiError`` 401 (no/unknown key) / 403 (scope)."""
        challenge = {"WWW-Authenticate": 'Bearer realm="jsflow"'}
        if not authorization:
            raise ApiError(
                401, "AuthenticationError", "missing API key (Authorization: Bearer KEY)", headers=challenge
            )
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != BEARER or not credential.strip():
            raise ApiError(401, "AuthenticationError", "use Authorization: Bearer KEY", headers=challenge)
        principal = self.lookup(credential.strip())
        if principal is None:
            raise ApiError(401, "AuthenticationError", "unknown API key", headers=challenge)
        if not principal.allows(needed):
            raise ApiError(
                403,
                "PermissionDeniedError",
                f"this API key lacks the {needed.value!r} scope",
                needed_scope=needed.value,
                scopes=sorted(s.value for s in principal.scopes),
            )
        return principal

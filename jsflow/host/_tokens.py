"""Resume tokens: random secrets handed to external systems, stored only as hashes.

Why hash: a database dump or a log of the store must not let anyone resume
a workflow. The raw token exists only in the response to whoever created the
suspension; the store sees ``hash_token(raw)`` (sha256 hex). 32 random bytes
(256 bits, URL-safe base64) make guessing hopeless, so an unsalted fast hash
is enough: there is nothing to brute-force.

Every token starts with a fixed prefix (``jft_`` for random tokens, ``jfh_``
for createHook tokens): URL-safe base64 may begin with ``-``, and a token
that looks like an option cannot be passed to a command line
(``jsflow resume-token -zQ...`` is read as the option ``-z``). The prefix also
makes a leaked token recognisable to secret scanners.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32
TOKEN_PREFIX = "jft_"
HOOK_TOKEN_PREFIX = "jfh_"


def new_token() -> str:
    """A fresh URL-safe random token (256 bits of entropy)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(raw: str) -> str:
    """The sha256 hex digest under which the store keeps ``raw``."""
    if not isinstance(raw, str) or not raw:
        raise ValueError("token must be a non-empty string")
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()

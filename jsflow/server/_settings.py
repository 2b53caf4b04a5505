"""The server's configuration: one pydantic model, filled by ``create_app``
arguments or by ``jsflow serve`` flags.

Why one model: every knob (keys, limits, worker, thread pool) is validated
in one place at start-up, so a typo in ``--rate-limit`` or a key spec fails
before the server listens instead of on the first request.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from enum import StrEnum

from limits import parse as parse_rate
from pydantic import BaseModel, ConfigDict, Field, field_validator

from jsflow import parse_size as _parse_size

API_KEYS_ENV = "JSFLOW_API_KEYS"
DEFAULT_RATE_LIMIT = "100/minute"
#: failed authentications (unknown key or token, refused sign-in) per client address
DEFAULT_FAILURE_RATE_LIMIT = "20/minute"
#: the largest body ``POST /hooks/{token}`` reads (callers need no key: kept small)
DEFAULT_HOOK_MAX_BODY = 1024 * 1024


def parse_size(text: str | int) -> int:
    """A byte count (``jsflow.parse_size``) that is more than zero: a body limit
    of nothing would refuse every request."""
    size = _parse_size(text)
    if size <= 0:
        raise ValueError(f"size {text!r} must be more than 0 bytes")
    return size


class Scope(StrEnum):
    """What an API key may do: ``admin`` everything, ``read`` the GET endpoints,
    ``resume`` token resumes and events."""

    ADMIN = "admin"
    READ = "read"
    RESUME = "resume"


def parse_key_spec(spec: str) -> tuple[str, frozenset[Scope]]:
    """``KEY`` or ``KEY:SCOPE[,SCOPE]`` -> (key, scopes); a bare key is admin."""
    key, sep, scopes_text = spec.strip().partition(":")
    if not key:
        raise ValueError(f"API key spec {spec!r} has an empty key")
    if not sep:
        return key, frozenset({Scope.ADMIN})
    try:
        scopes = frozenset(Scope(part.strip()) for part in scopes_text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"API key spec has an unknown scope in {scopes_text!r} (use {', '.join(s.value for s in Scope)})"
        ) from None
    if not scopes:
        raise ValueError("API key spec names no scope after ':'")
    return key, scopes


def parse_api_keys(specs: Iterable[str]) -> dict[str, frozenset[Scope]]:
    """Several key specs (``--api-key`` values or ``$JSFLOW_API_KEYS`` words)."""
    keys: dict[str, frozenset[Scope]] = {}
    for spec in specs:
        key, scopes = parse_key_spec(spec)
        keys[key] = keys.get(key, frozenset()) | scopes
    return keys


def keys_from_env() -> dict[str, frozenset[Scope]]:
    """``$JSFLOW_API_KEYS``: whitespace-separated key specs."""
    return parse_api_keys(os.environ.get(API_KEYS_ENV, "").split())


def generate_key() -> str:
    """A random admin key for a server started without one (it never runs open)."""
    return "jsf_" + secrets.token_urlsafe(24)


def default_threads() -> int:
    """Engine work is mostly CPU under the GIL: more threads than cores only add
    convoy delays (measured: 2 threads on 2 cores beat 8 by ~40% in events/s
    and halve p99). Slow steps (network calls) argue for more: ``--threads``."""
    return min(8, max(2, os.cpu_count() or 2))


class ServerSettings(BaseModel):
    """Everything ``create_app`` needs besides the host.

    ``api_keys``: key -> scopes. ``public_url``: what createHook URLs start
    with (``{public_url}/hooks/{token}``); None keeps the host's setting.
    ``rate_limit``: per API key; ``hook_rate_limit`` per client address on
    ``/hooks`` (default: ``rate_limit``). ``failure_rate_limit``: failed
    authentications and unknown hook tokens per client address, after which
    that address gets 429 (default ``20/minute``). ``hook_max_body``: the
    largest ``/hooks`` body in bytes (or ``"1MiB"``). ``payload_limit``: largest request
    body in bytes (None: the engine's ``Limits.payload``). ``threads``: engine
    work runs in a pool this big (default: the CPU count, 2 to 8). ``max_wait``: cap on ``?wait=SECONDS``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_keys: dict[str, frozenset[Scope]] = Field(default_factory=dict)
    public_url: str | None = None
    rate_limit: str = DEFAULT_RATE_LIMIT
    hook_rate_limit: str | None = None
    failure_rate_limit: str = DEFAULT_FAILURE_RATE_LIMIT
    hook_max_body: int = DEFAULT_HOOK_MAX_BODY
    payload_limit: int | None = Field(default=None, gt=0)
    worker: bool = True
    worker_poll_interval: float = Field(default=1.0, gt=0)
    threads: int = Field(default_factory=lambda: default_threads(), ge=1, le=256)
    max_wait: float = Field(default=60.0, ge=0)

    @field_validator("hook_max_body", mode="before")
    @classmethod
    def _check_size(cls, value: object) -> int:
        return parse_size(value)  # type: ignore[arg-type]

    @field_validator("rate_limit", "hook_rate_limit", "failure_rate_limit")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_rate(value)
            except ValueError:
                raise ValueError(
                    f"rate limit {value!r} must look like 100/minute (N/second|minute|hour)"
                ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"public URL {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _check_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_api_keys(value.split())
        if isinstance(value, Mapping):
            return {
                k: frozenset(Scope(s) for s in ([v] if isinstance(v, str) else v)) for k, v in value.items()
            }
        if isinstance(value, Iterable):
            return parse_api_keys(value)  # type: ignore[arg-type]
        return value

"""Resume tokens: Python suspend functions with hooks, and JS ``createHook``.

Python hooks (``WorkflowHost.register_suspend_function``): when a workflow
suspends on such a function, the final save of that advance creates a fresh
token (``new_token()``, 256 random bits), stores only its sha256 hash tied to
that one wait, and gives the wait a timer at ``expires_at`` = min(now +
``expires_in``, now + ``max_suspension``). After the commit, ``before_suspend
(token, expires_at, args)`` receives the raw token: that is its only copy. If
the process dies between the commit and the hook, the token is lost and the
wait can only time out (documented trade-off: the alternative, keeping the
raw token, would defeat hashing). ``resume_with_token`` consumes the token in
the same transaction that journals the resume, so a token resumes at most
once; ``before_timeout_resume`` runs when a worker fires the expiry timer.

Both are per host: the token suspend functions and JS ``createHook`` are
engine ``Extension``s handed to every run the host opens, never a change to
the engine, so two hosts sharing one engine each keep their own token
functions, secret, clock and URL.

JS ``createHook({timeout})``: Its internal step
``__jhook_create`` returns ``{hookId, token, url, expiresAt}``; ``hook.wait()``
is the internal suspend function ``__jhook_wait(hookId, expiresAtMs)``, whose
expiry fires ``timeout_event`` (a catchable ``TimeoutError`` in JS). Scripts
cannot call either (they are not globals) nor define a JS step by those names.
Calling ``hook.wait()`` again returns the same promise: one hook, one wait,
one outcome; unless that wait lost a race (it was cancelled), in which case a
new wait is made and the hook's token, which never changes, moves to it.
Keeping the raw token out of storage: the token is not random
but an HMAC-SHA256 under the host secret of a length-prefixed, domain-separated
encoding of (workflow id, hook id), where ``hookId`` is 128 random bits, so no
two (id, hook) pairs share an input. The host strips ``token`` and ``url``
from ``__jhook_create`` journal entries before every write and derives them
again when it loads the journal, so the journal stores only the hook id; the
token table stores the hash. The secret comes from ``hook_secret=``, else
``$JSFLOW_HOOK_SECRET``, else the store's own secret (``Store.hook_secret()``:
random, made at the store's first open and kept in the store, so every process
and every restart on one store derives the same URLs; SQLite adopts the
``<db>.hook-secret`` file older versions kept). Anyone who can read the
database can therefore derive hook tokens: pass ``hook_secret=`` (or the
environment variable) to keep the key outside it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jsflow import Extension, JournalEntry, current_step, datetime_to_ms, ms_to_datetime, parse_duration

from ._tokens import HOOK_TOKEN_PREFIX, new_token

HOOK_CREATE = "__jhook_create"
HOOK_WAIT = "__jhook_wait"
SECRET_ENV = "JSFLOW_HOOK_SECRET"
_REDACTED = ("token", "url")

CREATE_HOOK_JS = r"""
function (ops) {
  const keys = Object.keys;
  const freeze = Object.freeze;
  globalThis.createHook = async function createHook(options) {
    const opts = options === undefined || options === null ? {} : options;
    if (typeof opts !== 'object') {
      throw new TypeError('createHook: options must be an object like {timeout: "1h"}');
    }
    for (const key of keys(opts)) {
      if (key !== 'timeout' && key !== 'default' && key !== 'schema') {
        throw new TypeError('createHook: unknown option "' + key + '" (allowed: timeout, default, schema)');
      }
    }
    // default: what wait() resolves with when the hook times out; schema: the
    // JSON Schema a call's body must satisfy (others are refused with 422)
    const waitOptions = { default: opts.default, schema: opts.schema };
    const info = await ops.__jhook_create(opts.timeout === undefined ? null : opts.timeout);
    let waiting = null;
    function wait() {
      if (waiting === null || ops.cancelled(waiting)) {
        waiting = ops.suspendWith('__jhook_wait', [info.hookId, info.expiresAtMs], waitOptions, wait);
      }
      return waiting;
    }
    const hook = {
      hookId: info.hookId, token: info.token, url: info.url, expiresAt: info.expiresAt, wait,
    };
    return freeze(hook);
  };
}
"""
_DOMAIN = b"jsflow/createHook/token/v2\x00"


async def maybe_await(value: Any) -> Any:
    """Hooks may be plain or async callables."""
    return await value if inspect.isawaitable(value) else value


@dataclass(frozen=True)
class TokenSpec:
    """The hooks and expiry rule of one token suspend function."""

    name: str
    before_suspend: Callable[..., Any] | None
    before_resume: Callable[..., Any] | None
    before_timeout_resume: Callable[..., Any] | None
    expires_in: timedelta | None
    resume_at: Callable[..., Any] | None
    cap: timedelta

    def engine_resume_at(self, *args: Any) -> timedelta | datetime:
        """The wait's timer, relative to workflow time: the token's expiry."""
        when = self.resume_at(*args) if self.resume_at is not None else None
        if isinstance(when, datetime):
            return when  # capped against the clock when the token is issued
        if when is None:
            when = self.expires_in if self.expires_in is not None else self.cap
        if not isinstance(when, timedelta):
            raise TypeError(f"resume_at of {self.name!r} must return a datetime, timedelta or None")
        return min(when, self.cap)


@dataclass(frozen=True)
class IssuedToken:
    """A token created at a suspension; handed to ``before_suspend`` after commit
    and returned to the caller whose call issued it (``WorkflowInstance.tokens``)."""

    spec: TokenSpec | None
    token: str
    expires_at: datetime
    arguments: list[Any]
    wait_id: int
    function_name: str
    kind: str
    url: str | None = None
    workflow_id: str = ""


class HookRegistry:
    """One host's token suspend functions and its createHook extension."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        max_suspension: timedelta,
        base_url: str,
        secret: bytes | str | None,
        store: Any,
    ) -> None:
        self.clock = clock
        self.max_suspension = max_suspension
        self.base_url = base_url
        self.specs: dict[str, TokenSpec] = {}
        #: bumped at every registration, so warm runs built before it are not reused
        self.generation = 0
        self._schemas: dict[str, Any] = {}
        self._secret = _resolve_secret(store, secret)
        self.extension = Extension(
            name="createHook",
            js=CREATE_HOOK_JS,
            steps={HOOK_CREATE: self._create_hook},
            suspends={HOOK_WAIT: _hook_wait_resume_at},
            globals=("createHook",),
            descriptions={HOOK_WAIT: "waiting for an HTTP call to its hook"},
            public_names={HOOK_WAIT: "hook.wait", HOOK_CREATE: "createHook"},
        )

        self._tokens = _token_extension({}, {})

    # -- registration -------------------------------------------------------------
    def register(self, name: str, *, schema: Any = None, **hooks: Any) -> None:
        """Add (or replace) a token suspend function of this host only;
        ``ValueError`` for a built-in's name or a bad schema."""
        spec = TokenSpec(name=name, cap=self.max_suspension, **hooks)
        specs = {**self.specs, name: spec}
        schemas = {**self._schemas, name: schema}
        self._tokens = _token_extension(specs, schemas)  # validates the name and schema first
        self.specs, self._schemas = specs, schemas
        self.generation += 1

    def extensions(self) -> list[Extension]:
        """What every run of this host is opened with."""
        return [self.extension, self._tokens]

    # -- createHook -----------------------------------------------------------------
    def _create_hook(self, timeout: Any = None) -> dict[str, Any]:
        """The journaled half of ``createHook``: a hook id, its token, URL and expiry."""
        now = self.clock()
        cap = now + self.max_suspension
        expires = cap if timeout is None else min(now + parse_duration(timeout), cap)
        hook_id = secrets.token_hex(16)
        info = {"hookId": hook_id, "expiresAt": expires.isoformat(), "expiresAtMs": datetime_to_ms(expires)}
        return self._inflate(current_step().workflow_id, info)

    def derive_token(self, workflow_id: str, hook_id: str) -> str:
        """The hook's token: unambiguous input (domain tag, then each part length-prefixed)."""
        message = bytearray(_DOMAIN)
        for part in (workflow_id, hook_id):
            data = part.encode("utf-8", "surrogatepass")
            message += len(data).to_bytes(4, "big") + data
        mac = hmac.new(self._secret, bytes(message), hashlib.sha256).digest()
        return HOOK_TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def _inflate(self, workflow_id: str, info: dict[str, Any]) -> dict[str, Any]:
        token = self.derive_token(workflow_id, str(info["hookId"]))
        return {**info, "token": token, "url": f"{self.base_url}/{token}"}

    # -- journal codec: the raw hook token never reaches the store -------------------
    def entry_text(self, entry: JournalEntry) -> str:
        """The JSON text to store for one journal entry (createHook: without token/url)."""
        return _stripped(entry).model_dump_json(exclude_none=True)

    def inflate(self, workflow_id: str, journal: list[JournalEntry]) -> list[JournalEntry]:
        """The journal the engine sees: createHook entries with their derived token and URL."""
        if not any(e.name == HOOK_CREATE for e in journal):
            return journal
        return [
            e.model_copy(update={"result": self._inflate(workflow_id, e.result)})
            if e.name == HOOK_CREATE
            and isinstance(e.result, dict)
            and isinstance(e.result.get("hookId"), str)
            else e
            for e in journal
        ]

    def strip(self, journal: list[JournalEntry]) -> list[JournalEntry]:
        """The journal to store inline: createHook entries without token/url."""
        if not any(e.name == HOOK_CREATE for e in journal):
            return journal
        return [_stripped(e) for e in journal]

    # -- issuing tokens at a suspension ----------------------------------------------------
    def issue(self, workflow_id: str, wait: Any, kind: str) -> IssuedToken:
        """A new token for a "token" or "hook" wait (an engine ``Wait``), with its capped expiry."""
        cap = self.clock() + self.max_suspension
        expires_at = min(wait.resume_at, cap) if wait.resume_at is not None else cap
        args = list(wait.arguments)
        if kind == "hook":
            token = self.derive_token(workflow_id, str(args[0]) if args else "")
            url = f"{self.base_url}/{token}"
            return IssuedToken(
                None, token, expires_at, args, wait.wait_id, wait.function_name, kind, url, workflow_id
            )
        spec = self.specs.get(wait.function_name)
        token = new_token()
        return IssuedToken(
            spec, token, expires_at, args, wait.wait_id, wait.function_name, kind, None, workflow_id
        )


def _stripped(entry: JournalEntry) -> JournalEntry:
    if entry.name != HOOK_CREATE or not isinstance(entry.result, dict):
        return entry
    return entry.model_copy(update={"result": {k: v for k, v in entry.result.items() if k not in _REDACTED}})


def _hook_wait_resume_at(hook_id: Any, expires_at_ms: Any) -> datetime | None:
    """The hook's expiry; only the extension calls this, with what ``__jhook_create``
    journaled, but a value that is not a sane time never escapes as a raw error."""
    if isinstance(expires_at_ms, bool) or not isinstance(expires_at_ms, int | float):
        return None
    try:
        return ms_to_datetime(int(expires_at_ms))
    except (OverflowError, OSError, ValueError):
        return None


def _token_extension(specs: dict[str, TokenSpec], schemas: dict[str, Any]) -> Extension:
    """The host's token suspend functions as globals of its runs (never on the engine)."""
    return Extension(
        name="tokens",
        js="function (ops) {}",
        suspend_functions={name: spec.engine_resume_at for name, spec in specs.items()},
        schemas={name: schema for name, schema in schemas.items() if schema is not None},
    )


def _resolve_secret(store: Any, secret: bytes | str | None) -> bytes:
    """``hook_secret=``, else ``$JSFLOW_HOOK_SECRET``, else the store's own secret
    (made at its first open and kept in it: the same in every process)."""
    if secret is None:
        secret = os.environ.get(SECRET_ENV) or None
    if secret is None:
        secret = store.hook_secret()
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)

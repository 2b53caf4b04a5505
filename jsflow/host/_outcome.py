"""The stored forms of an advance's outcome: JSON text, error dicts, history
details, and the wait rows (with their new tokens) of a suspension."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from jsflow import (
    JournalCompatibilityError,
    ScriptError,
    WorkflowCancelledError,
    WorkflowResult,
    WorkflowStatus,
)

from ._context import HostContext
from ._hooks import HOOK_WAIT, IssuedToken
from ._kinds import TOKEN_KINDS, WaitKind
from ._tokens import hash_token
from ._views import TokenInfo, public_name, wait_detail
from .store import PendingWait, StoreSession

#: the function name of the wait a parked continue-as-new chain waits on
CONTINUE_WAIT = "continueAsNew"


def dump(value: Any) -> str:
    """JSON text to store: ASCII, so lone surrogates survive as escapes."""
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def error_dict(error: BaseException | None) -> dict[str, Any] | None:
    """A faulted instance's error as plain data for views, the CLI and the API."""
    if error is None:
        return None
    out: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, ScriptError):
        out.update(js_name=error.js_name, stack=error.stack[:4000])
    if isinstance(error, JournalCompatibilityError):
        out.update(slot_index=error.slot_index, expected_name=error.expected_name)
        out.update(encountered_name=error.encountered_name)
    limit = getattr(error, "limit", None)
    if isinstance(limit, str):
        out["limit"] = limit
    return out


def outcome_detail(result: WorkflowResult, waits: list[PendingWait]) -> dict[str, Any]:
    if result.status is WorkflowStatus.SUSPENDED:
        return {"waits": [{"wait_id": w.wait_id, "function": public_name(w.function_name)} for w in waits]}
    if result.status is WorkflowStatus.FAULTED:
        return {"error": str(result.error)[:500]}
    if isinstance(result.error, WorkflowCancelledError):
        return {"reason": result.error.reason, "cleanup": True}
    if result.status is WorkflowStatus.CONTINUED_AS_NEW:
        return {"continued_as_new": result.state.run_id, "parent_run_id": result.state.parent_run_id}
    return {}


def classify(ctx: HostContext, function_name: str, is_retry: bool) -> WaitKind:
    """The host's kind for a wait: decides what its timer does."""
    if is_retry:
        return WaitKind.RETRY
    if function_name in ("waitForEvent", "waitForEvents"):
        return WaitKind.EVENT
    if function_name == "sleep":
        return WaitKind.SLEEP
    if function_name == HOOK_WAIT:
        return WaitKind.HOOK
    if function_name in ctx.hooks.specs:
        return WaitKind.TOKEN
    return WaitKind.SUSPEND


def continue_wait(due: datetime) -> PendingWait:
    """The wait of a parked continue-as-new chain: the next generation, due at ``due``."""
    return PendingWait(wait_id=0, function_name=CONTINUE_WAIT, kind=WaitKind.CONTINUE.value, resume_at=due)


def token_info(token: IssuedToken) -> TokenInfo:
    name = public_name(token.function_name)
    return TokenInfo(
        token.wait_id, name, token.kind, token.token, token.expires_at, token.url, token.workflow_id
    )


def pending_waits(
    ctx: HostContext,
    workflow_id: str,
    result: WorkflowResult,
    previous: list[PendingWait],
    issued: list[IssuedToken],
    tx: StoreSession,
) -> list[PendingWait]:
    """The store rows for the result's waits; a token wait keeps its token across
    advances and gets a new one (stored hashed) when it first appears."""
    if result.status is not WorkflowStatus.SUSPENDED:
        return []
    before = {w.wait_id: w for w in previous}
    out = []
    for w in result.waits:
        kind = classify(ctx, w.function_name, w.is_retry)
        row = PendingWait(
            wait_id=w.wait_id,
            function_name=w.function_name,
            kind=kind.value,
            resume_at=w.resume_at,
            event_names=tuple(w.event_names) if w.event_names is not None else None,
            is_retry=w.is_retry,
            arguments_json=dump(w.arguments),
            detail_json=dump(wait_detail(w)),
        )
        old = before.get(w.wait_id)
        if kind in TOKEN_KINDS:
            if old is not None and old.token_hash and old.function_name == w.function_name:
                row = replace(row, token_hash=old.token_hash, resume_at=old.resume_at)
            else:
                token = ctx.hooks.issue(workflow_id, w, kind.value)
                row = replace(row, token_hash=store_token(tx, workflow_id, token), resume_at=token.expires_at)
                issued.append(token)
        out.append(row)
    return out


def store_token(tx: StoreSession, workflow_id: str, token: IssuedToken) -> str:
    """Store a new token's hash for its wait; returns the hash."""
    token_hash = hash_token(token.token)
    existing = tx.get_token(token_hash)  # a hook's token is derived: it may exist already
    if existing is None:
        tx.put_token(token_hash, workflow_id, token.wait_id, expires_at=token.expires_at, kind=token.kind)
    elif existing.wait_id != token.wait_id and existing.used_at is None:
        tx.retarget_token(token_hash, token.wait_id)  # waiting again after a lost race
    return token_hash

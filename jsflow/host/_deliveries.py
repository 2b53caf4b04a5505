"""The operations that advance an instance, each a ``Delivery`` for the driver.

Each says what it consumes (a token, a timer, a retry) and how to check,
against a fresh snapshot, that it still applies. The driver does the rest;
events are the inbox's (``_inbox``). Values from outside are validated by
``jsflow.validate_payload`` before anything is stored or run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from jsflow import Cancel, Resume, Timeout, validate_payload

from ._context import HostContext
from ._driver import Advanced, Delivery, TxOp, drive, recover_run
from ._errors import (
    AlreadyResumedError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    WaitSelectionError,
    WorkflowFinishedError,
    WorkflowNotFaultedError,
    translate,
)
from ._hooks import maybe_await
from ._inbox import drain
from ._kinds import RESUMABLE_KINDS, WaitKind
from ._load import Loaded, fresh, header_text, load, load_record, script_source
from ._outcome import token_info
from ._replay import check_replay
from ._tokens import hash_token
from ._views import WorkflowInstance, instance_view, public_name
from .store import InstanceStatus, PendingWait, StoreSession, TimerClaim


def with_tokens(advanced: Advanced) -> WorkflowInstance:
    """The view, carrying the tokens this call issued."""
    tokens = tuple(token_info(t) for t in advanced.tokens)
    return replace(advanced.view, tokens=tokens) if tokens else advanced.view


async def settle(ctx: HostContext, workflow_id: str, advanced: Advanced) -> WorkflowInstance:
    """After an advance: hand buffered events to the waits that now listen for them."""
    view = advanced.view
    if view.status == InstanceStatus.SUSPENDED and any(w.kind == WaitKind.EVENT for w in view.waits):
        drained = await drain(ctx, workflow_id, after=advanced)
        if drained is not None:
            advanced = Advanced(drained.view, advanced.tokens + drained.tokens)
    return with_tokens(advanced)


# -- resume by wait id -----------------------------------------------------------------------
def pick_wait(workflow_id: str, waits: list[PendingWait]) -> int:
    """The single pending suspend or token wait; ``WaitSelectionError`` otherwise."""
    candidates = [w for w in waits if w.kind in RESUMABLE_KINDS]
    if len(candidates) == 1:
        return candidates[0].wait_id
    pending = [
        {"wait_id": w.wait_id, "kind": w.kind, "function_name": public_name(w.function_name)} for w in waits
    ]
    raise WaitSelectionError(workflow_id, pending)


async def resume(ctx: HostContext, workflow_id: str, value: Any, wait_id: int | None) -> WorkflowInstance:
    """Resume one wait; the target is fixed up front so a lost race cannot move on to another."""
    validate_payload(value, limit=ctx.engine.limits.payload, what="the resume value")
    if wait_id is None:
        record, waits = load_record(ctx, workflow_id)
        if InstanceStatus.is_terminal(record.status):
            raise WorkflowFinishedError(workflow_id, record.status, "resume")
        wait_id = pick_wait(workflow_id, waits)
    target = wait_id

    def check(loaded: Loaded) -> list[TxOp]:
        if loaded.wait(target) is None:
            raise AlreadyResumedError(workflow_id, target, [w.wait_id for w in loaded.waits])
        return []

    delivery = Delivery(Resume(value, target), ("resumed", {"wait_id": target}), check=check)
    return await settle(ctx, workflow_id, await drive(ctx, workflow_id, delivery))


# -- resume by token ---------------------------------------------------------------------------
async def resume_with_token(ctx: HostContext, token: str, payload: Any) -> WorkflowInstance:
    """Resume the one wait a token belongs to; the token is consumed with the journal write."""
    if not isinstance(token, str) or not token or len(token) > 512:
        raise TokenNotFoundError("")
    validate_payload(payload, limit=ctx.engine.limits.payload, what="the token payload")
    token_hash = hash_token(token)
    rec = ctx.store.read(lambda tx: tx.get_token(token_hash))
    if rec is None:
        raise TokenNotFoundError(token_hash)
    wid = rec.workflow_id
    record, waits = load_record(ctx, wid)
    if InstanceStatus.is_terminal(record.status):
        if rec.used_at is not None:
            raise TokenUsedError(token_hash, wid, rec.wait_id, rec.used_at)
        raise WorkflowFinishedError(wid, record.status, "resume")
    value = await _shape_payload(ctx, waits, rec.wait_id, payload)

    def check(loaded: Loaded) -> list[TxOp]:
        current = ctx.store.read(lambda tx: tx.get_token(token_hash))
        if current is None:  # reissued meanwhile: this token is no longer valid
            raise TokenNotFoundError(token_hash)
        if current.used_at is not None:
            raise TokenUsedError(token_hash, wid, current.wait_id, current.used_at)
        wait = loaded.wait(current.wait_id)
        now = ctx.clock()
        expired = current.expires_at is not None and now >= current.expires_at
        if not expired and wait is not None and wait.token_hash != token_hash:
            raise TokenNotFoundError(token_hash)  # reissued: only the new token resumes the wait
        if expired or wait is None or wait.token_hash != token_hash:
            raise TokenExpiredError(token_hash, wid, current.wait_id, current.expires_at or now)

        def consume(tx: StoreSession) -> None:
            try:
                tx.consume_token(token_hash, now=now)
            except Exception as exc:
                raise translate(exc) from exc

        return [consume]

    history = ("resumed_with_token", {"wait_id": rec.wait_id})
    delivery = Delivery(Resume(value, rec.wait_id), history, check=check)
    return await settle(ctx, wid, await drive(ctx, wid, delivery))


async def _shape_payload(ctx: HostContext, waits: list[PendingWait], wait_id: int, payload: Any) -> Any:
    wait = next((w for w in waits if w.wait_id == wait_id), None)
    spec = ctx.hooks.specs.get(wait.function_name) if wait is not None else None
    if spec is None or spec.before_resume is None:
        return payload
    args = json.loads(wait.arguments_json) if wait is not None else []
    value = await maybe_await(spec.before_resume(payload, args))
    validate_payload(value, limit=ctx.engine.limits.payload, what="the before_resume value")
    return value


# -- recovery and retry ----------------------------------------------------------------------------
async def recover(ctx: HostContext, workflow_id: str) -> WorkflowInstance:
    """Finish an instance left "running" (see ``_driver.recover_run``); others as they are."""
    advanced = await recover_run(ctx, workflow_id)
    if advanced is None:
        record, waits = load_record(ctx, workflow_id)
        return instance_view(record, waits)
    return await settle(ctx, workflow_id, advanced)


async def retry(
    ctx: HostContext, workflow_id: str, version: str | None, metadata: dict[str, str] | None = None
) -> WorkflowInstance:
    """Restart a faulted instance from its journal minus the trailing failed steps.

    The instance's requirements are recorded again, as ``start`` does, from
    this process's registrations (which may be new) and the version it now
    runs, so a worker that lacks one of them never claims its timers."""
    loaded = load(ctx, workflow_id)
    record = loaded.record
    if record.status != InstanceStatus.FAULTED:
        raise WorkflowNotFaultedError(workflow_id, record.status)
    assert loaded.state is not None
    journal = list(loaded.state.journal)
    dropped = len(journal)
    while journal and journal[-1].type == "step_error":
        journal.pop()
    state = loaded.state.model_copy(update={"journal": journal})
    script_hash, source = record.script_hash, loaded.script
    if version is not None and version != script_hash:
        source = check_replay(ctx, record, version, state).source
        script_hash = version
    requirements = ctx.requirements_keeping(script_hash, source, loaded.requirements)
    inline = min(loaded.inline, len(journal))
    again = replace(
        record,
        status=InstanceStatus.RUNNING,
        state=header_text(ctx, state, inline),
        error_json=None,
        script_hash=script_hash,
        metadata={**record.metadata, **(metadata or {})},
    )
    with ctx.store.transaction() as tx:
        saved = tx.save_workflow(again, expected_version=record.version)
        tx.trim_journal(workflow_id, len(journal))
        tx.set_requirements(workflow_id, requirements)
        tx.clear_recoveries(workflow_id)
        tx.append_history(workflow_id, "retried", {"dropped": dropped - len(journal)})
    turn = fresh(saved, state, requirements, script_source(ctx, saved), inline)
    turn.waits = loaded.waits
    delivery = Delivery(owner=True, acquire=True)
    return await settle(ctx, workflow_id, await drive(ctx, workflow_id, delivery, turn))


# -- timers ----------------------------------------------------------------------------------------
async def fire(ctx: HostContext, claim: TimerClaim) -> Advanced:
    """Fire one claimed wait by its kind (raises ``AlreadyResumedError`` if it is gone)."""
    wid, wait = claim.workflow_id, claim.wait
    history = ("timer_fired", {"wait_id": wait.wait_id, "kind": wait.kind, "worker": ctx.worker_id})
    acquire = None
    if wait.kind == WaitKind.CANCEL:  # a cancellation stored for a worker that can run the instance
        action: Any = Cancel(_requested_reason(wait.arguments_json))
        history = ("cancel_delivered", {"reason": action.reason, "cleanup": True, "worker": ctx.worker_id})
    elif wait.kind in (WaitKind.EVENT, WaitKind.HOOK):
        action = Timeout(wait.wait_id)
    elif wait.kind == WaitKind.TOKEN:
        action = Resume(await _timeout_value(ctx, wait.function_name, wait.arguments_json), wait.wait_id)
    elif wait.kind == WaitKind.CONTINUE:  # a parked continue-as-new chain: start the next generation
        action, acquire = None, True
    else:
        action = Resume(None, wait.wait_id)

    def check(loaded: Loaded) -> list[TxOp]:
        current = loaded.wait(wait.wait_id)
        if (
            current is None
            or current.function_name != wait.function_name
            or current.resume_at != wait.resume_at
        ):
            raise AlreadyResumedError(wid, wait.wait_id, [w.wait_id for w in loaded.waits])
        return []

    return await drive(ctx, wid, Delivery(action, history, acquire=acquire, check=check))


def _requested_reason(arguments_json: str) -> str | None:
    """The reason a stored cancellation request (``_cancel.request``) carries."""
    try:
        args = json.loads(arguments_json)
    except ValueError:
        return None
    return args[0] if isinstance(args, list) and args and isinstance(args[0], str) else None


async def _timeout_value(ctx: HostContext, function_name: str, arguments_json: str) -> Any:
    spec = ctx.hooks.specs.get(function_name)
    if spec is None or spec.before_timeout_resume is None:
        return None
    return await maybe_await(spec.before_timeout_resume(json.loads(arguments_json)))

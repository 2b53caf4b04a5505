"""The operations that advance an instance, each a ``Delivery`` for the driver.

Each says what it consumes (a token, an inbox event, a timer) and how to
check, against a fresh snapshot, that it still applies. The driver does the
rest. Values from outside are validated by ``jsflow.validate_payload``
before anything is stored or run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from jsflow import Cancel, RaiseEvent, Resume, Timeout, validate_payload

from ._driver import Advanced, Delivery, TxOp, drive, dump, token_info
from ._errors import (
    RESUMABLE_KINDS,
    AlreadyResumedError,
    MissingRegistrationError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    WaitSelectionError,
    WorkflowFinishedError,
    WorkflowNotFaultedError,
    translate,
)
from ._hooks import maybe_await
from ._load import Loaded, header_text, load, load_record, script_source
from ._tokens import hash_token
from ._views import WorkflowInstance, instance_view, public_name
from .store import InstanceStatus, PendingWait, StoreSession, TimerClaim, WorkflowRecord

if TYPE_CHECKING:
    from ._host import WorkflowHost

#: how many recoveries of one instance may fail before it is faulted
MAX_RECOVERIES = 5


def with_tokens(advanced: Advanced) -> WorkflowInstance:
    """The view, carrying the tokens this call issued."""
    tokens = tuple(token_info(t) for t in advanced.tokens)
    return replace(advanced.view, tokens=tokens) if tokens else advanced.view


async def settle(host: WorkflowHost, workflow_id: str, advanced: Advanced) -> WorkflowInstance:
    """After an advance: hand buffered events to the waits that now listen for them."""
    from ._inbox import drain

    view = advanced.view
    if view.status == InstanceStatus.SUSPENDED and any(w.kind == "event" for w in view.waits):
        drained = await drain(host, workflow_id)
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


async def resume(host: WorkflowHost, workflow_id: str, value: Any, wait_id: int | None) -> WorkflowInstance:
    """Resume one wait; the target is fixed up front so a lost race cannot move on to another."""
    validate_payload(value, limit=host.engine.limits.payload, what="the resume value")
    if wait_id is None:
        record, waits = load_record(host, workflow_id)
        if InstanceStatus.is_terminal(record.status):
            raise WorkflowFinishedError(workflow_id, record.status, "resume")
        wait_id = pick_wait(workflow_id, waits)
    target = wait_id

    def check(loaded: Loaded) -> list[TxOp]:
        if loaded.wait(target) is None:
            raise AlreadyResumedError(workflow_id, target, [w.wait_id for w in loaded.waits])
        return []

    delivery = Delivery(Resume(value, target), ("resumed", {"wait_id": target}), check=check)
    return await settle(host, workflow_id, await drive(host, workflow_id, delivery))


# -- resume by token ---------------------------------------------------------------------------
async def resume_with_token(host: WorkflowHost, token: str, payload: Any) -> WorkflowInstance:
    """Resume the one wait a token belongs to; the token is consumed with the journal write."""
    if not isinstance(token, str) or not token or len(token) > 512:
        raise TokenNotFoundError("")
    validate_payload(payload, limit=host.engine.limits.payload, what="the token payload")
    token_hash = hash_token(token)
    rec = host.store.read(lambda tx: tx.get_token(token_hash))
    if rec is None:
        raise TokenNotFoundError(token_hash)
    wid = rec.workflow_id
    record, waits = load_record(host, wid)
    if InstanceStatus.is_terminal(record.status):
        if rec.used_at is not None:
            raise TokenUsedError(token_hash, wid, rec.wait_id, rec.used_at)
        raise WorkflowFinishedError(wid, record.status, "resume")
    value = await _shape_payload(host, waits, rec.wait_id, payload)

    def check(loaded: Loaded) -> list[TxOp]:
        current = host.store.read(lambda tx: tx.get_token(token_hash))
        assert current is not None
        if current.used_at is not None:
            raise TokenUsedError(token_hash, wid, current.wait_id, current.used_at)
        wait = loaded.wait(current.wait_id)
        now = host.clock()
        expired = current.expires_at is not None and now >= current.expires_at
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
    return await settle(host, wid, await drive(host, wid, delivery))


async def _shape_payload(host: WorkflowHost, waits: list[PendingWait], wait_id: int, payload: Any) -> Any:
    wait = next((w for w in waits if w.wait_id == wait_id), None)
    spec = host.hooks.specs.get(wait.function_name) if wait is not None else None
    if spec is None or spec.before_resume is None:
        return payload
    args = json.loads(wait.arguments_json) if wait is not None else []
    value = await maybe_await(spec.before_resume(payload, args))
    validate_payload(value, limit=host.engine.limits.payload, what="the before_resume value")
    return value


# -- recovery and retry ----------------------------------------------------------------------------
async def recover(host: WorkflowHost, workflow_id: str) -> WorkflowInstance:
    """Finish a run whose worker died: replay, then run only what was in flight.

    Each attempt is counted and stamps the instance first (so it goes to the
    back of the stale line whatever happens next); after ``MAX_RECOVERIES``
    attempts that did not end in a clean advance, the instance is faulted
    with the reason instead of being re-run forever."""
    record, waits = load_record(host, workflow_id)
    if record.status != InstanceStatus.RUNNING:
        return instance_view(record, waits)
    missing = sorted(set(host.store.read(lambda tx: tx.get_requirements(workflow_id))) - host.capabilities())
    if missing:  # not this process's to recover: leave it, uncounted
        raise MissingRegistrationError(workflow_id, missing)
    attempts = host.store.read(lambda tx: tx.recovery_attempts(workflow_id))
    if attempts >= MAX_RECOVERIES:
        return _give_up(host, record, attempts)
    with host.store.transaction() as tx:  # claim this attempt (version-checked) and count it
        tx.bump_workflow(workflow_id, record.version)
        attempts = tx.note_recovery(workflow_id)
    delivery = Delivery(
        history=("recovered", {"worker": host.worker_id, "attempt": attempts}),
        owner=True,
        acquire=True,
        recovery=True,
    )
    return await settle(host, workflow_id, await drive(host, workflow_id, delivery))


def _give_up(host: WorkflowHost, record: WorkflowRecord, attempts: int) -> WorkflowInstance:
    wid = record.workflow_id
    message = (
        f"recovery of workflow {wid!r} was attempted {attempts} times without the instance "
        "advancing (its steps crash the process, or every attempt failed); faulted so it is "
        "not re-run forever: fix the cause, then retry it"
    )
    error = {"type": "RecoveryFailedError", "message": message, "attempts": attempts}
    with host.store.transaction() as tx:
        saved = tx.save_workflow(
            replace(record, status=InstanceStatus.FAULTED, error_json=dump(error)),
            expected_version=record.version,
        )
        tx.replace_waits(wid, [])
        tx.clear_recoveries(wid)
        tx.append_history(wid, "faulted", {"error": message, "stage": "recovery"})
    return instance_view(saved, [])


async def retry(host: WorkflowHost, workflow_id: str, version: str | None) -> WorkflowInstance:
    """Restart a faulted instance from its journal minus the trailing failed steps."""
    from ._ops import check_replay

    loaded = load(host, workflow_id)
    record = loaded.record
    if record.status != InstanceStatus.FAULTED:
        raise WorkflowNotFaultedError(workflow_id, record.status)
    journal = list(loaded.state.journal)
    dropped = len(journal)
    while journal and journal[-1].type == "step_error":
        journal.pop()
    state = loaded.state.model_copy(update={"journal": journal})
    script_hash = record.script_hash
    if version is not None and version != script_hash:
        check_replay(host, record, version, state)
        script_hash = version
    inline = min(loaded.inline, len(journal))
    fresh = replace(
        record,
        status=InstanceStatus.RUNNING,
        state=header_text(host, state, inline),
        error_json=None,
        script_hash=script_hash,
    )
    with host.store.transaction() as tx:
        saved = tx.save_workflow(fresh, expected_version=record.version)
        tx.trim_journal(workflow_id, len(journal))
        tx.clear_recoveries(workflow_id)
        tx.append_history(workflow_id, "retried", {"dropped": dropped - len(journal)})
    again = Loaded(saved, loaded.waits, script_source(host, saved), state, inline, loaded.requirements)
    delivery = Delivery(owner=True, acquire=True)
    return await settle(host, workflow_id, await drive(host, workflow_id, delivery, again))


# -- timers ----------------------------------------------------------------------------------------
async def fire(host: WorkflowHost, claim: TimerClaim) -> Advanced:
    """Fire one claimed wait by its kind (raises ``AlreadyResumedError`` if it is gone)."""
    wid, wait = claim.workflow_id, claim.wait
    history = ("timer_fired", {"wait_id": wait.wait_id, "kind": wait.kind, "worker": host.worker_id})
    if wait.kind == "cancel":  # a cancellation stored for a worker that can run the instance
        action: Any = Cancel(_requested_reason(wait.arguments_json))
        history = ("cancel_delivered", {"reason": action.reason, "cleanup": True, "worker": host.worker_id})
    elif wait.kind in ("event", "hook"):
        action = Timeout(wait.wait_id)
    elif wait.kind == "token":
        action = Resume(await _timeout_value(host, wait.function_name, wait.arguments_json), wait.wait_id)
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

    return await drive(host, wid, Delivery(action, history, check=check))


def _requested_reason(arguments_json: str) -> str | None:
    """The reason a stored cancellation request (``_cancel.request``) carries."""
    try:
        args = json.loads(arguments_json)
    except ValueError:
        return None
    return args[0] if isinstance(args, list) and args and isinstance(args[0], str) else None


async def _timeout_value(host: WorkflowHost, function_name: str, arguments_json: str) -> Any:
    spec = host.hooks.specs.get(function_name)
    if spec is None or spec.before_timeout_resume is None:
        return None
    return await maybe_await(spec.before_timeout_resume(json.loads(arguments_json)))


def event_delivery(event_id: int, name: str, payload: Any, wait_id: int, check: Any) -> Delivery:
    history = ("event_delivered", {"event_id": event_id, "wait_id": wait_id})
    return Delivery(RaiseEvent(name, payload, wait_id), history, check=check)

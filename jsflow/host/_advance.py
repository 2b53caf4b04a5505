"""Advancing one instance: load, run the engine with a write-ahead journal, save.

Concurrency: every write is ``save_workflow(..., expected_version)``. The
first write of an advance happens before any side effect: for a resume,
event or timeout it is the engine's ``on_journal`` call for the delivered
completion itself (nothing runs before it); for a retry wait or a recovery,
where the engine runs a step first, the host takes the instance with an
explicit "acquire" write. The consumed token or inbox event is written in
that same first transaction, so "delivered" and "journaled" are one fact.
Losing that write (``ConcurrencyError``) undoes it all; the loser reloads
and re-checks, which is where "already resumed" comes from. While another
worker holds an instance ("running", ``updated_at`` within the lease), a
delivery waits for it briefly and then re-checks; an instance whose lease
lapsed is recovered first.

Recovery: ``engine.recover_workflow`` replays the stored journal and runs
only the steps scheduled but not journaled (those in flight at the crash).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jsflow import (
    JournalCompatibilityError,
    ScriptError,
    WaitNotPendingError,
    WorkflowError,
    WorkflowResult,
    WorkflowState,
    WorkflowStatus,
)

from ._errors import (
    AlreadyResumedError,
    CorruptStateError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    UnknownScriptError,
    UnknownWorkflowError,
    WorkflowBusyError,
    WorkflowFinishedError,
    WorkflowNotFaultedError,
    translate,
)
from ._hooks import HOOK_CREATE, HOOK_WAIT, IssuedToken, maybe_await
from ._tokens import hash_token
from ._views import WorkflowInstance, instance_view
from .store import ConcurrencyError, InboxError, PendingWait, StoreSession, WorkflowRecord
from .store._records import TERMINAL_STATUSES

if TYPE_CHECKING:
    from ._host import WorkflowHost

log = logging.getLogger("jsflow.host")
TxOp = Callable[[StoreSession], None]
MAX_ATTEMPTS = 50
SCRIPT_CACHE_SIZE = 256
BUSY_WAIT_SECONDS = 30.0


@dataclass
class Act:
    """What to do to the instance: resume, event, timeout, or None (recover/start)."""

    kind: str | None = None
    wait_id: int | None = None
    value: Any = None
    name: str = ""
    history: tuple[str, dict[str, Any]] | None = None


@dataclass
class Loaded:
    record: WorkflowRecord
    waits: list[PendingWait]
    script: str
    state: WorkflowState

    def wait(self, wait_id: int | None) -> PendingWait | None:
        return next((w for w in self.waits if w.wait_id == wait_id), None)


# -- loading -----------------------------------------------------------------------------
def load_record(host: WorkflowHost, workflow_id: str) -> tuple[WorkflowRecord, list[PendingWait]]:
    with host.store.transaction(write=False) as tx:
        record = tx.get_workflow(workflow_id)
        if record is None:
            raise UnknownWorkflowError(workflow_id)
        return record, tx.list_waits(workflow_id)


def decode_state(host: WorkflowHost, record: WorkflowRecord, *, inflate: bool = True) -> WorkflowState:
    """The engine state of ``record``; ``CorruptStateError`` if it cannot be read."""
    if record.state is None:
        raise CorruptStateError(record.workflow_id, "no state stored")
    try:
        state = WorkflowState.deserialize(record.state)
    except WorkflowError as exc:
        raise CorruptStateError(record.workflow_id, str(exc)) from exc
    if not inflate or HOOK_CREATE not in record.state:  # no createHook entry to inflate
        return state
    return host.hooks.inflate_state(record.workflow_id, state)


def with_state(record: WorkflowRecord, state: str, status: str) -> WorkflowRecord:
    """``replace(record, state=state, status=status)``, spelled out: it runs once per
    journal write and ``dataclasses.replace`` costs several times more."""
    r = record
    return WorkflowRecord(
        r.workflow_id,
        r.script_name,
        r.script_hash,
        r.entry_point,
        status,
        state,
        r.result_json,
        r.error_json,
        r.created_at,
        r.updated_at,
        r.version,
        r.cancel_reason,
        r.metadata,
    )


def load(
    host: WorkflowHost, workflow_id: str, found: tuple[WorkflowRecord, list[PendingWait]] | None = None
) -> Loaded:
    """Everything an advance needs; ``found``: the record and waits, if just read."""
    record, waits = found if found is not None else load_record(host, workflow_id)
    return Loaded(record, waits, script_source(host, record), decode_state(host, record))


def script_source(host: WorkflowHost, record: WorkflowRecord) -> str:
    """The source of the record's script version. Versions are content-addressed
    and never change, so they are cached (name + hash -> source)."""
    key = (record.script_name, record.script_hash)
    source = host.script_cache.get(key)
    if source is None:
        script = host.store.get_script(record.script_name, record.script_hash)
        if script is None:
            raise UnknownScriptError(record.script_name, record.script_hash)
        source = script.source
        if len(host.script_cache) >= SCRIPT_CACHE_SIZE:
            host.script_cache.clear()
        host.script_cache[key] = source
    return source


def is_stale(host: WorkflowHost, record: WorkflowRecord) -> bool:
    """A "running" instance nobody has written for longer than the lease."""
    return record.status == "running" and host.clock() - record.updated_at > host.lease


# -- one attempt --------------------------------------------------------------------------
@dataclass
class Attempt:
    """One try at advancing: tracks the expected version across the journal writes."""

    host: WorkflowHost
    loaded: Loaded
    first_ops: list[TxOp] = field(default_factory=list)
    record: WorkflowRecord = field(init=False)
    journaled: bool = False

    def __post_init__(self) -> None:
        self.record = self.loaded.record

    def _write(self, record: WorkflowRecord, extra: list[TxOp]) -> None:
        store = self.host.store
        if not extra:  # one statement: the store runs it as its own transaction
            saved = store.save_workflow(record, expected_version=self.record.version)
        else:
            with store.transaction() as tx:
                saved = tx.save_workflow(record, expected_version=self.record.version)
                for op in extra:
                    op(tx)
        self.record = saved
        self.first_ops = []
        self.journaled = True

    def acquire(self) -> None:
        """Take the instance before the engine runs a step ahead of any journal write."""
        self._write(replace(self.record, status="running"), self.first_ops)

    def on_journal(self, state: WorkflowState) -> None:
        """The write-ahead hook: persist the new journal before the script sees it."""
        self._write(with_state(self.record, self.host.hooks.state_text(state), "running"), self.first_ops)

    async def run(self, act: Act) -> WorkflowResult:
        eng, script, state = self.host.engine, self.loaded.script, self.loaded.state
        hook = self.on_journal
        if act.kind == "resume":
            return await eng.aresume_workflow(script, state, act.value, wait_id=act.wait_id, on_journal=hook)
        if act.kind == "event":
            return await eng.araise_event(script, state, act.name, act.value, on_journal=hook)
        if act.kind == "timeout":
            return await eng.atimeout_event(script, state, wait_id=act.wait_id, on_journal=hook)
        return await eng.arecover_workflow(script, state, on_journal=hook)

    def finish(self, result: WorkflowResult, act: Act) -> tuple[WorkflowInstance, list[IssuedToken]]:
        """The final save: status, state, waits, new tokens and history, in one transaction."""
        host, wid = self.host, self.record.workflow_id
        status = _STATUS[result.status]
        state = host.hooks.state_text(result.state)
        record = replace(
            self.record,
            status=status,
            state=state,
            result_json=_dump(result.value) if status == "completed" else None,
            error_json=_dump(error_dict(result.error)) if result.error is not None else None,
        )
        issued: list[IssuedToken] = []
        with host.store.transaction() as tx:
            saved = tx.save_workflow(record, expected_version=self.record.version)
            if self.journaled is False and result.status is not WorkflowStatus.FAULTED:
                for op in self.first_ops:
                    op(tx)
            waits = pending_waits(host, wid, result, self.loaded.waits, issued, tx)
            if waits or self.loaded.waits:  # none before and none now: nothing to replace
                tx.replace_waits(wid, waits)
            if act.history is not None:
                tx.append_history(wid, act.history[0], act.history[1])
            tx.append_history(wid, status, _outcome_detail(result, waits))
        self.record = saved
        return instance_view(saved, waits), issued


_STATUS = {
    WorkflowStatus.COMPLETED: "completed",
    WorkflowStatus.SUSPENDED: "suspended",
    WorkflowStatus.FAULTED: "faulted",
    WorkflowStatus.CONTINUED_AS_NEW: "running",
}


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def error_dict(error: BaseException | None) -> dict[str, Any] | None:
    """A faulted instance's error as plain data for views and the CLI."""
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


def _outcome_detail(result: WorkflowResult, waits: list[PendingWait]) -> dict[str, Any]:
    if result.status is WorkflowStatus.SUSPENDED:
        return {"waits": [{"wait_id": w.wait_id, "function": w.function_name} for w in waits]}
    if result.status is WorkflowStatus.FAULTED:
        return {"error": str(result.error)[:500]}
    if result.status is WorkflowStatus.CONTINUED_AS_NEW:
        return {"continued_as_new": result.state.run_id, "parent_run_id": result.state.parent_run_id}
    return {}


def classify(host: WorkflowHost, function_name: str, is_retry: bool) -> str:
    """The host's kind for a wait: decides what its timer does."""
    if is_retry:
        return "retry"
    if function_name == "waitForEvent":
        return "event"
    if function_name == "sleep":
        return "sleep"
    if function_name == HOOK_WAIT:
        return "hook"
    if function_name in host.hooks.specs:
        return "token"
    return "suspend"


def pending_waits(
    host: WorkflowHost,
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
        kind = classify(host, w.function_name, w.is_retry)
        row = PendingWait(
            wait_id=w.wait_id,
            function_name=w.function_name,
            kind=kind,
            resume_at=w.resume_at,
            event_names=tuple(w.event_names) if w.event_names is not None else None,
            is_retry=w.is_retry,
            arguments_json=_dump(w.arguments),
        )
        old = before.get(w.wait_id)
        if kind in ("token", "hook"):
            if old is not None and old.token_hash and old.function_name == w.function_name:
                row = replace(row, token_hash=old.token_hash, resume_at=old.resume_at)
            else:
                token = host.hooks.issue(workflow_id, kind, w.function_name, w.arguments, w.resume_at)
                token_hash = hash_token(token.token)
                tx.put_token(token_hash, workflow_id, w.wait_id, expires_at=token.expires_at, kind=kind)
                row = replace(row, token_hash=token_hash, resume_at=token.expires_at)
                issued.append(token)
        out.append(row)
    return out


# -- driving ---------------------------------------------------------------------------------
Prepare = Callable[[Loaded], list[TxOp]]


async def drive(
    host: WorkflowHost,
    workflow_id: str,
    act: Act,
    *,
    prepare: Prepare | None = None,
    owner: bool = False,
    acquire: bool | None = None,
    preloaded: Loaded | None = None,
) -> WorkflowInstance:
    """Advance the instance by ``act``, retrying on lost races, then run the
    post-commit hooks. ``owner``: the caller holds the instance (start,
    recover), so "running" is expected rather than waited for. ``acquire``:
    take the instance with a write before running (None: when the engine
    would run a step before its first journal write). ``preloaded``: the
    instance as just read or created, used by the first attempt only."""
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    conflicts = 0
    while conflicts < MAX_ATTEMPTS:
        loaded = preloaded if preloaded is not None else load(host, workflow_id)
        preloaded = None
        status = loaded.record.status
        if status in TERMINAL_STATUSES:
            if act.wait_id is not None and any(e.slot == act.wait_id for e in loaded.state.journal):
                raise AlreadyResumedError(workflow_id, act.wait_id, [])  # completed, then finished
            raise WorkflowFinishedError(workflow_id, status, act.kind or "advance")
        if status == "running" and not owner:
            if is_stale(host, loaded.record):
                await recover(host, workflow_id)
                continue
            if time.monotonic() > deadline:
                raise WorkflowBusyError(workflow_id, conflicts + 1)
            await asyncio.sleep(0.002)
            continue
        first_ops = prepare(loaded) if prepare is not None else []
        attempt = Attempt(host, loaded, first_ops)
        try:
            if acquire or (acquire is None and _needs_acquire(loaded, act)):
                attempt.acquire()
            result = await attempt.run(act)
            view, issued = attempt.finish(result, act)
        except (ConcurrencyError, InboxError):
            conflicts += 1
            owner = False  # someone else moved it: re-check as a bystander
            await asyncio.sleep(0.001)
            continue
        except WaitNotPendingError as exc:
            if isinstance(exc, AlreadyResumedError):
                raise
            raise AlreadyResumedError(workflow_id, exc.wait_id, exc.pending) from exc
        await after_commit(host, issued)
        if result.status is WorkflowStatus.CONTINUED_AS_NEW:
            return await drive(host, workflow_id, Act(), owner=True)
        return view
    raise WorkflowBusyError(workflow_id, MAX_ATTEMPTS)


def _needs_acquire(loaded: Loaded, act: Act) -> bool:
    """True when the engine would run a step before its first journal write."""
    if act.kind is None:
        return True
    if act.kind in ("resume", "timeout"):
        return any(w.slot == act.wait_id and w.is_retry for w in loaded.state.waits)
    return False


async def after_commit(host: WorkflowHost, issued: list[IssuedToken]) -> None:
    """``before_suspend`` hooks: only once the suspension is durably stored."""
    for token in issued:
        spec = token.spec
        if spec is None or spec.before_suspend is None:
            continue
        try:
            await maybe_await(spec.before_suspend(token.token, token.expires_at, list(token.arguments)))
        except Exception:
            log.exception("before_suspend hook of %r failed; the wait stays pending", spec.name)


# -- public operations on one instance -------------------------------------------------------
def check_wait(workflow_id: str, loaded: Loaded, wait_id: int | None) -> PendingWait:
    wait = loaded.wait(wait_id)
    if wait is None:
        raise AlreadyResumedError(workflow_id, wait_id, [w.wait_id for w in loaded.waits])
    return wait


async def resume(host: WorkflowHost, workflow_id: str, value: Any, wait_id: int | None) -> WorkflowInstance:
    """Resume one wait; the target is fixed up front so a lost race cannot move on to the next wait."""
    if wait_id is None:
        record, waits = load_record(host, workflow_id)
        if record.status in TERMINAL_STATUSES:
            raise WorkflowFinishedError(workflow_id, record.status, "resume")
        if not waits:
            raise AlreadyResumedError(workflow_id, None, [])
        wait_id = waits[0].wait_id
    target = wait_id
    act = Act("resume", target, value, history=("resumed", {"wait_id": target}))

    def prepare(loaded: Loaded) -> list[TxOp]:
        check_wait(workflow_id, loaded, target)
        return []

    view = await drive(host, workflow_id, act, prepare=prepare)
    return await deliver_inbox(host, workflow_id, view)


async def recover(host: WorkflowHost, workflow_id: str) -> WorkflowInstance:
    """Finish a run whose worker died: replay, then run only what was in flight."""
    record, waits = load_record(host, workflow_id)
    if record.status != "running":
        return instance_view(record, waits)
    act = Act(history=("recovered", {"worker": host.worker_id}))
    view = await drive(host, workflow_id, act, owner=True, acquire=True)
    return await deliver_inbox(host, workflow_id, view)


async def retry(host: WorkflowHost, workflow_id: str, version: str | None) -> WorkflowInstance:
    """Restart a faulted instance from its journal minus the trailing failed steps."""
    from ._ops import check_replay

    record, _ = load_record(host, workflow_id)
    if record.status != "faulted":
        raise WorkflowNotFaultedError(workflow_id, record.status)
    state = decode_state(host, record, inflate=False)
    journal = list(state.journal)
    dropped = len(journal)
    while journal and journal[-1].type == "step_error":
        journal.pop()
    state = state.model_copy(update={"journal": journal})
    script_hash = record.script_hash
    if version is not None and version != script_hash:
        check_replay(host, record, version, state)
        script_hash = version
    fresh = replace(
        record, status="running", state=state.serialize(), error_json=None, script_hash=script_hash
    )
    with host.store.transaction() as tx:
        tx.save_workflow(fresh, expected_version=record.version)
        tx.append_history(workflow_id, "retried", {"dropped": dropped - len(journal)})
    view = await drive(host, workflow_id, Act(), owner=True, acquire=True)
    return await deliver_inbox(host, workflow_id, view)


async def resume_with_token(host: WorkflowHost, token: str, payload: Any) -> WorkflowInstance:
    """Resume the one wait a token belongs to; the token is consumed with the journal write."""
    if not isinstance(token, str) or not token:
        raise TokenNotFoundError("")
    token_hash = hash_token(token)
    rec = host.store.get_token(token_hash)
    if rec is None:
        raise TokenNotFoundError(token_hash)
    wid = rec.workflow_id

    def prepare(loaded: Loaded) -> list[TxOp]:
        current = host.store.get_token(token_hash)
        assert current is not None
        if current.used_at is not None:
            raise TokenUsedError(token_hash, wid, current.wait_id, current.used_at)
        wait = loaded.wait(current.wait_id)
        now = host.clock()
        expired = current.expires_at is not None and now >= current.expires_at
        if expired or wait is None or wait.token_hash != token_hash:
            when = current.expires_at or now
            raise TokenExpiredError(token_hash, wid, current.wait_id, when)

        def consume(tx: StoreSession) -> None:
            try:
                tx.consume_token(token_hash, now=now)
            except Exception as exc:
                raise translate(exc) from exc

        return [consume]

    record, waits = load_record(host, wid)
    if record.status in TERMINAL_STATUSES:
        raise WorkflowFinishedError(wid, record.status, "resume")
    value = await _shape_payload(host, waits, rec.wait_id, payload)
    act = Act("resume", rec.wait_id, value, history=("resumed_with_token", {"wait_id": rec.wait_id}))
    view = await drive(host, wid, act, prepare=prepare)
    return await deliver_inbox(host, wid, view)


async def _shape_payload(host: WorkflowHost, waits: list[PendingWait], wait_id: int, payload: Any) -> Any:
    wait = next((w for w in waits if w.wait_id == wait_id), None)
    spec = host.hooks.specs.get(wait.function_name) if wait is not None else None
    if spec is None or spec.before_resume is None:
        return payload
    args = json.loads(wait.arguments_json) if wait is not None else []
    return await maybe_await(spec.before_resume(payload, args))


async def deliver_inbox(host: WorkflowHost, workflow_id: str, view: WorkflowInstance) -> WorkflowInstance:
    """After an advance: hand buffered events to the waits that now listen for them."""
    from ._inbox import drain

    if view.status != "suspended" or not any(w.kind == "event" for w in view.waits):
        return view
    return await drain(host, workflow_id) or view


def now_or_clock(host: WorkflowHost, now: datetime | None) -> datetime:
    return now if now is not None else host.clock()

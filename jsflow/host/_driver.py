"""The instance driver: the one loop that advances an instance.

Each turn: load the instance (header, journal rows, waits, requirements) in
one snapshot; check the delivery against it (is the wait still pending, the
event still buffered, the token unused?); open a live run; advance it with a
write-ahead journal; save the outcome with the version check; run the
after-commit hooks. A ``continueAsNew`` starts the next turn on the fresh
state (a loop, so chains of any length never recurse).

Concurrency: every write carries the version the turn loaded. The first
write of a turn also sets status "running" and applies the delivery's
consumption (token used, inbox event delivered), so "delivered" and
"journaled" are one fact. Later journal writes are one row plus a version
bump (``bump_workflow``): a worker that lost the instance cannot add a row.
Losing a write (``ConcurrencyError``) undoes that transaction; the turn is
retried from a fresh load, which is where "already resumed" comes from. An
instance that another worker is advancing is waited for with exponential
backoff; one whose lease lapsed is recovered first.

Nothing wedges: an unexpected exception after the turn changed the
instance (or while the caller owns it) faults the instance with
``AdvanceFailedError`` as a definite stored outcome; before any change it
propagates and the instance is as it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from jsflow import (
    Action,
    EventNotAwaitedError,
    JournalCompatibilityError,
    JournalWrite,
    LiveRun,
    Resume,
    ScriptError,
    Timeout,
    WaitNotPendingError,
    WorkflowResult,
    WorkflowStatus,
)

from ._errors import (
    AdvanceFailedError,
    AlreadyResumedError,
    HostError,
    MissingRegistrationError,
    WorkflowBusyError,
    WorkflowFinishedError,
)
from ._hooks import HOOK_WAIT, IssuedToken, maybe_await
from ._load import Loaded, header_text, load
from ._tokens import hash_token
from ._views import TokenInfo, WorkflowInstance, instance_view
from .store import ConcurrencyError, InboxError, InstanceStatus, PendingWait, StoreSession

if TYPE_CHECKING:
    from ._host import WorkflowHost

log = logging.getLogger("jsflow.host")
TxOp = Callable[[StoreSession], None]
BUSY_WAIT_SECONDS = 30.0
MAX_CONFLICTS = 50
_STATUS = {
    WorkflowStatus.COMPLETED: InstanceStatus.COMPLETED,
    WorkflowStatus.SUSPENDED: InstanceStatus.SUSPENDED,
    WorkflowStatus.FAULTED: InstanceStatus.FAULTED,
    WorkflowStatus.CONTINUED_AS_NEW: InstanceStatus.RUNNING,
    WorkflowStatus.CANCELLED: InstanceStatus.CANCELLED,
}


@dataclass
class Delivery:
    """What a turn does to an instance besides running it.

    ``action``: the engine action (None: proceed, i.e. start or finish what was
    in flight). ``history``: a lifecycle line written with the outcome.
    ``owner``: the caller already holds the instance in "running" (start,
    recover, retry, a continue-as-new turn). ``acquire``: take the instance with
    a write before running (None: only when the engine would run a step before
    its first journal write). ``recovery``: count this turn as a recovery attempt.
    """

    action: Action | None = None
    history: tuple[str, dict[str, Any]] | None = None
    owner: bool = False
    acquire: bool | None = None
    recovery: bool = False
    check: Callable[[Loaded], list[TxOp]] = field(default=lambda loaded: [])

    def needs_acquire(self, loaded: Loaded) -> bool:
        if self.acquire is not None:
            return self.acquire
        action = self.action
        if action is None:
            return True
        target = getattr(action, "wait_id", None)
        if isinstance(action, Resume | Timeout):
            return any(w.slot == target and w.is_retry for w in loaded.state.waits)
        return False


@dataclass
class Advanced:
    """The outcome of a drive: the instance as saved and the tokens it issued."""

    view: WorkflowInstance
    tokens: list[IssuedToken] = field(default_factory=list)


class Backoff:
    """Exponential backoff for a busy instance: 2 ms doubling to 250 ms, within a deadline."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        self.delay = 0.002
        self.tries = 0
        self.deadline = time.monotonic() + BUSY_WAIT_SECONDS

    async def wait(self) -> None:
        self.tries += 1
        if self.tries > MAX_CONFLICTS * 4 or time.monotonic() + self.delay > self.deadline:
            raise WorkflowBusyError(self.workflow_id, self.tries)
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, 0.25)


# -- the loop -------------------------------------------------------------------------------
async def drive(
    host: WorkflowHost, workflow_id: str, delivery: Delivery, preloaded: Loaded | None = None
) -> Advanced:
    """Advance the instance by ``delivery`` until it suspends or ends."""
    backoff = Backoff(workflow_id)
    tokens: list[IssuedToken] = []
    while True:
        loaded = preloaded if preloaded is not None else load(host, workflow_id)
        preloaded = None
        if not await _ready(host, loaded, delivery, backoff):
            continue
        missing = sorted(set(loaded.requirements) - host.capabilities())
        if missing:
            raise MissingRegistrationError(workflow_id, missing)
        attempt = Attempt(host, loaded, delivery)
        try:
            attempt.ops = delivery.check(loaded)
            result = await attempt.run()
            view, issued = attempt.finish(result)
            attempt.keep_warm(result)
        except (ConcurrencyError, InboxError):
            delivery = replace(delivery, owner=False)  # someone else moved it: re-check as a bystander
            await backoff.wait()
            continue
        except (WaitNotPendingError, EventNotAwaitedError) as exc:
            if isinstance(exc, AlreadyResumedError):
                raise
            pending = [w.wait_id for w in loaded.waits]
            raise AlreadyResumedError(workflow_id, getattr(exc, "wait_id", None), pending) from exc
        except HostError:
            raise
        except Exception as exc:
            if attempt.changed or delivery.owner:
                fault(host, attempt, exc)
            raise
        finally:
            attempt.close()
        tokens += issued
        await after_commit(host, issued)
        if result.status is not WorkflowStatus.CONTINUED_AS_NEW:
            return Advanced(view, tokens)
        preloaded = Loaded(attempt.record, [], loaded.script, result.state, 0, loaded.requirements)
        delivery = Delivery(owner=True, acquire=False)


async def _ready(host: WorkflowHost, loaded: Loaded, delivery: Delivery, backoff: Backoff) -> bool:
    """Whether the turn can run now; False after waiting for a busy instance."""
    record = loaded.record
    if InstanceStatus.is_terminal(record.status):
        action = delivery.action
        wait_id = getattr(action, "wait_id", None)
        if wait_id is not None and any(e.slot == wait_id for e in loaded.state.journal):
            raise AlreadyResumedError(record.workflow_id, wait_id, [])
        raise WorkflowFinishedError(record.workflow_id, record.status, _verb(action))
    if record.status != InstanceStatus.RUNNING or delivery.owner:
        return True
    if is_stale(host, record.updated_at):
        from ._deliveries import recover

        await recover(host, record.workflow_id)
        return False
    await backoff.wait()
    return False


def _verb(action: Action | None) -> str:
    return {"Resume": "resume", "RaiseEvent": "event", "Timeout": "timeout"}.get(
        type(action).__name__, "advance"
    )


def is_stale(host: WorkflowHost, updated_at: Any) -> bool:
    """A "running" instance nobody has written for longer than the lease."""
    return bool(host.clock() - updated_at > host.lease)


# -- one turn -----------------------------------------------------------------------------------
class Attempt:
    """One turn: the live run, its writes and its final save."""

    def __init__(self, host: WorkflowHost, loaded: Loaded, delivery: Delivery) -> None:
        self.host = host
        self.loaded = loaded
        self.delivery = delivery
        self.record = loaded.record
        self.ops: list[TxOp] = []
        self.changed = False  # a write of this turn committed
        self.live: LiveRun | None = None  # closed at the end of the turn unless kept warm
        self.beat = 0.0  # when this turn last wrote the instance row
        if delivery.owner and delivery.acquire is False and loaded.record.status == InstanceStatus.RUNNING:
            # the caller's own write (a start, a continue-as-new) already took it
            self.changed, self.beat = True, time.monotonic()

    @property
    def workflow_id(self) -> str:
        return self.record.workflow_id

    async def run(self) -> WorkflowResult:
        host, loaded = self.host, self.loaded
        record = loaded.record
        run = host.warm.take(record.workflow_id, record.version, record.script_hash)
        if run is None:
            run = host.engine.open_run(loaded.script, loaded.state, extensions=[host.hooks.extension])
        self.live = run
        if run.finished:  # the script no longer loads or replays: fault, consume nothing
            assert run.result is not None
            return run.result
        if self.delivery.needs_acquire(loaded):
            self.acquire()
        return await run.aadvance(self.delivery.action, on_journal=self.on_journal)

    def keep_warm(self, result: WorkflowResult) -> None:
        """Hand a suspended run to the warm cache, as of the version just saved."""
        run, self.live = self.live, None
        if run is None:
            return
        if result.status is not WorkflowStatus.SUSPENDED:
            run.close()
            return
        dues = [w.resume_at for w in result.waits if w.resume_at is not None]
        record = self.record
        self.host.warm.put(
            record.workflow_id, run, record.version, record.script_hash, min(dues, default=None)
        )

    def close(self) -> None:
        if self.live is not None:
            self.live.close()
            self.live = None

    def _first_write(self, tx: StoreSession) -> None:
        saved = tx.save_workflow(
            replace(self.record, status=InstanceStatus.RUNNING), expected_version=self.record.version
        )
        for op in self.ops:
            op(tx)
        self.pending_record = saved

    def acquire(self) -> None:
        """Take the instance before the engine runs a step ahead of any journal write."""
        with self.host.store.transaction() as tx:
            self._first_write(tx)
        self._committed(self.pending_record)

    def _committed(self, record: Any) -> None:
        self.record = record
        self.ops = []
        self.changed = True
        self.beat = time.monotonic()

    def on_journal(self, write: JournalWrite) -> None:
        """The write-ahead hook: one journal row before the script sees it.

        The first write of a turn takes the instance (status "running", a new
        version, the delivery's consumption). Later ones are one fenced insert:
        it lands only while the version is the one this turn wrote, and anyone
        taking the instance over bumps the version first. A heartbeat bump of
        ``updated_at`` every quarter lease keeps a long turn from looking stale.
        """
        text = self.host.hooks.entry_text(write.entry)
        wid, store = self.workflow_id, self.host.store
        if self.changed and time.monotonic() - self.beat < self.host.lease.total_seconds() / 4:
            store.append_journal_checked(wid, self.record.version, write.index, text)
            return
        with store.transaction() as tx:
            if self.changed:
                record = replace(self.record, version=tx.bump_workflow(wid, self.record.version))
            else:
                self._first_write(tx)
                record = self.pending_record
            tx.append_journal(wid, write.index, text)
        self._committed(record)

    def finish(self, result: WorkflowResult) -> tuple[WorkflowInstance, list[IssuedToken]]:
        """The final save: status, header, waits, new tokens and history, in one transaction."""
        host, wid, loaded = self.host, self.workflow_id, self.loaded
        status = _STATUS[result.status]
        continued = result.status is WorkflowStatus.CONTINUED_AS_NEW
        header = header_text(host, result.state, 0 if continued else loaded.inline)
        record = replace(
            self.record,
            status=status,
            state=header,
            result_json=dump(result.value) if status == InstanceStatus.COMPLETED else None,
            error_json=dump(error_dict(result.error)) if result.error is not None else None,
        )
        issued: list[IssuedToken] = []
        with host.store.transaction() as tx:
            saved = tx.save_workflow(record, expected_version=self.record.version)
            if not self.changed and result.status is not WorkflowStatus.FAULTED:
                for op in self.ops:
                    op(tx)
            if continued:
                tx.trim_journal(wid, 0)
            waits = pending_waits(host, wid, result, loaded.waits, issued, tx)
            if waits or loaded.waits:  # none before and none now: nothing to replace
                tx.replace_waits(wid, waits)
            if self.delivery.history is not None:
                tx.append_history(wid, *self.delivery.history)
            tx.append_history(wid, result.status.value, outcome_detail(result, waits))
            if self.delivery.recovery:
                tx.clear_recoveries(wid)
        self._committed(saved)
        return instance_view(saved, waits), issued


def fault(host: WorkflowHost, attempt: Attempt, exc: BaseException) -> None:
    """Store a definite outcome for a turn that failed unexpectedly: faulted, with the error.

    Raises ``AdvanceFailedError`` (chained to ``exc``) once the fault is stored;
    returns quietly if it could not be stored (the caller re-raises ``exc``;
    the lease then hands the instance to recovery, which is bounded)."""
    wid = attempt.workflow_id
    error = AdvanceFailedError(wid, exc)
    detail = {"type": "AdvanceFailedError", "message": str(error), "cause_type": error.cause_type}
    log.error("advancing workflow %r failed; faulting it: %r", wid, exc)
    try:
        with host.store.transaction() as tx:
            current = tx.get_workflow(wid)
            if current is None or current.version != attempt.record.version:
                return  # someone else moved it: their outcome stands
            tx.save_workflow(
                replace(current, status=InstanceStatus.FAULTED, error_json=dump(detail)),
                expected_version=current.version,
            )
            tx.replace_waits(wid, [])
            tx.append_history(wid, "faulted", {"error": str(error)[:500], "stage": "host"})
    except Exception:
        log.exception("could not store the fault of workflow %r; trying the minimal write", wid)
        try:
            if not host.store.mark_faulted(wid, attempt.record.version, dump(detail)):
                return
        except Exception:
            log.exception("could not store the fault of workflow %r", wid)
            return
    raise error from exc


async def after_commit(host: WorkflowHost, issued: list[IssuedToken]) -> None:
    """Once a suspension is durably stored: ``before_suspend`` hooks, then the
    host's token listeners (``WorkflowHost.add_token_listener``)."""
    for token in issued:
        spec = token.spec
        if spec is not None and spec.before_suspend is not None:
            try:
                await maybe_await(spec.before_suspend(token.token, token.expires_at, list(token.arguments)))
            except Exception:
                log.exception("before_suspend hook of %r failed; the wait stays pending", spec.name)
        for listener in list(host.token_listeners):
            try:
                listener(token_info(token))
            except Exception:
                log.exception("a token listener failed")


def token_info(token: IssuedToken) -> TokenInfo:
    return TokenInfo(token.wait_id, token.function_name, token.kind, token.token, token.expires_at, token.url)


# -- stored forms -------------------------------------------------------------------------------
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
            arguments_json=dump(w.arguments),
        )
        old = before.get(w.wait_id)
        if kind in ("token", "hook"):
            if old is not None and old.token_hash and old.function_name == w.function_name:
                row = replace(row, token_hash=old.token_hash, resume_at=old.resume_at)
            else:
                token = host.hooks.issue(workflow_id, w, kind)
                token_hash = hash_token(token.token)
                existing = tx.get_token(token_hash)  # a hook's token is derived: it may exist already
                if existing is None:
                    tx.put_token(token_hash, workflow_id, w.wait_id, expires_at=token.expires_at, kind=kind)
                elif existing.wait_id != w.wait_id and existing.used_at is None:
                    tx.retarget_token(token_hash, w.wait_id)  # waiting again after a lost race
                row = replace(row, token_hash=token_hash, resume_at=token.expires_at)
                issued.append(token)
        out.append(row)
    return out

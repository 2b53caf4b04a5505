"""The instance driver: the one loop that advances an instance.

Each turn: read the instance (header, waits, requirements) in one snapshot,
without its journal when a warm run may serve it; check the delivery against
it (is the wait still pending, the event still buffered, the token unused?);
take the warm run or open one cold (reading the journal once); advance it
with a write-ahead journal; save the outcome with the version check; run the
after-commit hooks. A ``continueAsNew`` starts the next turn on the fresh
state (a loop, so chains of any length never recurse); once the call's time
budget (``limits.time``) is spent, the chain is parked: the instance is
saved "suspended" with a ``continue`` wait due now, and a worker carries it on.

Concurrency: every write carries the version the turn loaded. The first
write of a turn also sets status "running" and applies the delivery's
consumption (token used, inbox event delivered), so "delivered" and
"journaled" are one fact. Later journal writes are one row plus a version
bump (``bump_workflow``): a worker that lost the instance cannot add a row.
Losing a write (``ConcurrencyError``) undoes that transaction; the turn is
retried from a fresh load, which is where "already resumed" comes from. An
instance that another worker is advancing is waited for with exponential
backoff; one whose lease lapsed is recovered first (``recover_run``).

Nothing wedges: an unexpected exception after the turn changed the
instance (or while the caller owns it) faults the instance with
``AdvanceFailedError`` as a definite stored outcome; before any change it
propagates and the instance is as it was. A transient store failure
(``StoreUnavailableError``: a lost connection, a restart, a serialization
failure or lock timeout that outlived the store's own retries) faults
nothing: the turn is abandoned, and the lease hands the instance to recovery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from jsflow import (
    Action,
    EventNotAwaitedError,
    JournalWrite,
    LiveRun,
    PayloadSchemaError,
    Resume,
    Timeout,
    WaitNotPendingError,
    WorkflowCancelledError,
    WorkflowResult,
    WorkflowStatus,
)

from ._child_events import notify_parent
from ._context import HostContext
from ._errors import (
    AdvanceFailedError,
    AlreadyResumedError,
    HostError,
    MissingRegistrationError,
    WorkflowBusyError,
    WorkflowFinishedError,
)
from ._hooks import IssuedToken, maybe_await
from ._kinds import WaitKind
from ._load import Loaded, fresh, full_state, header_text, load, load_header
from ._outcome import continue_wait, dump, error_dict, outcome_detail, pending_waits, token_info
from ._views import WorkflowInstance, instance_view
from ._warm import RunKey
from .store import ConcurrencyError, InboxError, InstanceStatus, StoreSession, StoreUnavailableError

log = logging.getLogger("jsflow.host")
TxOp = Callable[[StoreSession], None]
BUSY_WAIT_SECONDS = 30.0
MAX_CONFLICTS = 50
#: how many recoveries of one instance may fail before it is faulted
MAX_RECOVERIES = 5
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
            return any(w.wait_id == target and w.is_retry for w in loaded.waits)
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
    ctx: HostContext, workflow_id: str, delivery: Delivery, preloaded: Loaded | None = None
) -> Advanced:
    """Advance the instance by ``delivery`` until it suspends or ends."""
    backoff = Backoff(workflow_id)
    tokens: list[IssuedToken] = []
    budget_end = time.monotonic() + ctx.engine.limits.time  # for continue-as-new chains
    while True:
        loaded = preloaded if preloaded is not None else _read(ctx, workflow_id)
        preloaded = None
        if not await _ready(ctx, loaded, delivery, backoff):
            continue
        missing = sorted(set(loaded.requirements) - ctx.capabilities())
        if missing:
            raise MissingRegistrationError(workflow_id, missing)
        attempt = Attempt(ctx, loaded, delivery)
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
        except (HostError, PayloadSchemaError):
            raise  # a refused payload changed nothing: the instance stays as it was
        except StoreUnavailableError:
            raise  # unavailable: the turn is abandoned unfaulted; recovery takes it up
        except Exception as exc:
            if attempt.changed or delivery.owner:
                fault(ctx, attempt, exc)
            raise
        finally:
            attempt.close()
        tokens += issued
        await after_commit(ctx, issued)
        if result.status is WorkflowStatus.CONTINUED_AS_NEW and time.monotonic() >= budget_end:
            view = park(ctx, attempt)  # the call's budget is spent: a worker carries the chain on
        elif result.status is WorkflowStatus.CONTINUED_AS_NEW:
            preloaded = fresh(attempt.record, result.state, loaded.requirements, loaded.script)
            delivery = Delivery(owner=True, acquire=False)
            continue
        for listener in list(ctx.turn_listeners):  # children and parents (see ``_cancel.on_turn``)
            await listener(view)
        return Advanced(view, tokens)


def _read(ctx: HostContext, workflow_id: str) -> Loaded:
    """Without the journal when a warm run may serve the turn; else all in one snapshot."""
    if ctx.warm.holds(workflow_id):
        return load_header(ctx, workflow_id)
    return load(ctx, workflow_id)


async def _ready(ctx: HostContext, loaded: Loaded, delivery: Delivery, backoff: Backoff) -> bool:
    """Whether the turn can run now; False after waiting for a busy instance."""
    record = loaded.record
    if InstanceStatus.is_terminal(record.status):
        action = delivery.action
        wait_id = getattr(action, "wait_id", None)
        if wait_id is not None and any(e.slot == wait_id for e in full_state(ctx, loaded).journal):
            raise AlreadyResumedError(record.workflow_id, wait_id, [])
        raise WorkflowFinishedError(record.workflow_id, record.status, _verb(action))
    if record.status != InstanceStatus.RUNNING or delivery.owner:
        return True
    if is_stale(ctx, record.updated_at):
        await recover_run(ctx, record.workflow_id)
        return False
    await backoff.wait()
    return False


def _verb(action: Action | None) -> str:
    return {"Resume": "resume", "RaiseEvent": "event", "Timeout": "timeout"}.get(
        type(action).__name__, "advance"
    )


def is_stale(ctx: HostContext, updated_at: Any) -> bool:
    """A "running" instance nobody has written for longer than the lease."""
    return bool(ctx.clock() - updated_at > ctx.lease)


# -- one turn -----------------------------------------------------------------------------------
class Attempt:
    """One turn: the live run, its writes and its final save."""

    def __init__(self, ctx: HostContext, loaded: Loaded, delivery: Delivery) -> None:
        self.ctx = ctx
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

    def _key(self) -> RunKey:
        return RunKey(self.loaded.incarnation, self.record.version, self.record.script_hash)

    async def run(self) -> WorkflowResult:
        ctx, loaded = self.ctx, self.loaded
        run = ctx.warm.take(self.workflow_id, self._key())
        if run is None:  # cold: the journal is read here, once
            state = full_state(ctx, loaded)
            run = ctx.engine.open_run(loaded.script, state, extensions=ctx.extensions)
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
        self.ctx.warm.put(self.workflow_id, run, self._key(), min(dues, default=None))

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
        with self.ctx.store.transaction() as tx:
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
        text = self.ctx.hooks.entry_text(write.entry)
        wid, store = self.workflow_id, self.ctx.store
        if self.changed and time.monotonic() - self.beat < self.ctx.lease.total_seconds() / 4:
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
        ctx, wid, loaded = self.ctx, self.workflow_id, self.loaded
        status = _STATUS[result.status]
        continued = result.status is WorkflowStatus.CONTINUED_AS_NEW
        header = header_text(ctx, result.state, 0 if continued else loaded.inline)
        cancelled = result.error if isinstance(result.error, WorkflowCancelledError) else None
        record = replace(
            self.record,
            status=status,
            state=header,
            result_json=dump(result.value) if status == InstanceStatus.COMPLETED else None,
            error_json=dump(error_dict(result.error)) if result.error is not None and not cancelled else None,
            cancel_reason=cancelled.reason if cancelled is not None else self.record.cancel_reason,
        )
        issued: list[IssuedToken] = []
        with ctx.store.transaction() as tx:
            saved = tx.save_workflow(record, expected_version=self.record.version)
            if not self.changed and result.status is not WorkflowStatus.FAULTED:
                for op in self.ops:
                    op(tx)
            if continued:
                tx.trim_journal(wid, 0)
            waits = pending_waits(ctx, wid, result, loaded.waits, issued, tx)
            if result.status is WorkflowStatus.SUSPENDED:  # a stored cancel request outlives the turn
                waits += [w for w in loaded.waits if w.kind == WaitKind.CANCEL]
            if waits or loaded.waits:  # none before and none now: nothing to replace
                tx.replace_waits(wid, waits)
            if self.delivery.history is not None:
                tx.append_history(wid, *self.delivery.history)
            if cancelled is not None and cancelled.cleanup_cut_short:
                tx.append_history(wid, "cleanup_cut_short", {"reason": cancelled.cleanup_cut_short})
            tx.append_history(wid, result.status.value, outcome_detail(result, waits))
            if InstanceStatus.is_terminal(status):  # a child's end waits in its parent's inbox
                notify_parent(tx, saved, result.value, error_dict(result.error) if not cancelled else None)
            if self.delivery.recovery:
                tx.clear_recoveries(wid)
        self._committed(saved)
        return instance_view(saved, waits), issued


def park(ctx: HostContext, attempt: Attempt) -> WorkflowInstance:
    """Leave a continue-as-new chain to the workers: "suspended", with the next
    generation due now (a ``continue`` wait), so no call stays busy past its budget."""
    wid, record = attempt.workflow_id, attempt.record
    waits = [continue_wait(ctx.clock())]
    with ctx.store.transaction() as tx:
        saved = tx.save_workflow(
            replace(record, status=InstanceStatus.SUSPENDED), expected_version=record.version
        )
        tx.replace_waits(wid, waits)
        tx.append_history(wid, "parked", {"reason": "the call's time budget is spent; a worker continues"})
    return instance_view(saved, waits)


def fault(ctx: HostContext, attempt: Attempt, exc: BaseException) -> None:
    """Store a definite outcome for a turn that failed unexpectedly: faulted, with the error.

    Raises ``AdvanceFailedError`` (chained to ``exc``) once the fault is stored;
    returns quietly if it could not be stored (the caller re-raises ``exc``;
    the lease then hands the instance to recovery, which is bounded)."""
    wid = attempt.workflow_id
    error = AdvanceFailedError(wid, exc)
    detail = {"type": "AdvanceFailedError", "message": str(error), "cause_type": error.cause_type}
    log.error("advancing workflow %r failed; faulting it: %r", wid, exc)
    try:
        with ctx.store.transaction() as tx:
            current = tx.get_workflow(wid)
            if current is None or current.version != attempt.record.version:
                return  # someone else moved it: their outcome stands
            tx.save_workflow(
                replace(current, status=InstanceStatus.FAULTED, error_json=dump(detail)),
                expected_version=current.version,
            )
            tx.replace_waits(wid, [])
            tx.append_history(wid, "faulted", {"error": str(error)[:500], "stage": "host"})
            notify_parent(tx, replace(current, status=InstanceStatus.FAULTED), None, detail)
    except Exception:
        log.exception("could not store the fault of workflow %r; trying the minimal write", wid)
        try:
            if not ctx.store.write(lambda tx: tx.mark_faulted(wid, attempt.record.version, dump(detail))):
                return
        except Exception:
            log.exception("could not store the fault of workflow %r", wid)
            return
    raise error from exc


async def after_commit(ctx: HostContext, issued: list[IssuedToken]) -> None:
    """Once a suspension is durably stored: ``before_suspend`` hooks, then the
    host's token listeners (``WorkflowHost.add_token_listener``), whoever
    caused the advance (a call, a worker, a server's own worker)."""
    for token in issued:
        spec = token.spec
        if spec is not None and spec.before_suspend is not None:
            try:
                await maybe_await(spec.before_suspend(token.token, token.expires_at, list(token.arguments)))
            except Exception:
                log.exception("before_suspend hook of %r failed; the wait stays pending", spec.name)
        for listener in list(ctx.token_listeners):
            try:
                listener(token_info(token))
            except Exception:
                log.exception("a token listener failed")


# -- recovery of a run whose worker died -------------------------------------------------------
async def recover_run(ctx: HostContext, workflow_id: str) -> Advanced | None:
    """Finish a run whose worker died: replay, then run only what was in flight
    (None: the instance is not "running", nothing to do).

    Each attempt is counted and stamps the instance first (so it goes to the
    back of the stale line whatever happens next); after ``MAX_RECOVERIES``
    attempts that did not end in a clean advance, the instance is faulted
    with the reason instead of being re-run forever."""
    with ctx.store.transaction(write=False) as tx:
        record = tx.get_workflow(workflow_id)
        requirements = tx.get_requirements(workflow_id) if record is not None else []
    if record is None or record.status != InstanceStatus.RUNNING:
        return None
    missing = sorted(set(requirements) - ctx.capabilities())
    if missing:  # not this process's to recover: leave it, uncounted
        raise MissingRegistrationError(workflow_id, missing)
    attempts = ctx.store.read(lambda tx: tx.recovery_attempts(workflow_id))
    if attempts >= MAX_RECOVERIES:
        give_up(ctx, record, attempts)
        return None
    with ctx.store.transaction() as tx:  # claim this attempt (version-checked) and count it
        tx.bump_workflow(workflow_id, record.version)
        attempts = tx.note_recovery(workflow_id)
    delivery = Delivery(
        history=("recovered", {"worker": ctx.worker_id, "attempt": attempts}),
        owner=True,
        acquire=True,
        recovery=True,
    )
    return await drive(ctx, workflow_id, delivery)


def give_up(ctx: HostContext, record: Any, attempts: int) -> None:
    wid = record.workflow_id
    message = (
        f"recovery of workflow {wid!r} was attempted {attempts} times without the instance "
        "advancing (its steps crash the process, or every attempt failed); faulted so it is "
        "not re-run forever: fix the cause, then retry it"
    )
    error = {"type": "RecoveryFailedError", "message": message, "attempts": attempts}
    with ctx.store.transaction() as tx:
        tx.save_workflow(
            replace(record, status=InstanceStatus.FAULTED, error_json=dump(error)),
            expected_version=record.version,
        )
        tx.replace_waits(wid, [])
        tx.clear_recoveries(wid)
        tx.append_history(wid, "faulted", {"error": message, "stage": "recovery"})

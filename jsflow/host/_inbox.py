"""The event inbox: stored first, then delivered, FIFO per name, never dropped.

The inbox is the one owner of "which wait does this event reach"
(``reaching_wait``, with the engine's ``Wait.accepts``: names, ``match``,
``distinct``): the host decides it once, from the stored waits, and the
engine only checks the decision (``RaiseEvent(wait_id=...)``). A payload
that violates the schema of the wait it would reach is refused before
anything is stored; a buffered one that meets such a wait later leaves the
inbox with an ``event_rejected`` history line.

``send_event`` validates the payload (JSON, engine payload limit) and the
instance (exists, not finished), then stores the event and its history line
in one transaction. Only then does it try to deliver. Delivery marks the
event delivered in the same transaction as the journal write that hands it to
the script, so an event is delivered exactly once. If the instance is busy
(another worker is advancing it), the event stays buffered and that worker
picks it up: every advance ends with ``drain``, which delivers the oldest
buffered event whose name a pending ``waitForEvent`` listens for, repeatedly.
Ordering argument: the sender stores the event before reading the status;
the worker saves its final state before reading the inbox; so one of them
always sees the other's write. (The sender also looks for a delivery inside
its own transaction, which on SQLite's single writer is the same thing; when
that finds none, it reads again after committing, which keeps the argument
true where writers do not exclude each other, as on PostgreSQL.)

Cost: what the sender's transaction reads is the instance row, its waits and
the buffered events those waits listen for; never the journal. A warm run
then needs nothing more, so a delivery costs the same at any journal length.

Idempotency: a repeat with the same key returns the first event's receipt
(``duplicate=True``), whatever the workflow did since, finished included.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jsflow import PayloadSchemaError, RaiseEvent, Wait, validate_payload

from ._child_events import CHILD_EVENT_PREFIX
from ._context import HostContext
from ._driver import Advanced, Delivery, TxOp, drive
from ._errors import (
    AlreadyResumedError,
    CorruptStateError,
    MissingRegistrationError,
    UnknownWorkflowError,
    WorkflowBusyError,
    WorkflowFinishedError,
    translate,
)
from ._input import check_text, check_workflow_id
from ._kinds import WaitKind
from ._load import Loaded, header_loaded, read_header, script_source
from ._views import EventReceipt, wait_info
from .store import IdempotencyKeyConflictError, InboxEvent, InstanceStatus, PendingWait, StoreSession

MAX_NAME_LENGTH = 512
MAX_KEY_LENGTH = 512


# -- which wait an event reaches ------------------------------------------------------------
def listening_names(waits: Sequence[PendingWait]) -> set[str]:
    """The event names some pending wait listens for."""
    return {n for w in waits if w.kind == WaitKind.EVENT for n in (w.event_names or ())}


def reaching_wait(waits: Sequence[PendingWait], name: str, payload: Any) -> Wait | None:
    """THE decision of which pending wait an event reaches: the first-scheduled
    event wait that accepts it (``Wait.accepts``: its names, ``match``, and
    ``distinct`` against what it already counted), the bare engine's rule.
    None: the event stays buffered. The schema is checked after this, on the
    wait it reaches (``Wait.check_payload``)."""
    for row in waits:  # wait-id order: the engine's order too
        if row.kind != WaitKind.EVENT or not row.event_names or name not in row.event_names:
            continue
        wait = wait_info(row).as_wait()
        if wait.accepts(name, payload):
            return wait
    return None


# -- sending ---------------------------------------------------------------------------------
def check_event_name(ctx: HostContext, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("event name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"event name is longer than {MAX_NAME_LENGTH} characters")
    check_text(name, "the event name")
    if name.startswith(CHILD_EVENT_PREFIX):  # only a child's end is sent under this name
        raise ValueError(f"event names starting with {CHILD_EVENT_PREFIX!r} are reserved for child workflows")
    validate_payload(name, limit=ctx.engine.limits.payload, what="the event name")


def _check_key(idempotency_key: str | None) -> None:
    if idempotency_key is None:
        return
    if not isinstance(idempotency_key, str) or not idempotency_key:
        raise ValueError("idempotency_key must be a non-empty string")
    if len(idempotency_key) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency_key is longer than {MAX_KEY_LENGTH} characters")
    check_text(idempotency_key, "the idempotency_key")


@dataclass
class _Stored:
    """What storing an event did: its id, whether this call created it (not an
    idempotent repeat), a delivery found in the same snapshot, and the receipt
    when nothing more is to be done (a repeat for a finished instance)."""

    event_id: int
    created: bool
    found: _Delivery | None = None
    final: EventReceipt | None = None


def _enqueue(
    ctx: HostContext,
    workflow_id: str,
    name: str,
    payload: Any,
    idempotency_key: str | None,
    look: Callable[[StoreSession, Loaded], _Delivery | None] | None = None,
) -> _Stored:
    """Validate and store one event with its history line. An idempotent repeat
    returns the first event whatever the workflow did since, finished included;
    ``look`` finds a delivery in the same snapshot for a suspended instance."""
    check_workflow_id(workflow_id)
    check_event_name(ctx, name)
    _check_key(idempotency_key)
    text = validate_payload(payload, limit=ctx.engine.limits.payload, what="the event payload")
    with ctx.store.transaction() as tx:
        head = tx.get_workflow_header(workflow_id)  # the row, its waits and requirements: one read
        if head is None:
            raise UnknownWorkflowError(workflow_id)
        record, waits, _requirements = head
        if InstanceStatus.is_terminal(record.status):
            event_id, created = _put(tx, workflow_id, name, text, idempotency_key)
            if created:  # raising rolls the new event back: a finished run never takes one
                raise WorkflowFinishedError(workflow_id, record.status, "send an event to")
            event = tx.get_event(event_id)
            return _Stored(event_id, False, final=_receipt_of(event, event_id, workflow_id, name, True))
        if record.status == InstanceStatus.SUSPENDED:  # refused before anything is stored
            target = reaching_wait(waits, name, payload)
            if target is not None:
                target.check_payload(payload, f"the payload of event {name!r}")
        event_id, created = _put(tx, workflow_id, name, text, idempotency_key)
        found = None
        if created:
            tx.append_history(workflow_id, "event_received", {"event_id": event_id, "name": name})
            if look is not None and record.status == InstanceStatus.SUSPENDED:
                with contextlib.suppress(CorruptStateError):  # stored anyway; drain reports it
                    found = look(tx, header_loaded(*head))
    return _Stored(event_id, created, found)


def _put(tx: StoreSession, wid: str, name: str, text: str, key: str | None) -> tuple[int, bool]:
    if key is None:
        return tx.enqueue_event(wid, name, text), True
    try:
        return tx.enqueue_event_once(wid, name, text, key)
    except IdempotencyKeyConflictError as exc:
        raise translate(exc) from exc


def _receipt_of(
    event: InboxEvent | None, event_id: int, wid: str, name: str, duplicate: bool
) -> EventReceipt:
    if event is None or event.delivered_at is None:
        return EventReceipt(event_id, wid, name, False, None, duplicate=duplicate)
    return EventReceipt(event_id, wid, name, True, event.wait_id, duplicate=duplicate)


def _receipt(ctx: HostContext, stored: _Stored, workflow_id: str, name: str) -> EventReceipt:
    """What became of a stored event so far, read back from the store."""
    if stored.final is not None:
        return stored.final
    event = ctx.store.read(
        lambda tx: tx.get_event(stored.event_id)
    )  # someone else may have delivered it meanwhile
    return _receipt_of(event, stored.event_id, workflow_id, name, not stored.created)


async def send_event(
    ctx: HostContext, workflow_id: str, name: str, payload: Any, idempotency_key: str | None
) -> EventReceipt:
    def look(tx: StoreSession, loaded: Loaded) -> _Delivery | None:  # while the transaction is open
        return _find_delivery(tx, loaded)

    stored = _enqueue(ctx, workflow_id, name, payload, idempotency_key, look)
    if stored.final is not None:
        return stored.final
    delivered: dict[int, int] = {}
    # stored either way: a busy worker's drain delivers it; a finished run never
    # will. Without a delivery found above, drain reads again now that the event
    # is committed (see the ordering argument in the module doc). A process that
    # cannot run the instance leaves the event buffered for one that can.
    await deliver(ctx, workflow_id, delivered, stored.found)
    if stored.event_id in delivered:
        wait_id = delivered[stored.event_id]
        return EventReceipt(stored.event_id, workflow_id, name, True, wait_id, duplicate=not stored.created)
    return _receipt(ctx, stored, workflow_id, name)


def store_event(
    ctx: HostContext, workflow_id: str, name: str, payload: Any, idempotency_key: str | None
) -> EventReceipt:
    """Store an event and stop there: no workflow code runs. The receipt says
    whether it was delivered already (an idempotent repeat of a delivered one)."""
    stored = _enqueue(ctx, workflow_id, name, payload, idempotency_key)
    return _receipt(ctx, stored, workflow_id, name)


async def deliver(
    ctx: HostContext, workflow_id: str, delivered: dict[int, int] | None = None, first: Any = None
) -> None:
    """Drain, leaving events buffered when this process cannot deliver them now
    (the instance is busy elsewhere, finished, or needs registrations it lacks)."""
    with contextlib.suppress(WorkflowBusyError, WorkflowFinishedError, MissingRegistrationError):
        await drain(ctx, workflow_id, delivered=delivered, first=first)


# -- delivering ------------------------------------------------------------------------------
@dataclass
class _Delivery:
    """The next event to deliver, its wait, and the snapshot (without the
    journal) it was found in; ``rejected``: the event violates that wait's
    schema and leaves the inbox."""

    event: InboxEvent
    wait_id: int
    loaded: Loaded
    rejected: PayloadSchemaError | None = None


def _find_delivery(tx: StoreSession, loaded: Loaded) -> _Delivery | None:
    """In an open session, for a suspended instance read there (``loaded``): the
    oldest buffered event some pending wait accepts, that wait's id, and the
    snapshot it was found in."""
    names = listening_names(loaded.waits)
    for event in tx.pending_events(loaded.workflow_id, sorted(names)) if names else []:
        payload = json.loads(event.payload_json)
        wait = reaching_wait(loaded.waits, event.name, payload)
        if wait is None:
            continue  # matches no wait (yet): stays buffered, later events may still arrive
        try:
            wait.check_payload(payload, f"the payload of event {event.name!r}")
        except PayloadSchemaError as exc:
            return _Delivery(event, wait.wait_id, loaded, rejected=exc)
        return _Delivery(event, wait.wait_id, loaded)
    return None


def _reject(ctx: HostContext, found: _Delivery) -> None:
    """A buffered event that violates the schema of the wait it met: it leaves the
    inbox (marked with that wait) with an ``event_rejected`` history line."""
    event, error = found.event, found.rejected
    assert error is not None
    with ctx.store.transaction() as tx:
        current = tx.get_event(event.event_id)
        if current is None or current.delivered_at is not None:
            return
        tx.mark_event_delivered(event.event_id, found.wait_id)
        detail = {"event_id": event.event_id, "name": event.name, "wait_id": found.wait_id}
        detail.update(path=error.path, reason=error.reason[:500])
        tx.append_history(event.workflow_id, "event_rejected", detail)


def _next_delivery(ctx: HostContext, workflow_id: str, after: Advanced | None) -> _Delivery | None:
    """The next event to deliver, read in one snapshot with the instance and its waits.

    ``after``: what an advance just returned; when it shows no listening wait,
    or no buffered event matches, that is known without reading the instance.
    """
    if after is not None:
        view = after.view
        names = {n for w in view.waits if w.kind == WaitKind.EVENT for n in (w.event_names or ())}
        if view.status != InstanceStatus.SUSPENDED or not names:
            return None
        if not ctx.store.read(lambda tx: tx.pending_events(workflow_id, names)):
            return None

    def find(tx: StoreSession) -> _Delivery | None:
        loaded = read_header(tx, workflow_id)
        return _find_delivery(tx, loaded) if loaded.record.status == InstanceStatus.SUSPENDED else None

    return ctx.store.read(find)


async def drain(
    ctx: HostContext,
    workflow_id: str,
    *,
    delivered: dict[int, int] | None = None,
    first: _Delivery | None = None,
    after: Advanced | None = None,
) -> Advanced | None:
    """Deliver buffered events while a pending wait listens for one; the last outcome, or None.
    ``delivered`` collects event id -> wait id of the events this call delivered;
    ``first``: a delivery the caller already found; ``after``: the advance the
    caller just made, so the first look is one query for matching events
    rather than a read of the whole instance."""
    last: Advanced | None = None
    tokens: list[Any] = []
    while True:
        found = first if first is not None else _next_delivery(ctx, workflow_id, last or after)
        first = after = None
        if found is None:
            return None if last is None else Advanced(last.view, tokens)
        if found.rejected is not None:
            _reject(ctx, found)
            continue
        event, wait_id = found.event, found.wait_id
        found.loaded.script = script_source(ctx, found.loaded.record)
        payload = json.loads(event.payload_json)
        check = _marker(ctx, event.event_id, wait_id, found.loaded)
        try:
            delivery = event_delivery(event.event_id, event.name, payload, wait_id, check)
            last = await drive(ctx, workflow_id, delivery, found.loaded)
        except AlreadyResumedError:
            last = None
            continue  # the wait went away under us; look again
        tokens += last.tokens
        if delivered is not None:
            delivered[event.event_id] = wait_id


def event_delivery(event_id: int, name: str, payload: Any, wait_id: int, check: Any) -> Delivery:
    """The turn that hands event ``event_id`` to wait ``wait_id`` (decided here;
    the engine only checks that the wait is pending and listens for ``name``)."""
    history = ("event_delivered", {"event_id": event_id, "wait_id": wait_id})
    return Delivery(RaiseEvent(name, payload, wait_id=wait_id), history, check=check)


def _marker(ctx: HostContext, event_id: int, wait_id: int, seen_pending: Loaded) -> Any:
    """Check the event is still undelivered (known for the snapshot it was found
    in) and mark it delivered in the first journal write's transaction."""

    def check(loaded: Loaded) -> list[TxOp]:
        if loaded is seen_pending:
            pending = True
        else:
            event = ctx.store.read(lambda tx: tx.get_event(event_id))
            pending = event is not None and event.delivered_at is None
        if not pending or loaded.wait(wait_id) is None:
            raise AlreadyResumedError(loaded.workflow_id, wait_id, [w.wait_id for w in loaded.waits])

        def mark(tx: StoreSession) -> None:
            tx.mark_event_delivered(event_id, wait_id)

        return [mark]

    return check


async def deliver_stranded(ctx: HostContext, now: Any, limit: int) -> int:
    """A worker pass: deliver buffered events whose wait is pending (their sender
    died between storing and delivering, or a process could not run the instance)."""
    count = 0
    for workflow_id in ctx.store.read(lambda tx: tx.stranded_workflows(now, limit, ctx.capabilities())):
        delivered: dict[int, int] = {}
        with contextlib.suppress(WorkflowBusyError, WorkflowFinishedError, MissingRegistrationError):
            await drain(ctx, workflow_id, delivered=delivered)
        count += len(delivered)
    return count

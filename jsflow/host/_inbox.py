"""The event inbox: stored first, then delivered, FIFO per name, never dropped.

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
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jsflow import validate_payload

from ._deliveries import event_delivery
from ._driver import Advanced, TxOp, drive
from ._errors import (
    AlreadyResumedError,
    CorruptStateError,
    InvalidWorkflowIdError,
    MissingRegistrationError,
    UnknownWorkflowError,
    WorkflowBusyError,
    WorkflowFinishedError,
    translate,
)
from ._load import Loaded, read_instance, script_source
from ._views import EventReceipt
from .store import IdempotencyKeyConflictError, InboxEvent, InstanceStatus, StoreSession

if TYPE_CHECKING:
    from ._host import WorkflowHost

MAX_NAME_LENGTH = 512
MAX_KEY_LENGTH = 512


def check_event_name(host: WorkflowHost, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("event name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"event name is longer than {MAX_NAME_LENGTH} characters")
    validate_payload(name, limit=host.engine.limits.payload, what="the event name")


async def send_event(
    host: WorkflowHost, workflow_id: str, name: str, payload: Any, idempotency_key: str | None
) -> EventReceipt:
    if not isinstance(workflow_id, str) or not workflow_id:
        raise InvalidWorkflowIdError(workflow_id)
    check_event_name(host, name)
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not idempotency_key):
        raise ValueError("idempotency_key must be a non-empty string")
    if idempotency_key is not None and len(idempotency_key) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency_key is longer than {MAX_KEY_LENGTH} characters")
    text = validate_payload(payload, limit=host.engine.limits.payload, what="the event payload")
    found = None
    with host.store.transaction() as tx:
        record = tx.get_workflow(workflow_id)
        if record is None:
            raise UnknownWorkflowError(workflow_id)
        if InstanceStatus.is_terminal(record.status):
            raise WorkflowFinishedError(workflow_id, record.status, "send an event to")
        if idempotency_key is None:
            event_id, created = tx.enqueue_event(workflow_id, name, text), True
        else:
            try:
                event_id, created = tx.enqueue_event_once(workflow_id, name, text, idempotency_key)
            except IdempotencyKeyConflictError as exc:
                raise translate(exc) from exc
        if created:
            tx.append_history(workflow_id, "event_received", {"event_id": event_id, "name": name})
            if record.status == InstanceStatus.SUSPENDED:  # look for a delivery while the snapshot is open
                with contextlib.suppress(CorruptStateError):  # stored anyway; drain reports it
                    found = _find_delivery(host, tx, workflow_id)
    delivered: dict[int, int] = {}
    # stored either way: a busy worker's drain delivers it; a finished run never
    # will. Without a delivery found above, drain reads again now that the event
    # is committed (see the ordering argument in the module doc). A process that
    # cannot run the instance leaves the event buffered for one that can.
    with contextlib.suppress(WorkflowBusyError, WorkflowFinishedError, MissingRegistrationError):
        await drain(host, workflow_id, delivered=delivered, first=found)
    if event_id in delivered:
        return EventReceipt(event_id, workflow_id, name, True, delivered[event_id], duplicate=not created)
    event = host.store.get_event(event_id)  # someone else may have delivered it meanwhile
    if event is None or event.delivered_at is None:
        return EventReceipt(event_id, workflow_id, name, False, None, duplicate=not created)
    return EventReceipt(event_id, workflow_id, name, True, event.wait_id, duplicate=not created)


@dataclass
class _Delivery:
    """The next event to deliver, its wait, and the snapshot it was found in."""

    event: InboxEvent
    wait_id: int
    loaded: Loaded


def _find_delivery(host: WorkflowHost, tx: StoreSession, workflow_id: str) -> _Delivery | None:
    """In an open session, for a suspended instance: the oldest buffered event
    some pending waitForEvent listens for, that wait's id, and the snapshot."""
    waits = tx.list_waits(workflow_id)
    listening = [w for w in waits if w.kind == "event" and w.event_names]
    names = {n for w in listening for n in (w.event_names or ())}
    for event in tx.pending_events(workflow_id, sorted(names)) if names else []:
        for wait in listening:  # waits come in wait-id order: the engine's choice too
            if event.name in (wait.event_names or ()):
                return _Delivery(event, wait.wait_id, read_instance(host, tx, workflow_id))
    return None


def _next_delivery(host: WorkflowHost, workflow_id: str, after: Advanced | None) -> _Delivery | None:
    """The next event to deliver, read in one snapshot with the instance and its waits.

    ``after``: what an advance just returned; when it shows no listening wait,
    or no buffered event matches, that is known without reading the instance.
    """
    if after is not None:
        view = after.view
        names = {n for w in view.waits if w.kind == "event" for n in (w.event_names or ())}
        if view.status != InstanceStatus.SUSPENDED or not names:
            return None
        if not host.store.pending_events(workflow_id, names):
            return None
    with host.store.transaction(write=False) as tx:
        record = tx.get_workflow(workflow_id)
        if record is None:
            raise UnknownWorkflowError(workflow_id)
        if record.status != InstanceStatus.SUSPENDED:
            return None
        return _find_delivery(host, tx, workflow_id)


async def drain(
    host: WorkflowHost,
    workflow_id: str,
    *,
    delivered: dict[int, int] | None = None,
    first: _Delivery | None = None,
) -> Advanced | None:
    """Deliver buffered events while a pending wait listens for one; the last outcome, or None.
    ``delivered`` collects event id -> wait id of the events this call delivered;
    ``first``: a delivery the caller already found."""
    last: Advanced | None = None
    tokens: list[Any] = []
    while True:
        found = first if first is not None else _next_delivery(host, workflow_id, last)
        first = None
        if found is None:
            return None if last is None else Advanced(last.view, tokens)
        event, wait_id = found.event, found.wait_id
        found.loaded.script = script_source(host, found.loaded.record)
        payload = json.loads(event.payload_json)
        check = _marker(host, event.event_id, wait_id, found.loaded)
        try:
            delivery = event_delivery(event.event_id, event.name, payload, wait_id, check)
            last = await drive(host, workflow_id, delivery, found.loaded)
        except AlreadyResumedError:
            last = None
            continue  # the wait went away under us; look again
        tokens += last.tokens
        if delivered is not None:
            delivered[event.event_id] = wait_id


def _marker(host: WorkflowHost, event_id: int, wait_id: int, seen_pending: Loaded) -> Any:
    """Check the event is still undelivered (known for the snapshot it was found
    in) and mark it delivered in the first journal write's transaction."""

    def check(loaded: Loaded) -> list[TxOp]:
        if loaded is seen_pending:
            pending = True
        else:
            event = host.store.get_event(event_id)
            pending = event is not None and event.delivered_at is None
        if not pending or loaded.wait(wait_id) is None:
            raise AlreadyResumedError(loaded.workflow_id, wait_id, [w.wait_id for w in loaded.waits])

        def mark(tx: StoreSession) -> None:
            tx.mark_event_delivered(event_id, wait_id)

        return [mark]

    return check


async def deliver_stranded(host: WorkflowHost, now: Any, limit: int) -> int:
    """A worker pass: deliver buffered events whose wait is pending (their sender
    died between storing and delivering, or a process could not run the instance)."""
    count = 0
    for workflow_id in host.store.stranded_workflows(now, limit, host.capabilities()):
        delivered: dict[int, int] = {}
        with contextlib.suppress(WorkflowBusyError, WorkflowFinishedError, MissingRegistrationError):
            await drain(host, workflow_id, delivered=delivered)
        count += len(delivered)
    return count

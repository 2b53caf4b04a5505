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

from jsflow import PayloadTooLargeError

from ._advance import Act, Loaded, TxOp, drive, load
from ._errors import AlreadyResumedError, UnknownWorkflowError, WorkflowBusyError, WorkflowFinishedError
from ._views import EventReceipt, WorkflowInstance
from .store import InboxEvent, PendingWait, StoreSession, WorkflowRecord
from .store._records import TERMINAL_STATUSES

if TYPE_CHECKING:
    from ._host import WorkflowHost


def encode_payload(host: WorkflowHost, payload: Any) -> str:
    """JSON text of the payload; TypeError/ValueError or PayloadTooLargeError before anything is stored."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > host.engine.limits.payload:
        raise PayloadTooLargeError("the event payload", size, host.engine.limits.payload)
    return text


async def send_event(host: WorkflowHost, workflow_id: str, name: str, payload: Any) -> EventReceipt:
    if not isinstance(name, str) or not name:
        raise ValueError("event name must be a non-empty string")
    text = encode_payload(host, payload)
    found = None
    with host.store.transaction() as tx:
        record = tx.get_workflow(workflow_id)
        if record is None:
            raise UnknownWorkflowError(workflow_id)
        if record.status in TERMINAL_STATUSES:
            raise WorkflowFinishedError(workflow_id, record.status, "send an event to")
        event_id = tx.enqueue_event(workflow_id, name, text)
        tx.append_history(workflow_id, "event_received", {"event_id": event_id, "name": name})
        if record.status == "suspended":  # look for a delivery while the snapshot is open
            found = _find_delivery(tx, record)
    first = (
        None if found is None else _Delivery(found[1], found[2], load(host, workflow_id, (record, found[0])))
    )
    delivered: dict[int, int] = {}
    # stored either way: a busy worker's drain delivers it; a finished run never will.
    # Without a delivery found above, drain reads again now that the event is
    # committed (see the ordering argument in the module doc).
    with contextlib.suppress(WorkflowBusyError, WorkflowFinishedError):
        await drain(host, workflow_id, delivered=delivered, first=first)
    if event_id in delivered:
        return EventReceipt(event_id, workflow_id, name, True, delivered[event_id])
    event = host.store.get_event(event_id)  # someone else may have delivered it meanwhile
    if event is None or event.delivered_at is None:
        return EventReceipt(event_id, workflow_id, name, False, None)
    return EventReceipt(event_id, workflow_id, name, True, event.wait_id)


@dataclass
class _Delivery:
    """The next event to deliver, its wait, and the snapshot it was found in."""

    event: InboxEvent
    wait_id: int
    loaded: Loaded


def _find_delivery(
    tx: StoreSession, record: WorkflowRecord
) -> tuple[list[PendingWait], InboxEvent, int] | None:
    """In an open session, for a suspended instance: its waits, and the oldest
    buffered event some pending waitForEvent listens for with that wait's id."""
    waits = tx.list_waits(record.workflow_id)
    listening = [w for w in waits if w.kind == "event" and w.event_names]
    names = {n for w in listening for n in (w.event_names or ())}
    for event in tx.pending_events(record.workflow_id, sorted(names)) if names else []:
        for wait in listening:  # waits come in wait-id order: the engine's choice too
            if event.name in (wait.event_names or ()):
                return waits, event, wait.wait_id
    return None


def _next_delivery(host: WorkflowHost, workflow_id: str, after: WorkflowInstance | None) -> _Delivery | None:
    """The next event to deliver, read in one snapshot with the instance and its waits.

    ``after``: the view an advance just returned; when it shows no listening
    wait, or no buffered event matches, that is known without reading the
    instance.
    """
    if after is not None:
        names = {n for w in after.waits if w.kind == "event" for n in (w.event_names or ())}
        if after.status != "suspended" or not names or not host.store.pending_events(workflow_id, names):
            return None
    with host.store.transaction(write=False) as tx:
        record = tx.get_workflow(workflow_id)
        if record is None:
            raise UnknownWorkflowError(workflow_id)
        found = _find_delivery(tx, record) if record.status == "suspended" else None
    if found is None:
        return None
    return _Delivery(found[1], found[2], load(host, workflow_id, (record, found[0])))


async def drain(
    host: WorkflowHost,
    workflow_id: str,
    *,
    delivered: dict[int, int] | None = None,
    first: _Delivery | None = None,
) -> WorkflowInstance | None:
    """Deliver buffered events while a pending wait listens for one; the last view, or None.
    ``delivered`` collects event id -> wait id of the events this call delivered;
    ``first``: a delivery the caller already found."""
    view = None
    while True:
        found = first if first is not None else _next_delivery(host, workflow_id, view)
        first = None
        if found is None:
            return view
        event, wait_id = found.event, found.wait_id
        act = Act(
            "event",
            wait_id,
            json.loads(event.payload_json),
            event.name,
            history=("event_delivered", {"event_id": event.event_id, "wait_id": wait_id}),
        )
        try:
            view = await drive(
                host,
                workflow_id,
                act,
                prepare=_marker(host, event.event_id, wait_id, found.loaded),
                preloaded=found.loaded,
            )
        except AlreadyResumedError:
            view = None
            continue  # the wait went away under us; look again
        if delivered is not None:
            delivered[event.event_id] = wait_id


def _marker(host: WorkflowHost, event_id: int, wait_id: int, seen_pending: Loaded) -> Any:
    """Check the event is still undelivered (known for the snapshot it was found
    in) and mark it delivered in the first journal write's transaction."""

    def prepare(loaded: Loaded) -> list[TxOp]:
        if loaded is seen_pending:
            pending = True
        else:
            event = host.store.get_event(event_id)
            pending = event is not None and event.delivered_at is None
        if not pending or loaded.wait(wait_id) is None:
            raise AlreadyResumedError(loaded.record.workflow_id, wait_id, [w.wait_id for w in loaded.waits])

        def mark(tx: StoreSession) -> None:
            tx.mark_event_delivered(event_id, wait_id)

        return [mark]

    return prepare

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
always sees the other's write.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from jsflow import PayloadTooLargeError

from ._advance import Act, Loaded, TxOp, drive, load_record
from ._errors import AlreadyResumedError, UnknownWorkflowError, WorkflowBusyError, WorkflowFinishedError
from ._views import EventReceipt, WorkflowInstance
from .store import InboxEvent, StoreSession
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
    with host.store.transaction() as tx:
        record = tx.get_workflow(workflow_id)
        if record is None:
            raise UnknownWorkflowError(workflow_id)
        if record.status in TERMINAL_STATUSES:
            raise WorkflowFinishedError(workflow_id, record.status, "send an event to")
        event_id = tx.enqueue_event(workflow_id, name, text)
        tx.append_history(workflow_id, "event_received", {"event_id": event_id, "name": name})
    if record.status == "suspended":
        # stored either way: a busy worker's drain delivers it; a finished run never will
        with contextlib.suppress(WorkflowBusyError, WorkflowFinishedError):
            await drain(host, workflow_id)
    event = host.store.get_event(event_id)
    delivered = event is not None and event.delivered_at is not None
    return EventReceipt(
        event_id, workflow_id, name, delivered, event.wait_id if event is not None and delivered else None
    )


def _next_delivery(host: WorkflowHost, workflow_id: str) -> tuple[InboxEvent, int] | None:
    """The oldest buffered event some pending waitForEvent listens for, and that wait."""
    record, waits = load_record(host, workflow_id)
    if record.status != "suspended":
        return None
    listening = [w for w in waits if w.kind == "event" and w.event_names]
    names = {n for w in listening for n in (w.event_names or ())}
    if not names:
        return None
    for event in host.store.pending_events(workflow_id, sorted(names)):
        for wait in listening:  # waits come in wait-id order: the engine's choice too
            if event.name in (wait.event_names or ()):
                return event, wait.wait_id
    return None


async def drain(host: WorkflowHost, workflow_id: str) -> WorkflowInstance | None:
    """Deliver buffered events while a pending wait listens for one; the last view, or None."""
    view = None
    while True:
        found = _next_delivery(host, workflow_id)
        if found is None:
            return view
        event, wait_id = found
        act = Act(
            "event",
            wait_id,
            json.loads(event.payload_json),
            event.name,
            history=("event_delivered", {"event_id": event.event_id, "wait_id": wait_id}),
        )
        try:
            view = await drive(host, workflow_id, act, prepare=_marker(host, event.event_id, wait_id))
        except AlreadyResumedError:
            continue  # the wait went away under us; look again


def _marker(host: WorkflowHost, event_id: int, wait_id: int) -> Any:
    def prepare(loaded: Loaded) -> list[TxOp]:
        wait = loaded.wait(wait_id)
        event = host.store.get_event(event_id)
        if wait is None or event is None or event.delivered_at is not None:
            raise AlreadyResumedError(loaded.record.workflow_id, wait_id, [w.wait_id for w in loaded.waits])

        def mark(tx: StoreSession) -> None:
            tx.mark_event_delivered(event_id, wait_id)

        return [mark]

    return prepare

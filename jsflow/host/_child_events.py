"""How a child workflow's end reaches its parent (issue 20): an inbox event.

When an instance started by ``startWorkflow`` (its metadata names a
``parent_id``) ends, the transaction that stores its end also stores an event
``jsflow:child-end:<child id>`` in the parent's inbox, carrying ``{status, value,
error}``. The parent's ``child.result()`` is a ``waitForEvent`` on that name,
so the end is delivered like any event: at once when the parent is waiting
and idle, after its turn when it is running, and by a worker pass (stranded
events) otherwise. Nothing is lost between the child's end and the parent.
"""

from __future__ import annotations

import json
from typing import Any

from .store import InstanceStatus, StoreSession, WorkflowRecord

#: the journaled step of ``startWorkflow`` (an internal name: shown as "startWorkflow")
CHILD_START = "__jchild_start"
PARENT_KEY = "parent_id"
DETACHED_KEY = "detached"
CHILD_EVENT_PREFIX = "jsflow:child-end:"


def child_event_name(child_id: str) -> str:
    return CHILD_EVENT_PREFIX + child_id


def notify_parent(tx: StoreSession, record: WorkflowRecord, value: Any = None, error: Any = None) -> None:
    """In the transaction that stores a child's end: buffer the end for its parent."""
    parent_id = record.metadata.get(PARENT_KEY)
    if not parent_id or not InstanceStatus.is_terminal(record.status):
        return
    parent = tx.get_workflow(parent_id)
    if parent is None or InstanceStatus.is_terminal(parent.status):
        return
    end = {"status": str(record.status), "value": value, "error": error}
    if record.status == InstanceStatus.CANCELLED and error is None:
        end["error"] = {"type": "CancelledError", "message": record.cancel_reason or "cancelled"}
    text = json.dumps(end, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    name = child_event_name(record.workflow_id)
    event_id = tx.enqueue_event(parent_id, name, text)
    tx.append_history(parent_id, "event_received", {"event_id": event_id, "name": name})

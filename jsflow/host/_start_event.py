"""Start-with-event (Temporal's ``signalWithStart``): ``send_event(..., start=StartSpec(...))``.

Why one transaction: a caller that first starts an instance and then sends it
an event races with everyone else doing the same (two starts, an event sent
to an id that does not exist yet). Here the instance is created if it does
not exist and the event is stored in the same transaction, so concurrent
calls create the instance once and every event is stored. Only the call that
created the instance runs its first turn; the event then reaches the first
``waitForEvent`` that listens for it (buffered until then, FIFO per name), as
for ``send_event``. An existing id under another script is
``WorkflowExistsError``; under the same script, the event is simply sent
(the arguments of an existing instance are not compared: it already started).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jsflow import WorkflowState, datetime_to_ms, validate_payload

from ._context import HostContext
from ._deliveries import settle
from ._driver import Delivery, drive
from ._errors import (
    MissingRegistrationError,
    UnknownScriptError,
    WorkflowBusyError,
    WorkflowExistsError,
    WorkflowFinishedError,
)
from ._inbox import MAX_KEY_LENGTH, check_event_name, drain
from ._input import check_workflow_id
from ._load import Loaded, fresh
from ._views import WORKFLOW_ID_KEY, EventReceipt
from .store import InstanceStatus, StoreSession, WorkflowRecord


@dataclass(frozen=True)
class StartSpec:
    """How to start the instance a ``send_event(..., start=...)`` addresses, if it
    does not exist: ``script`` (a registered name), ``args`` (the entry point's
    arguments), ``entry_point``, ``version`` (a script hash; default the
    latest) and ``metadata`` (str -> str), as for ``WorkflowHost.start``."""

    script: str
    args: Sequence[Any] = ()
    entry_point: str = "main"
    version: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class _Created:
    """The instance the call created, to run its first turn after the commit."""

    loaded: Loaded


async def send_event_with_start(
    ctx: HostContext,
    workflow_id: str,
    name: str,
    payload: Any,
    idempotency_key: str | None,
    spec: StartSpec,
) -> EventReceipt:
    check_workflow_id(workflow_id)
    check_event_name(ctx, name)
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH
    ):
        raise ValueError(f"idempotency_key must be a non-empty string of at most {MAX_KEY_LENGTH} characters")
    if not isinstance(spec, StartSpec):
        raise TypeError(f"start must be a StartSpec, not {type(spec).__name__}")
    limit = ctx.engine.limits.payload
    text = validate_payload(payload, limit=limit, what="the event payload")
    args = json.loads(validate_payload(list(spec.args), limit=limit, what="the arguments"))
    with ctx.store.transaction() as tx:
        created = _create_if_absent(ctx, tx, workflow_id, spec, args)
        if idempotency_key is None:
            event_id, stored = tx.enqueue_event(workflow_id, name, text), True
        else:
            event_id, stored = tx.enqueue_event_once(workflow_id, name, text, idempotency_key)
        if stored:
            tx.append_history(workflow_id, "event_received", {"event_id": event_id, "name": name})
    delivered: dict[int, int] = {}
    with contextlib.suppress(WorkflowBusyError, WorkflowFinishedError, MissingRegistrationError):
        if created is not None:  # run the first turn; settle() hands it the buffered events
            advanced = await drive(ctx, workflow_id, Delivery(owner=True, acquire=False), created.loaded)
            await settle(ctx, workflow_id, advanced)
        else:
            await drain(ctx, workflow_id, delivered=delivered)
    return _receipt(ctx, workflow_id, name, event_id, delivered, duplicate=not stored)


def _create_if_absent(
    ctx: HostContext, tx: StoreSession, workflow_id: str, spec: StartSpec, args: list[Any]
) -> _Created | None:
    """In the open transaction: create the instance unless it exists (then check it)."""
    existing = tx.get_workflow(workflow_id)
    if existing is not None:
        _check_existing(existing, spec)
        return None
    made = create_instance(ctx, tx, workflow_id, spec, args, {"with_event": True})
    if isinstance(made, WorkflowRecord):  # created by a concurrent call since the read above
        _check_existing(made, spec)
        return None
    return _Created(made)


def create_instance(
    ctx: HostContext,
    tx: StoreSession,
    workflow_id: str,
    spec: StartSpec,
    args: list[Any],
    detail: dict[str, Any],
) -> Loaded | WorkflowRecord:
    """Create an instance "running" in the open transaction, ready for its first
    turn after the commit (``Loaded``); the existing record if the id is taken.
    ``detail`` is added to its "started" history line. Shared by start-with-event
    and schedules: both create instances inside a transaction of their own."""
    script = tx.get_script(spec.script, spec.version)
    if script is None:
        raise UnknownScriptError(spec.script, spec.version)
    now = ctx.clock()
    meta = {**dict(spec.metadata), WORKFLOW_ID_KEY: workflow_id}
    state = WorkflowState(
        run_id=uuid.uuid4().hex,
        entry_point=spec.entry_point,
        arguments=args,
        started_at_ms=datetime_to_ms(now),
        metadata=meta,
    )
    record = WorkflowRecord(
        workflow_id=workflow_id,
        script_name=script.name,
        script_hash=script.hash,
        entry_point=spec.entry_point,
        status=InstanceStatus.RUNNING,
        state=state.serialize(),
        created_at=now,
        updated_at=now,
        metadata=meta,
    )
    stored, created = tx.create_workflow(record)
    if not created:
        return stored
    requirements = ctx.requirements(script.hash, script.source)
    if requirements:
        tx.set_requirements(workflow_id, requirements)
    history = {"script_hash": script.hash, "run_id": state.run_id, **detail}
    tx.append_history(workflow_id, "started", history, at=now)
    ctx.remember_script(script.name, script.hash, script.source)
    return fresh(stored, state, requirements, script.source)


def _check_existing(record: WorkflowRecord, spec: StartSpec) -> None:
    if record.script_name != spec.script:
        raise WorkflowExistsError(record.workflow_id, record.script_name, "script")
    if InstanceStatus.is_terminal(record.status):
        raise WorkflowFinishedError(record.workflow_id, record.status, "send an event to")


def _receipt(
    ctx: HostContext,
    workflow_id: str,
    name: str,
    event_id: int,
    delivered: dict[int, int],
    *,
    duplicate: bool,
) -> EventReceipt:
    if event_id in delivered:
        return EventReceipt(event_id, workflow_id, name, True, delivered[event_id], duplicate=duplicate)
    event = ctx.store.read(lambda tx: tx.get_event(event_id))
    if event is None or event.delivered_at is None:
        return EventReceipt(event_id, workflow_id, name, False, None, duplicate=duplicate)
    return EventReceipt(event_id, workflow_id, name, True, event.wait_id, duplicate=duplicate)

"""Instance lifecycle that needs no timers or inbox: scripts, start, read, list,
cancel, history, upgrade and replay checks."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from jsflow import WorkflowState, datetime_to_ms, validate_payload

from ._child_events import notify_parent
from ._context import HostContext
from ._deliveries import settle
from ._driver import Delivery, drive
from ._errors import (
    CorruptStateError,
    UnknownScriptError,
    WorkflowBusyError,
    WorkflowExistsError,
    WorkflowFinishedError,
)
from ._input import check_text, check_workflow_id
from ._load import decode_header, fresh, load, load_record
from ._replay import check_replay
from ._views import (
    WORKFLOW_ID_KEY,
    HistoryItem,
    WorkflowInstance,
    instance_view,
    journal_item,
    lifecycle_item,
    listed_view,
    merge_timeline,
)
from .store import ConcurrencyError, CorruptRecordError, InstanceStatus, ScriptVersion, WorkflowRecord


def register_script(ctx: HostContext, name: str, source: str) -> ScriptVersion:
    if not isinstance(source, str):
        raise TypeError(f"script source must be a str, not {type(source).__name__}")
    check_text(name, "the script name")
    check_text(source, "the script source")
    return ctx.store.write(lambda tx: tx.put_script(name, source))


def arguments(ctx: HostContext, workflow_id: str) -> list[Any] | None:
    """The start arguments; None when the stored row or state cannot be read."""
    try:
        record, _ = load_record(ctx, workflow_id)
        return list(decode_header(record).arguments)
    except (CorruptStateError, CorruptRecordError):
        return None


async def start(
    ctx: HostContext,
    script_name: str,
    args: list[Any],
    workflow_id: str | None,
    entry_point: str,
    version: str | None,
    metadata: dict[str, str] | None,
) -> WorkflowInstance:
    """Create the instance with its initial state, then run it as its owner.

    The initial state is stored before anything runs, so a crash during the
    first steps leaves a "running" instance that recovery finishes.
    """
    text = validate_payload(args, limit=ctx.engine.limits.payload, what="the arguments")
    if workflow_id is not None:
        check_workflow_id(workflow_id)
        existing = ctx.store.read(lambda tx: tx.get_workflow(workflow_id))
        if existing is not None:
            return _existing(ctx, existing, script_name, json.loads(text))
    wid = workflow_id or uuid.uuid4().hex
    meta = {**(metadata or {}), WORKFLOW_ID_KEY: wid}
    now = ctx.clock()
    state = WorkflowState(
        run_id=uuid.uuid4().hex,
        entry_point=entry_point,
        arguments=json.loads(text),  # what a stored and reloaded state would hold
        started_at_ms=datetime_to_ms(now),
        metadata=meta,
    )
    with ctx.store.transaction() as tx:  # the script lookup shares the create's transaction
        script = tx.get_script(script_name, version)
        if script is None:
            raise UnknownScriptError(script_name, version)
        record = WorkflowRecord(
            workflow_id=wid,
            script_name=script.name,
            script_hash=script.hash,
            entry_point=entry_point,
            status=InstanceStatus.RUNNING,
            state=state.serialize(),
            created_at=now,
            updated_at=now,
            metadata=meta,
        )
        stored, created = tx.create_workflow(record)
        if created:
            requirements = ctx.requirements(script.hash, script.source)
            if requirements:
                tx.set_requirements(wid, requirements)
            tx.append_history(wid, "started", {"script_hash": script.hash, "run_id": state.run_id}, at=now)
    if not created:
        return _existing(ctx, stored, script_name, json.loads(text))
    ctx.remember_script(script.name, script.hash, script.source)
    # the first turn runs on what was just stored: no read back, and no
    # "acquire" write (creating the instance "running" already took it)
    turn = fresh(stored, state, requirements, script.source)
    advanced = await drive(ctx, wid, Delivery(owner=True, acquire=False), turn)
    return await settle(ctx, wid, advanced)


def _existing(ctx: HostContext, record: WorkflowRecord, script_name: str, args: Any) -> WorkflowInstance:
    """The rule for a ``start`` whose id exists: the same script name and arguments
    return the existing instance; anything else is ``WorkflowExistsError``."""
    if record.script_name != script_name:
        raise WorkflowExistsError(record.workflow_id, record.script_name, "script")
    try:
        stored_args = decode_header(record).arguments
    except CorruptStateError:
        stored_args = None
    if stored_args != args:
        raise WorkflowExistsError(record.workflow_id, record.script_name, "arguments")
    return instance_view(record, ctx.store.read(lambda tx: tx.list_waits(record.workflow_id)))


def get(ctx: HostContext, workflow_id: str) -> WorkflowInstance:
    record, waits = load_record(ctx, workflow_id)
    return instance_view(record, waits)


def list_instances(
    ctx: HostContext,
    status: str | list[str] | None,
    script: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int,
    offset: int,
) -> list[WorkflowInstance]:
    with ctx.store.transaction(write=False) as tx:
        records = tx.list_workflows(
            status=status,
            script_name=script,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )
        return [listed_view(tx, r) for r in records]


def cancel(ctx: HostContext, workflow_id: str, reason: str | None) -> WorkflowInstance:
    """Mark cancelled with the version check (a worker mid-run loses its next write)."""
    for _ in range(50):
        record, _waits = load_record(ctx, workflow_id)
        if InstanceStatus.is_terminal(record.status):
            raise WorkflowFinishedError(workflow_id, record.status, "cancel")
        try:
            with ctx.store.transaction() as tx:
                saved = tx.save_workflow(replace(record, status="cancelled", cancel_reason=reason))
                tx.replace_waits(workflow_id, [])
                tx.append_history(workflow_id, "cancelled", {"reason": reason})
                notify_parent(tx, saved)  # a child's end waits in its parent's inbox
        except ConcurrencyError:
            continue
        return instance_view(saved, [])
    raise WorkflowBusyError(workflow_id, 50)


def history(ctx: HostContext, workflow_id: str) -> list[HistoryItem]:
    """Lifecycle events and journal entries merged by time (lifecycle first on ties).

    The journal is read as stored, so createHook tokens never show up here.
    """
    record, _ = load_record(ctx, workflow_id)
    lifecycle = [lifecycle_item(e) for e in ctx.store.read(lambda tx: tx.list_history(workflow_id))]
    journal: list[HistoryItem] = []
    try:
        state = load(ctx, workflow_id).state
    except CorruptStateError as exc:
        lifecycle.append(HistoryItem(record.updated_at, "lifecycle", "corrupt_state", {"reason": exc.reason}))
        return lifecycle
    assert state is not None
    journal = [journal_item(entry) for entry in ctx.hooks.strip(list(state.journal))]
    return merge_timeline(lifecycle, journal)[0]


# -- upgrades ------------------------------------------------------------------------------
async def upgrade(ctx: HostContext, workflow_id: str, new_hash: str) -> WorkflowInstance:
    """Switch the instance to ``new_hash`` (same script name) once replay accepts it."""
    for _ in range(50):
        record, waits = load_record(ctx, workflow_id)
        if InstanceStatus.is_terminal(record.status):
            raise WorkflowFinishedError(workflow_id, record.status, "upgrade")
        loaded = load(ctx, workflow_id)
        assert loaded.state is not None
        script = check_replay(ctx, record, new_hash, loaded.state)
        requirements = ctx.requirements_keeping(script.hash, script.source, loaded.requirements)
        try:
            with ctx.store.transaction() as tx:
                saved = tx.save_workflow(
                    replace(record, script_hash=new_hash), expected_version=record.version
                )
                tx.set_requirements(workflow_id, requirements)
                tx.append_history(workflow_id, "upgraded", {"from": record.script_hash, "to": new_hash})
        except ConcurrencyError:
            continue
        return instance_view(saved, waits)
    raise WorkflowBusyError(workflow_id, 50)

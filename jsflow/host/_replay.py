"""Replay checks: does a script source accept an instance's stored journal?

Used by ``replay_check`` (a report per instance), ``upgrade`` and ``retry``
on another version (refused with ``UpgradeError`` when it does not).
Nothing runs: the journal is replayed in a sandbox and the pending waits it
ends on are compared with the stored ones.
"""

from __future__ import annotations

import hashlib
from typing import Any

from jsflow import JournalCompatibilityError, WorkflowState

from ._context import HostContext
from ._errors import CorruptStateError, UnknownScriptError, UpgradeError
from ._load import load, load_record
from ._views import ReplayReport
from .store import PendingWait, ScriptVersion, WorkflowRecord


def get_script(ctx: HostContext, name: str, version: str | None) -> ScriptVersion:
    script = ctx.store.read(lambda tx: tx.get_script(name, version))
    if script is None:
        raise UnknownScriptError(name, version)
    return script


def _base(record: WorkflowRecord, script_hash: str) -> dict[str, Any]:
    return {
        "workflow_id": record.workflow_id,
        "script_name": record.script_name,
        "script_hash": script_hash,
        "status": record.status,
    }


def replay_one(
    ctx: HostContext, record: WorkflowRecord, waits: list[PendingWait], source: str, script_hash: str
) -> ReplayReport:
    """Replay the stored journal against ``source`` (no step runs) and compare
    the pending waits with the stored ones."""
    base = _base(record, script_hash)
    try:
        state = load(ctx, record.workflow_id).state
    except CorruptStateError as exc:
        return ReplayReport(**base, ok=False, message=str(exc))
    assert state is not None
    return replay_state(ctx, state, waits, source, base)


def replay_state(
    ctx: HostContext, state: WorkflowState, waits: list[PendingWait], source: str, base: dict[str, Any]
) -> ReplayReport:
    outcome = ctx.engine.replay(source, state, extensions=ctx.extensions)
    err = outcome.error
    if isinstance(err, JournalCompatibilityError):
        return ReplayReport(
            **base,
            ok=False,
            message=err.message,
            slot_index=err.slot_index,
            expected_type=err.expected_type,
            expected_name=err.expected_name,
            encountered_type=err.encountered_type,
            encountered_name=err.encountered_name,
        )
    if not outcome.ok:
        return ReplayReport(**base, ok=False, message=f"replay failed: {err}")
    found = {w.wait_id: w for w in outcome.waits}
    for wait in waits:
        if wait.kind == "continue":  # a parked chain: the next generation has not started
            continue
        now = found.get(wait.wait_id)
        if now is None or now.function_name != wait.function_name:
            what = "nothing" if now is None else repr(now.function_name)
            return ReplayReport(
                **base,
                ok=False,
                message=f"pending wait {wait.wait_id} is {wait.function_name!r}, but the script now "
                f"schedules {what} there",
                slot_index=wait.wait_id,
                expected_name=wait.function_name,
                encountered_name=None if now is None else now.function_name,
            )
    return ReplayReport(
        **base, ok=True, message="journal replays without drift", patches=tuple(outcome.patches)
    )


def replay_check(
    ctx: HostContext,
    source: str,
    workflow_ids: list[str] | None,
    script_name: str | None,
    include_finished: bool,
) -> list[ReplayReport]:
    script_hash = hashlib.sha256(source.encode("utf-8")).hexdigest()
    if workflow_ids is None:
        statuses = None if include_finished else ["running", "suspended"]
        records = ctx.store.read(
            lambda tx: tx.list_workflows(status=statuses, script_name=script_name, limit=1_000_000)
        )
        workflow_ids = [r.workflow_id for r in records]
    reports = []
    for wid in workflow_ids:
        record, waits = load_record(ctx, wid)
        reports.append(replay_one(ctx, record, waits, source, script_hash))
    return reports


def check_replay(
    ctx: HostContext, record: WorkflowRecord, new_hash: str, state: WorkflowState
) -> ScriptVersion:
    """The script version ``new_hash``, once it replays ``state``; ``UpgradeError`` if not."""
    script = get_script(ctx, record.script_name, new_hash)
    base = _base(record, new_hash)
    report = replay_state(
        ctx, state, ctx.store.read(lambda tx: tx.list_waits(record.workflow_id)), script.source, base
    )
    if not report.ok:
        raise UpgradeError(record.workflow_id, report)
    return script

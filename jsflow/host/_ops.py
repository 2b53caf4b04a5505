"""Instance lifecycle that needs no timers or inbox: scripts, start, read, list,
cancel, history, upgrade and replay checks."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jsflow import JournalCompatibilityError, WorkflowState, validate_payload

from ._child_events import notify_parent
from ._deliveries import settle
from ._driver import Delivery, drive
from ._errors import (
    CorruptStateError,
    UnknownScriptError,
    UpgradeError,
    WorkflowBusyError,
    WorkflowExistsError,
    WorkflowFinishedError,
)
from ._input import check_text, check_workflow_id
from ._load import Loaded, decode_header, load, load_record
from ._timeutil import datetime_to_ms
from ._views import (
    WORKFLOW_ID_KEY,
    HistoryItem,
    ReplayReport,
    WorkflowInstance,
    instance_view,
    journal_item,
    lifecycle_item,
    listed_view,
)
from .store import (
    ConcurrencyError,
    CorruptRecordError,
    InstanceStatus,
    PendingWait,
    ScriptVersion,
    WorkflowRecord,
)

if TYPE_CHECKING:
    from ._host import WorkflowHost

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def requirements_of(host: WorkflowHost, source: str) -> list[str]:
    """The registered names ``source`` mentions: what a process needs to run it.

    Mentioned, not called: a name that appears anywhere in the source counts,
    which errs on the side of leaving an instance to a process that has it."""
    words = set(_IDENTIFIER.findall(source))
    return sorted(words & host.capabilities())


def register_script(host: WorkflowHost, name: str, source: str) -> ScriptVersion:
    if not isinstance(source, str):
        raise TypeError(f"script source must be a str, not {type(source).__name__}")
    check_text(name, "the script name")
    check_text(source, "the script source")
    return host.store.write(lambda tx: tx.put_script(name, source))


def arguments(host: WorkflowHost, workflow_id: str) -> list[Any] | None:
    """The start arguments; None when the stored row or state cannot be read."""
    try:
        record, _ = load_record(host, workflow_id)
        return list(decode_header(record).arguments)
    except (CorruptStateError, CorruptRecordError):
        return None


def get_script(host: WorkflowHost, name: str, version: str | None) -> ScriptVersion:
    script = host.store.read(lambda tx: tx.get_script(name, version))
    if script is None:
        raise UnknownScriptError(name, version)
    return script


async def start(
    host: WorkflowHost,
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
    text = validate_payload(args, limit=host.engine.limits.payload, what="the arguments")
    if workflow_id is not None:
        check_workflow_id(workflow_id)
        existing = host.store.read(lambda tx: tx.get_workflow(workflow_id))
        if existing is not None:
            return _existing(host, existing, script_name, json.loads(text))
    wid = workflow_id or uuid.uuid4().hex
    meta = {**(metadata or {}), WORKFLOW_ID_KEY: wid}
    now = host.clock()
    state = WorkflowState(
        run_id=uuid.uuid4().hex,
        entry_point=entry_point,
        arguments=json.loads(text),  # what a stored and reloaded state would hold
        started_at_ms=datetime_to_ms(now),
        metadata=meta,
    )
    with host.store.transaction() as tx:  # the script lookup shares the create's transaction
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
            requirements = host.requirements_cache(script.hash, script.source)
            if requirements:
                tx.set_requirements(wid, requirements)
            tx.append_history(wid, "started", {"script_hash": script.hash, "run_id": state.run_id}, at=now)
    if not created:
        return _existing(host, stored, script_name, json.loads(text))
    host.script_cache.setdefault((script.name, script.hash), script.source)
    # the first turn runs on what was just stored: no read back, and no
    # "acquire" write (creating the instance "running" already took it)
    fresh = Loaded(stored, [], script.source, state, 0, requirements)
    advanced = await drive(host, wid, Delivery(owner=True, acquire=False), fresh)
    return await settle(host, wid, advanced)


def _existing(host: WorkflowHost, record: WorkflowRecord, script_name: str, args: Any) -> WorkflowInstance:
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
    return instance_view(record, host.store.read(lambda tx: tx.list_waits(record.workflow_id)))


def get(host: WorkflowHost, workflow_id: str) -> WorkflowInstance:
    record, waits = load_record(host, workflow_id)
    return instance_view(record, waits)


def list_instances(
    host: WorkflowHost,
    status: str | list[str] | None,
    script: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int,
    offset: int,
) -> list[WorkflowInstance]:
    with host.store.transaction(write=False) as tx:
        records = tx.list_workflows(
            status=status,
            script_name=script,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )
        return [listed_view(tx, r) for r in records]


def cancel(host: WorkflowHost, workflow_id: str, reason: str | None) -> WorkflowInstance:
    """Mark cancelled with the version check (a worker mid-run loses its next write)."""
    for _ in range(50):
        record, _waits = load_record(host, workflow_id)
        if InstanceStatus.is_terminal(record.status):
            raise WorkflowFinishedError(workflow_id, record.status, "cancel")
        try:
            with host.store.transaction() as tx:
                saved = tx.save_workflow(replace(record, status="cancelled", cancel_reason=reason))
                tx.replace_waits(workflow_id, [])
                tx.append_history(workflow_id, "cancelled", {"reason": reason})
                notify_parent(tx, saved)  # a child's end waits in its parent's inbox
        except ConcurrencyError:
            continue
        return instance_view(saved, [])
    raise WorkflowBusyError(workflow_id, 50)


def history(host: WorkflowHost, workflow_id: str) -> list[HistoryItem]:
    """Lifecycle events and journal entries merged by time (lifecycle first on ties).

    The journal is read as stored, so createHook tokens never show up here.
    """
    record, _ = load_record(host, workflow_id)
    lifecycle = [lifecycle_item(e) for e in host.store.read(lambda tx: tx.list_history(workflow_id))]
    journal: list[HistoryItem] = []
    try:
        state = load(host, workflow_id).state
    except CorruptStateError as exc:
        lifecycle.append(HistoryItem(record.updated_at, "lifecycle", "corrupt_state", {"reason": exc.reason}))
        return lifecycle
    journal = [journal_item(entry) for entry in host.hooks.strip(list(state.journal))]
    return _merge(lifecycle, journal)


_BEFORE_RUN = frozenset(
    {"started", "event_received", "retried", "upgraded", "cancel_requested", "cancel_delivered"}
)


def _merge(lifecycle: list[HistoryItem], journal: list[HistoryItem]) -> list[HistoryItem]:
    """Merge two time-ordered lists; on equal times a lifecycle event that starts
    an advance goes first, one that ends it goes after the journal entries."""
    out: list[HistoryItem] = []
    i = j = 0
    while i < len(lifecycle) and j < len(journal):
        life, entry = lifecycle[i], journal[j]
        if life.at < entry.at or (life.at == entry.at and life.kind in _BEFORE_RUN):
            out.append(life)
            i += 1
        else:
            out.append(entry)
            j += 1
    return out + lifecycle[i:] + journal[j:]


# -- replay checks and upgrades ------------------------------------------------------------
def replay_one(
    host: WorkflowHost, record: WorkflowRecord, waits: list[PendingWait], source: str, script_hash: str
) -> ReplayReport:
    """Replay the stored journal against ``source`` (no step runs) and compare
    the pending waits with the stored ones."""
    base = {
        "workflow_id": record.workflow_id,
        "script_name": record.script_name,
        "script_hash": script_hash,
        "status": record.status,
    }
    try:
        state = load(host, record.workflow_id).state
    except CorruptStateError as exc:
        return ReplayReport(**base, ok=False, message=str(exc))
    return _replay(host, state, waits, source, base)


def _replay(
    host: WorkflowHost, state: WorkflowState, waits: list[PendingWait], source: str, base: dict[str, Any]
) -> ReplayReport:
    outcome = host.engine.replay(source, state, extensions=host.extensions)
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
    host: WorkflowHost,
    source: str,
    workflow_ids: list[str] | None,
    script_name: str | None,
    include_finished: bool,
) -> list[ReplayReport]:
    script_hash = hashlib.sha256(source.encode("utf-8")).hexdigest()
    if workflow_ids is None:
        statuses = None if include_finished else ["running", "suspended"]
        records = host.store.read(
            lambda tx: tx.list_workflows(status=statuses, script_name=script_name, limit=1_000_000)
        )
        workflow_ids = [r.workflow_id for r in records]
    reports = []
    for wid in workflow_ids:
        record, waits = load_record(host, wid)
        reports.append(replay_one(host, record, waits, source, script_hash))
    return reports


def check_replay(host: WorkflowHost, record: WorkflowRecord, new_hash: str, state: WorkflowState) -> None:
    """Raise UpgradeError unless version ``new_hash`` replays ``state``."""
    script = get_script(host, record.script_name, new_hash)
    base = {
        "workflow_id": record.workflow_id,
        "script_name": record.script_name,
        "script_hash": new_hash,
        "status": record.status,
    }
    report = _replay(
        host, state, host.store.read(lambda tx: tx.list_waits(record.workflow_id)), script.source, base
    )
    if not report.ok:
        raise UpgradeError(record.workflow_id, report)


async def upgrade(host: WorkflowHost, workflow_id: str, new_hash: str) -> WorkflowInstance:
    """Switch the instance to ``new_hash`` (same script name) once replay accepts it."""
    for _ in range(50):
        record, waits = load_record(host, workflow_id)
        if InstanceStatus.is_terminal(record.status):
            raise WorkflowFinishedError(workflow_id, record.status, "upgrade")
        check_replay(host, record, new_hash, load(host, workflow_id).state)
        script = get_script(host, record.script_name, new_hash)
        try:
            with host.store.transaction() as tx:
                saved = tx.save_workflow(replace(record, script_hash=new_hash))
                tx.set_requirements(workflow_id, host.requirements_cache(script.hash, script.source))
                tx.append_history(workflow_id, "upgraded", {"from": record.script_hash, "to": new_hash})
        except ConcurrencyError:
            continue
        return instance_view(saved, waits)
    raise WorkflowBusyError(workflow_id, 50)

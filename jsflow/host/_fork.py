"""``fork``: a new instance that replays the first N journal entries of another.

Why this is clean in jsflow: an instance's state is its journal, replayed
deterministically against its script version. A journal prefix is therefore
a consistent past of the run, and "restart from step N" (DBOS ``fork``,
Temporal ``reset``) is: a new instance whose journal is that prefix, left
"running" and handed to ``recover``, which replays the prefix and runs
everything after it live. The source instance is only read.

Time inside the script stays the journal's: a timer the script had started
before the fork point keeps the deadline it had (computed from the recorded
times), so one already past fires at the next worker pass. Not copied: inbox
events and tokens (they belonged to the source; waits get new tokens when the
fork suspends), and createHook tokens (derived from the instance id, so the
fork's hooks get their own).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from jsflow import WorkflowError, WorkflowState

from ._errors import CorruptStateError, UnknownWorkflowError
from ._views import WORKFLOW_ID_KEY, WorkflowInstance, instance_view
from .store import WorkflowRecord

if TYPE_CHECKING:
    from ._host import WorkflowHost

FORKED_FROM_KEY = "forked_from"


def fork_state(state: WorkflowState, keep: int, new_id: str) -> WorkflowState:
    """The new run's state: a fresh run id, the first ``keep`` journal entries."""
    if not 0 <= keep <= len(state.journal):
        raise ValueError(f"step must be from 0 to {len(state.journal)} (the journal length), not {keep}")
    return state.model_copy(
        update={
            "run_id": uuid.uuid4().hex,
            "parent_run_id": None,
            "journal": list(state.journal[:keep]),
            "waits": [],
            "metadata": {**state.metadata, WORKFLOW_ID_KEY: new_id},
        }
    )


async def fork(
    host: WorkflowHost, workflow_id: str, step: int | None, new_id: str | None
) -> WorkflowInstance:
    source = host.store.get_workflow(workflow_id)
    if source is None:
        raise UnknownWorkflowError(workflow_id)
    if source.state is None:
        raise CorruptStateError(workflow_id, "no state stored")
    try:
        state = WorkflowState.deserialize(source.state)
    except (ValueError, WorkflowError) as exc:
        raise CorruptStateError(workflow_id, str(exc)) from exc
    keep = len(state.journal) if step is None else step
    wid = new_id or uuid.uuid4().hex
    forked = fork_state(state, keep, wid)
    now = host.clock()
    record = WorkflowRecord(
        workflow_id=wid,
        script_name=source.script_name,
        script_hash=source.script_hash,
        entry_point=source.entry_point,
        status="running",
        state=forked.serialize(),
        created_at=now,
        updated_at=now,
        metadata={**forked.metadata, FORKED_FROM_KEY: f"{workflow_id}@{keep}"},
    )
    with host.store.transaction() as tx:
        stored, created = tx.create_workflow(record)
        if created:
            detail = {"from": workflow_id, "step": keep, "run_id": forked.run_id}
            tx.append_history(wid, "forked", detail, at=now)
    if not created:  # idempotent on the new id, like start
        return instance_view(stored, host.store.list_waits(wid))
    return await host.arecover(wid)

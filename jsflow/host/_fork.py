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

from jsflow import WorkflowState

from ._context import HostContext
from ._deliveries import recover
from ._errors import UnknownWorkflowError
from ._load import decode_header, load, script_source
from ._views import WORKFLOW_ID_KEY, WorkflowInstance, instance_view
from .store import InstanceStatus, WorkflowRecord

FORKED_FROM_KEY = "forked_from"


def fork_header(header: WorkflowState, new_id: str) -> WorkflowState:
    """The new run's stored header: a fresh run id, no inline journal (its
    entries are journal rows), no wait records, metadata naming the new id."""
    return header.model_copy(
        update={
            "run_id": uuid.uuid4().hex,
            "parent_run_id": None,
            "journal": [],
            "waits": [],
            "metadata": {**header.metadata, WORKFLOW_ID_KEY: new_id},
        }
    )


async def fork(ctx: HostContext, workflow_id: str, step: int | None, new_id: str | None) -> WorkflowInstance:
    """The fork records its requirements as ``start`` does: the source's, plus
    what this process's registrations find in the script."""
    loaded = load(ctx, workflow_id)
    assert loaded.state is not None
    journal = ctx.hooks.strip(list(loaded.state.journal))  # as stored: createHook tokens stripped
    requirements = ctx.requirements_keeping(
        loaded.record.script_hash, script_source(ctx, loaded.record), loaded.requirements
    )
    keep = len(journal) if step is None else step
    if not 0 <= keep <= len(journal):
        raise ValueError(f"step must be from 0 to {len(journal)} (the journal length), not {keep}")
    wid = new_id or uuid.uuid4().hex
    with ctx.store.transaction() as tx:
        source = tx.get_workflow(workflow_id)
        if source is None:  # purged since its journal was read
            raise UnknownWorkflowError(workflow_id)
        header = fork_header(decode_header(source), wid)
        now = ctx.clock()
        record = WorkflowRecord(
            workflow_id=wid,
            script_name=source.script_name,
            script_hash=source.script_hash,
            entry_point=source.entry_point,
            status=InstanceStatus.RUNNING,
            state=header.serialize(),
            created_at=now,
            updated_at=now,
            metadata={**header.metadata, FORKED_FROM_KEY: f"{workflow_id}@{keep}"},
        )
        stored, created = tx.create_workflow(record)
        if created:
            for seq, entry in enumerate(journal[:keep]):
                tx.append_journal(wid, seq, ctx.hooks.entry_text(entry))
            tx.set_requirements(wid, requirements)
            tx.append_history(
                wid, "forked", {"from": workflow_id, "step": keep, "run_id": header.run_id}, at=now
            )
    if not created:  # idempotent on the new id, like start
        return instance_view(stored, ctx.store.read(lambda tx: tx.list_waits(wid)))
    return await recover(ctx, wid)

"""Cancellation with cleanup (issue 20): ``WorkflowHost.cancel(id, reason, cleanup=True)``.

The cancellation is delivered into the script (the engine's ``Cancel``
action): every pending wait rejects with a JS ``CancelledError``, catch and
finally blocks run their compensating steps (within the time budget and at
most 100 journal entries), and the instance ends "cancelled" whatever the
script does, with the cleanup in its timeline. The turn is an ordinary
driver turn, so it is version-checked against concurrent deliveries.

Where the cleanup runs: in the call when this process can run the instance
(it has every step and suspend function the script needs); otherwise the
request is stored as a due timer of kind "cancel" on the instance, and a
worker that can run it fires it on its next pass. The request bumps the
instance's version, so a turn that was running concurrently retries from a
fresh read that includes it, and ``finish`` keeps the request across saves.

``cleanup=False`` is the immediate cancel: status "cancelled" at once, no
script code runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

from jsflow import Cancel

from ._children import after_turn, children_of
from ._context import HostContext
from ._driver import Delivery, drive
from ._errors import MissingRegistrationError, WorkflowBusyError, WorkflowFinishedError
from ._input import check_text, check_workflow_id
from ._load import load_record
from ._ops import cancel as cancel_now
from ._outcome import dump
from ._views import WorkflowInstance, instance_view
from .store import ConcurrencyError, InstanceStatus, PendingWait

#: the wait id of a stored cancellation request (never a script slot in practice)
CANCEL_WAIT_ID = 2**31 - 1
CANCEL_KIND = "cancel"
CANCEL_FUNCTION = "cancel"


async def cancel(ctx: HostContext, workflow_id: str, reason: str | None, cleanup: bool) -> WorkflowInstance:
    if reason is not None and not isinstance(reason, str):
        raise TypeError(f"reason must be a str or None, not {type(reason).__name__}")
    check_workflow_id(workflow_id)
    check_text(reason, "the cancel reason")
    if not cleanup:
        view = cancel_now(ctx, workflow_id, reason)
        await after_turn(ctx, view)
        await cancel_children(ctx, workflow_id, reason, cleanup=False)
        return view
    record, _waits = load_record(ctx, workflow_id)
    if InstanceStatus.is_terminal(record.status):
        raise WorkflowFinishedError(workflow_id, record.status, "cancel")
    missing = set(ctx.store.read(lambda tx: tx.get_requirements(workflow_id))) - ctx.capabilities()
    if missing:
        return request(ctx, workflow_id, reason)
    return await deliver(ctx, workflow_id, reason)  # on_turn cancels the children


async def on_turn(ctx: HostContext, view: WorkflowInstance) -> None:
    """After every driver turn: a child's end goes to its parent; an instance
    that ended cancelled (its cleanup ran) cancels its children with cleanup."""
    await after_turn(ctx, view)
    if view.status == InstanceStatus.CANCELLED:
        await cancel_children(ctx, view.workflow_id, view.cancel_reason, cleanup=True)


async def cancel_children(ctx: HostContext, workflow_id: str, reason: str | None, *, cleanup: bool) -> None:
    """Cancel the parent's unfinished children not started ``{detached: true}``, as the parent was."""
    for child, detached in children_of(ctx, workflow_id):
        if detached:
            continue
        record = ctx.store.read(lambda tx, wid=child: tx.get_workflow(wid))
        if record is None or InstanceStatus.is_terminal(record.status):
            continue
        why = f"parent {workflow_id} cancelled" + (f": {reason}" if reason else "")
        with contextlib.suppress(WorkflowFinishedError, WorkflowBusyError, MissingRegistrationError):
            await cancel(ctx, child, why, cleanup)


async def deliver(ctx: HostContext, workflow_id: str, reason: str | None) -> WorkflowInstance:
    """Run the cancellation and the script's cleanup in this process."""
    delivery = Delivery(Cancel(reason), ("cancel_delivered", {"reason": reason, "cleanup": True}))
    return (await drive(ctx, workflow_id, delivery)).view


def request(ctx: HostContext, workflow_id: str, reason: str | None) -> WorkflowInstance:
    """Store the cancellation as a due "cancel" timer for a worker that can run the instance."""
    for _ in range(50):
        record, waits = load_record(ctx, workflow_id)
        if InstanceStatus.is_terminal(record.status):
            raise WorkflowFinishedError(workflow_id, record.status, "cancel")
        row = PendingWait(
            wait_id=CANCEL_WAIT_ID,
            function_name=CANCEL_FUNCTION,
            kind=CANCEL_KIND,
            resume_at=ctx.clock(),
            arguments_json=dump([reason]),
        )
        kept = [w for w in waits if w.wait_id != CANCEL_WAIT_ID]
        try:
            with ctx.store.transaction() as tx:
                saved = tx.save_workflow(replace(record), expected_version=record.version)
                tx.replace_waits(workflow_id, [*kept, row])
                tx.append_history(workflow_id, "cancel_requested", {"reason": reason, "cleanup": True})
        except ConcurrencyError:
            continue
        return instance_view(saved, [*kept, row])
    raise WorkflowBusyError(workflow_id, 50)

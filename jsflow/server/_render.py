"""Host views -> API JSON (run in the engine pool: it reads the store).

Why here and not in the views: the API adds what a remote caller needs and
the host view leaves out: the start arguments (kept in the engine state),
the buffered inbox, and each createHook wait's URL, which the host derives
again from its secret (the raw token is never stored).
"""

from __future__ import annotations

from typing import Any

from jsflow.host import (
    HistoryItem,
    InstanceStatus,
    UnknownWorkflowError,
    WaitInfo,
    WorkflowHost,
    WorkflowInstance,
)

from ._schemas import HistoryItemOut, InboxOut, InstanceOut, IssuedTokenOut, WaitLocation, WaitOut


def _args(host: WorkflowHost, workflow_id: str) -> list[Any] | None:
    try:
        return host.arguments(workflow_id)  # None for a corrupt state: GET shows args null
    except UnknownWorkflowError:  # purged meanwhile
        return None


def _wait(host: WorkflowHost, workflow_id: str, wait: WaitInfo) -> WaitOut:
    url = host.hook_url(workflow_id, wait)
    return WaitOut(
        wait_id=wait.wait_id,
        kind=wait.kind,
        function_name=wait.function_name,
        names=list(wait.event_names) if wait.event_names is not None else None,
        resume_at=wait.resume_at,
        url=url,
        has_token=wait.has_token,
        arguments=list(wait.arguments),
        location=WaitLocation(**wait.location) if wait.location else None,
        description=wait.description,
        count=wait.count,
        received=wait.received,
        match=wait.match,
        schema=wait.schema,
    )


def _tokens(inst: WorkflowInstance) -> list[IssuedTokenOut]:
    return [
        IssuedTokenOut(
            wait_id=t.wait_id,
            function_name=t.function_name,
            kind=t.kind,
            token=t.token,
            expires_at=t.expires_at,
            url=t.url,
        )
        for t in inst.tokens
    ]


def instance_out(host: WorkflowHost, inst: WorkflowInstance) -> InstanceOut:
    error = None
    if inst.error is not None:
        error = {"type": str(inst.error.get("type", "Error")), "message": str(inst.error.get("message", ""))}
        error.update({k: v for k, v in inst.error.items() if k not in error})
    # a row the store could not decode: list it as it is, read nothing more of it
    damaged = inst.status == InstanceStatus.CORRUPT
    inbox = [
        InboxOut(event_id=e.event_id, name=e.name, received_at=e.received_at)
        for e in ([] if damaged else host.pending_events(inst.workflow_id))
    ]
    return InstanceOut(
        workflow_id=inst.workflow_id,
        status=inst.status,
        script=inst.script_name,
        version=inst.script_hash,
        entry_point=inst.entry_point,
        args=None if damaged else _args(host, inst.workflow_id),
        value=inst.value,
        error=error,  # type: ignore[arg-type]
        waits=[_wait(host, inst.workflow_id, w) for w in inst.waits],
        inbox=inbox,
        tokens=_tokens(inst),
        created_at=inst.created_at,
        updated_at=inst.updated_at,
        cancel_reason=inst.cancel_reason,
        metadata=dict(inst.metadata),
        parent_id=inst.parent_id,
        children=[] if damaged else host.children(inst.workflow_id),
    )


def history_out(item: HistoryItem) -> HistoryItemOut:
    return HistoryItemOut(at=item.at, source=item.source, kind=item.kind, detail=dict(item.detail))


def without_credentials(out: InstanceOut) -> InstanceOut:
    """``out`` as a key without the admin scope sees it: no hook URL (its last
    segment is a live token) and no issued token."""
    waits = [w.model_copy(update={"url": None}) for w in out.waits]
    return out.model_copy(update={"waits": waits, "tokens": []})

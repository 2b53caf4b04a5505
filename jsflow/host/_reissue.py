"""Reissuing a resume token: a fresh token for a pending token wait, the old one dead.

Why: the raw token of a Python token suspend function exists only in the
process that suspended (``before_suspend``, the token listeners, the call's
``WorkflowInstance.tokens``); if it was lost (the process died before the
hook ran, the message to the approver went astray), an admin needs a new
one. The new token's hash replaces the old one on the wait in one
version-checked transaction, so the old token no longer matches the wait and
is refused (``TokenNotFoundError``); the expiry stays the wait's. The new
token goes to ``before_suspend`` and the token listeners, like one issued at
a suspension. ``createHook`` tokens are derived from the host secret and
cannot be reissued.
"""

from __future__ import annotations

import json
from dataclasses import replace

from ._context import HostContext
from ._driver import after_commit
from ._errors import AlreadyResumedError, WorkflowBusyError, WorkflowFinishedError
from ._hooks import IssuedToken
from ._kinds import WaitKind
from ._load import load_record
from ._outcome import store_token, token_info
from ._tokens import new_token
from ._views import TokenInfo, public_name
from .store import ConcurrencyError, InstanceStatus


async def reissue_token(ctx: HostContext, workflow_id: str, wait_id: int) -> TokenInfo:
    """A new token for pending token wait ``wait_id``; the old one stops working."""
    if isinstance(wait_id, bool) or not isinstance(wait_id, int):
        raise TypeError(f"wait_id must be an integer, not {type(wait_id).__name__}")
    for _ in range(50):
        record, waits = load_record(ctx, workflow_id)
        if InstanceStatus.is_terminal(record.status):
            raise WorkflowFinishedError(workflow_id, record.status, "reissue a token of")
        wait = next((w for w in waits if w.wait_id == wait_id), None)
        if wait is None:
            raise AlreadyResumedError(workflow_id, wait_id, [w.wait_id for w in waits])
        if wait.kind != WaitKind.TOKEN:
            raise ValueError(
                f"wait {wait_id} of workflow {workflow_id!r} is a {wait.kind} wait; only token waits "
                "(Python suspend functions with resume tokens) get a new token"
            )
        token = new_token()
        issued = IssuedToken(
            ctx.hooks.specs.get(wait.function_name),
            token,
            wait.resume_at or ctx.clock() + ctx.max_suspension,
            list(json.loads(wait.arguments_json)),
            wait_id,
            wait.function_name,
            WaitKind.TOKEN.value,
            f"{ctx.hook_base_url}/{token}",  # POST /hooks/{token} resumes any token
            workflow_id,
        )
        try:
            with ctx.store.transaction() as tx:
                tx.save_workflow(record, expected_version=record.version)  # fences a concurrent advance
                token_hash = store_token(tx, workflow_id, issued)
                rows = [replace(w, token_hash=token_hash) if w.wait_id == wait_id else w for w in waits]
                tx.replace_waits(workflow_id, rows)
                detail = {"wait_id": wait_id, "function": public_name(wait.function_name)}
                tx.append_history(workflow_id, "token_reissued", detail)
        except ConcurrencyError:
            continue
        await after_commit(ctx, [issued])
        return token_info(issued)
    raise WorkflowBusyError(workflow_id, 50)

"""Child workflows (issue 20): ``startWorkflow(script, args, {id, detached})``.

``startWorkflow`` is an engine ``Extension`` of the host (like ``createHook``):
its journaled step ``__jchild_start`` creates the child instance (idempotent
on its id, so a replay or a crash never starts it twice; the default id is
``<parent id>.child-<slot>``) and runs the child's first turn; it returns
``{id}``. ``child.result()`` waits for the event the child's end leaves in
the parent's inbox (see ``_child_events``): it resolves with the child's
value or rejects with a ``ChildWorkflowError`` (``childId``, ``status``
"faulted" or "cancelled", ``error``).

Cancelling a parent cancels its unfinished children that were not started
``{detached: true}``, the same way (with or without cleanup). The children of
an instance are read from its journal (the ``__jchild_start`` results).
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from jsflow import Extension, current_step, validate_payload

from ._child_events import CHILD_START, DETACHED_KEY, PARENT_KEY
from ._context import HostContext
from ._deliveries import settle
from ._driver import Delivery, drive
from ._errors import (
    AlreadyResumedError,
    CorruptStateError,
    MissingRegistrationError,
    WorkflowBusyError,
    WorkflowExistsError,
    WorkflowFinishedError,
)
from ._inbox import drain
from ._input import check_workflow_id
from ._load import Loaded, load, script_source
from ._start_event import StartSpec, create_instance
from ._views import WorkflowInstance
from .store import InstanceStatus, WorkflowRecord

log = logging.getLogger("jsflow.host")

CHILD_JS = r"""
function (ops) {
  const waitFor = globalThis.waitForEvent;
  const freeze = Object.freeze;
  const isArray = Array.isArray;
  const keys = Object.keys;
  class ChildWorkflowError extends Error {
    constructor(childId, status, error) {
      const why = error && typeof error.message === 'string' ? ': ' + error.message : '';
      super('child workflow ' + String(childId) + ' ' + String(status) + why);
      this.name = 'ChildWorkflowError';
      this.childId = childId;
      this.status = status;
      this.error = error === undefined ? null : error;
    }
  }
  globalThis.ChildWorkflowError = ChildWorkflowError;
  globalThis.startWorkflow = async function startWorkflow(script, args, options) {
    if (typeof script !== 'string' || script === '') {
      throw new TypeError('startWorkflow: script must be the name of a registered script');
    }
    const list = args === undefined ? [] : args;
    if (!isArray(list)) throw new TypeError('startWorkflow: args must be an array');
    const opts = options === undefined || options === null ? {} : options;
    if (typeof opts !== 'object') {
      throw new TypeError('startWorkflow: options must be an object like {id, detached}');
    }
    for (const key of keys(opts)) {
      if (key !== 'id' && key !== 'detached') {
        throw new TypeError('startWorkflow: unknown option "' + key + '" (allowed: id, detached)');
      }
    }
    const id = opts.id === undefined || opts.id === null ? null : opts.id;
    if (id !== null && (typeof id !== 'string' || id === '')) {
      throw new TypeError('startWorkflow: id must be a non-empty string');
    }
    const info = await ops.__jchild_start(script, list, id, opts.detached === true);
    let waiting = null;
    const childId = info.id;
    return freeze({
      id: childId,
      result() {
        if (waiting === null) {
          waiting = waitFor('jsflow:child-end:' + childId).then((end) => {
            if (end !== null && typeof end === 'object' && end.status === 'completed') {
              return end.value === undefined ? null : end.value;
            }
            const status = end !== null && typeof end === 'object' ? end.status : 'faulted';
            const error = end !== null && typeof end === 'object' ? end.error : null;
            throw new ChildWorkflowError(childId, status, error);
          });
        }
        return waiting;
      },
    });
  };
}
"""


class Children:
    """The host's ``startWorkflow`` extension and what it does to instances."""

    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx
        self.extension = Extension(
            name="startWorkflow",
            js=CHILD_JS,
            steps={CHILD_START: self._start_child},
            globals=("startWorkflow", "ChildWorkflowError"),
        )

    async def _start_child(self, script: Any, args: Any, child_id: Any, detached: Any) -> dict[str, Any]:
        """The journaled half of ``startWorkflow``: create the child, run its first turn."""
        ctx = self.ctx
        step = current_step()
        parent = step.workflow_id
        wid = child_id if isinstance(child_id, str) and child_id else f"{parent}.child-{step.slot}"
        check_workflow_id(wid)
        text = validate_payload(
            list(args or []), limit=ctx.engine.limits.payload, what="the child's arguments"
        )
        meta = {PARENT_KEY: parent, DETACHED_KEY: "true" if detached else "false"}
        spec = StartSpec(str(script), metadata=meta)
        with ctx.store.transaction() as tx:
            made = create_instance(ctx, tx, wid, spec, json.loads(text), {PARENT_KEY: parent})
        if isinstance(made, WorkflowRecord):
            if made.metadata.get(PARENT_KEY) != parent:
                raise WorkflowExistsError(wid, made.script_name, "parent")
        else:
            await self._first_turn(wid, made)
        return {"id": wid, "detached": bool(detached)}

    async def _first_turn(self, wid: str, loaded: Loaded) -> None:
        try:
            await settle(
                self.ctx, wid, await drive(self.ctx, wid, Delivery(owner=True, acquire=False), loaded)
            )
        except Exception:
            log.exception("the first turn of child workflow %r failed (recovery finishes it)", wid)


def children_of(ctx: HostContext, workflow_id: str) -> list[tuple[str, bool]]:
    """(child id, detached) for each child the instance started, in order.
    The journal is read only for scripts that mention ``startWorkflow``."""
    record = ctx.store.read(lambda tx: tx.get_workflow(workflow_id))
    if record is None or "startWorkflow" not in script_source(ctx, record):
        return []
    try:
        journal = load(ctx, workflow_id).state.journal
    except CorruptStateError:
        return []
    out: list[tuple[str, bool]] = []
    for entry in journal:
        if entry.name == CHILD_START and entry.type == "step" and isinstance(entry.result, dict):
            child = entry.result.get("id")
            if isinstance(child, str) and all(child != c for c, _ in out):
                out.append((child, bool(entry.result.get("detached"))))
    return out


async def after_turn(ctx: HostContext, view: WorkflowInstance) -> None:
    """After a child's end is stored: deliver it to its parent now if the parent is
    waiting and idle (a running parent drains it at the end of its own turn)."""
    parent = view.metadata.get(PARENT_KEY)
    if not parent or not view.is_finished:
        return
    record = ctx.store.read(lambda tx: tx.get_workflow(parent))
    if record is None or record.status != InstanceStatus.SUSPENDED:
        return
    with contextlib.suppress(
        WorkflowBusyError, WorkflowFinishedError, MissingRegistrationError, AlreadyResumedError
    ):
        await drain(ctx, parent)

"""Child workflows: a parent starts one child per shipment and waits for them.

``startWorkflow(script, args, {id, detached})`` is one journaled step (a
replay or a crash never starts a child twice); ``child.result()`` suspends
until the child ends and rejects with a ``ChildWorkflowError`` when it
faulted or was cancelled. Cancelling the parent cancels the children it
did not start ``{detached: true}``.

Run it: ``python samples/child_workflows.py``.
"""

from __future__ import annotations

from typing import Any

from jsflow.host import WorkflowHost

PARENT = """
async function main(order) {
  const shipments = [];
  for (const box of order.boxes) shipments.push(await startWorkflow('shipment', [box]));
  const receipts = [];
  for (const s of shipments) {
    try { receipts.push(await s.result()); }
    catch (e) { receipts.push({ box: e.childId, failed: e.status }); }
  }
  return { order: order.id, receipts };
}
"""
SHIPMENT = """
async function main(box) {
  const tracking = await waitForEvent('delivered');
  return { box, tracking };
}
"""


def main() -> dict[str, Any]:
    with WorkflowHost("memory://") as host:
        host.register_script("order", PARENT)
        host.register_script("shipment", SHIPMENT)
        host.start("order", {"id": "O-7", "boxes": ["a", "b"]}, workflow_id="O-7")
        first, second = host.children("O-7")  # "O-7.child-0", "O-7.child-1"
        host.send_event(first, "delivered", "TRK-1")
        host.cancel(second, "lost in transit")
        return host.get("O-7").value  # type: ignore[no-any-return]


if __name__ == "__main__":
    print(main())

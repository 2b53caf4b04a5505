"""Queries: ask a waiting workflow where it is, without touching it.

``defineQuery('status', () => ...)`` registers a synchronous handler;
``host.query(id, 'status')``, ``jsflow query ID status`` and
``GET /v1/workflows/{id}/queries/status`` answer from the instance's
current state. Nothing is journaled; a handler that awaits anything is a
``QueryError``.

Run it: ``python samples/queries.py``.
"""

from __future__ import annotations

from typing import Any

from jsflow.host import WorkflowHost

SCRIPT = """
let stage = 'collecting';
const approvers = [];
defineQuery('status', () => ({ stage, approvers, missing: 2 - approvers.length }));
async function main() {
  while (approvers.length < 2) approvers.push(await waitForEvent('approve'));
  stage = 'approved';
  return approvers;
}
"""


def main() -> list[Any]:
    with WorkflowHost("memory://") as host:
        host.register_script("approval", SCRIPT)
        host.start("approval", workflow_id="exp-1")
        answers = [host.query("exp-1", "status")]
        host.send_event("exp-1", "approve", "ann")
        answers.append(host.query("exp-1", "status"))
        host.send_event("exp-1", "approve", "bob")
        answers.append(host.query("exp-1", "status"))  # finished: from its final state
        return answers


if __name__ == "__main__":
    print(main())

"""Order approval embedded in Python: steps, sleep, and a suspend function with hooks.

Why hooks: ``getApproval`` must reach a person days later, in another
process. ``before_suspend`` gets a one-time resume token after the
suspension is safely stored (here it "emails" it to an outbox);
``before_resume`` turns the manager's reply into what the script sees;
``before_timeout_resume`` answers for the manager when nobody replies in time.

Run it: ``python samples/order_approval.py``. Or drive the same workflow from
the shell with these registrations::

    jsflow run samples/order_approval.js A-1 --app samples.order_approval:build_host
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jsflow import current_step
from jsflow.host import WorkflowHost

SCRIPT = Path(__file__).with_name("order_approval.js").read_text(encoding="utf-8")
ORDERS = {"A-1": {"id": "A-1", "total": 250}, "A-2": {"id": "A-2", "total": 40}}
OUTBOX: list[dict[str, Any]] = []  # stands in for email: what before_suspend sent


def build_host(store: Any = None, clock: Any = None) -> WorkflowHost:
    """A host with this sample's steps and hooks (``store`` None: $JSFLOW_DB or .jsflow/)."""
    host = WorkflowHost(store, clock=clock)

    @host.engine.step()
    def fetch_order(order_id: str) -> dict[str, Any]:
        return ORDERS[order_id]

    @host.engine.step()
    def charge(order: dict[str, Any]) -> dict[str, Any]:
        # pass the key to the payment provider so a retried charge is not doubled
        return {"amount": order["total"], "idempotency_key": current_step().idempotency_key}

    def send_to_manager(token: str, expires_at: datetime, args: list[Any]) -> None:
        OUTBOX.append({"to": args[0], "amount": args[1], "token": token, "expires_at": expires_at})

    host.register_suspend_function(
        "getApproval",
        before_suspend=send_to_manager,
        before_resume=lambda reply, args: {"approved": reply.get("decision") == "approve", "by": reply["by"]},
        before_timeout_resume=lambda args: {"approved": False, "by": "nobody (timed out)"},
        expires_in=timedelta(days=2),
    )
    host.register_script("order_approval", SCRIPT)
    return host


def main() -> list[Any]:
    """Two orders on a memory store with a fake clock: one approved, one timing out."""
    now = [datetime(2026, 1, 5, 9, 0, tzinfo=UTC)]
    results = []
    with build_host("memory://", clock=lambda: now[0]) as host:
        small = host.start("order_approval", "A-2", workflow_id="order-A-2")
        print(f"{small.workflow_id}: {small.status} {small.value}")  # under 100: no approval

        inst = host.start("order_approval", "A-1", workflow_id="order-A-1")
        print(f"{inst.workflow_id}: {inst.status}, waiting for {inst.waits[0].function_name}")
        now[0] += timedelta(hours=1)
        host.run_due()  # the worker fires the 1h sleep; the workflow now waits for approval
        mail = OUTBOX[-1]
        print(f"mail to {mail['to']}: approve {mail['amount']}? token {mail['token'][:8]}...")
        inst = host.resume_with_token(mail["token"], {"decision": "approve", "by": "ann"})
        print(f"{inst.workflow_id}: {inst.status} {inst.value}")
        results += [small.value, inst.value]

        late = host.start("order_approval", "A-1", workflow_id="order-A-1-late")
        now[0] += timedelta(hours=1)
        host.run_due()
        now[0] += timedelta(days=3)  # nobody answers: the token expires
        host.run_due()
        late = host.get("order-A-1-late")
        print(f"{late.workflow_id}: {late.status} {late.value}")
        results.append(late.value)
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)

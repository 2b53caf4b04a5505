"""Queries and cancellation with cleanup through ``WorkflowHost`` (issue 20)."""

from __future__ import annotations

import pytest
from _host_helpers import FakeClock, open_host
from conftest import Backend

from jsflow.host import QueryError, QueryNotFoundError, WorkflowFinishedError, WorkflowHost

ORDER = """
let stage = 'new';
const approvers = [];
defineQuery('status', () => ({ stage, approvers }));
defineQuery('echo', (a, b) => [a, b]);
defineQuery('sneaky', () => charge(9));
async function main(amount) {
  stage = 'charging';
  await charge(amount);
  try {
    stage = 'approving';
    approvers.push(await waitForEvent('approve'));
    approvers.push(await waitForEvent('approve'));
    stage = 'shipped';
    return approvers;
  } catch (e) {
    stage = 'compensating:' + e.name + ':' + e.reason;
    await refund(amount);
    stage = 'refunded';
    return 'swallowed';
  }
}
"""


def make(store: object, calls: list[tuple[str, int]], clock: FakeClock | None = None) -> WorkflowHost:
    host = open_host(store, clock or FakeClock())  # type: ignore[arg-type]
    host.register_step_function("charge", lambda x: calls.append(("charge", x)) or x)
    host.register_step_function("refund", lambda x: calls.append(("refund", x)) or x)
    host.register_script("order", ORDER)
    return host


def test_query_answers_from_current_and_final_state(backend: Backend) -> None:
    calls: list[tuple[str, int]] = []
    with make(backend("a"), calls) as host:
        host.start("order", 10, workflow_id="o1")
        assert host.query("o1", "status") == {"stage": "approving", "approvers": []}
        host.send_event("o1", "approve", "ann")
        before = (host.history("o1"), host.get("o1").updated_at)
        assert host.query("o1", "status") == {"stage": "approving", "approvers": ["ann"]}
        assert host.query("o1", "echo", 1, {"b": 2}) == [1, {"b": 2}]
        assert (host.history("o1"), host.get("o1").updated_at) == before  # nothing journaled or changed
        host.send_event("o1", "approve", "bob")
        assert host.get("o1").status == "completed"
        assert host.query("o1", "status") == {"stage": "shipped", "approvers": ["ann", "bob"]}
        assert calls == [("charge", 10)]  # queries never ran a step
        assert host.list_queries("o1") == ["status", "echo", "sneaky"]


def test_query_errors(backend: Backend) -> None:
    with make(backend("a"), []) as host:
        host.start("order", 1, workflow_id="o1")
        with pytest.raises(QueryError) as info:
            host.query("o1", "sneaky")
        assert info.value.js_name == "TypeError" and info.value.workflow_id == "o1"
        with pytest.raises(QueryNotFoundError) as missing:
            host.query("o1", "nope")
        assert "status" in missing.value.defined


def test_cancel_runs_cleanup_in_the_call(backend: Backend) -> None:
    calls: list[tuple[str, int]] = []
    clock = FakeClock()
    with make(backend("a", clock), calls, clock) as host:
        host.start("order", 7, workflow_id="o1")
        host.send_event("o1", "approve", "ann")
        clock.advance(seconds=5)
        inst = host.cancel("o1", "customer left")
        assert inst.status == "cancelled" and inst.cancel_reason == "customer left"
        assert inst.waits == ()
        assert calls == [("charge", 7), ("refund", 7)]
        assert host.query("o1", "status")["stage"] == "refunded"
        kinds = [(h.source, h.kind) for h in host.history("o1")]
        assert kinds[-4:] == [
            ("lifecycle", "cancel_delivered"),
            ("journal", "cancel"),
            ("journal", "step"),
            ("lifecycle", "cancelled"),
        ]
        with pytest.raises(WorkflowFinishedError):
            host.cancel("o1")


def test_cancel_without_cleanup_is_immediate(backend: Backend) -> None:
    calls: list[tuple[str, int]] = []
    with make(backend("a"), calls) as host:
        host.start("order", 7, workflow_id="o1")
        inst = host.cancel("o1", "now", cleanup=False)
        assert inst.status == "cancelled" and calls == [("charge", 7)]


def test_cancel_cleanup_runs_on_a_worker_pass_when_this_process_cannot(backend: Backend) -> None:
    calls: list[tuple[str, int]] = []
    store = backend("shared")
    with make(store, calls) as runner:
        runner.start("order", 3, workflow_id="o1")
        with open_host(store, FakeClock()) as bare:  # no steps registered: cannot run it
            inst = bare.cancel("o1", "from afar")
            assert inst.status == "suspended"
            assert any(w.kind == "cancel" for w in inst.waits)
        runner.send_event("o1", "approve", "ann")  # a turn in between keeps the request
        assert runner.run_due() >= 1
        done = runner.get("o1")
        assert done.status == "cancelled" and done.cancel_reason == "from afar"
        assert calls == [("charge", 3), ("refund", 3)]


def test_cleanup_over_its_bounds_is_cut_short_with_a_history_line(backend: Backend) -> None:
    script = "async function main() { try { await waitForEvent('x'); } finally { for (;;) await tick(); } }"
    with open_host(backend("a"), FakeClock()) as host:
        host.register_step_function("tick", lambda: 1)
        host.register_script("loop", script)
        host.start("loop", workflow_id="l")
        inst = host.cancel("l", "stop")
        assert inst.status == "cancelled"
        kinds = [h.kind for h in host.history("l")]
        assert "cleanup_cut_short" in kinds and "cancelled" in kinds

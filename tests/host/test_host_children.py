"""Child workflows (issue 20): startWorkflow, child.result(), cancellation reaching children."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from _host_helpers import FakeClock, open_host
from conftest import Backend

from jsflow.host import WorkflowHost

PARENT = """
async function main() {
  const a = await startWorkflow('child', [2]);
  const b = await startWorkflow('child', [3], {id: 'fixed-' + a.id});
  const bad = await startWorkflow('boom', []);
  let err = null;
  try { await bad.result(); } catch (e) {
    err = [e.name, e.childId, e.status, e instanceof ChildWorkflowError, e.error.message];
  }
  return [await a.result(), await b.result(), err];
}
"""
CHILD = "async function main(n) { const v = await waitForEvent('go'); return n * v; }"
BOOM = "function main() { throw new Error('kaput'); }"
QUICK = "function main(n) { return n + 1; }"
FAN = """
async function main() {
  const kids = [await startWorkflow('child', [1]), await startWorkflow('child', [2], {detached: true})];
  try {
    return await Promise.all(kids.map((k) => k.result()));
  } catch (e) {
    await note('parent cleanup: ' + e.name);
    throw e;
  }
}
"""
CHILD_CLEANUP = """
async function main(n) {
  try { return await waitForEvent('go'); } catch (e) {
    await note('child cleanup ' + n + ': ' + e.reason);
    throw e;
  }
}
"""


def make(backend: Backend, notes: list[str] | None = None) -> WorkflowHost:
    clock = FakeClock()
    host = open_host(backend("c", clock), clock)
    host.register_step_function(
        "note", lambda text: (notes if notes is not None else []).append(text) or text
    )
    for name, src in (("parent", PARENT), ("child", CHILD), ("boom", BOOM), ("quick", QUICK), ("fan", FAN)):
        host.register_script(name, src)
    return host


def test_children_start_once_and_report_their_end(backend: Backend) -> None:
    with make(backend) as host:
        parent = host.start("parent", workflow_id="p")
        assert parent.status == "suspended"
        kids = host.children("p")
        assert kids == ["p.child-0", "fixed-p.child-0", "p.child-2"]
        assert [host.get(k).parent_id for k in kids] == ["p", "p", "p"]
        assert host.get("p.child-2").status == "faulted"
        host.send_event("p.child-0", "go", 10)
        assert host.get("p").status == "suspended"
        host.send_event("fixed-p.child-0", "go", 10)
        done = host.get("p")
        assert done.status == "completed"
        assert done.value == [20, 30, ["ChildWorkflowError", "p.child-2", "faulted", True, "Error: kaput"]]
        assert host.children("p") == kids  # replays never started a second child
        assert host.get("p").parent_id is None


def test_a_quick_child_reaches_a_parent_that_waits_later(backend: Backend) -> None:
    script = """
    async function main() {
      const c = await startWorkflow('quick', [41]);
      await waitForEvent('later');
      return await c.result();
    }"""
    with make(backend) as host:
        host.register_script("late", script)
        assert host.start("late", workflow_id="l").status == "suspended"
        assert host.get("l.child-0").status == "completed"
        host.send_event("l", "later")
        assert host.get("l").value == 42


def test_cancelling_a_parent_cancels_its_attached_children_with_cleanup(backend: Backend) -> None:
    notes: list[str] = []
    with make(backend, notes) as host:
        host.register_script("child", CHILD_CLEANUP)  # a newer version: the children clean up
        host.start("fan", workflow_id="f")
        assert [host.get(k).status for k in host.children("f")] == ["suspended", "suspended"]
        host.cancel("f", "stop")
        assert host.get("f").status == "cancelled"
        attached, detached = host.children("f")
        assert host.get(attached).status == "cancelled" and host.get(detached).status == "suspended"
        assert "parent cleanup: CancelledError" in notes
        assert "child cleanup 1: parent f cancelled: stop" in notes


def test_cancel_without_cleanup_reaches_children_at_once(backend: Backend) -> None:
    notes: list[str] = []
    with make(backend, notes) as host:
        host.register_script("child", CHILD_CLEANUP)
        host.start("fan", workflow_id="f")
        host.cancel("f", "now", cleanup=False)
        attached, detached = host.children("f")
        assert host.get(attached).status == "cancelled" and host.get(detached).status == "suspended"
        assert notes == []


def test_concurrent_child_ends_all_reach_the_parent(backend: Backend) -> None:
    script = """
    async function main() {
      const kids = [];
      for (let i = 0; i < 5; i++) kids.push(await startWorkflow('child', [i]));
      return await Promise.all(kids.map((k) => k.result()));
    }"""
    store = backend("shared")
    with open_host(store) as host:
        host.register_script("child", CHILD)
        host.register_script("many", script)
        host.start("many", workflow_id="m")
        others = [open_host(store) for _ in range(3)]
        try:
            with ThreadPoolExecutor(max_workers=5) as pool:
                list(pool.map(lambda i: others[i % 3].send_event(f"m.child-{i}", "go", 1), range(5)))
            for _ in range(20):
                if host.get("m").status == "completed":
                    break
                host.run_due()
        finally:
            for h in others:
                h.close()
        assert host.get("m").status == "completed" and host.get("m").value == [0, 1, 2, 3, 4]


def test_a_child_end_cannot_be_forged_by_an_event(backend: Backend) -> None:
    with make(backend) as host:
        host.start("parent", workflow_id="p")
        with pytest.raises(ValueError, match="reserved"):
            host.send_event("p", "jsflow:child-end:p.child-0", {"status": "completed", "value": 1})

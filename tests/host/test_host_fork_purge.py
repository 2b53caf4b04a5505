"""WorkflowHost.fork (re-run from a journal prefix) and WorkflowHost.purge (retention)."""

from __future__ import annotations

import pytest

from jsflow.host import UnknownWorkflowError, WorkflowHost

TWO_EVENTS = """
async function main(n) {
  const a = await waitForEvent('a');
  const b = await waitForEvent('b');
  return [n, a, b];
}
"""


@pytest.fixture
def host() -> WorkflowHost:
    h = WorkflowHost("memory://")
    h.register_script("two", TWO_EVENTS)
    h.start("two", 1, workflow_id="x")
    h.send_event("x", "a", "A1")
    h.send_event("x", "b", "B1")
    return h


def test_fork_replays_the_prefix_and_runs_the_rest_live(host: WorkflowHost) -> None:
    fork = host.fork("x", step=1, new_id="y")
    assert fork.status == "suspended" and [w.event_names for w in fork.waits] == [("b",)]
    assert fork.metadata["forked_from"] == "x@1" and fork.metadata["workflow_id"] == "y"
    assert host.send_event("y", "b", "B2").delivered
    assert host.get("y").value == [1, "A1", "B2"]
    assert host.get("x").value == [1, "A1", "B1"]  # the source is untouched
    kinds = [i.kind for i in host.history("y")]
    assert kinds[:2] == ["event", "forked"] and "recovered" in kinds  # the kept entry, then the fork


def test_fork_bounds_defaults_and_idempotence(host: WorkflowHost) -> None:
    assert [w.event_names for w in host.fork("x", step=0, new_id="z").waits] == [("a",)]
    whole = host.fork("x")  # default: the whole journal, a copy of the outcome
    assert whole.status == "completed" and whole.value == [1, "A1", "B1"] and whole.workflow_id != "x"
    assert host.fork("x", step=2, new_id="z").waits == host.get("z").waits  # exists: returned as is
    with pytest.raises(ValueError, match="from 0 to 2"):
        host.fork("x", step=3)
    with pytest.raises(UnknownWorkflowError):
        host.fork("nope")


def test_purge_deletes_only_finished_instances(host: WorkflowHost) -> None:
    host.start("two", 2, workflow_id="live")
    assert host.purge(["live", "x", "ghost"]) == ["x"]
    with pytest.raises(UnknownWorkflowError):
        host.get("x")
    assert host.get("live").status == "suspended"

"""Start-with-event: ``send_event(..., start=StartSpec(...))`` (issue 20)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from _host_helpers import FakeClock, open_host
from conftest import Backend

from jsflow.host import (
    StartSpec,
    UnknownScriptError,
    UnknownWorkflowError,
    WorkflowExistsError,
    WorkflowFinishedError,
)

COLLECT = """
async function main(want) {
  const got = [];
  while (got.length < want) got.push(await waitForEvent('vote'));
  return got;
}
"""


def test_start_with_event_starts_once_and_delivers(backend: Backend) -> None:
    with open_host(backend("a"), FakeClock()) as host:
        host.register_script("collect", COLLECT)
        first = host.send_event("poll-1", "vote", "ann", start=StartSpec("collect", [2]))
        assert first.delivered and not first.duplicate
        assert host.get("poll-1").status == "suspended"
        second = host.send_event("poll-1", "vote", "bob", start=StartSpec("collect", [2]))
        assert second.delivered
        done = host.get("poll-1")
        assert done.status == "completed" and done.value == ["ann", "bob"]
        with pytest.raises(WorkflowFinishedError):
            host.send_event("poll-1", "vote", "cy", start=StartSpec("collect", [2]))
        starts = [h for h in host.history("poll-1") if h.kind == "started"]
        assert len(starts) == 1


def test_existing_id_under_another_script_is_refused(backend: Backend) -> None:
    with open_host(backend("a"), FakeClock()) as host:
        host.register_script("collect", COLLECT)
        host.register_script("other", COLLECT)
        host.start("collect", 5, workflow_id="w")
        with pytest.raises(WorkflowExistsError) as info:
            host.send_event("w", "vote", 1, start=StartSpec("other", [5]))
        assert info.value.workflow_id == "w" and info.value.script_name == "collect"
        assert host.pending_events("w") == []  # nothing stored
        with pytest.raises(UnknownScriptError):
            host.send_event("new", "vote", 1, start=StartSpec("missing"))
        with pytest.raises(UnknownWorkflowError):
            host.get("new")


def test_start_with_event_honours_the_idempotency_key(backend: Backend) -> None:
    with open_host(backend("a"), FakeClock()) as host:
        host.register_script("collect", COLLECT)
        one = host.send_event("k", "vote", 1, idempotency_key="x", start=StartSpec("collect", [3]))
        two = host.send_event("k", "vote", 1, idempotency_key="x", start=StartSpec("collect", [3]))
        assert two.duplicate and two.event_id == one.event_id
        assert host.get("k").status == "suspended"


def test_twenty_concurrent_start_with_event_calls(backend: Backend) -> None:
    store = backend("shared")
    with open_host(store) as setup:
        setup.register_script("collect", COLLECT)
    hosts = [open_host(store) for _ in range(4)]
    try:

        def send(i: int) -> None:
            hosts[i % 4].send_event("poll", "vote", i, start=StartSpec("collect", [20]))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(send, range(20)))
        host = hosts[0]
        for _ in range(50):  # an event stored while another call ran the instance is drained by it
            if host.get("poll").status == "completed":
                break
            host.run_due()
        inst = host.get("poll")
        assert inst.status == "completed"
        assert sorted(inst.value) == list(range(20))
        assert len(host.list(script="collect")) == 1
        assert len([h for h in host.history("poll") if h.kind == "started"]) == 1
        assert len([h for h in host.history("poll") if h.kind == "event_received"]) == 20
    finally:
        for h in hosts:
            h.close()

"""Approval flows on the durable host, on every store: matched and counted
event waits, buffered events that match nothing, defaults on timeout,
schemas (refused before storing, tokens unspent, buffered events rejected),
and where/why each wait waits, with no internal name in any view."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from _host_helpers import FakeClock, open_host

from jsflow import PayloadSchemaError

Backend = Callable[..., Any]  # the ``backend`` fixture of tests/host/conftest.py

TWO_OF_THREE = """
async function main(order) {
  const votes = await waitForEvents('vote', { count: 2, distinct: 'voter', timeout: '3d' });
  return { order, approvers: votes.map(v => v.voter) };
}
"""

PER_ORDER = """
async function main() {
  const a = waitForEvent('approval', { match: { order: 'A-17' } });
  const b = waitForEvent('approval', { match: { order: 'A-18' } });
  return [(await a).by, (await b).by];
}
"""


def _strings(value: Any) -> str:
    return json.dumps(value, default=str)


def test_two_of_three_survives_reopening(backend: Backend) -> None:
    clock = FakeClock()
    url = backend("votes", clock)
    with open_host(url, clock) as host:
        host.register_script("vote", TWO_OF_THREE)
        host.start("vote", "A-17", workflow_id="v1")
        receipt = host.send_event("v1", "vote", {"voter": "ann"})
        assert receipt.delivered
        wait = host.get("v1").waits[0]
        assert (wait.count, wait.received) == (2, [{"voter": "ann"}])
        assert wait.description == "waiting for 1 more 'vote' event (have: ann), 1 of 2 received"
        assert wait.location == {"line": 3, "column": wait.location["column"]}
    with open_host(url, clock) as host:  # progress survives a restart
        again = host.send_event("v1", "vote", {"voter": "ann"})
        assert again.buffered  # a repeated voter is not counted: it stays in the inbox
        assert [e.name for e in host.pending_events("v1")] == ["vote"]
        host.send_event("v1", "vote", {"voter": "bob"})
        inst = host.get("v1")
        assert inst.status == "completed"
        assert inst.value == {"order": "A-17", "approvers": ["ann", "bob"]}
        kinds = [h.kind for h in host.history("v1") if h.source == "journal"]
        assert kinds == ["event", "event"]


def test_matched_events_reach_their_wait_and_unmatched_stay_buffered(backend: Backend) -> None:
    clock = FakeClock()
    with open_host(backend("match", clock), clock) as host:
        host.register_script("per-order", PER_ORDER)
        host.start("per-order", workflow_id="m1")
        assert host.send_event("m1", "approval", {"order": "A-99", "by": "x"}).buffered
        assert host.send_event("m1", "approval", {"order": "A-18", "by": "bo"}).delivered
        assert [w.wait_id for w in host.get("m1").waits] == [0]
        assert host.send_event("m1", "approval", {"order": "A-17", "by": "al"}).delivered
        inst = host.get("m1")
        assert inst.status == "completed" and inst.value == ["al", "bo"]
        assert [e.name for e in host.pending_events("m1")] == ["approval"]  # A-99 never matched


def test_buffered_event_meets_its_matching_wait_later(backend: Backend) -> None:
    clock = FakeClock()
    script = """async function main() {
      await sleep('1h');
      return await waitForEvent('approval', { match: { order: 'A-17' } });
    }"""
    with open_host(backend("later", clock), clock) as host:
        host.register_script("later", script)
        host.start("later", workflow_id="l1")
        host.send_event("l1", "approval", {"order": "A-16"})
        host.send_event("l1", "approval", {"order": "A-17", "ok": True})
        clock.advance(hours=2)
        host.run_due()
        inst = host.get("l1")
        assert inst.status == "completed" and inst.value == {"order": "A-17", "ok": True}


def test_timeout_default_on_the_host(backend: Backend) -> None:
    clock = FakeClock()
    script = """async function main() {
      const v = await waitForEvent('ok', { timeout: '1h', default: 'expired' });
      const votes = await waitForEvents('vote', { count: 3, timeout: '1h', default: [] });
      return [v, votes];
    }"""
    with open_host(backend("default", clock), clock) as host:
        host.register_script("d", script)
        host.start("d", workflow_id="d1")
        clock.advance(hours=2)
        host.run_due()
        clock.advance(hours=2)
        host.run_due()
        inst = host.get("d1")
        assert inst.status == "completed" and inst.value == ["expired", []]


def test_event_violating_schema_is_refused_before_storing(backend: Backend) -> None:
    clock = FakeClock()
    script = """async function main() {
      return await waitForEvent('order', { schema: {
        type: 'object', required: ['items'],
        properties: { items: { type: 'array', items: { type: 'object',
          properties: { qty: { type: 'integer' } }, required: ['qty'] } } } } });
    }"""
    with open_host(backend("schema", clock), clock) as host:
        host.register_script("s", script)
        host.start("s", workflow_id="s1")
        with pytest.raises(PayloadSchemaError) as info:
            host.send_event("s1", "order", {"items": [{"qty": 1}, {"qty": "x"}]})
        assert info.value.path == "/items/1/qty"
        assert host.pending_events("s1") == []
        assert not [h for h in host.history("s1") if h.kind == "event_received"]
        host.send_event("s1", "order", {"items": [{"qty": 3}]})
        assert host.get("s1").value == {"items": [{"qty": 3}]}


def test_buffered_event_violating_schema_is_rejected_and_later_ones_arrive(backend: Backend) -> None:
    clock = FakeClock()
    script = """async function main() {
      await sleep('1h');
      return await waitForEvent('n', { schema: { type: 'integer' } });
    }"""
    with open_host(backend("reject", clock), clock) as host:
        host.register_script("r", script)
        host.start("r", workflow_id="r1")
        host.send_event("r1", "n", "not a number")  # buffered: no wait yet, so not checked
        host.send_event("r1", "n", 7)
        clock.advance(hours=2)
        host.run_due()
        inst = host.get("r1")
        assert inst.status == "completed" and inst.value == 7
        rejected = [h for h in host.history("r1") if h.kind == "event_rejected"]
        assert len(rejected) == 1 and rejected[0].detail["path"] == ""
        assert host.pending_events("r1") == []


def test_token_resume_violating_schema_leaves_the_token_unspent(backend: Backend) -> None:
    clock = FakeClock()
    seen: dict[str, Any] = {}
    with open_host(backend("tok", clock), clock) as host:
        host.register_suspend_function(
            "getApproval",
            before_suspend=lambda token, expires, args: seen.update(token=token),
            schema={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
        )
        host.register_script("t", "async function main() { return await getApproval('manager', 'A-17'); }")
        host.start("t", workflow_id="t1")
        wait = host.get("t1").waits[0]
        assert wait.description == "waiting for getApproval('manager', 'A-17')"
        with pytest.raises(PayloadSchemaError) as info:
            host.resume_with_token(seen["token"], {"ok": "yes"})
        assert info.value.path == "/ok"
        with pytest.raises(PayloadSchemaError):
            host.resume("t1", {})
        assert host.get("t1").status == "suspended"
        assert host.resume_with_token(seen["token"], {"ok": True}).value == {"ok": True}


def test_create_hook_default_schema_and_no_internal_names(backend: Backend) -> None:
    clock = FakeClock()
    script = """async function main() {
      const hook = await createHook({ timeout: '1h', default: 'nobody', schema: { type: 'string' } });
      return await hook.wait();
    }"""
    with open_host(backend("hook", clock), clock, max_suspension=timedelta(days=2)) as host:
        host.register_script("h", script)
        inst = host.start("h", workflow_id="h1")
        token = inst.tokens[0].token
        wait = host.get("h1").waits[0]
        assert wait.description == "waiting for an HTTP call to its hook"
        assert wait.location is not None and wait.location["line"] == 3
        with pytest.raises(PayloadSchemaError):
            host.resume_with_token(token, 42)
        text = _strings([host.get("h1"), host.history("h1"), inst.tokens])
        assert "__j" not in text
        clock.advance(hours=2)
        host.run_due()
        done = host.get("h1")
        assert done.status == "completed" and done.value == "nobody"
        assert "__j" not in _strings(host.history("h1"))

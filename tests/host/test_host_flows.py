"""WorkflowHost end to end: durable flows across host restarts, tokens,
createHook, the event inbox, timers, retries and lifecycle operations."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _host_helpers import FakeClock, open_host
from conftest import Backend

from jsflow import RetryableStepError, current_step
from jsflow.host import WorkflowHost
from jsflow.host.store import Store

APPROVAL = """
async function main(order) {
  const quote = await price(order.amount);
  await sleep('1h');
  const decision = await approve(order.id, quote);
  if (!decision.ok) return {status: 'rejected', quote};
  const shipped = await waitForEvent('shipped', {timeout: '7d'});
  await notify(order.id, shipped.carrier);
  return {status: 'done', quote, by: decision.by, carrier: shipped.carrier};
}
"""


def approval_host(url: Store | str, clock: FakeClock, outbox: dict[str, Any]) -> WorkflowHost:
    host = open_host(url, clock)
    host.register_step_function("price", lambda amount: amount * 2)
    host.register_step_function("notify", lambda oid, carrier: outbox.setdefault("notified", []).append(oid))
    host.register_suspend_function(
        "approve",
        before_suspend=lambda token, expires_at, args: outbox.update(
            token=token, expires=expires_at, args=args
        ),
        before_resume=lambda data, args: {"ok": data["answer"] == "yes", "by": data["by"]},
        expires_in=timedelta(days=3),
    )
    return host


def test_approval_survives_reopening_between_every_step(backend: Backend) -> None:
    clock, outbox = FakeClock(), {}
    url = backend("flow", clock)
    with approval_host(url, clock, outbox) as host:
        host.register_script("approval", APPROVAL)
        inst = host.start("approval", {"id": "o-1", "amount": 21}, workflow_id="o-1")
        assert inst.status == "suspended" and inst.waits[0].kind == "sleep"
    clock.advance(hours=2)
    with approval_host(url, clock, outbox) as host:
        assert host.run_due() == 1
        inst = host.get("o-1")
        assert inst.waits[0].kind == "token" and inst.waits[0].has_token
        assert outbox["args"] == ["o-1", 42]
        assert inst.waits[0].token_expires_at == clock.now + timedelta(days=3)
    with approval_host(url, clock, outbox) as host:
        inst = host.resume_with_token(outbox["token"], {"answer": "yes", "by": "ann"})
        assert inst.waits[0].event_names == ("shipped",)
    with approval_host(url, clock, outbox) as host:
        receipt = host.send_event("o-1", "shipped", {"carrier": "ups"})
        assert receipt.delivered
    with approval_host(url, clock, outbox) as host:
        inst = host.get("o-1")
        assert inst.status == "completed"
        assert inst.value == {"status": "done", "quote": 42, "by": "ann", "carrier": "ups"}
        assert outbox["notified"] == ["o-1"]
        kinds = [(h.source, h.kind) for h in host.history("o-1")]
        assert kinds[0] == ("lifecycle", "started") and kinds[-1] == ("lifecycle", "completed")
        assert ("journal", "event") in kinds and ("lifecycle", "timer_fired") in kinds


HOOK_SCRIPT = """
async function main() {
  const hook = await createHook({timeout: '1h'});
  await publish(hook.url, hook.token, hook.expiresAt);
  try {
    const data = await hook.wait();
    return {got: data, token: hook.token};
  } catch (e) {
    return {timedOut: e.name, token: hook.token};
  }
}
"""


def hook_host(url: Store | str, clock: FakeClock, published: list[Any]) -> WorkflowHost:
    host = open_host(url, clock)
    host.register_step_function("publish", lambda *a: published.append(a))
    host.register_script("hooked", HOOK_SCRIPT)
    return host


def test_create_hook_token_used_once_and_never_stored(backend: Backend, tmp_path: Path) -> None:
    clock, published = FakeClock(), []
    with hook_host(backend("hook", clock), clock, published) as host:
        inst = host.start("hooked", workflow_id="h1")
        url, token, _expires = published[0]
        assert url.endswith("/" + token) and len(token) >= 43
        assert inst.waits[0].kind == "hook" and inst.waits[0].has_token
    if backend.kind == "sqlite":  # type: ignore[attr-defined]
        raw = b"".join(
            p.read_bytes()
            for p in tmp_path.iterdir()
            if p.name.startswith("hook.db") and "secret" not in p.name
        )
        assert token.encode() not in raw  # only the hash and the hook id are stored
    with hook_host(backend("hook", clock), clock, published) as host:
        done = host.resume_with_token(token, {"ok": 1})
        assert done.value == {"got": {"ok": 1}, "token": token}  # same token derived on replay
        with pytest.raises(Exception) as err:
            host.resume_with_token(token, {"ok": 2})
        assert type(err.value).__name__ in ("TokenUsedError", "WorkflowFinishedError")


def test_create_hook_expiry_is_a_catchable_timeout(backend: Backend) -> None:
    from jsflow.host import TokenExpiredError

    clock, published = FakeClock(), []
    with hook_host(backend("h", clock), clock, published) as host:
        host.start("hooked", workflow_id="h2")
        clock.advance(hours=2)
        with pytest.raises(TokenExpiredError):
            host.resume_with_token(published[0][1], "late")
        assert host.run_due() == 1
        inst = host.get("h2")
        assert inst.value == {"timedOut": "TimeoutError", "token": published[0][1]}


def test_token_timeout_runs_before_timeout_resume(backend: Backend) -> None:
    clock, tokens = FakeClock(), []
    with open_host(backend("t", clock), clock, max_suspension=timedelta(days=1)) as host:
        host.register_suspend_function(
            "ask",
            before_suspend=lambda t, e, a: tokens.append((t, e)),
            before_timeout_resume=lambda args: {"default": args[0]},
            expires_in=timedelta(days=90),  # capped by max_suspension
        )
        host.register_script("s", "async function main() { return await ask('q'); }")
        host.start("s", workflow_id="t1")
        assert tokens[0][1] == clock.now + timedelta(days=1)
        clock.advance(days=2)
        assert host.run_due() == 1
        assert host.get("t1").value == {"default": "q"}


def test_events_sent_before_the_wait_are_delivered_fifo_per_name(backend: Backend) -> None:
    script = """
    async function main() {
      await sleep('1m');
      const out = [];
      for (let i = 0; i < 3; i++) out.push(await waitForEvent('item'));
      out.push(await waitForEvent(['other', 'item']));
      return out;
    }"""
    clock = FakeClock()
    with open_host(backend("e", clock), clock) as host:
        host.register_script("s", script)
        host.start("s", workflow_id="e1")
        receipts = [host.send_event("e1", "item", n) for n in range(3)]
        assert not any(r.delivered for r in receipts)
        host.send_event("e1", "other", "o")
        clock.advance(minutes=5)
        assert host.run_due() == 1
        assert host.get("e1").value == [0, 1, 2, {"name": "other", "payload": "o"}]


def test_wait_for_event_timeout_and_durable_retry(backend: Backend) -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(current_step().attempt)
        if len(calls) == 1:
            raise RetryableStepError("not yet", timedelta(minutes=1))
        return current_step().idempotency_key

    script = """
    async function main() {
      const key = await flaky();
      try { await waitForEvent('never', {timeout: '10m'}); } catch (e) { return [key, e.name]; }
    }"""
    clock = FakeClock()
    with open_host(backend("r", clock), clock) as host:
        host.register_step_function("flaky", flaky)
        host.register_script("s", script)
        inst = host.start("s", workflow_id="r1")
        assert inst.waits[0].kind == "retry"
        clock.advance(minutes=2)
        assert host.run_due() == 1
        assert host.get("r1").waits[0].kind == "event"
        clock.advance(minutes=11)
        assert host.run_due() == 1
        assert host.get("r1").value == ["r1:0", "TimeoutError"]
        assert len(calls) == 2


def test_start_is_idempotent_on_workflow_id(backend: Backend) -> None:
    calls: list[int] = []
    with open_host(backend("m")) as host:
        host.register_step_function("once", lambda: calls.append(1) or len(calls))
        host.register_script("s", "async function main() { await once(); await sleep('1d'); }")
        first = host.start("s", workflow_id="same")
        second = host.start("s", workflow_id="same")
        assert first.workflow_id == second.workflow_id == "same" and calls == [1]
        assert second.metadata["workflow_id"] == "same"
        assert len(host.list()) == 1


def test_cancel_and_finished_instances(backend: Backend) -> None:
    from jsflow.host import WorkflowFinishedError

    with open_host(backend("m")) as host:
        host.register_script("s", "async function main() { await waitForEvent('x'); }")
        host.start("s", workflow_id="c1")
        inst = host.cancel("c1", "customer asked")
        assert inst.status == "cancelled" and inst.cancel_reason == "customer asked" and inst.waits == ()
        with pytest.raises(WorkflowFinishedError):
            host.send_event("c1", "x")
        with pytest.raises(WorkflowFinishedError):
            host.cancel("c1")
        assert host.history("c1")[-1].kind == "cancelled"


def test_retry_a_faulted_instance_from_its_last_good_state(backend: Backend) -> None:
    from jsflow.host import WorkflowNotFaultedError

    runs: dict[str, int] = {"a": 0, "b": 0}
    broken = {"on": True}

    def a() -> int:
        runs["a"] += 1
        return 1

    def b() -> int:
        runs["b"] += 1
        if broken["on"]:
            raise RuntimeError("downstream is down")
        return 2

    with open_host(backend("m")) as host:
        host.register_step_function("a", a).register_step_function("b", b)
        host.register_script("s", "async function main() { return (await a()) + (await b()); }")
        inst = host.start("s", workflow_id="f1")
        assert inst.status == "faulted" and "downstream is down" in inst.error["message"]
        broken["on"] = False
        inst = host.retry("f1")
        assert inst.status == "completed" and inst.value == 3
        assert runs == {"a": 1, "b": 2}
        with pytest.raises(WorkflowNotFaultedError):
            host.retry("f1")


def test_list_filters_and_history(backend: Backend) -> None:
    clock = FakeClock()
    with open_host(backend("m", clock), clock) as host:
        host.register_script("one", "async function main() { await sleep('1d'); }")
        host.register_script("two", "function main() { return 2; }")
        host.start("one", workflow_id="a")
        t1 = clock.advance(minutes=1)
        host.start("two", workflow_id="b")
        clock.advance(minutes=1)
        host.start("one", workflow_id="c")
        ids = lambda xs: [x.workflow_id for x in xs]  # noqa: E731
        assert ids(host.list()) == ["a", "b", "c"]
        assert ids(host.list(status="suspended")) == ["a", "c"]
        assert ids(host.list(status="completed")) == ["b"]
        assert ids(host.list(script="one")) == ["a", "c"]
        assert ids(host.list(created_after=t1)) == ["b", "c"]
        assert ids(host.list(created_before=t1)) == ["a"]
        assert ids(host.list(limit=1, offset=1)) == ["b"]
        assert [h.kind for h in host.history("b")] == ["started", "completed"]


def test_upgrade_is_checked_by_replay(backend: Backend) -> None:
    from jsflow.host import UpgradeError

    v1 = "async function main() { await step1(); await sleep('1h'); return 'v1'; }"
    v2 = "async function main() { await step1(); await sleep('1h'); return 'v2'; }"
    bad = "async function main() { await other(); await sleep('1h'); return 'bad'; }"
    clock = FakeClock()
    with open_host(backend("m", clock), clock) as host:
        host.register_step_function("step1", lambda: 1).register_step_function("other", lambda: 2)
        host.register_script("s", v1)
        host.start("s", workflow_id="u1")
        reports = host.replay_check(bad, script_name="s")
        assert len(reports) == 1 and not reports[0].ok and reports[0].slot_index == 0
        assert reports[0].expected_name == "step1" and reports[0].encountered_name == "other"
        assert host.replay_check(v2, ["u1"])[0].ok
        bad_version = host.register_script("s", bad)
        with pytest.raises(UpgradeError) as err:
            host.upgrade("u1", bad_version.hash)
        assert err.value.report.slot_index == 0
        good = host.register_script("s", v2)
        assert host.upgrade("u1", good.hash).script_hash == good.hash
        clock.advance(hours=2)
        host.run_due()
        assert host.get("u1").value == "v2"


def test_async_api(backend: Backend) -> None:
    async def scenario() -> Any:
        with open_host(backend("m")) as host:
            host.register_script("s", "async function main() { return await waitForEvent('go'); }")
            await host.astart("s", workflow_id="a1")
            receipt = await host.asend_event("a1", "go", {"n": 1})
            return receipt.delivered, (await host.aget("a1")).value

    assert asyncio.run(scenario()) == (True, {"n": 1})


def test_continue_as_new_keeps_the_workflow_id(backend: Backend) -> None:
    script = """
    async function main(n) {
      await tick(n);
      if (n < 3) return continueAsNew(n + 1);
      return n;
    }"""
    seen: list[int] = []
    with open_host(backend("m")) as host:
        host.register_step_function("tick", seen.append)
        host.register_script("s", script)
        inst = host.start("s", 1, workflow_id="can")
        assert inst.status == "completed" and inst.value == 3 and seen == [1, 2, 3]

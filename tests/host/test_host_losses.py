"""Issue 17: each loss found by trying the host, closed, on every backend.

A timer deleted (retry without requirements), an idempotent repeat refused
after the workflow finished, a token nobody hears of, a call busy forever
(continueAsNew), a registration leaking to another host, a registration
replacing a built-in, a stale warm run serving a re-created instance.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from _host_helpers import FakeClock, open_host
from conftest import Backend

from jsflow import Limits, WorkflowEngine
from jsflow.host import (
    WAITING_ON,
    TokenInfo,
    TokenNotFoundError,
    WaitKind,
    WorkflowHost,
)
from jsflow.host.store import PendingWait

APPROVE_LATER = """
async function main() {
  const t = sleep('1h');
  const a = await getApproval();
  await t;
  return a;
}
"""


def test_retry_records_requirements_so_a_worker_without_them_leaves_the_timer(backend: Backend) -> None:
    clock = FakeClock()
    url = backend("req", clock)
    with open_host(url, clock) as plain:
        plain.register_script("appr", APPROVE_LATER)
        assert plain.start("appr", workflow_id="a1").status == "faulted"  # getApproval is unknown here
    with open_host(url, clock) as able:
        able.register_suspend_function("getApproval")
        inst = able.retry("a1")
        assert inst.status == "suspended"
        assert sorted(w.kind for w in inst.waits) == ["sleep", "token"]
    clock.advance(hours=2)
    with open_host(url, clock) as plain:
        assert plain.run_due() == 0  # it cannot run the instance: it claims nothing
        inst = plain.get("a1")
        assert inst.status == "suspended" and any(w.kind == "sleep" for w in inst.waits)
    with open_host(url, clock) as able:
        able.register_suspend_function("getApproval")
        assert able.run_due() == 1
        inst = able.get("a1")
        assert inst.status == "suspended" and [w.kind for w in inst.waits] == ["token"]


def test_a_due_timer_the_script_no_longer_has_faults_the_instance_with_the_reason(backend: Backend) -> None:
    clock = FakeClock()
    with open_host(backend("stuck", clock), clock) as host:
        host.register_script("s", "async function main() { await waitForEvent('go'); }")
        host.start("s", workflow_id="s1")
        ghost = PendingWait(wait_id=7, function_name="sleep", kind="sleep", resume_at=clock.now)
        with host.store.transaction() as tx:
            tx.replace_waits("s1", [*tx.list_waits("s1"), ghost])
        clock.advance(minutes=1)
        assert host.run_due() == 0
        inst = host.get("s1")
        assert inst.status == "faulted" and "wait 7" in inst.error["message"]
        faulted = [h for h in host.history("s1") if h.kind == "faulted"]
        assert faulted and faulted[-1].detail["stage"] == "timer"


def test_an_idempotent_repeat_returns_the_first_receipt_after_the_workflow_finished(
    backend: Backend,
) -> None:
    with open_host(backend("idem", FakeClock())) as host:
        host.register_script("e", "async function main() { return await waitForEvent('go'); }")
        host.start("e", workflow_id="e1")
        first = host.send_event("e1", "go", 1, idempotency_key="k")
        assert first.delivered and host.get("e1").status == "completed"
        again = host.send_event("e1", "go", 1, idempotency_key="k")
        assert again.duplicate and again.event_id == first.event_id and again.delivered
        assert again.wait_id == first.wait_id
        stored = host.store_event("e1", "go", 1, idempotency_key="k")
        assert stored.duplicate and stored.event_id == first.event_id


def test_a_worker_fired_advance_hands_its_token_to_the_listeners(backend: Backend) -> None:
    clock = FakeClock()
    heard: list[TokenInfo] = []
    with open_host(backend("listen", clock), clock) as host:
        host.register_suspend_function("approve")
        host.add_token_listener(heard.append)
        host.register_script("a", "async function main() { await sleep('1h'); return await approve(); }")
        host.start("a", workflow_id="l1")
        clock.advance(hours=2)
        assert host.run_due() == 1
        assert [(t.workflow_id, t.kind, t.function_name) for t in heard] == [("l1", "token", "approve")]
        assert host.resume_with_token(heard[0].token, "yes").value == "yes"


def test_a_reissued_token_replaces_the_old_one(backend: Backend) -> None:
    heard: list[TokenInfo] = []
    with open_host(backend("reissue", FakeClock())) as host:
        host.register_suspend_function("approve", expires_in=timedelta(days=2))
        host.add_token_listener(heard.append)
        host.register_script("a", "async function main() { return await approve(); }")
        inst = host.start("a", workflow_id="r1")
        old, wait_id = inst.tokens[0].token, inst.waits[0].wait_id
        new = host.reissue_token("r1", wait_id)
        assert new.token != old and new.expires_at == inst.tokens[0].expires_at
        assert heard[-1].token == new.token and new.url is not None and new.url.endswith(new.token)
        assert any(h.kind == "token_reissued" for h in host.history("r1"))
        with pytest.raises(TokenNotFoundError):
            host.resume_with_token(old, "no")
        assert host.resume_with_token(new.token, "yes").value == "yes"


def test_continue_as_new_forever_returns_within_the_budget_and_workers_carry_it() -> None:
    engine = WorkflowEngine(limits=Limits(time=1.0))
    with WorkflowHost("memory://", engine, hook_secret="s") as host:
        host.register_script("loop", "async function main(n) { continueAsNew((n || 0) + 1); }")
        began = time.monotonic()
        inst = host.start("loop", 0, workflow_id="f1")
        assert time.monotonic() - began < 10
        assert inst.status == "suspended" and [w.kind for w in inst.waits] == ["continue"]
        assert inst.waits[0].resume_at is not None
        generations = host.history("f1")
        host.run_due()  # a worker carries the chain on, again within the budget
        assert host.get("f1").status == "suspended"
        assert len(host.history("f1")) > len(generations)


def test_a_token_function_belongs_to_its_host_only(backend: Backend) -> None:
    engine = WorkflowEngine()
    script = "async function main() { return await approve(); }"
    with open_host(backend("a", FakeClock()), engine=engine) as a, open_host("memory://", engine=engine) as b:
        a.register_suspend_function("approve")
        assert engine.suspend_names == [] and "approve" not in b.capabilities()
        a.register_script("s", script)
        assert a.start("s", workflow_id="x").waits[0].kind == "token"
        b.register_script("s", script)
        assert b.start("s", workflow_id="x").status == "faulted"  # approve is not defined on b


@pytest.mark.parametrize("name", ["sleep", "waitForEvent", "createHook", "cancelWait", "step", "fetch"])
def test_built_in_names_cannot_be_registered_on_a_host(name: str) -> None:
    with WorkflowHost("memory://", hook_secret="s") as host:
        with pytest.raises(ValueError, match=name):
            host.register_suspend_function(name)
        with pytest.raises(ValueError, match=name):
            host.register_step_function(name, lambda: 1)


def test_a_purged_and_recreated_instance_never_meets_the_old_warm_run(backend: Backend) -> None:
    url = backend("inc", FakeClock())
    script = "async function main(x) { await waitForEvent('go'); return x; }"
    with open_host(url) as a, open_host(url) as b:
        a.register_script("s", script)
        a.start("s", "old", workflow_id="w")  # a keeps the run warm
        a.cancel("w", cleanup=False)
        assert a.purge(["w"]) == ["w"]
        b.start("s", "new", workflow_id="w")
        b.cancel("w", cleanup=False)
        b.purge(["w"])
        a.start("s", "newest", workflow_id="w")  # same id, same version numbers as before
        assert a.send_event("w", "go").delivered
        assert a.get("w").value == "newest"


def test_waiting_on_takes_the_categories_and_every_kind(backend: Backend) -> None:
    clock = FakeClock()
    with open_host(backend("kinds", clock), clock) as host:
        host.register_script("sl", "async function main() { await sleep('1h'); }")
        host.register_script("hk", "async function main() { const h = await createHook(); await h.wait(); }")
        host.start("sl", workflow_id="sl")
        host.start("hk", workflow_id="hk")
        assert set(WAITING_ON) >= {"timer", "event", "token", "suspend", "sleep", "retry", "hook"}
        assert WaitKind.SLEEP == "sleep"

        def ids(waiting_on: str | list[str]) -> list[str]:
            return sorted(i.workflow_id for i in host.list_page(waiting_on=waiting_on).items)

        assert ids("timer") == ids("sleep") == ["sl"]
        assert ids("token") == ids("hook") == ["hk"]
        assert ids(["sleep", "hook"]) == ["hk", "sl"]
        with pytest.raises(ValueError, match="sleep"):
            ids("nap")


def test_a_warm_delivery_reads_no_journal_and_a_cold_one_reads_it_once(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = """
async function main(n) {
  for (let i = 0; i < n; i++) await tick(i);
  for (;;) await waitForEvent('go');
}
"""
    with open_host(backend("warmread", FakeClock())) as host:
        host.register_step_function("tick", lambda i: i)
        host.register_script("loop", script)
        host.start("loop", 50, workflow_id="w")
        with host.store.transaction(write=False) as tx:
            session_type = type(tx)
        reads: list[int] = []
        original = session_type.read_journal

        def counting(self: object, workflow_id: str, start: int = 0) -> list[str]:
            reads.append(start)
            return original(self, workflow_id, start)  # type: ignore[arg-type]

        monkeypatch.setattr(session_type, "read_journal", counting)
        for n in range(5):
            assert host.send_event("w", "go", n).delivered
        assert reads == []  # warm: only the row, the waits and the inbox were read
        host.warm.clear()
        assert host.send_event("w", "go", 9).delivered
        assert len(reads) == 1  # cold: the journal once

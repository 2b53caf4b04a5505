"""The instance driver: nothing wedges, nothing is lost, a process that cannot
run an instance leaves it alone. Each test runs on every store backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _host_helpers import FakeClock, open_host

from jsflow import InvalidPayloadError, WorkflowEngine
from jsflow.host import (
    AdvanceFailedError,
    InvalidWorkflowIdError,
    MissingRegistrationError,
    WaitSelectionError,
    WorkflowHost,
)
from jsflow.host.store import MemoryStore, StoreError
from jsflow.testing import each


@pytest.fixture
def store_url(backend: Any) -> Any:
    """``store_url(clock=None)``: the store (a URL, or a store object) every host of a
    test shares, on each backend; the clock stamps a memory store's records."""
    return lambda clock=None: backend("driver", clock)


def test_five_thousand_continue_as_new_complete(store_url: str) -> None:
    """A long finite chain completes: in one call when the time budget allows it,
    else parked between calls and carried on by workers (issue 17)."""
    with open_host(store_url()) as host:
        host.register_script(
            "loop", "async function main(n) { if (n >= 5000) return n; continueAsNew(n + 1); }"
        )
        inst = host.start("loop", 0)
        for _ in range(100):
            if inst.status != "suspended":
                break
            assert [w.kind for w in inst.waits] == ["continue"]
            host.run_due()
            inst = host.get(inst.workflow_id)
        assert inst.status == "completed" and inst.value == 5000
        kinds = [h.kind for h in host.history(inst.workflow_id) if h.source == "lifecycle"]
        assert kinds.count("continued_as_new") == 5000
        assert host.journal(inst.workflow_id) == []


def test_a_value_the_store_cannot_encode_faults_instead_of_wedging(store_url: str) -> None:
    with open_host(store_url()) as host:
        host.register_step_function("weird", lambda: "\ud800")  # a lone surrogate
        host.register_script("s", "async function main() { await sleep('1h'); return await weird(); }")
        inst = host.start("s", workflow_id="w")
        sleep_id = inst.waits[0].wait_id
        try:
            after = host.resume("w", None, wait_id=sleep_id)
        except AdvanceFailedError as exc:
            assert exc.workflow_id == "w"
            after = host.get("w")
        assert after.status in ("faulted", "completed")
        assert host.get("w").status != "running"


class FlakyStore(MemoryStore):
    """A memory store whose journal writes, or final saves, fail on demand (a full disk, say)."""

    fail_journal = False
    fail_final_save = False

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Any]:
        with super().transaction(write=write) as tx:
            yield _Flaky(tx, self)


class _Flaky:
    def __init__(self, inner: Any, store: FlakyStore) -> None:
        self._inner, self._store = inner, store

    def append_journal(self, *args: Any) -> None:
        if self._store.fail_journal:
            raise StoreError("disk I/O error")
        self._inner.append_journal(*args)

    def append_journal_checked(self, *args: Any) -> None:
        if self._store.fail_journal:
            raise StoreError("disk I/O error")
        self._inner.append_journal_checked(*args)

    def save_workflow(self, record: Any, expected_version: int | None = None) -> Any:
        if self._store.fail_final_save and record.status != "running":
            raise StoreError("disk I/O error")
        return self._inner.save_workflow(record, expected_version)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_store_error_mid_advance_faults_the_instance() -> None:
    store = FlakyStore()
    with WorkflowHost(store, hook_secret="s") as host:
        host.register_step_function("charge", lambda: "paid")
        host.register_script("s", "async function main() { await sleep('1h'); return await charge(); }")
        inst = host.start("s", workflow_id="w")
        store.fail_journal = True
        with pytest.raises((AdvanceFailedError, StoreError)):
            host.resume("w", None, wait_id=inst.waits[0].wait_id)
        after = host.get("w")
        assert after.status in ("suspended", "faulted")  # rolled back, or faulted: never running
        if after.status == "faulted":
            store.fail_journal = False
            assert host.retry("w").status in ("suspended", "completed")


def test_a_failing_final_save_still_ends_faulted() -> None:
    store = FlakyStore()
    with WorkflowHost(store, hook_secret="s") as host:
        host.register_step_function("charge", lambda: "paid")
        host.register_script("s", "async function main() { await sleep('1h'); return await charge(); }")
        inst = host.start("s", workflow_id="w")
        store.fail_final_save = True
        with pytest.raises(AdvanceFailedError):
            host.resume("w", None, wait_id=inst.waits[0].wait_id)
        store.fail_final_save = False
        after = host.get("w")
        assert after.status == "faulted" and after.error is not None
        assert after.error["type"] == "AdvanceFailedError" and "disk I/O error" in after.error["message"]
        assert host.retry("w").value == "paid"


class Crash(BaseException):
    """Stands in for the process dying mid-step (escapes every handler)."""


def test_wedged_instances_do_not_starve_recovery(store_url: str) -> None:
    clock = FakeClock()
    crashing = {"on": True}

    def charge() -> str:
        if crashing["on"]:
            raise Crash()
        return "paid"

    def later_at() -> None:
        raise ZeroDivisionError("a resume_at callable that always fails")

    with open_host(store_url(clock), clock, lease=timedelta(minutes=1)) as host:
        host.register_step_function("charge", charge)
        host.register_suspend_function("later", resume_at=later_at)
        host.register_script("wedge", "async function main() { await charge(); await later(); }")
        host.register_script("ok", "async function main() { return await charge(); }")
        for n in range(150):  # left "running" by a dead process; their recovery always fails
            with pytest.raises(Crash):
                host.start("wedge", workflow_id=f"wedged-{n:03}")
        clock.advance(seconds=1)
        with pytest.raises(Crash):
            host.start("ok", workflow_id="normal")  # SIGKILLed mid-step
        crashing["on"] = False
        clock.advance(minutes=2)
        passes = 0
        while host.get("normal").status == "running" and passes < 5:
            host.run_due(limit=100)
            passes += 1
        assert host.get("normal").status == "completed" and host.get("normal").value == "paid"
        assert passes <= 2
        wedged = [host.get(f"wedged-{n:03}") for n in range(150)]
        assert {w.status for w in wedged} == {"faulted"}
        assert wedged[0].error is not None and wedged[0].error["type"] == "AdvanceFailedError"
        assert "ZeroDivisionError" in wedged[0].error["message"]


def test_recovery_is_bounded(store_url: str) -> None:
    clock = FakeClock()

    def charge() -> str:
        raise Crash()

    with open_host(store_url(clock), clock, lease=timedelta(minutes=1)) as host:
        host.register_step_function("charge", charge)
        host.register_script("s", "async function main() { return await charge(); }")
        with pytest.raises(Crash):
            host.start("s", workflow_id="doomed")
        for _ in range(10):
            clock.advance(minutes=2)
            with suppress(Crash):
                host.run_due()
        inst = host.get("doomed")
        assert inst.status == "faulted" and inst.error is not None
        assert inst.error["type"] == "RecoveryFailedError" and "5 times" in inst.error["message"]


def test_a_process_without_the_registrations_leaves_instances_alone(store_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    charged: list[str] = []
    app = open_host(store_url(clock), clock)
    app.register_step_function("charge", lambda: charged.append("x") or "paid")
    app.register_script(
        "s",
        "async function main() { await sleep('1h'); const c = await charge(); "
        "const e = await waitForEvent('go'); return [c, e]; }",
    )
    app.start("s", workflow_id="a")
    bare = open_host(store_url(clock), clock)  # a worker started without --app
    before = each(bare.store).get_workflow("a")
    clock.advance(hours=2)
    assert bare.run_due() == 0
    after = each(bare.store).get_workflow("a")
    assert after is not None and before is not None and after.version == before.version
    receipt = bare.send_event("a", "go", 1)
    assert receipt.delivered is False and receipt.buffered
    with pytest.raises(MissingRegistrationError) as err:
        bare.resume("a", None, wait_id=0)
    assert err.value.missing == ["charge"] and "charge" in str(err.value)
    assert bare.get("a").status == "suspended" and charged == []
    assert app.run_due() >= 1  # the process with the app fires the timer and delivers the event
    assert app.get("a").value == ["paid", 1]
    app.close()
    bare.close()


def test_a_worker_pass_delivers_an_event_whose_sender_died(store_url: str) -> None:
    with open_host(store_url()) as host:
        host.register_script("s", "async function main() { return await waitForEvent('paid'); }")
        host.start("s", workflow_id="w")
        each(host.store).enqueue_event("w", "paid", '{"amount": 5}')  # stored, then the sender died
        assert host.get("w").status == "suspended"
        assert host.run_due() == 1
        assert host.get("w").value == {"amount": 5}


def test_a_deeply_nested_event_is_refused_and_nothing_is_stored(store_url: str) -> None:
    with open_host(store_url()) as host:
        host.register_script("s", "async function main() { return await waitForEvent('x'); }")
        host.start("s", workflow_id="w")
        history = len(host.history("w"))
        nested: Any = 1
        for _ in range(200):
            nested = [nested]
        with pytest.raises(InvalidPayloadError) as err:
            host.send_event("w", "x", nested)
        assert "nests more than" in str(err.value)
        assert each(host.store).pending_events("w") == [] and len(host.history("w")) == history
        assert host.send_event("w", "x", [[1]]).delivered
        assert host.get("w").value == [[1]]


def test_idempotency_keys_store_one_event(store_url: str) -> None:
    with open_host(store_url()) as host:
        host.register_script("s", "async function main() { await sleep('1h'); return 1; }")
        host.start("s", workflow_id="w")
        first = host.send_event("w", "paid", 1, idempotency_key="k1")
        again = host.send_event("w", "paid", 1, idempotency_key="k1")
        other = host.send_event("w", "paid", 2, idempotency_key="k2")
        assert again.event_id == first.event_id and again.duplicate and not first.duplicate
        assert [e.payload_json for e in each(host.store).pending_events("w")] == ["1", "2"]
        assert other.event_id != first.event_id


def test_a_bare_resume_picks_the_single_suspend_wait(store_url: str) -> None:
    with open_host(store_url()) as host:
        host.register_suspend_function("getApproval")
        host.register_script(
            "s",
            "async function main() { return await Promise.all([sleep('1h'), getApproval()]); }",
        )
        host.register_script("two", "async function main() { return await Promise.all([ask(1), ask(2)]); }")
        host.register_suspend_function("ask")
        inst = host.start("s", workflow_id="w")
        assert host.resume("w", "yes").waits[0].function_name == "sleep"
        with pytest.raises(WaitSelectionError) as err:
            host.resume("w", "again")
        assert err.value.pending == [{"wait_id": 0, "kind": "sleep", "function_name": "sleep"}]
        assert host.resume("w", None, wait_id=inst.waits[0].wait_id).value == [None, "yes"]
        host.start("two", workflow_id="t")
        with pytest.raises(WaitSelectionError) as err:
            host.resume("t", 1)
        assert [p["wait_id"] for p in err.value.pending] == [0, 1] and "wait id" in str(err.value)


def test_empty_workflow_ids_are_refused(store_url: str) -> None:
    with open_host(store_url()) as host:
        host.register_script("s", "async function main() { return 1; }")
        for bad in ("", "\ud800"):
            with pytest.raises(InvalidWorkflowIdError):
                host.start("s", workflow_id=bad)
        assert host.list() == []


def test_two_hosts_sharing_an_engine_keep_their_own_hooks(tmp_path: Path) -> None:
    engine = WorkflowEngine()
    script = "async function main() { const h = await createHook({timeout: '1h'}); return h.url; }"
    a = WorkflowHost("memory://", engine, hook_secret="a", hook_base_url="http://a.example/hooks")
    b = WorkflowHost("memory://", engine, hook_secret="b", hook_base_url="http://b.example/hooks")
    for host in (a, b):
        host.register_script("s", script)
    url_a = a.start("s", workflow_id="same").value
    url_b = b.start("s", workflow_id="same").value
    assert url_a.startswith("http://a.example/hooks/") and url_b.startswith("http://b.example/hooks/")
    assert url_a.rsplit("/", 1)[1] != url_b.rsplit("/", 1)[1]


def test_hooks_wait_twice_and_calls_return_their_tokens(store_url: str) -> None:
    with open_host(store_url()) as host:
        host.register_script(
            "s",
            "async function main() { const h = await createHook({timeout: '1h'}); "
            "const a = await h.wait(); const b = await h.wait(); return [a, b]; }",
        )
        inst = host.start("s", workflow_id="w")
        assert [t.kind for t in inst.tokens] == ["hook"] and inst.tokens[0].url is not None
        done = host.resume_with_token(inst.tokens[0].token, {"ok": True})
        assert done.status == "completed" and done.value == [{"ok": True}, {"ok": True}]
        host.register_script("bad", "async function main() { await createHook({timout: '1h'}); }")
        failed = host.start("bad")
        assert failed.status == "faulted" and failed.error is not None
        assert 'unknown option "timout"' in failed.error["message"]


def test_hook_tokens_cannot_be_derived_across_workflows() -> None:
    with open_host("memory://") as host:
        # the old derivation hashed "workflow id + newline + hook id": these two collided
        assert host.hooks.derive_token("tenant\norder", "h") != host.hooks.derive_token("tenant", "order\nh")
        host.register_script(
            "forge", "async function main() { return await step('__jhook_create', async () => 'x'); }"
        )
        inst = host.start("forge", workflow_id="tenant")
        assert inst.status == "faulted" and "reserved" in str(inst.error)
        host.register_script(
            "call", "async function main() { return typeof __jhook_create + typeof __jhook_wait; }"
        )
        assert host.start("call").value == "undefinedundefined"


def test_a_hook_waited_again_after_losing_a_race_keeps_its_token(store_url: str) -> None:
    clock = FakeClock()
    with open_host(store_url(clock), clock) as host:
        host.register_script(
            "s",
            "async function main() { const h = await createHook({timeout: '1d'}); "
            "const first = await Promise.race([h.wait(), sleep('1h').then(() => 'tick')]); "
            "return [first, await h.wait()]; }",
        )
        inst = host.start("s", workflow_id="w")
        token = inst.tokens[0].token
        clock.advance(hours=2)
        assert host.run_due() == 1
        waiting = host.get("w")
        assert [w.kind for w in waiting.waits] == ["hook"] and waiting.waits[0].wait_id != inst.waits[
            0
        ].wait_id
        assert host.resume_with_token(token, "late").value == ["tick", "late"]


def test_tokens_never_look_like_command_line_options() -> None:
    from jsflow.host import new_token

    with open_host("memory://") as host:
        assert all(not new_token().startswith("-") for _ in range(2000))
        assert all(not host.hooks.derive_token("w", f"h{n}").startswith("-") for n in range(2000))


def test_token_listeners_see_tokens_issued_by_timer_fires(store_url: Any) -> None:
    clock = FakeClock()
    seen: list[Any] = []
    with open_host(store_url(clock), clock) as host:
        host.register_suspend_function("approve")
        host.add_token_listener(seen.append)
        host.register_script("s", "async function main() { await sleep('1h'); return await approve(); }")
        assert host.start("s", workflow_id="w").tokens == ()
        clock.advance(hours=2)
        assert host.run_due() == 1
        (info,) = seen
        assert info.function_name == "approve" and info.kind == "token"
        assert host.resume_with_token(info.token, "ok").value == "ok"

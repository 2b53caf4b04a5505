"""Store promises from the second red-team round, on every backend: exact sweeps,
idempotency keys bound to their request, one hook secret per store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _host_helpers import FakeClock, open_host

from jsflow import MAX_WORKFLOW_ID_LENGTH
from jsflow.host import EventReceipt, IdempotencyKeyConflictError, InvalidWorkflowIdError, WorkflowHost
from jsflow.host.store import StoreError

WAIT_FOR = """
async function main(name) {
  const got = await waitForEvent(name);
  await mark(got);
  return got;
}
"""
NEVER = "async function main() { await waitForEvent('never'); }"
# names a text match on the JSON list of names never finds
#: the ``backend`` fixture of tests/host/conftest.py
Backend = Callable[..., Any]
AWKWARD_NAMES = ['say "hi"', "back\\slash", "ctl\x01\x1f\x7f", "50%_off", "[x]", "é ünïcode 😀"]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_stranded_sweep_matches_names_exactly(backend: Backend, name: str) -> None:
    """An event stored by a process that cannot run the instance is buffered; the
    sweep of a process that can delivers it, whatever characters its name holds."""
    clock = FakeClock()
    store = backend("db", clock)
    marks: list[Any] = []
    runner = open_host(store, clock)
    runner.register_step_function("mark", marks.append)
    runner.register_script("waiter", WAIT_FOR)
    runner.start("waiter", name, workflow_id="wf")
    sender = open_host(store, clock)  # registers no "mark": it cannot run the instance
    try:
        receipt = sender.send_event("wf", name, {"n": 1})
        assert not receipt.delivered
        assert runner.get("wf").status == "suspended"
        clock.advance(seconds=1)
        runner.run_due()
        assert runner.get("wf").status == "completed"
        assert marks == [{"n": 1}]
    finally:
        sender.close()
        runner.close()


def _waiting(backend: Backend) -> WorkflowHost:
    host = open_host(backend("db"))
    host.register_script("never", NEVER)
    host.start("never", workflow_id="wf")
    return host


def test_idempotency_key_reused_for_another_name_is_a_conflict(backend: Backend) -> None:
    with _waiting(backend) as host:
        first = host.send_event("wf", "paid", {"amount": 5}, idempotency_key="k")
        with pytest.raises(IdempotencyKeyConflictError) as info:
            host.send_event("wf", "refunded", {"amount": 5}, idempotency_key="k")
        assert info.value.idempotency_key == "k" and info.value.event_id == first.event_id
        assert info.value.workflow_id == "wf"
        with pytest.raises(IdempotencyKeyConflictError):
            host.send_event("wf", "paid", {"amount": 6}, idempotency_key="k")
        with pytest.raises(IdempotencyKeyConflictError):
            host.send_event("wf", "paid", {"amount": True}, idempotency_key="k")
        # the refused sends stored nothing: one event received
        received = [h for h in host.history("wf") if h.kind == "event_received"]
        assert len(received) == 1


def test_idempotency_key_repeat_is_the_first_receipt(backend: Backend) -> None:
    with _waiting(backend) as host:
        first = host.send_event("wf", "paid", {"a": 1, "b": [1, 2]}, idempotency_key="k")
        again = host.send_event("wf", "paid", {"b": [1, 2], "a": 1}, idempotency_key="k")
        assert not first.duplicate and again.duplicate
        assert again.event_id == first.event_id


def test_concurrent_sends_with_one_key_get_one_event(backend: Backend) -> None:
    """Several processes (here: hosts on threads) send with one key at once: every
    one gets a receipt for the same event, exactly one of them not a duplicate."""
    store = backend("db")
    _waiting(backend).close()
    hosts = [open_host(store) for _ in range(6)]
    barrier = threading.Barrier(len(hosts))
    receipts: list[EventReceipt] = []
    errors: list[BaseException] = []

    def send(host: WorkflowHost) -> None:
        barrier.wait()
        try:
            receipts.append(host.send_event("wf", "paid", {"amount": 5}, idempotency_key="same"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for h in hosts:
        h.close()
    assert errors == []
    assert len({r.event_id for r in receipts}) == 1
    assert sorted(r.duplicate for r in receipts) == [False] + [True] * (len(hosts) - 1)


HOOK_AND_EVENT = """
async function main() {
  const hook = await createHook({timeout: '1d'});
  const resumed = hook.wait();
  const go = await waitForEvent('go');
  return {go, hook: await resumed};
}
"""


def _hook_token(host: WorkflowHost, workflow_id: str) -> str:
    waits = [w for w in host.get(workflow_id).waits if w.kind == "hook"]
    assert len(waits) == 1
    token = host.hook_token(workflow_id, waits[0])
    assert token is not None
    return token


def test_hook_secret_is_kept_in_the_store(backend: Backend) -> None:
    """No ``hook_secret=``: a createHook URL handed out by one host object still
    resumes after another one advanced the instance and after a restart."""
    store = backend("db")
    first = WorkflowHost(store)
    first.register_script("hooked", HOOK_AND_EVENT)
    first.start("hooked", workflow_id="wf")
    token = _hook_token(first, "wf")
    first.close()
    with WorkflowHost(store) as other:  # another process would see the same store
        assert _hook_token(other, "wf") == token
        other.send_event("wf", "go", 1)  # advances the instance
    with WorkflowHost(store) as restarted:
        done = restarted.resume_with_token(token, {"ok": True})
        assert done.status == "completed"
        assert done.value == {"go": 1, "hook": {"ok": True}}


def test_hook_secret_is_shared_across_processes(backend: Backend, tmp_path: Path) -> None:
    """A second process (no shared memory) derives the same hook token and advances
    the instance; the token issued by the first still resumes it."""
    store = backend("db")
    if not isinstance(store, str):
        pytest.skip("the memory store lives in one process")
    with WorkflowHost(store) as host:
        host.register_script("hooked", HOOK_AND_EVENT)
        host.start("hooked", workflow_id="wf")
        token = _hook_token(host, "wf")
    code = (
        "import sys\n"
        "from jsflow.host import WorkflowHost\n"
        "with WorkflowHost(sys.argv[1]) as h:\n"
        "    waits = [w for w in h.get('wf').waits if w.kind == 'hook']\n"
        "    print(h.hook_token('wf', waits[0]))\n"
        "    h.send_event('wf', 'go', 2)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JSFLOW_HOOK_SECRET"}
    out = subprocess.run(
        [sys.executable, "-c", code, store], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    assert out.stdout.strip() == token
    with WorkflowHost(store) as host:
        assert host.resume_with_token(token, "yes").value == {"go": 2, "hook": "yes"}


def test_hook_secret_argument_still_overrides(backend: Backend) -> None:
    store = backend("db")
    with WorkflowHost(store, hook_secret="mine") as host:
        host.register_script("hooked", HOOK_AND_EVENT)
        host.start("hooked", workflow_id="wf")
        token = _hook_token(host, "wf")
    with WorkflowHost(store) as other:  # the store's own secret: another token
        assert _hook_token(other, "wf") != token
    with WorkflowHost(store, hook_secret="mine") as again:
        assert _hook_token(again, "wf") == token


# -- one input rule for every store ------------------------------------------------------


def test_nul_is_refused_the_same_on_every_store(backend: Backend) -> None:
    """NUL (which PostgreSQL cannot hold) is a ValueError before any store sees it."""
    with open_host(backend("db")) as host:
        host.register_script("never", NEVER)
        host.start("never", workflow_id="wf")
        refusals: list[Callable[[], Any]] = [
            lambda: host.start("never", workflow_id="a\x00b"),
            lambda: host.get("a\x00b"),
            lambda: host.send_event("a\x00b", "e", 1),
            lambda: host.send_event("wf", "e\x00", 1),
            lambda: host.send_event("wf", "e", 1, idempotency_key="k\x00"),
            lambda: host.register_script("bad\x00name", NEVER),
            lambda: host.register_script("bad", NEVER + "// \x00"),
            lambda: host.cancel("wf", reason="why\x00"),
            lambda: host.list_page(search="w\x00"),
        ]
        for refuse in refusals:
            with pytest.raises(ValueError, match="NUL") as info:
                refuse()
            assert not isinstance(info.value, StoreError)
        assert host.get("wf").status == "suspended"  # nothing changed
        assert [i.workflow_id for i in host.list_page().items] == ["wf"]


def test_workflow_id_rule_names_the_reason(backend: Backend) -> None:
    with open_host(backend("db")) as host:
        host.register_script("never", NEVER)
        longest = "x" * MAX_WORKFLOW_ID_LENGTH
        assert host.start("never", workflow_id=longest).workflow_id == longest
        assert host.get(longest).status == "suspended"
        with pytest.raises(InvalidWorkflowIdError) as info:
            host.start("never", workflow_id="x" * (MAX_WORKFLOW_ID_LENGTH + 88))
        assert str(MAX_WORKFLOW_ID_LENGTH) in str(info.value) and "600" in info.value.reason
        assert "non-empty" not in str(info.value)
        with pytest.raises(InvalidWorkflowIdError, match="empty"):
            host.start("never", workflow_id="")
        odd = "a/b c?d%2F"  # any other character is fine
        assert host.start("never", workflow_id=odd).workflow_id == odd
        assert host.send_event(odd, "e", 1).workflow_id == odd

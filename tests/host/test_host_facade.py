"""Issue 17: the host facade (what the CLI and server read through it) and the
host's rule for an existing workflow id, on every backend."""

from __future__ import annotations

import pytest
from _host_helpers import FakeClock, open_host
from conftest import Backend

from jsflow.host import UnknownScriptError, WorkflowExistsError, WorkflowHost

ECHO = "async function main(...args) { return args; }"
EVENTS = "async function main() { const e = await waitForEvent('go'); return e; }"
HOOK = "async function main() { const h = await createHook(); return await h.wait(); }"


def test_start_with_an_existing_id_follows_one_rule(backend: Backend) -> None:
    with open_host(backend("exists", FakeClock())) as host:
        host.register_script("echo", ECHO)
        host.register_script("events", EVENTS)
        first = host.start("echo", 1, {"a": [2]}, workflow_id="w1")
        assert first.value == [1, {"a": [2]}]
        again = host.start("echo", 1, {"a": [2]}, workflow_id="w1")
        assert again.workflow_id == "w1" and again.value == [1, {"a": [2]}]
        with pytest.raises(WorkflowExistsError) as other_args:
            host.start("echo", 9, workflow_id="w1")
        assert other_args.value.conflict == "arguments" and other_args.value.script_name == "echo"
        with pytest.raises(WorkflowExistsError) as other_script:
            host.start("events", workflow_id="w1")
        assert other_script.value.conflict == "script" and other_script.value.workflow_id == "w1"
        assert host.get("w1").value == [1, {"a": [2]}]


def test_facade_reads_what_tools_need(backend: Backend) -> None:
    clock = FakeClock()
    with open_host(backend("facade", clock)) as host:
        v1 = host.register_script("events", EVENTS)
        host.register_script("hook", HOOK)
        assert host.get_script("events").hash == v1.hash
        with pytest.raises(UnknownScriptError):
            host.get_script("nope")
        assert {s.name for s in host.list_scripts()} == {"events", "hook"}
        host.start("events", workflow_id="e")
        assert host.arguments("e") == []
        host.send_event("e", "other", {"x": 1})
        assert [e.name for e in host.pending_events("e")] == ["other"]
        inst = host.start("hook", workflow_id="h")
        wait = inst.waits[0]
        token = host.hook_token("h", wait)
        assert token is not None and host.hook_url("h", wait) == f"{host.hook_base_url}/{token}"
        assert host.token_workflow_id(token) == "h"
        assert host.token_workflow_id("forged") is None
        assert host.hook_token("e", host.get("e").waits[0]) is None
        assert host.next_due_time() is not None  # the hook's expiry
        mark = host.change_marker()
        assert host.wait_for_change("e", 0.01, since=mark) is False
        host.send_event("e", "go", 1)
        assert host.get("e").status == "completed"
        host.ping()


def test_adopted_registrations_keep_listeners(backend: Backend) -> None:
    """A tool running an application's host on its own store keeps that host's
    token suspend functions and token listeners (``jsflow serve --app``)."""
    seen: list[str] = []
    app = WorkflowHost("memory://", hook_secret="s")
    app.register_suspend_function("approve")
    app.add_token_listener(lambda info: seen.append(info.function_name))
    with open_host(backend("adopt", FakeClock())) as host:
        host.adopt_registrations(app)
        host.register_script("a", "async function main() { return await approve(1); }")
        inst = host.start("a", workflow_id="a1")
        assert inst.waits[0].kind == "token" and seen == ["approve"]
    app.close()

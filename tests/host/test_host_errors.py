"""Bad input gives a clear error and leaves the store as it was."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from _host_helpers import FakeClock, open_host
from conftest import Backend

from jsflow import Limits, PayloadTooLargeError, WaitNotPendingError, WorkflowEngine
from jsflow.host import (
    AlreadyResumedError,
    CorruptStateError,
    HostClosedError,
    HostError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    UnknownScriptError,
    UnknownWorkflowError,
    WorkflowFinishedError,
    WorkflowHost,
    hash_token,
)
from jsflow.host import store as store_mod
from jsflow.testing import each

SCRIPT = "async function main() { const a = await ask(); const e = await waitForEvent('go'); return [a, e]; }"


def make(url: store_mod.Store | str, clock: FakeClock, tokens: list[str], **kwargs: object) -> WorkflowHost:
    host = open_host(url, clock, **kwargs)
    host.register_suspend_function(
        "ask", before_suspend=lambda t, e, a: tokens.append(t), expires_in=timedelta(hours=1)
    )
    host.register_script("s", SCRIPT)
    return host


def test_unknown_ids_and_scripts(backend: Backend) -> None:
    with make(backend("u"), FakeClock(), []) as host:
        for call in (
            lambda: host.get("nope"),
            lambda: host.send_event("nope", "go"),
            lambda: host.resume("nope"),
            lambda: host.cancel("nope"),
            lambda: host.history("nope"),
            lambda: host.retry("nope"),
        ):
            with pytest.raises(UnknownWorkflowError) as err:
                call()
            assert err.value.workflow_id == "nope"
            assert isinstance(err.value, HostError) and isinstance(err.value, store_mod.UnknownWorkflowError)
        with pytest.raises(UnknownScriptError):
            host.start("missing")
        assert host.list() == []


def test_tokens_forged_used_and_expired(backend: Backend) -> None:
    clock, tokens = FakeClock(), []
    with make(backend("t", clock), clock, tokens) as host:
        host.start("s", workflow_id="a")
        with pytest.raises(TokenNotFoundError):
            host.resume_with_token("forged-" + tokens[0][7:])
        with pytest.raises(TokenNotFoundError):
            host.resume_with_token("")
        host.resume_with_token(tokens[0], "yes")
        with pytest.raises(TokenUsedError) as used:
            host.resume_with_token(tokens[0], "again")
        assert used.value.workflow_id == "a" and used.value.wait_id == 0
        assert host.get("a").waits[0].event_names == ("go",)
        host.start("s", workflow_id="b")
        clock.advance(hours=2)
        with pytest.raises(TokenExpiredError) as expired:
            host.resume_with_token(tokens[1], "late")
        assert expired.value.workflow_id == "b"
        assert host.get("b").waits[0].function_name == "ask"  # unchanged


def test_oversized_payloads_store_nothing(backend: Backend) -> None:
    clock, tokens = FakeClock(), []
    engine = WorkflowEngine(clock=clock, limits=Limits(payload=1000))
    with make(backend("p", clock), clock, tokens, engine=engine) as host:
        host.start("s", workflow_id="a")
        big = "x" * 2000
        with pytest.raises(PayloadTooLargeError):
            host.resume_with_token(tokens[0], big)
        token_record = each(host.store).get_token(hash_token(tokens[0]))
        assert token_record is not None and token_record.used_at is None
        host.resume_with_token(tokens[0], "ok")
        with pytest.raises(PayloadTooLargeError):
            host.send_event("a", "go", big)
        assert each(host.store).pending_events("a") == []
        with pytest.raises(PayloadTooLargeError):
            host.start("s", big, workflow_id="big")
        with pytest.raises(UnknownWorkflowError):
            host.get("big")
        with pytest.raises(TypeError):
            host.send_event("a", "go", object())
        assert host.send_event("a", "go", 1).delivered


def test_corrupt_state_is_reported_and_left_alone(backend: Backend) -> None:
    clock, tokens = FakeClock(), []
    with make(backend("c", clock), clock, tokens) as host:
        host.start("s", workflow_id="a")
        host.resume_with_token(tokens[0], "yes")
        record = each(host.store).get_workflow("a")
        assert record is not None
        broken = each(host.store).save_workflow(replace(record, state='{"version": 1, "run_id": 5'))
        with pytest.raises(CorruptStateError) as err:
            host.resume("a", 1, wait_id=1)
        assert err.value.workflow_id == "a" and "not valid JSON" in err.value.reason
        with pytest.raises(CorruptStateError):
            host.send_event("a", "go", 1)  # stored first, delivery refused
        after = each(host.store).get_workflow("a")
        assert after is not None and after.version == broken.version and after.state == broken.state
        assert host.get("a").status == "suspended"
        assert host.history("a")[-1].kind == "corrupt_state"
        each(host.store).save_workflow(replace(after, state=record.state))  # repaired by hand
        assert host.run_due() == 1  # a worker pass delivers the buffered event
        assert host.get("a").value == ["yes", 1]
        with pytest.raises(WorkflowFinishedError):
            host.send_event("a", "go", 2)


def test_finished_and_not_pending(backend: Backend) -> None:
    with open_host(backend("m")) as host:
        host.register_script("s", "function main() { return 1; }")
        host.register_script("w", "async function main() { await waitForEvent('go'); }")
        host.start("s", workflow_id="done")
        with pytest.raises(WorkflowFinishedError) as err:
            host.send_event("done", "go")
        assert err.value.status == "completed"
        with pytest.raises(WorkflowFinishedError):
            host.resume("done")
        host.start("w", workflow_id="w")
        with pytest.raises(AlreadyResumedError) as nr:
            host.resume("w", 1, wait_id=7)
        assert isinstance(nr.value, WaitNotPendingError) and nr.value.wait_id == 7
        receipt = host.send_event("w", "other", 1)
        assert not receipt.delivered and host.get("w").status == "suspended"


def test_closed_host_refuses_work(backend: Backend) -> None:
    host = open_host(backend("m"))
    host.close()
    host.close()
    with pytest.raises(HostClosedError):
        host.list()

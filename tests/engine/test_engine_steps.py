"""Step functions: sync and async, errors, retry policies, durable retries,
concurrency, current_step(), on_journal write-ahead and recovery."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta

import pytest
from engine_helpers import T0, T0_MS, ms

from jsflow import (
    RetryableStepError,
    RetryPolicy,
    ScriptError,
    WorkflowEngine,
    WorkflowState,
    WorkflowStatus,
    current_step,
)


def test_sync_and_async_steps_resolve_and_are_journaled(engine):
    engine.register_step_function("add", lambda a, b: a + b)

    async def greet(name):
        await asyncio.sleep(0)
        return {"hello": name}

    engine.register_step_function("greet", greet)
    script = "async function main() { return [await add(2, 3), await greet('ann')]; }"
    result = engine.run_workflow(script, "main")
    assert result.status is WorkflowStatus.COMPLETED
    assert result.value == [5, {"hello": "ann"}]
    assert [(e.slot, e.type, e.name, e.result) for e in result.state.journal] == [
        (0, "step", "add", 5),
        (1, "step", "greet", {"hello": "ann"}),
    ]
    assert all(e.at_ms == T0_MS for e in result.state.journal)


def test_registration_methods_chain(engine):
    assert engine.register_step_function("a", lambda: 1) is engine
    assert engine.register_suspend_function("b") is engine
    assert engine.add_retry_policy("p", RetryPolicy(2)) is engine
    assert engine.enable_external_events() is engine
    assert engine.execute("var x = 1;") is engine
    assert engine.set_value("y", 2) is engine


def test_decorator_forms(engine):
    @engine.step()
    def shout(text):
        return text.upper()

    @engine.step("whisper")
    async def quiet(text):
        return text.lower()

    @engine.suspend()
    def approval(who):
        return timedelta(minutes=5)

    assert shout("x") == "X"  # the decorator returns the function unchanged
    script = """async function main() {
      const a = await shout('Hi'), b = await whisper('Hi');
      const ok = await approval('bob');
      return [a, b, ok];
    }"""
    first = engine.run_workflow(script, "main")
    assert first.status is WorkflowStatus.SUSPENDED
    assert first.suspension.function_name == "approval"
    assert first.suspension.arguments == ["bob"]
    assert first.suspension.resume_at == T0 + timedelta(minutes=5)
    done = engine.resume_workflow(script, first.state, True)
    assert done.value == ["HI", "hi", True]


def test_step_exception_becomes_catchable_js_error_and_replays(engine):
    calls = Counter()

    def charge(amount):
        calls["charge"] += 1
        raise ValueError(f"card declined for {amount}")

    engine.register_step_function("charge", charge)
    script = """async function main() {
      let caught;
      try { await charge(5); } catch (e) { caught = [e instanceof Error, e.message, e.name]; }
      await sleep('1m');
      return caught;
    }"""
    first = engine.run_workflow(script, "main")
    entry = first.state.journal[0]
    assert entry.type == "step_error" and entry.name == "charge"
    assert entry.error["message"] == "card declined for 5"
    done = engine.resume_workflow(script, first.state)
    assert done.value == [True, "card declined for 5", "ValueError"]
    assert calls["charge"] == 1  # replayed from the journal, not called again


def test_uncaught_step_exception_faults_with_script_error(engine):
    engine.register_step_function("boom", lambda: 1 / 0)
    result = engine.run_workflow("async function main() { await boom(); }", "main")
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, ScriptError)
    assert "division by zero" in result.error.message
    with pytest.raises(ScriptError):
        result.raise_for_status()


def test_step_returning_unserialisable_value_fails_with_catchable_type_error(engine):
    engine.register_step_function("handle", lambda: object())
    script = """async function main() {
      try { await handle(); return 'no'; } catch (e) { return [e instanceof TypeError, e.message]; }
    }"""
    result = engine.run_workflow(script, "main")
    assert result.value[0] is True
    assert "handle" in result.value[1]


def test_step_result_over_payload_limit_fails_the_step_catchably(small_engine):
    small_engine.register_step_function("big", lambda: "x" * 5000)
    script = """async function main() {
      try { await big(); return 'no'; } catch (e) { return e.message; }
    }"""
    result = small_engine.run_workflow(script, "main")
    assert result.status is WorkflowStatus.COMPLETED
    assert "big" in result.value and "1000" in result.value


# -- concurrency ---------------------------------------------------------------------
def test_async_steps_run_concurrently(engine):
    async def slow(i):
        await asyncio.sleep(0.3)
        return i

    engine.register_step_function("slow", slow)
    script = "async function main() { return await Promise.all([0,1,2,3,4].map(i => slow(i))); }"
    start = time.perf_counter()
    result = engine.run_workflow(script, "main")
    elapsed = time.perf_counter() - start
    assert result.value == [0, 1, 2, 3, 4]
    assert elapsed < 0.9, elapsed


def test_async_completions_journaled_in_completion_order(engine):
    async def wait(name, seconds):
        await asyncio.sleep(seconds)
        return name

    engine.register_step_function("wait", wait)
    script = "async function main() { return await Promise.all([wait('slow', 0.15), wait('fast', 0.01)]); }"
    result = engine.run_workflow(script, "main")
    assert result.value == ["slow", "fast"]
    assert [e.slot for e in result.state.journal] == [1, 0]
    # and replay honours that order
    again = engine.recover_workflow(script, result.state)
    assert again.value == ["slow", "fast"]


def test_sync_steps_run_one_at_a_time_in_scheduling_order(engine):
    log = []
    running = [0]

    def work(name):
        running[0] += 1
        assert running[0] == 1
        log.append(name)
        time.sleep(0.01)
        running[0] -= 1
        return name

    engine.register_step_function("work", work)
    script = "async function main() { return await Promise.all(['a','b','c'].map(n => work(n))); }"
    assert engine.run_workflow(script, "main").value == ["a", "b", "c"]
    assert log == ["a", "b", "c"]


# -- in-process retry policies -------------------------------------------------------
def _flaky(fail_times, exc=ConnectionError):
    calls = Counter()

    def fn():
        calls["n"] += 1
        if calls["n"] <= fail_times:
            raise exc(f"attempt {calls['n']} failed")
        return calls["n"]

    return fn, calls


def test_retry_policy_retries_and_journals_only_the_final_outcome(engine):
    fn, calls = _flaky(2)
    engine.register_step_function("flaky", fn, retry=RetryPolicy(max_attempts=3))
    result = engine.run_workflow("async function main() { return await flaky(); }", "main")
    assert result.value == 3 and calls["n"] == 3
    assert len(result.state.journal) == 1 and result.state.journal[0].type == "step"


def test_retry_policy_exhausted_journals_last_error(engine):
    fn, calls = _flaky(10)
    engine.register_step_function("flaky", fn, retry=RetryPolicy(max_attempts=3))
    script = "async function main() { try { await flaky(); } catch (e) { return e.message; } }"
    result = engine.run_workflow(script, "main")
    assert result.value == "attempt 3 failed" and calls["n"] == 3
    assert [e.type for e in result.state.journal] == ["step_error"]


async def test_async_step_with_retry_policy(engine):
    calls = Counter()

    async def flaky():
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("nope")
        return "ok"

    engine.register_step_function("flaky", flaky, retry=RetryPolicy(max_attempts=5))
    result = await engine.arun_workflow("async function main() { return await flaky(); }", "main")
    assert result.value == "ok" and calls["n"] == 3


def test_retry_backoff_delays():
    waits = []
    policy = RetryPolicy(max_attempts=4, delay=0.01, backoff=2.0)
    retrying = policy.retrying(sleep=waits.append)
    with pytest.raises(ConnectionError):
        for attempt in retrying:
            with attempt:
                raise ConnectionError("x")
    assert waits == pytest.approx([0.01, 0.02, 0.04])
    capped = []
    retrying = RetryPolicy(max_attempts=4, delay=0.01, backoff=10.0, max_delay=0.05).retrying(
        sleep=capped.append
    )
    with pytest.raises(ConnectionError):
        for attempt in retrying:
            with attempt:
                raise ConnectionError("x")
    assert capped == pytest.approx([0.01, 0.05, 0.05])


def test_retry_backoff_is_waited_in_the_engine(engine):
    fn, _ = _flaky(2)
    engine.register_step_function("flaky", fn, retry=RetryPolicy(max_attempts=3, delay=0.05, backoff=2))
    start = time.perf_counter()
    assert engine.run_workflow("async function main() { return await flaky(); }", "main").value == 3
    assert time.perf_counter() - start >= 0.14


def test_retry_on_limits_which_errors_are_retried(engine):
    fn, calls = _flaky(2, exc=ValueError)
    engine.register_step_function("flaky", fn, retry=RetryPolicy(5, retry_on=(ConnectionError,)))
    script = "async function main() { try { return await flaky(); } catch (e) { return e.message; } }"
    assert engine.run_workflow(script, "main").value == "attempt 1 failed"
    assert calls["n"] == 1


def test_give_up_on_stops_retrying(engine):
    fn, calls = _flaky(2, exc=KeyError)
    engine.register_step_function("flaky", fn, retry=RetryPolicy(5, give_up_on=(KeyError,)))
    script = "async function main() { try { return await flaky(); } catch (e) { return e.name; } }"
    assert engine.run_workflow(script, "main").value == "KeyError"
    assert calls["n"] == 1


def test_named_retry_policy(engine):
    engine.add_retry_policy("net", RetryPolicy(max_attempts=4))
    fn, _ = _flaky(3)
    engine.register_step_function("flaky", fn, retry="net")
    assert engine.run_workflow("async function main() { return await flaky(); }", "main").value == 4

    @engine.step(retry="net")
    def other():
        return 1

    with pytest.raises(ValueError, match="unknown retry policy"):
        engine.register_step_function("x", lambda: 1, retry="missing")


def test_retry_policy_validation():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=2, backoff=0.5)


# -- durable retries ------------------------------------------------------------------
def test_retryable_step_error_suspends_with_a_retry_wait(engine, clock):
    calls, keys = Counter(), []

    def pay(amount):
        calls["n"] += 1
        keys.append(current_step().idempotency_key)
        if calls["n"] == 1:
            raise RetryableStepError("gateway busy", timedelta(seconds=30))
        if calls["n"] == 2:
            raise RetryableStepError("still busy", 45)
        return amount * 2

    # the policy must not retry a RetryableStepError in-process
    engine.register_step_function("pay", pay, retry=RetryPolicy(max_attempts=5))
    script = "async function main() { const r = await pay(21); return r; }"
    first = engine.run_workflow(script, "main", run_id="r1")
    assert first.status is WorkflowStatus.SUSPENDED
    assert calls["n"] == 1
    assert first.state.journal == []
    wait = first.suspension
    assert wait.is_retry is True
    assert wait.function_name == "pay" and wait.arguments == [21] and wait.wait_id == 0
    assert wait.resume_at == T0 + timedelta(seconds=30)

    clock.advance(seconds=31)
    second = engine.resume_workflow(script, first.state)
    assert second.status is WorkflowStatus.SUSPENDED and calls["n"] == 2
    assert second.suspension.resume_at == clock.now + timedelta(seconds=45)
    assert second.state.journal == []

    clock.advance(seconds=50)
    done = engine.resume_workflow(script, second.state.serialize())
    assert done.status is WorkflowStatus.COMPLETED and done.value == 42
    assert calls["n"] == 3
    assert [e.type for e in done.state.journal] == ["step"]
    assert len(set(keys)) == 1 and keys[0] == "r1:0"


def test_current_step_context(engine):
    seen = []

    def probe():
        ctx = current_step()
        seen.append((ctx.slot, ctx.name, ctx.attempt, ctx.idempotency_key, ctx.run_id))
        return None

    fn, _ = _flaky(1)

    def flaky_probe():
        seen.append(("attempt", current_step().attempt))
        return fn()

    engine.register_step_function("probe", probe)
    engine.register_step_function("flaky", flaky_probe, retry=RetryPolicy(3))
    script = "async function main() { await probe(); await probe(); await flaky(); }"
    engine.run_workflow(script, "main", run_id="abc")
    assert seen[:2] == [(0, "probe", 1, "abc:0", "abc"), (1, "probe", 1, "abc:1", "abc")]
    assert seen[2:] == [("attempt", 1), ("attempt", 2)]
    with pytest.raises(LookupError):
        current_step()
    keys = []
    engine.register_step_function("probe", lambda: keys.append(current_step().idempotency_key))
    engine.run_workflow("async function main() { await probe(); }", "main", metadata={"workflow_id": "wf-9"})
    assert keys == ["wf-9:0"]


# -- on_journal and recovery ----------------------------------------------------------
def test_on_journal_is_called_before_the_script_sees_the_result(engine):
    order = []
    engine.on_console = lambda level, msg: order.append(("console", msg))
    engine.register_step_function("a", lambda: 1)
    engine.register_step_function("b", lambda: 2)

    def hook(state):
        assert isinstance(state, WorkflowState)
        order.append(("journal", [e.name for e in state.journal]))

    script = """async function main() {
      const x = await a(); console.log('got a ' + x);
      const y = await b(); console.log('got b ' + y);
      return x + y;
    }"""
    result = engine.run_workflow(script, "main", on_journal=hook)
    assert result.value == 3
    assert order == [
        ("journal", ["a"]),
        ("console", "got a 1"),
        ("journal", ["a", "b"]),
        ("console", "got b 2"),
    ]


def test_failing_on_journal_aborts_and_recovery_does_not_rerun_completed_steps(engine):
    calls = Counter()
    for name in ("a", "b", "c"):
        engine.register_step_function(name, lambda n=name: calls.update([n]) or n)
    persisted = []

    class Crash(Exception):
        pass

    def hook(state):
        persisted.append(state.serialize())
        if len(persisted) == 2:
            raise Crash("disk full")

    script = "async function main() { return [await a(), await b(), await c()]; }"
    with pytest.raises(Crash):
        engine.run_workflow(script, "main", on_journal=hook)
    assert calls == Counter({"a": 1, "b": 1})
    last = persisted[-1]
    assert [e.name for e in WorkflowState.deserialize(last).journal] == ["a", "b"]
    done = engine.recover_workflow(script, last)
    assert done.status is WorkflowStatus.COMPLETED and done.value == ["a", "b", "c"]
    assert calls == Counter({"a": 1, "b": 1, "c": 1})


async def test_async_on_journal_hook(engine):
    seen = []

    async def hook(state):
        await asyncio.sleep(0)
        seen.append(len(state.journal))

    engine.register_step_function("a", lambda: 1)
    result = await engine.arun_workflow(
        "async function main() { await a(); await a(); }", "main", on_journal=hook
    )
    assert result.status is WorkflowStatus.COMPLETED and seen == [1, 2]


def test_recover_runs_a_step_that_was_in_flight(engine):
    calls = Counter()
    engine.register_step_function("send", lambda to: calls.update([to]) or f"sent to {to}")
    # the process died after the run was created but before the step finished
    state = WorkflowState(run_id="crashed", arguments=["ann"], started_at_ms=T0_MS)
    result = engine.recover_workflow("async function main(who) { return await send(who); }", state)
    assert result.status is WorkflowStatus.COMPLETED and result.value == "sent to ann"
    assert calls == Counter({"ann": 1})


def test_recover_of_a_suspended_state_changes_nothing(engine):
    script = "async function main() { await sleep('1h'); return 1; }"
    first = engine.run_workflow(script, "main")
    again = engine.recover_workflow(script, first.state)
    assert again.status is WorkflowStatus.SUSPENDED
    assert again.waits == first.waits
    assert again.state == first.state


def test_step_clock_stamps_completion(engine, clock):
    def slow():
        clock.advance(minutes=3)
        return 1

    engine.register_step_function("slow", slow)
    result = engine.run_workflow("async function main() { await slow(); return Date.now(); }", "main")
    assert result.value == ms(T0 + timedelta(minutes=3))
    assert result.state.journal[0].at_ms == result.value


def test_engine_rejects_bad_registration_names(engine):
    for bad in ("1abc", "a-b", "", "continueAsNew", "waitForEvent", "Date"):
        with pytest.raises(ValueError):
            engine.register_step_function(bad, lambda: 1)


def test_step_that_raises_base_exception_subclass_is_not_swallowed():
    """A KeyboardInterrupt-like signal must not be turned into a JS error."""
    engine = WorkflowEngine()

    def interrupt():
        raise KeyboardInterrupt

    engine.register_step_function("interrupt", interrupt)
    with pytest.raises(KeyboardInterrupt):
        engine.run_workflow("async function main() { try { await interrupt(); } catch (e) {} }", "main")

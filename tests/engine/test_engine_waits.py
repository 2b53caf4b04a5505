"""Suspensions: custom suspend functions, sleep, waitForEvent, timeouts,
concurrent waits addressed by wait_id, and races between events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from engine_helpers import T0, ms

from jsflow import (
    EventNotAwaitedError,
    ScriptError,
    WaitNotPendingError,
    WorkflowStatus,
)


# -- suspend functions --------------------------------------------------------------
def test_suspend_function_resume_at_datetime(engine):
    due = datetime(2024, 3, 1, 12, tzinfo=UTC)
    engine.register_suspend_function("until", lambda iso: datetime.fromisoformat(iso))
    script = "async function main() { const v = await until('2024-03-01T12:00:00+00:00'); return v; }"
    first = engine.run_workflow(script, "main")
    assert first.status is WorkflowStatus.SUSPENDED
    wait = first.suspension
    assert (wait.wait_id, wait.function_name, wait.resume_at, wait.is_retry) == (0, "until", due, False)
    assert wait.event_names is None
    assert engine.resume_workflow(script, first.state, {"ok": 1}).value == {"ok": 1}


def test_suspend_function_resume_at_timedelta_is_relative_to_workflow_time(engine, clock):
    def work():
        clock.advance(hours=1)  # the completion is stamped T0+1h: the workflow's time
        return 1

    engine.register_step_function("work", work)
    engine.register_suspend_function("later", lambda h: timedelta(hours=h))
    script = "async function main() { await work(); return await later(2); }"
    clock.advance(hours=5)  # start of run at T0+5h
    first = engine.run_workflow(script, "main")
    assert first.suspension.resume_at == T0 + timedelta(hours=5 + 1 + 2)
    # the wait's due time is fixed when first scheduled: it does not move on replay
    clock.advance(days=3)
    again = engine.recover_workflow(script, first.state)
    assert again.suspension.resume_at == first.suspension.resume_at


def test_suspend_function_resume_at_none_and_no_callable(engine):
    engine.register_suspend_function("manual", lambda: None)
    engine.register_suspend_function("bare")
    first = engine.run_workflow(
        "async function main() { await manual(); return await bare(1, 'x'); }", "main"
    )
    assert first.suspension.resume_at is None
    second = engine.resume_workflow(
        "async function main() { await manual(); return await bare(1, 'x'); }", first.state
    )
    assert second.suspension.function_name == "bare"
    assert second.suspension.arguments == [1, "x"]
    assert second.suspension.resume_at is None


def test_resume_at_is_not_recomputed_on_replay(engine):
    calls = []

    def due(n):
        calls.append(n)
        return T0 + timedelta(minutes=len(calls))

    engine.register_suspend_function("pause", due)
    script = "async function main() { await pause(1); await pause(2); return 'ok'; }"
    first = engine.run_workflow(script, "main")
    assert first.suspension.resume_at == T0 + timedelta(minutes=1)
    second = engine.resume_workflow(script, first.state)
    assert second.suspension.resume_at == T0 + timedelta(minutes=2)
    assert calls == [1, 2]


def test_resume_at_returning_bad_type_is_an_error(engine):
    engine.register_suspend_function("odd", lambda: "tomorrow")
    with pytest.raises(TypeError, match="odd"):
        engine.run_workflow("async function main() { await odd(); }", "main")


# -- sleep ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("duration", "delta"),
    [
        ("'500ms'", timedelta(milliseconds=500)),
        ("'2h'", timedelta(hours=2)),
        ("1500", timedelta(seconds=1.5)),
        ("'PT1H30M'", timedelta(minutes=90)),
    ],
)
def test_sleep_due_time(engine, duration, delta):
    result = engine.run_workflow(f"async function main() {{ await sleep({duration}); return 1; }}", "main")
    wait = result.suspension
    assert wait.function_name == "sleep" and wait.resume_at == T0 + delta


def test_sleep_with_invalid_duration_faults(engine):
    result = engine.run_workflow("async function main() { await sleep('soon'); }", "main")
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, ScriptError) and "soon" in str(result.error)
    result = engine.run_workflow("async function main() { await sleep({}); }", "main")
    assert result.status is WorkflowStatus.FAULTED and result.error.js_name == "TypeError"


BUILTINS = [
    "sleep",
    "waitForEvent",
    "createHook",
    "cancelWait",
    "step",
    "fetch",
    "continueAsNew",
    "console",
    "waitForEvents",
    "startWorkflow",
    "patched",
    "deprecatePatch",
    "defineQuery",
]


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_names_cannot_be_registered(engine, name):
    """Issue 17: a registration never replaces a built-in (a step named sleep
    used to replace the durable timer); the ValueError names the built-in."""
    for register in (
        lambda: engine.register_step_function(name, lambda: 1),
        lambda: engine.register_suspend_function(name),
        lambda: engine.step(name)(lambda: 1),
        lambda: engine.suspend(name)(lambda: None),
    ):
        with pytest.raises(ValueError, match=f"'{name}' is a jsflow built-in"):
            register()
    assert name not in engine.step_names and name not in engine.suspend_names
    result = engine.run_workflow("async function main() { await sleep('1h'); return 'up'; }", "main")
    assert result.suspension.function_name == "sleep"
    assert result.suspension.resume_at == T0 + timedelta(hours=1)


def test_resume_value_of_sleep_is_visible(engine):
    script = "async function main() { return await sleep('1s'); }"
    state = engine.run_workflow(script, "main").state
    assert engine.resume_workflow(script, state).value is None
    assert engine.resume_workflow(script, state, [1, 2]).value == [1, 2]


# -- concurrent waits -------------------------------------------------------------------
TWO_SLEEPS = """async function main() {
  const order = [];
  await Promise.all([sleep('1h').then(() => order.push('1h')), sleep('2h').then(() => order.push('2h'))]);
  return order;
}"""


def test_concurrent_waits_have_their_own_due_times(engine):
    result = engine.run_workflow(TWO_SLEEPS, "main")
    assert [(w.wait_id, w.resume_at) for w in result.waits] == [
        (0, T0 + timedelta(hours=1)),
        (1, T0 + timedelta(hours=2)),
    ]
    assert result.suspension == result.waits[0]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_concurrent_waits_resumed_by_wait_id_in_any_order(engine, clock, order):
    state = engine.run_workflow(TWO_SLEEPS, "main").state
    clock.advance(hours=3)
    first = engine.resume_workflow(TWO_SLEEPS, state, wait_id=order[0])
    assert first.status is WorkflowStatus.SUSPENDED
    assert [w.wait_id for w in first.waits] == [order[1]]
    # the remaining wait keeps its original due time
    assert first.waits[0].resume_at == T0 + timedelta(hours=1 + order[1])
    done = engine.resume_workflow(TWO_SLEEPS, first.state, wait_id=order[1])
    assert done.value == [["1h", "2h"][i] for i in order]


def test_resume_without_wait_id_takes_the_first_scheduled(engine):
    state = engine.run_workflow(TWO_SLEEPS, "main").state
    first = engine.resume_workflow(TWO_SLEEPS, state)
    assert [w.wait_id for w in first.waits] == [1]


def test_resuming_a_wait_that_is_not_pending(engine):
    state = engine.run_workflow(TWO_SLEEPS, "main").state
    after = engine.resume_workflow(TWO_SLEEPS, state, wait_id=0).state
    with pytest.raises(WaitNotPendingError) as info:
        engine.resume_workflow(TWO_SLEEPS, after, wait_id=0)
    assert isinstance(info.value, LookupError) and info.value.pending == [1]
    done = engine.resume_workflow(TWO_SLEEPS, after).state
    with pytest.raises(WaitNotPendingError):
        engine.resume_workflow(TWO_SLEEPS, done)


def test_completed_wins_over_pending_waits(engine):
    script = "async function main() { sleep('1h'); waitForEvent('x'); return 'done'; }"
    result = engine.run_workflow(script, "main")
    assert result.status is WorkflowStatus.COMPLETED and result.value == "done"


# -- events ----------------------------------------------------------------------------
def test_wait_for_event_single_name_receives_payload(engine):
    script = "async function main() { return await waitForEvent('approved'); }"
    first = engine.run_workflow(script, "main")
    wait = first.suspension
    assert wait.function_name == "waitForEvent"
    assert wait.event_names == ["approved"] and wait.arguments == ["approved"]
    assert wait.resume_at is None
    done = engine.raise_event(script, first.state, "approved", {"by": "ann"})
    assert done.value == {"by": "ann"}
    entry = done.state.journal[0]
    assert (entry.type, entry.name, entry.result) == ("event", "waitForEvent", {"by": "ann"})


def test_wait_for_event_array_form_receives_name_and_payload(engine):
    script = "async function main() { return await waitForEvent(['approved', 'rejected']); }"
    first = engine.run_workflow(script, "main")
    assert first.suspension.event_names == ["approved", "rejected"]
    done = engine.raise_event(script, first.state, "rejected", "too expensive")
    assert done.value == {"name": "rejected", "payload": "too expensive"}
    none = engine.raise_event(script, first.state, "approved")
    assert none.value == {"name": "approved", "payload": None}


def test_event_goes_to_the_first_scheduled_listener(engine):
    script = """async function main() {
      return await Promise.all([
        waitForEvent('x').then(v => 'first ' + v), waitForEvent('x').then(v => 'second ' + v)]);
    }"""
    s1 = engine.raise_event(script, engine.run_workflow(script, "main").state, "x", 1)
    assert [w.wait_id for w in s1.waits] == [1]
    assert engine.raise_event(script, s1.state, "x", 2).value == ["first 1", "second 2"]


def test_event_not_awaited(engine):
    script = "async function main() { return [await waitForEvent(['a', 'b']), await sleep('1h')]; }"
    first = engine.run_workflow(script, "main")
    before = first.state.serialize()
    with pytest.raises(EventNotAwaitedError) as info:
        engine.raise_event(script, first.state, "c", 1)
    err = info.value
    assert err.event_name == "c" and err.awaited == ["a", "b"]
    assert "'c'" in str(err) and "'a'" in str(err) and "'b'" in str(err)
    assert first.state.serialize() == before
    # and the state is still good
    assert engine.raise_event(script, first.state, "b", 2).status is WorkflowStatus.SUSPENDED


def test_event_raised_while_only_a_sleep_is_pending(engine):
    script = "async function main() { await sleep('1h'); }"
    state = engine.run_workflow(script, "main").state
    with pytest.raises(EventNotAwaitedError) as info:
        engine.raise_event(script, state, "go")
    assert info.value.awaited == []


@pytest.mark.parametrize("winner", ["a", "b"])
def test_race_between_two_events_can_be_won_by_either(engine, winner):
    script = """async function main() {
      return await Promise.race([
        waitForEvent('a').then(p => ['a', p]),
        waitForEvent('b').then(p => ['b', p]),
      ]);
    }"""
    first = engine.run_workflow(script, "main")
    assert [w.event_names for w in first.waits] == [["a"], ["b"]]
    done = engine.raise_event(script, first.state, winner, winner.upper())
    assert done.status is WorkflowStatus.COMPLETED
    assert done.value == [winner, winner.upper()]
    assert [e.event for e in done.state.journal] == [winner]
    # the result survives replay
    assert engine.recover_workflow(script, done.state).value == [winner, winner.upper()]


def test_timeout_event_rejects_with_catchable_timeout_error(engine):
    script = """async function main() {
      try { return await waitForEvent('reply', { timeout: '30m' }); }
      catch (e) { return [e.name, e instanceof Error, e.message]; }
    }"""
    first = engine.run_workflow(script, "main")
    wait = first.suspension
    assert wait.resume_at == T0 + timedelta(minutes=30)
    assert wait.arguments == ["reply", {"timeout": "30m"}]
    done = engine.timeout_event(script, first.state)
    assert done.value[0] == "TimeoutError" and done.value[1] is True
    assert "reply" in done.value[2]
    assert done.state.journal[0].type == "timeout"
    # replay reproduces the rejection
    assert engine.recover_workflow(script, done.state).value == done.value


def test_uncaught_timeout_faults(engine):
    script = "async function main() { return await waitForEvent('reply'); }"
    done = engine.timeout_event(script, engine.run_workflow(script, "main").state)
    assert done.status is WorkflowStatus.FAULTED
    assert done.error.js_name == "TimeoutError"


def test_timeout_event_by_wait_id_and_without_event_wait(engine):
    script = """async function main() {
      const a = waitForEvent('a').catch(e => e.name);
      const b = waitForEvent('b').catch(e => e.name);
      return await Promise.all([a, b]);
    }"""
    first = engine.run_workflow(script, "main")
    s1 = engine.timeout_event(script, first.state, wait_id=1)
    assert [w.wait_id for w in s1.waits] == [0]
    assert engine.raise_event(script, s1.state, "a", 5).value == [5, "TimeoutError"]
    sleeper = "async function main() { await sleep('1h'); }"
    with pytest.raises(WaitNotPendingError):
        engine.timeout_event(sleeper, engine.run_workflow(sleeper, "main").state)


def test_event_and_resume_times_drive_workflow_time(engine, clock):
    script = """async function main() {
      await waitForEvent('x'); const t = Date.now(); await sleep('1h'); return t;
    }"""
    first = engine.run_workflow(script, "main")
    clock.advance(minutes=10)
    second = engine.raise_event(script, first.state, "x")
    # sleep was scheduled at the event's time
    assert second.suspension.resume_at == T0 + timedelta(minutes=70)
    clock.advance(hours=2)
    assert engine.resume_workflow(script, second.state).value == ms(T0 + timedelta(minutes=10))

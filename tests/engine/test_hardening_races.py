"""Waits that lost a Promise.race / Promise.any are cancelled when the race
settles, deterministically on replay; cancelWait(p) cancels explicitly."""

from __future__ import annotations

import pytest
from engine_helpers import FakeClock

from jsflow import EventNotAwaitedError, WaitNotPendingError, WorkflowEngine, WorkflowStatus

ROUNDS = """
async function main() {
  for (let i = 0; i < 5; i++) {
    const r = await Promise.race([
      waitForEvent('paid').then((p) => 'paid'),
      sleep('1h').then(() => 'tick'),
    ]);
    if (r === 'paid') return 'paid in round ' + i;
  }
  return 'gave up';
}
"""


def _names(result):
    return [(w.wait_id, w.function_name) for w in result.waits]


def test_race_loser_is_cancelled_and_event_reaches_the_current_round(engine, clock: FakeClock):
    r = engine.run_workflow(ROUNDS)
    assert _names(r) == [(0, "waitForEvent"), (1, "sleep")]
    clock.advance(hours=1)
    r = engine.resume_workflow(ROUNDS, r.state, wait_id=1)  # round 0 times out
    # round 0's waitForEvent lost the race: only round 1's waits are pending
    assert _names(r) == [(2, "waitForEvent"), (3, "sleep")]
    assert [w.slot for w in r.state.waits] == [2, 3]
    r = engine.raise_event(ROUNDS, r.state, "paid", 1)
    assert r.status is WorkflowStatus.COMPLETED
    assert r.value == "paid in round 1"


def test_loop_of_races_does_not_accumulate_waits(engine, clock: FakeClock):
    r = engine.run_workflow(ROUNDS)
    for _ in range(4):
        clock.advance(hours=1)
        r = engine.resume_workflow(ROUNDS, r.state, wait_id=r.waits[1].wait_id)
        assert len(r.waits) == 2
        assert len(r.state.waits) == 2
    # replay of the whole journal gives the same pending waits as live
    replayed = engine.recover_workflow(ROUNDS, r.state)
    assert _names(replayed) == _names(r)
    assert replayed.state.waits == r.state.waits


def test_cancelled_wait_is_not_pending_for_resume_or_event(engine, clock: FakeClock):
    r = engine.run_workflow(ROUNDS)
    r = engine.resume_workflow(ROUNDS, r.state, wait_id=1)
    with pytest.raises(WaitNotPendingError):
        engine.resume_workflow(ROUNDS, r.state, "x", wait_id=0)
    # the event goes to the live round's wait, never to slot 0
    r2 = engine.raise_event(ROUNDS, r.state, "paid")
    assert [e.slot for e in r2.state.journal if e.type == "event"] == [2]


def test_promise_any_cancels_losers_through_catch_and_finally(engine):
    script = """
    async function main() {
      const winner = await Promise.any([
        waitForEvent('a').catch(() => 'never').finally(() => {}),
        waitForEvent('b').then((p) => 'b:' + p),
        sleep('1d'),
      ]);
      return winner;
    }
    """
    r = engine.run_workflow(script)
    assert len(r.waits) == 3
    r = engine.raise_event(script, r.state, "b", 7)
    assert r.status is WorkflowStatus.COMPLETED and r.value == "b:7"
    assert r.waits == [] and r.state.waits == []


def test_race_settled_by_a_step_cancels_the_timeout(engine, clock: FakeClock):
    script = """
    async function main() {
      const r = await Promise.race([work(), sleep('10m').then(() => 'timeout')]);
      await waitForEvent('next');
      return r;
    }
    """
    engine.register_step_function("work", lambda: "done")
    r = engine.run_workflow(script)
    assert _names(r) == [(2, "waitForEvent")]
    assert [w.slot for w in r.state.waits] == [2]


def test_cancel_wait_explicitly(engine):
    script = """
    async function main() {
      const w = waitForEvent('late');
      const derived = w.then((x) => x);
      const n = cancelWait(derived);
      const again = cancelWait(w);
      await sleep('1m');
      return [n, again];
    }
    """
    r = engine.run_workflow(script)
    assert _names(r) == [(1, "sleep")]
    with pytest.raises(EventNotAwaitedError):
        engine.raise_event(script, r.state, "late")
    r = engine.resume_workflow(script, r.state)
    assert r.value == [1, 0]


def test_cancel_wait_refuses_non_promises(engine):
    script = "async function main() { try { cancelWait(42); } catch (e) { return e.name; } }"
    assert engine.run_workflow(script).value == "TypeError"


def test_losers_inside_an_async_wrapper_are_not_tracked(engine):
    # documented limit: the wrapper's promise is not derived from the wait
    script = """
    async function wrapped() { return await waitForEvent('x'); }
    async function main() {
      await Promise.race([wrapped(), sleep('1m')]);
      await waitForEvent('y');
    }
    """
    r = engine.run_workflow(script)
    r = engine.resume_workflow(script, r.state, wait_id=1)
    assert [w.function_name for w in r.waits] == ["waitForEvent", "waitForEvent"]


def test_race_with_a_plain_value_cancels_immediately(engine):
    script = """
    async function main() {
      const r = await Promise.race([sleep('1h'), 'now']);
      await waitForEvent('go');
      return r;
    }
    """
    r = engine.run_workflow(script)
    assert _names(r) == [(1, "waitForEvent")]
    assert engine.raise_event(script, r.state, "go").value == "now"


def test_cancellation_is_identical_live_and_replayed(clock: FakeClock):
    script = """
    async function main() {
      const seen = [];
      for (let i = 0; i < 3; i++) {
        seen.push(await Promise.race([
          waitForEvent(['a', 'b']).then((e) => e.name),
          sleep('1m').then(() => 't'),
        ]));
      }
      return seen;
    }
    """
    engine = WorkflowEngine(clock=clock)
    r = engine.run_workflow(script)
    r = engine.raise_event(script, r.state, "a")
    clock.advance(minutes=5)
    r = engine.resume_workflow(script, r.state, wait_id=r.waits[1].wait_id)
    live = _names(r)
    again = engine.recover_workflow(script, r.state.serialize())
    assert _names(again) == live
    r = engine.raise_event(script, again.state, "b")
    assert r.value == ["a", "t", "b"]


def test_a_thenable_in_a_race_is_asked_once(engine):
    script = """
    async function main() {
      let calls = 0;
      const thenable = { then(resolve) { calls++; resolve('t'); } };
      const r = await Promise.race([thenable, sleep('1h')]);
      return [r, calls];
    }
    """
    assert engine.run_workflow(script).value == ["t", 1]

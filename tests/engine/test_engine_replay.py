"""Replay: the journal drives the script back to where it was, from any point,
without running any step twice; a journal that no longer fits faults (drift)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from engine_helpers import T0, FakeClock

from jsflow import (
    JournalCompatibilityError,
    WorkflowEngine,
    WorkflowState,
    WorkflowStatus,
)

SCRIPT = """
async function main(n) {
  const out = [];
  const a = await inc(n);
  out.push(a, Date.now());
  const [b, c] = await Promise.all([inc(a), double(a)]);
  out.push(b, c);
  await sleep('1h');
  out.push(Date.now(), Math.random());
  const ev = await waitForEvent('go');
  out.push(ev);
  let msg;
  try { await fail(ev.x); } catch (e) { msg = e.message; }
  out.push(msg, await inc(b + c));
  const r = await waitForEvent(['x', 'y']);
  out.push(r, await double(r.payload), Date.now());
  return out;
}
"""

# The calls after the first run, each with the clock it happens at.
ACTIONS = [
    ("resume", None),
    ("event", ("go", {"x": 3})),
    ("event", ("y", 5)),
]


def make_engine(clock: FakeClock, calls: Counter) -> WorkflowEngine:
    engine = WorkflowEngine(clock=clock)

    def inc(x):
        calls["inc"] += 1
        return x + 1

    async def double(x):
        calls["double"] += 1
        return x * 2

    def fail(x):
        calls["fail"] += 1
        raise ValueError(f"failed with {x}")

    engine.register_step_function("inc", inc)
    engine.register_step_function("double", double)
    engine.register_step_function("fail", fail)
    return engine


def apply(engine: WorkflowEngine, state, index: int, on_journal=None):
    kind, arg = ACTIONS[index]
    if kind == "resume":
        return engine.resume_workflow(SCRIPT, state, on_journal=on_journal)
    return engine.raise_event(SCRIPT, state, *arg, on_journal=on_journal)


def clock_for(index: int):
    """Action -1 is the first run; each later action happens an hour later."""
    return T0 + timedelta(hours=index + 1, minutes=7)


def drive_full():
    """Run to completion, recording every intermediate state with the action
    during which it was produced (journal hook) or after which it rests."""
    clock, calls = FakeClock(), Counter()
    engine = make_engine(clock, calls)
    checkpoints: list[tuple[str, int, WorkflowState]] = []
    current = [-1]

    def hook(state):
        checkpoints.append(("during", current[0], state))

    clock.now = clock_for(-1)
    result = engine.run_workflow(SCRIPT, "main", 1, run_id="replay-run", on_journal=hook)
    checkpoints.append(("after", -1, result.state))
    for i in range(len(ACTIONS)):
        assert result.status is WorkflowStatus.SUSPENDED
        current[0] = i
        clock.now = clock_for(i)
        result = apply(engine, result.state, i, on_journal=hook)
        if i < len(ACTIONS) - 1:
            checkpoints.append(("after", i, result.state))
    return result, calls, checkpoints


def test_full_run_value_and_each_step_runs_once():
    result, calls, _ = drive_full()
    assert result.status is WorkflowStatus.COMPLETED
    value = result.value
    assert value[:4] == [2, int(clock_for(-1).timestamp() * 1000), 3, 4]
    assert value[4] == int(clock_for(0).timestamp() * 1000)
    assert 0 <= value[5] < 1
    assert value[6] == {"x": 3}
    assert value[7] == "failed with 3"
    assert value[8] == 8
    assert value[9] == {"name": "y", "payload": 5}
    assert value[10:] == [10, int(clock_for(2).timestamp() * 1000)]
    # every step call ran exactly once although the script was replayed 3 times
    assert calls == Counter({"inc": 3, "double": 2, "fail": 1})
    types = [e.type for e in result.state.journal]
    assert types == ["step", "step", "step", "resume", "event", "step_error", "step", "event", "step"]


def test_replay_from_every_intermediate_state_gives_the_same_result():
    final, _, checkpoints = drive_full()
    assert len(checkpoints) >= 10
    for phase, index, state in checkpoints:
        clock, calls = FakeClock(), Counter()
        engine = make_engine(clock, calls)
        text = state.serialize()  # also goes through the serialised form
        result, current = None, text
        if phase == "during":
            # the process "died" right after this completion was persisted
            clock.now = clock_for(index)
            result = engine.recover_workflow(SCRIPT, text)
            current = result.state
        for i in range(index + 1, len(ACTIONS)):
            clock.now = clock_for(i)
            result = apply(engine, current, i)
            current = result.state
        assert result.status is WorkflowStatus.COMPLETED, (phase, index)
        assert result.value == final.value, (phase, index)
        assert result.state.journal == final.state.journal, (phase, index)
        # steps already in the journal were not executed again
        journaled = Counter(e.name for e in state.journal if e.type in ("step", "step_error"))
        total = Counter({"inc": 3, "double": 2, "fail": 1})
        assert calls == total - journaled, (phase, index)


def test_replaying_a_completed_state_calls_no_step_and_keeps_the_value(clock):
    final, _, _ = drive_full()
    calls = Counter()
    clock.now = T0 + timedelta(days=30)  # time read on replay comes from the journal
    engine = make_engine(clock, calls)
    again = engine.recover_workflow(SCRIPT, final.state)
    assert again.status is WorkflowStatus.COMPLETED
    assert again.value == final.value
    assert again.state.journal == final.state.journal
    assert sum(calls.values()) == 0


# -- drift ---------------------------------------------------------------------------
def _engine_with(clock, *names):
    engine = WorkflowEngine(clock=clock)
    for name in names:
        engine.register_step_function(name, lambda *a, _n=name: _n)
    return engine


def _drift(result) -> JournalCompatibilityError:
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, JournalCompatibilityError), result.error
    return result.error


def test_drift_step_renamed(clock):
    engine = _engine_with(clock, "a", "b", "renamed")
    v1 = "async function main() { await a(); await b(); await sleep('1h'); return 1; }"
    v2 = "async function main() { await a(); await renamed(); await sleep('1h'); return 1; }"
    state = engine.run_workflow(v1, "main").state
    err = _drift(engine.resume_workflow(v2, state))
    assert err.slot_index == 1
    assert (err.expected_type, err.expected_name) == ("step", "b")
    assert (err.encountered_type, err.encountered_name) == ("step", "renamed")
    assert "'b'" in str(err) and "'renamed'" in str(err)


def test_drift_step_replaced_by_suspend(clock):
    engine = _engine_with(clock, "a", "b")
    v1 = "async function main() { await a(); await b(); await sleep('1h'); return 1; }"
    v2 = "async function main() { await a(); await sleep('5m'); await sleep('1h'); return 1; }"
    state = engine.run_workflow(v1, "main").state
    err = _drift(engine.resume_workflow(v2, state))
    assert err.slot_index == 1
    assert (err.expected_type, err.expected_name) == ("step", "b")
    assert (err.encountered_type, err.encountered_name) == ("suspend", "sleep")
    assert "sleep" in err.message


def test_drift_script_finishes_with_entries_left(clock):
    engine = _engine_with(clock, "a", "b")
    v1 = "async function main() { await a(); await b(); await sleep('1h'); return 1; }"
    v2 = "async function main() { await a(); return 'early'; }"
    state = engine.run_workflow(v1, "main").state
    result = engine.resume_workflow(v2, state)
    err = _drift(result)
    assert err.slot_index == 1
    assert (err.expected_type, err.expected_name) == ("step", "b")
    assert err.encountered_type is None and err.encountered_name is None
    assert "finished" in err.message
    assert result.value is None  # the cached value is not handed out


def test_drift_nothing_scheduled_at_slot(clock):
    engine = _engine_with(clock, "a", "b")
    v1 = "async function main() { await a(); await b(); await sleep('1h'); return 1; }"
    v2 = "async function main() { await a(); await new Promise(() => {}); }"
    state = engine.run_workflow(v1, "main").state
    err = _drift(engine.resume_workflow(v2, state))
    assert err.slot_index == 1 and err.encountered_name is None


def test_drift_event_name_changed(clock):
    engine = _engine_with(clock)
    v1 = "async function main() { const p = await waitForEvent('go'); await sleep('1h'); return p; }"
    v2 = "async function main() { const p = await waitForEvent('start'); await sleep('1h'); return p; }"
    state = engine.raise_event(v1, engine.run_workflow(v1, "main").state, "go", 1).state
    err = _drift(engine.resume_workflow(v2, state))
    assert err.slot_index == 0
    assert err.expected_name == "waitForEvent" and err.encountered_name == "waitForEvent"
    assert "'go'" in err.message and "start" in err.message


def test_drift_step_arguments_may_change_but_order_may_not(clock):
    """Same kind and name at the slot is compatible; swapping two calls is not."""
    engine = _engine_with(clock, "a", "b")
    v1 = "async function main() { await a(1); await b(); await sleep('1h'); return 'v1'; }"
    v1b = "async function main() { await a(2); await b(); await sleep('1h'); return 'v1b'; }"
    swapped = "async function main() { await b(); await a(1); await sleep('1h'); return 1; }"
    state = engine.run_workflow(v1, "main").state
    ok = engine.resume_workflow(v1b, state)
    assert ok.status is WorkflowStatus.COMPLETED and ok.value == "v1b"
    err = _drift(engine.resume_workflow(swapped, state))
    assert err.slot_index == 0 and err.expected_name == "a" and err.encountered_name == "b"


@pytest.mark.parametrize("flip", [False, True])
def test_drift_keeps_the_journal_in_the_faulted_state(clock, flip):
    engine = _engine_with(clock, "a", "b")
    v1 = "async function main() { await a(); await sleep('1h'); return 1; }"
    v2 = "async function main() { await b(); await sleep('1h'); return 1; }"
    state = engine.run_workflow(v1, "main").state
    result = engine.resume_workflow(v2, state.serialize() if flip else state)
    _drift(result)
    assert result.state.journal == state.journal

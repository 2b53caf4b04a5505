"""Issue 20 in the engine: patched/deprecatePatch, defineQuery, cancellation into the script."""

from __future__ import annotations

from typing import Any

import pytest

from jsflow import (
    Cancel,
    JournalCompatibilityError,
    Limits,
    QueryError,
    QueryNotFoundError,
    ResourceLimitError,
    WorkflowCancelledError,
    WorkflowEngine,
    WorkflowStatus,
)

OLD = """
async function main() { await charge(1); const v = await waitForEvent('go'); return v; }
"""
NEW = """
async function main() {
  await charge(1);
  if (patched('fraud-check')) { await check(1); }
  const v = await waitForEvent('go');
  return v;
}
"""
DEPRECATED = """
async function main() {
  await charge(1);
  deprecatePatch('fraud-check');
  await check(1);
  const v = await waitForEvent('go');
  return v;
}
"""


@pytest.fixture
def calls(engine: WorkflowEngine) -> list[Any]:
    seen: list[Any] = []
    engine.register_step_function("charge", lambda x: seen.append(("charge", x)) or x)
    engine.register_step_function("check", lambda x: seen.append(("check", x)) or x)
    engine.register_step_function("refund", lambda x: seen.append(("refund", x)) or "refunded")
    return seen


# -- patches ---------------------------------------------------------------------------------
def test_patched_is_false_on_a_journal_from_before_the_patch(
    engine: WorkflowEngine, calls: list[Any]
) -> None:
    old = engine.run_workflow(OLD)
    assert old.status is WorkflowStatus.SUSPENDED
    done = engine.raise_event(NEW, old.state, "go", 5)
    assert done.status is WorkflowStatus.COMPLETED and done.value == 5
    assert ("check", 1) not in calls  # the old run took the old path
    assert engine.replay(NEW, old.state).patches == []


def test_patched_is_true_live_and_records_a_marker(engine: WorkflowEngine, calls: list[Any]) -> None:
    res = engine.run_workflow(NEW)
    assert [(e.type, e.name) for e in res.state.journal] == [
        ("step", "charge"),
        ("patch", "fraud-check"),
        ("step", "check"),
    ]
    again = engine.replay(NEW, res.state)
    assert again.ok and again.patches == ["fraud-check"]
    done = engine.raise_event(NEW, res.state, "go", "x")
    assert done.status is WorkflowStatus.COMPLETED and calls.count(("check", 1)) == 1


def test_removing_a_patch_call_is_drift(engine: WorkflowEngine, calls: list[Any]) -> None:
    res = engine.run_workflow(NEW)
    outcome = engine.replay(OLD, res.state)
    assert not outcome.ok
    assert isinstance(outcome.error, JournalCompatibilityError)
    assert "fraud-check" in str(outcome.error)


def test_deprecate_patch_accepts_both_histories(engine: WorkflowEngine, calls: list[Any]) -> None:
    with_marker = engine.run_workflow(NEW).state
    calls.clear()
    old_path_new_step = engine.run_workflow(DEPRECATED)
    assert old_path_new_step.status is WorkflowStatus.SUSPENDED
    assert all(e.type != "patch" for e in old_path_new_step.state.journal)  # nothing recorded live
    assert engine.replay(DEPRECATED, with_marker).ok
    assert engine.replay(DEPRECATED, old_path_new_step.state).ok
    assert engine.raise_event(DEPRECATED, with_marker, "go", 1).status is WorkflowStatus.COMPLETED


def test_patched_before_the_first_wait_on_a_journal_less_suspension(engine: WorkflowEngine) -> None:
    old = engine.run_workflow("async function main() { return await waitForEvent('go'); }")
    new = "async function main() { if (patched('p')) return 'new'; return await waitForEvent('go'); }"
    assert engine.replay(new, old.state).ok
    assert engine.raise_event(new, old.state, "go", "old").value == "old"
    assert engine.run_workflow(new).value == "new"


def test_patched_name_must_be_a_string(engine: WorkflowEngine) -> None:
    res = engine.run_workflow("function main() { return patched(3); }")
    assert res.status is WorkflowStatus.FAULTED and "patch name" in str(res.error)


# -- queries ---------------------------------------------------------------------------------
QUERIES = """
let stage = 'start';
const approvers = [];
defineQuery('status', (extra) => ({ stage, approvers, extra }));
defineQuery('stepper', () => charge(3));
defineQuery('waiter', () => sleep('1s'));
defineQuery('async', async () => 1);
defineQuery('thrower', () => { throw new RangeError('nope'); });
defineQuery('spin', () => { for (;;) {} });
async function main() {
  stage = 'charging';
  await charge(1);
  stage = 'approving';
  approvers.push(await waitForEvent('approve'));
  approvers.push(await waitForEvent('approve'));
  stage = 'done';
  return approvers;
}
"""


def test_query_answers_from_the_replayed_state(engine: WorkflowEngine, calls: list[Any]) -> None:
    first = engine.run_workflow(QUERIES)
    one = engine.raise_event(QUERIES, first.state, "approve", "ann")
    before = one.state.serialize()
    assert engine.query(QUERIES, one.state, "status", 7) == {
        "stage": "approving",
        "approvers": ["ann"],
        "extra": 7,
    }
    assert one.state.serialize() == before  # nothing journaled
    assert calls == [("charge", 1)]  # no step ran again
    done = engine.raise_event(QUERIES, one.state, "approve", "bob")
    assert engine.query(QUERIES, done.state, "status")["stage"] == "done"
    assert engine.list_queries(QUERIES, done.state) == [
        "status",
        "stepper",
        "waiter",
        "async",
        "thrower",
        "spin",
    ]


@pytest.mark.parametrize("name", ["stepper", "waiter", "async"])
def test_a_query_that_schedules_or_is_async_is_a_type_error(
    engine: WorkflowEngine, calls: list[Any], name: str
) -> None:
    state = engine.run_workflow(QUERIES).state
    with pytest.raises(QueryError) as info:
        engine.query(QUERIES, state, name)
    assert info.value.js_name == "TypeError"
    assert info.value.name == name


def test_a_throwing_query_and_an_unknown_one(engine: WorkflowEngine, calls: list[Any]) -> None:
    state = engine.run_workflow(QUERIES).state
    with pytest.raises(QueryError) as info:
        engine.query(QUERIES, state, "thrower")
    assert info.value.js_name == "RangeError" and "nope" in info.value.message
    with pytest.raises(QueryNotFoundError) as missing:
        engine.query(QUERIES, state, "nope")
    assert "status" in missing.value.defined


def test_a_query_is_bounded_by_the_time_budget(calls: list[Any]) -> None:
    engine = WorkflowEngine(limits=Limits(time=0.3))
    engine.register_step_function("charge", lambda x: x)
    state = engine.run_workflow(QUERIES).state
    with pytest.raises(QueryError) as info:
        engine.query(QUERIES, state, "spin")
    assert isinstance(info.value.error, ResourceLimitError)


# -- cancellation ----------------------------------------------------------------------------
CLEANUP = """
let log = [];
defineQuery('log', () => log);
async function main() {
  await charge(1);
  try {
    await Promise.all([waitForEvent('approve'), sleep('1d')]);
  } catch (e) {
    log.push(e.name + ':' + e.reason + ':' + (e instanceof CancelledError));
    await refund(1);
    try { await waitForEvent('again'); } catch (e2) { log.push('again:' + e2.name); }
    return 'swallowed';
  }
}
"""


def test_cancel_rejects_pending_waits_and_runs_cleanup(engine: WorkflowEngine, calls: list[Any]) -> None:
    state = engine.run_workflow(CLEANUP).state
    res = engine.cancel_workflow(CLEANUP, state, "customer left")
    assert res.status is WorkflowStatus.CANCELLED
    assert isinstance(res.error, WorkflowCancelledError)
    assert res.error.reason == "customer left" and res.error.cleanup_cut_short is None
    assert res.waits == []
    assert [(e.type, e.name) for e in res.state.journal] == [
        ("step", "charge"),
        ("cancel", "cancel"),
        ("step", "refund"),
    ]
    assert calls == [("charge", 1), ("refund", 1)]
    assert engine.query(CLEANUP, res.state, "log") == [
        "CancelledError:customer left:true",
        "again:CancelledError",
    ]


def test_cancel_through_a_live_run_and_after_it_finishes(engine: WorkflowEngine, calls: list[Any]) -> None:
    state = engine.run_workflow(CLEANUP).state
    with engine.open_run(CLEANUP, state) as run:
        res = run.advance(Cancel())
        assert res.status is WorkflowStatus.CANCELLED and res.error is not None
        assert run.finished


def test_cleanup_over_100_entries_is_cut_short(engine: WorkflowEngine, calls: list[Any]) -> None:
    script = (
        "async function main() { try { await waitForEvent('x'); } finally { for (;;) await charge(0); } }"
    )
    state = engine.run_workflow(script).state
    res = engine.cancel_workflow(script, state, "stop")
    assert res.status is WorkflowStatus.CANCELLED
    assert res.error is not None and "100" in (res.error.cleanup_cut_short or "")
    assert len(res.state.journal) == 101  # the cancellation and 100 cleanup entries


def test_cleanup_over_the_time_budget_is_cut_short(calls: list[Any]) -> None:
    engine = WorkflowEngine(limits=Limits(time=0.3))
    script = "async function main() { try { await waitForEvent('x'); } catch (e) { for (;;) {} } }"
    state = engine.run_workflow(script).state
    res = engine.cancel_workflow(script, state)
    assert res.status is WorkflowStatus.CANCELLED
    assert res.error is not None and res.error.cleanup_cut_short


def test_a_rethrown_cancellation_still_ends_cancelled(engine: WorkflowEngine) -> None:
    script = "async function main() { await waitForEvent('x'); return 1; }"
    state = engine.run_workflow(script).state
    res = engine.cancel_workflow(script, state, "r")
    assert res.status is WorkflowStatus.CANCELLED and res.error is not None
    assert engine.replay(script, res.state).ok


def test_patched_inside_a_js_step_body_is_refused(engine: WorkflowEngine) -> None:
    script = "async function main() { return await step('s', async () => patched('p')); }"
    res = engine.run_workflow(script)
    assert res.status is WorkflowStatus.FAULTED and "inside a step() body" in str(res.error)

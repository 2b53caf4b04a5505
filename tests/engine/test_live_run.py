"""The public live-run API: open, advance, keep open while suspended, close."""

from __future__ import annotations

import time

import pytest

from jsflow import (
    Extension,
    InvalidPayloadError,
    JournalWrite,
    Limits,
    PayloadTooLargeError,
    RaiseEvent,
    ResourceLimitError,
    Resume,
    RunClosedError,
    RunFinishedError,
    Timeout,
    WaitNotPendingError,
    WorkflowEngine,
    WorkflowStatus,
    validate_payload,
)

APPROVAL = """
async function main(x) {
  const a = await double(x);
  const ok = await approve(a);
  const e = await waitForEvent('go', { timeout: '1h' }).catch(err => err.name);
  return [a, ok, e];
}
"""


def make_engine() -> tuple[WorkflowEngine, list[int]]:
    calls: list[int] = []
    engine = WorkflowEngine()

    @engine.step()
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    engine.register_suspend_function("approve")
    return engine, calls


def test_a_live_run_is_advanced_without_replaying() -> None:
    engine, calls = make_engine()
    writes: list[JournalWrite] = []
    with engine.open_run(APPROVAL, engine.new_state("main", 21)) as run:
        first = run.advance(on_journal=writes.append)
        assert first.status is WorkflowStatus.SUSPENDED
        assert [w.function_name for w in run.waits] == ["approve"]
        second = run.advance(Resume(True), on_journal=writes.append)
        assert second.status is WorkflowStatus.SUSPENDED
        assert second.waits[0].event_names == ["go"]
        third = run.advance(RaiseEvent("go", "now"), on_journal=writes.append)
    assert third.status is WorkflowStatus.COMPLETED and third.value == [42, True, "now"]
    assert calls == [21]  # the step ran once, and nothing was replayed
    assert [w.index for w in writes] == [0, 1, 2]
    assert [w.entry.type for w in writes] == ["step", "resume", "event"]
    assert writes[-1].state().journal == third.state.journal


def test_the_same_result_as_one_shot_calls() -> None:
    engine, _ = make_engine()
    one = engine.run_workflow(APPROVAL, "main", 1)
    one = engine.resume_workflow(APPROVAL, one.state, False)
    one = engine.timeout_event(APPROVAL, one.state)
    with engine.open_run(APPROVAL, engine.new_state("main", 1, run_id=one.state.run_id)) as run:
        run.advance()
        run.advance(Resume(False))
        live = run.advance(Timeout())
    assert live.value == one.value == [2, False, "TimeoutError"]


def test_a_run_opened_on_a_stored_state_replays_it() -> None:
    engine, calls = make_engine()
    suspended = engine.run_workflow(APPROVAL, "main", 5)
    with engine.open_run(APPROVAL, suspended.state.serialize()) as run:
        assert run.journal_length == 1 and not run.finished
        done = run.advance(Resume("yes"))
    assert done.status is WorkflowStatus.SUSPENDED and calls == [5]


def test_use_after_close_and_after_finish_raise() -> None:
    engine, _ = make_engine()
    run = engine.open_run("async function main() { return 1; }", engine.new_state())
    assert run.advance().value == 1
    with pytest.raises(RunFinishedError):
        run.advance()
    run.close()
    run.close()  # idempotent
    assert run.closed
    with pytest.raises(RunClosedError):
        run.advance()
    with pytest.raises(RunClosedError):
        _ = run.state


def test_invalid_actions_change_nothing() -> None:
    engine, _ = make_engine()
    engine.limits = Limits(payload=1000)
    with engine.open_run(APPROVAL, engine.new_state("main", 1)) as run:
        run.advance()
        with pytest.raises(WaitNotPendingError):
            run.advance(Resume(1, wait_id=99))
        with pytest.raises(InvalidPayloadError):
            run.advance(Resume(_nested(200)))
        with pytest.raises(PayloadTooLargeError):
            run.advance(Resume("x" * 2000))
        assert run.advance(Resume(True)).status is WorkflowStatus.SUSPENDED


def test_the_time_budget_is_per_advance() -> None:
    script = """
    async function main(n) {
      for (let i = 0; i < 3; i++) { let k = 0; while (k < n) k++; await tick(); }
      return 'done';
    }"""
    probe = WorkflowEngine().register_suspend_function("tick")
    began = time.perf_counter()
    probe.run_workflow(script, "main", 2_000_000)
    one_pass = time.perf_counter() - began  # the first of three busy loops
    # each advance burns about half its budget; the three together would not fit in one
    engine = WorkflowEngine(limits=Limits(time=one_pass * 2)).register_suspend_function("tick")
    with engine.open_run(script, engine.new_state("main", 2_000_000)) as run:
        assert run.advance().status is WorkflowStatus.SUSPENDED
        assert run.advance(Resume(None)).status is WorkflowStatus.SUSPENDED
        assert run.advance(Resume(None)).status is WorkflowStatus.SUSPENDED
        assert run.advance(Resume(None)).value == "done"


def test_journal_writes_are_charged_to_the_budget() -> None:
    engine = WorkflowEngine(limits=Limits(time=0.3))
    engine.register_step_function("noop", lambda: None)
    slow = []

    def on_journal(write: JournalWrite) -> None:
        time.sleep(0.01)  # a slow store
        slow.append(write.index)

    with engine.open_run("async function main() { for (;;) await noop(); }", engine.new_state()) as run:
        result = run.advance(on_journal=on_journal)
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, ResourceLimitError) and result.error.limit == "time"
    assert 10 <= len(slow) <= 60


def test_check_and_replay_are_public() -> None:
    engine, _ = make_engine()
    ok = engine.check(APPROVAL)
    assert ok.ok and ok.kind == "script" and ok.entry_type == "function"
    bad = engine.check("async function other() {}\nlet x = ;")
    assert not bad.ok and bad.error is not None and "line 2" in str(bad.error)
    missing = engine.check("async function main() { await getApproval(); await double(1); }")
    assert missing.ok and missing.undefined_calls == ["getApproval"]
    state = engine.run_workflow(APPROVAL, "main", 1).state
    assert engine.replay(APPROVAL, state).ok
    drift = engine.replay(APPROVAL.replace("await double(x)", "await approve(x)"), state)
    assert not drift.ok and drift.error is not None and "slot 0" in str(drift.error)


def test_extensions_are_per_run_and_not_nameable_by_scripts() -> None:
    engine = WorkflowEngine()
    ext = Extension(
        name="greet",
        js="function (ops) { globalThis.greet = (who) => ops.__jgreet_make(who); }",
        steps={"__jgreet_make": lambda who: f"hello {who}"},
        globals=("greet",),
    )
    script = (
        "async function main() { "
        "return [await greet('ann'), typeof __jgreet_make, typeof __jsflow_ext_ops]; }"
    )
    with engine.open_run(script, engine.new_state(), extensions=[ext]) as run:
        assert run.advance().value == ["hello ann", "undefined", "undefined"]
    without = engine.run_workflow(script)  # the engine itself never changed
    assert without.status is WorkflowStatus.FAULTED and "greet" in str(without.error)
    with pytest.raises(ValueError):
        Extension(name="bad", js="function (ops) {}", steps={"visible": lambda: 1})
    with pytest.raises(ValueError):
        engine.register_step_function("__jhook_create", lambda: 1)
    js_step = "async function main() { return await step('__jhook_create', async () => 1); }"
    refused = engine.run_workflow(js_step)
    assert refused.status is WorkflowStatus.FAULTED and "reserved" in str(refused.error)


def test_one_payload_validator() -> None:
    assert validate_payload({"a": [1, "é"]}, limit=100) == '{"a":[1,"é"]}'
    for bad in (_nested(200), float("nan"), object(), "\ud800", 10**5000):
        with pytest.raises(InvalidPayloadError) as err:
            validate_payload(bad, limit=10**9, what="the event payload")
        assert err.value.what == "the event payload" and isinstance(err.value, TypeError)
    with pytest.raises(PayloadTooLargeError):
        validate_payload("x" * 100, limit=10)


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value

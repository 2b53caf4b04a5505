"""Regression tests from a red-team pass: hostile scripts must end in a clean
FAULTED (or a catchable JS error), never a raw Python exception, a forged
command, or a state the host cannot store."""

from __future__ import annotations

import pytest

from jsflow import (
    Limits,
    PayloadTooLargeError,
    ScriptError,
    WorkflowEngine,
    WorkflowState,
    WorkflowStatus,
)
from jsflow._fetch import FetchRefusedError, HostPolicy

NEST = "let a = []; for (let i = 0; i < 1500; i++) a = [a];"


def _engine(engine: WorkflowEngine) -> WorkflowEngine:
    return engine.register_step_function("echo", lambda v: v).register_step_function(
        "add", lambda a, b: a + b
    )


def test_redteam_object_prototype_setter_cannot_forge_a_schedule_command(engine: WorkflowEngine) -> None:
    # a 'duration' setter ran with the sleep's command as `this` and turned it into a step call
    script = """
    Object.defineProperty(Object.prototype, 'duration', {
      set(v) { this.kind = 'step'; this.name = 'add'; this.args = [40, 2]; }, configurable: true });
    async function main() { return await sleep('1s'); }
    """
    res = _engine(engine).run_workflow(script)
    assert res.status is WorkflowStatus.SUSPENDED
    assert res.suspension is not None and res.suspension.function_name == "sleep"
    assert res.state.journal == []


def test_redteam_object_prototype_setter_cannot_forge_a_jsstep_command(engine: WorkflowEngine) -> None:
    script = """
    Object.defineProperty(Object.prototype, 'json', { configurable: true, set(v) {
      Object.defineProperty(this, 'json', { value: v, enumerable: true }); this.slot = 'x'; } });
    async function main() { return await step('s', async () => 99); }
    """
    res = engine.run_workflow(script)
    assert res.status is WorkflowStatus.COMPLETED and res.value == 99


@pytest.mark.parametrize(
    "tail",
    [
        "return await echo(a);",
        "return a;",
        "continueAsNew(a);",
        "return await step('s', async () => a);",
    ],
)
def test_redteam_deep_values_fault_cleanly(engine: WorkflowEngine, tail: str) -> None:
    # deep enough for JS, too deep for Python's json (RecursionError) and pydantic
    res = _engine(engine).run_workflow(f"async function main() {{ {NEST} {tail} }}")
    assert res.status is WorkflowStatus.FAULTED
    assert isinstance(res.error, ScriptError) and "levels deep" in str(res.error)


def test_redteam_state_stays_serialisable(engine: WorkflowEngine) -> None:
    script = """async function main() {
      let a = []; for (let i = 0; i < 300; i++) a = [a];
      try { await step('s', async () => a); } catch (e) { await waitForEvent('go'); return e.name; }
    }"""
    res = engine.run_workflow(script)
    assert res.status is WorkflowStatus.SUSPENDED
    state = WorkflowState.deserialize(res.state.serialize())
    assert engine.raise_event(script, state, "go").value == "TypeError"


def test_redteam_deep_event_payload_is_refused_up_front(engine: WorkflowEngine) -> None:
    res = engine.run_workflow("async function main() { return await waitForEvent('e'); }")
    deep: list = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(TypeError, match="levels deep"):
        engine.raise_event("async function main() { return await waitForEvent('e'); }", res.state, "e", deep)


@pytest.mark.parametrize("duration", ["1e308", "'9999999d'", "'P9999999999W'", "8.64e15"])
def test_redteam_far_future_sleep_faults(engine: WorkflowEngine, duration: str) -> None:
    res = engine.run_workflow(f"async function main() {{ await sleep({duration}); }}")
    assert res.status is WorkflowStatus.FAULTED
    assert isinstance(res.error, ScriptError) and "longer than" in str(res.error)


def test_redteam_nan_sleep_is_a_type_error(engine: WorkflowEngine) -> None:
    res = engine.run_workflow("async function main() { await sleep(NaN); }")
    assert res.status is WorkflowStatus.FAULTED and "finite" in str(res.error)


def test_redteam_huge_backoff_ends_retries(engine: WorkflowEngine) -> None:
    script = """async function main() {
      try { await step('s', async () => { throw new Error('x'); }, { retries: 3, backoff: 1e300 }); }
      catch (e) { return e.message; }
    }"""
    res = engine.run_workflow(script)
    assert res.status is WorkflowStatus.COMPLETED and res.value == "x"


def test_redteam_tampered_math_pow_cannot_break_retry(engine: WorkflowEngine) -> None:
    script = """async function main() {
      Math.pow = () => 1e308;  // a delay no datetime can hold
      try { await step('s', async () => { throw new Error('x'); }, { retries: 1, backoff: 1 }); }
      catch (e) { return e.message; }
    }"""
    res = engine.run_workflow(script)
    assert res.status is WorkflowStatus.COMPLETED and res.value == "x"


def test_redteam_continue_as_new_respects_payload_limit(clock) -> None:
    engine = WorkflowEngine(clock=clock, limits=Limits(payload=1000))
    res = engine.run_workflow("async function main() { continueAsNew('x'.repeat(5000)); }")
    assert res.status is WorkflowStatus.FAULTED
    assert isinstance(res.error, PayloadTooLargeError)


def test_redteam_out_of_memory_while_answering_is_a_memory_fault(clock) -> None:
    # the queue's reply ran out of memory inside the bridge's error path: QuickJS raised `null`
    engine = _engine(WorkflowEngine(clock=clock, limits=Limits(time=10)))
    res = engine.run_workflow("async function main() { for (let i = 0; i < 200000; i++) echo(i); }")
    assert res.status is WorkflowStatus.FAULTED
    assert res.error is not None and getattr(res.error, "limit", None) == "memory"


def test_redteam_console_log_of_cyclic_array(engine: WorkflowEngine) -> None:
    lines: list[str] = []
    engine.on_console = lambda level, msg: lines.append(msg)
    res = engine.run_workflow("async function main() { const a = []; a[0] = a; console.log(a); return 1; }")
    assert res.status is WorkflowStatus.COMPLETED and lines == ["[unserialisable array]"]


@pytest.mark.parametrize("host", ["64:ff9b::7f00:1", "2002:7f00:1::", "64:ff9b::a9fe:a9fe"])
def test_redteam_fetch_refuses_ipv4_embedded_in_ipv6(host: str) -> None:
    policy = HostPolicy.from_allow_hosts(None)
    import ipaddress

    with pytest.raises(FetchRefusedError):
        policy.check_address(host, ipaddress.ip_address(host))
    policy.check_address("64:ff9b::808:808", ipaddress.ip_address("64:ff9b::808:808"))


def test_redteam_step_arguments_respect_the_payload_limit(clock) -> None:
    calls: list[int] = []
    engine = WorkflowEngine(clock=clock, limits=Limits(payload=1000))
    engine.register_step_function("echo", lambda text: calls.append(len(text)))
    script = (
        "async function main() { try { await echo('x'.repeat(5000)); return 'ran'; }"
        " catch (e) { return e.name; } }"
    )
    assert engine.run_workflow(script).value == "RangeError"
    assert calls == []  # the oversized argument never reached Python


def test_redteam_replaced_promise_cannot_hide_the_outcome(engine: WorkflowEngine) -> None:
    engine.register_step_function("one", lambda: 1)
    script = "async function main() { const v = await one(); globalThis.Promise = null; return v + 1; }"
    assert engine.run_workflow(script).value == 2


def test_redteam_console_flood_is_capped_per_call(clock) -> None:
    lines: list[tuple[str, str]] = []
    engine = WorkflowEngine(clock=clock, on_console=lambda level, msg: lines.append((level, msg)))
    result = engine.run_workflow(
        "async function main() { for (let i = 0; i < 50000; i++) console.log(i); return 1; }"
    )
    assert result.value == 1
    assert len(lines) == 10001
    assert lines[-1][0] == "warn" and "truncated" in lines[-1][1]

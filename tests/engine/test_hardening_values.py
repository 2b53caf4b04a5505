"""Values at the boundary: lone surrogates round-trip, huge integers and huge
error messages are refused or capped, forged state is an InvalidStateError."""

from __future__ import annotations

import json

import pytest

from jsflow import (
    InvalidPayloadError,
    InvalidStateError,
    RetryableStepError,
    WorkflowEngine,
    WorkflowState,
    WorkflowStatus,
)

LONE = "\ud800"


def _round_trip(state: WorkflowState) -> WorkflowState:
    text = state.serialize()
    back = WorkflowState.deserialize(text)
    assert back == state
    return back


def test_lone_surrogate_returned_by_the_script(engine: WorkflowEngine):
    result = engine.run_workflow("function main() { return 'a\\ud800b'; }")
    assert result.status is WorkflowStatus.COMPLETED
    assert result.value == f"a{LONE}b"
    _round_trip(result.state)


def test_lone_surrogate_as_an_event_name(engine: WorkflowEngine):
    # a script may wait for such a name; values from outside are refused (jsflow._payload)
    script = "async function main() { return await waitForEvent('\\ud800'); }"
    result = engine.run_workflow(script)
    assert result.waits[0].event_names == [LONE]
    for name, payload in ((LONE, "ok"), ("x", {"k": LONE})):
        with pytest.raises(InvalidPayloadError):
            engine.raise_event(script, _round_trip(result.state), name, payload)


def test_lone_surrogate_returned_by_a_step_survives_replay(engine: WorkflowEngine):
    engine.register_step_function("odd", lambda: f"x{LONE}")
    script = "async function main() { const v = await odd(); await sleep('1s'); return v + '!'; }"
    result = engine.run_workflow(script)
    state = _round_trip(result.state)
    result = engine.resume_workflow(script, state.serialize())
    assert result.value == f"x{LONE}!"


def test_huge_integer_from_a_step_is_a_catchable_type_error(engine: WorkflowEngine):
    engine.register_step_function("huge", lambda: 10**5000)
    engine.register_step_function("nested", lambda: {"n": 10**400})
    script = """
    async function main() {
      const out = [];
      for (const f of [huge, nested]) { try { await f(); out.push('ok'); } catch (e) { out.push(e.name); } }
      return out;
    }
    """
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value == ["TypeError", "TypeError"]
    _round_trip(result.state)


def test_python_step_error_message_is_capped(engine: WorkflowEngine):
    def boom() -> None:
        raise ValueError("x" * 5_000_000)

    def retry_later() -> None:
        raise RetryableStepError("y" * 5_000_000, retry_after=60)

    engine.register_step_function("boom", boom).register_step_function("later", retry_later)
    script = """
    async function main() {
      let n = 0;
      try { await boom(); } catch (e) { n = e.message.length; }
      await later();
      return n;
    }
    """
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.SUSPENDED
    assert len(result.state.serialize()) < 10_000
    [entry] = result.state.journal
    assert entry.error is not None and len(entry.error["message"]) < 2100
    assert "truncated" in entry.error["message"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("waits", 0, "resume_at_ms"), 10**20),
        (("waits", 0, "resume_at_ms"), 1e20),
        (("started_at_ms",), 10**20),
        (("started_at_ms",), -(10**20)),
        (("waits", 0, "slot"), 2**64),
    ],
)
def test_forged_times_are_invalid_state(engine: WorkflowEngine, path, value):
    script = "async function main() { await sleep('1s'); }"
    raw = json.loads(engine.run_workflow(script).state.serialize())
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidStateError):
        engine.resume_workflow(script, json.dumps(raw))


def test_deeply_nested_state_is_invalid_state(engine: WorkflowEngine):
    script = "async function main() { await sleep('1s'); }"
    text = engine.run_workflow(script).state.serialize()
    deep = text.replace('"arguments":[]', '"arguments":[' + "[" * 100_000 + "]" * 100_000 + "]")
    with pytest.raises(InvalidStateError):
        engine.resume_workflow(script, deep)
    with pytest.raises(InvalidStateError):
        WorkflowState.deserialize(deep)

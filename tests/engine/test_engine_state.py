"""State serialisation and validation, payload limits, the result object,
the bound workflow, the async API and parse_duration."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from engine_helpers import T0_MS

from jsflow import (
    InvalidStateError,
    JournalEntry,
    Limits,
    PayloadTooLargeError,
    StateVersionError,
    Wait,
    WorkflowEngine,
    WorkflowError,
    WorkflowResult,
    WorkflowState,
    WorkflowStatus,
    parse_duration,
)

SCRIPT = "async function main(x) { const e = await waitForEvent('go'); await sleep('1h'); return [x, e]; }"


# -- serialisation ---------------------------------------------------------------------
def test_serialize_round_trips_and_has_version(engine):
    result = engine.raise_event(
        SCRIPT, engine.run_workflow(SCRIPT, "main", "a", metadata={"k": "v"}).state, "go", {"n": 1}
    )
    state = result.state
    text = state.serialize()
    assert '"version":1' in text and " " not in text.replace('" ', "")[:20]
    assert WorkflowState.CURRENT_VERSION == 1
    back = WorkflowState.deserialize(text)
    assert back == state
    assert back.serialize() == text
    assert isinstance(back.journal[0], JournalEntry)
    assert back.metadata == {"k": "v"} and back.arguments == ["a"] and back.started_at_ms == T0_MS
    assert "script" not in json.loads(text)
    # the serialised text is accepted wherever a state is
    assert engine.resume_workflow(SCRIPT, text).value == ["a", {"n": 1}]
    assert WorkflowState.deserialize(text.encode()) == state


def test_unicode_survives_the_state(engine):
    weird = "naïve ☃ \U0001f600 \x00 end"
    result = engine.raise_event(SCRIPT, engine.run_workflow(SCRIPT, "main", weird).state, "go", weird)
    again = engine.resume_workflow(SCRIPT, result.state.serialize())
    assert again.value == [weird, weird]


def _valid() -> dict:
    return {
        "version": 1,
        "run_id": "r",
        "entry_point": "main",
        "arguments": [],
        "started_at_ms": T0_MS,
        "journal": [
            {"slot": 0, "type": "event", "name": "waitForEvent", "result": 1, "at_ms": T0_MS, "event": "go"}
        ],
        "metadata": {},
    }


def _mutated(**changes):
    doc = _valid()
    for key, value in changes.items():
        if value is KeyError:
            doc.pop(key)
        else:
            doc[key] = value
    return json.dumps(doc)


MALFORMED = [
    "{",
    "",
    "null",
    "[]",
    '"text"',
    _mutated(version="1"),
    _mutated(version=KeyError),
    _mutated(version=0),
    _mutated(run_id=KeyError),
    _mutated(started_at_ms=KeyError),
    _mutated(run_id=5),
    _mutated(arguments="nope"),
    _mutated(started_at_ms="soon"),
    _mutated(journal={"0": 1}),
    _mutated(journal=[{"slot": -1, "type": "step", "name": "a", "at_ms": 0}]),
    _mutated(journal=[{"slot": 0, "type": "teleport", "name": "a", "at_ms": 0}]),
    _mutated(journal=[{"slot": 0, "type": "step", "name": "a"}]),
    _mutated(journal=[{"slot": 0, "type": "step", "name": "a", "at_ms": 0, "junk": 1}]),
    _mutated(metadata={"k": 1}),
    _mutated(junk="extra"),
]


def test_the_valid_document_is_valid(engine):
    state = WorkflowState.deserialize(_mutated())
    assert engine.recover_workflow(SCRIPT, state).suspension.function_name == "sleep"


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_state_raises_invalid_state_error(engine, text):
    with pytest.raises(InvalidStateError) as info:
        WorkflowState.deserialize(text)
    assert isinstance(info.value, ValueError) and isinstance(info.value, WorkflowError)
    with pytest.raises(InvalidStateError):
        engine.resume_workflow(SCRIPT, text)


def test_state_of_the_wrong_type(engine):
    with pytest.raises(InvalidStateError):
        engine.resume_workflow(SCRIPT, 42)


@pytest.mark.parametrize("version", [2, 99])
def test_newer_state_version_is_refused(engine, version):
    text = _mutated(version=version)
    with pytest.raises(StateVersionError) as info:
        WorkflowState.deserialize(text)
    assert f"version {version}" in str(info.value) and "newer" in str(info.value)
    assert info.value.version == version
    with pytest.raises(StateVersionError):
        engine.raise_event(SCRIPT, text, "go")


def test_callers_state_is_never_mutated(engine):
    first = engine.run_workflow(SCRIPT, "main", {"deep": [1]})
    state = first.state
    before = state.model_dump()
    journal_list = state.journal
    second = engine.raise_event(SCRIPT, state, "go", 1)
    third = engine.resume_workflow(SCRIPT, second.state)
    assert third.status is WorkflowStatus.COMPLETED
    assert state.model_dump() == before and state.journal is journal_list and state.journal == []
    assert second.state.journal == third.state.journal[:1]
    assert second.state is not state
    with pytest.raises(Exception):  # noqa: B017 - frozen model
        state.run_id = "x"


# -- payload limits --------------------------------------------------------------------
def test_payload_limit_on_arguments(small_engine):
    calls = []
    small_engine.register_step_function("s", lambda: calls.append(1))
    with pytest.raises(PayloadTooLargeError) as info:
        small_engine.run_workflow("async function main(x) { await s(); }", "main", "x" * 2000)
    assert isinstance(info.value, ValueError)
    assert info.value.limit == 1000 and info.value.size > 2000
    assert calls == []
    # multi-byte characters count as UTF-8 bytes
    with pytest.raises(PayloadTooLargeError):
        small_engine.run_workflow("function main() {}", "main", "☃" * 400)


def test_payload_limit_on_resume_value_and_event_payload(small_engine):
    script = """async function main() {
      const a = await sleep('1s'); const b = await waitForEvent('e'); return [a, b];
    }"""
    first = small_engine.run_workflow(script, "main")
    text = first.state.serialize()
    with pytest.raises(PayloadTooLargeError):
        small_engine.resume_workflow(script, first.state, "x" * 2000)
    assert first.state.serialize() == text
    second = small_engine.resume_workflow(script, first.state, "ok")
    assert second.status is WorkflowStatus.SUSPENDED
    with pytest.raises(PayloadTooLargeError):
        small_engine.raise_event(script, second.state, "e", {"blob": "y" * 2000})
    done = small_engine.raise_event(script, second.state, "e", "small")
    assert done.value == ["ok", "small"]


def test_return_value_over_payload_limit_faults(small_engine):
    result = small_engine.run_workflow("function main() { return 'x'.repeat(5000); }", "main")
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, PayloadTooLargeError)
    assert result.value is None


# -- results ------------------------------------------------------------------------------
def test_raise_for_status(engine):
    ok = engine.run_workflow("function main() { return 1; }", "main")
    assert ok.raise_for_status() is ok
    suspended = engine.run_workflow(SCRIPT, "main", 1)
    assert suspended.raise_for_status() is suspended
    bad = engine.run_workflow("function main() { throw new Error('bad'); }", "main")
    with pytest.raises(WorkflowError, match="bad"):
        bad.raise_for_status()
    assert isinstance(bad, WorkflowResult) and bad.state.run_id


def test_result_fields_per_status(engine):
    done = engine.run_workflow("function main() { return {a: [1, null]}; }", "main", run_id="fixed")
    assert done.status is WorkflowStatus.COMPLETED and done.value == {"a": [1, None]}
    assert done.error is None and done.suspension is None and done.waits == []
    assert done.state.run_id == "fixed"
    suspended = engine.run_workflow(SCRIPT, "main", 1)
    assert suspended.value is None and suspended.error is None
    assert isinstance(suspended.suspension, Wait) and suspended.waits == [suspended.suspension]


# -- bound workflow and async API -----------------------------------------------------
def test_bound_workflow(engine):
    script = """async function run(x) {
      const a = await sleep('1m');
      const b = await waitForEvent('go');
      try { await waitForEvent('late'); } catch (e) { return [x, a, b, e.name]; }
    }"""
    wf = engine.workflow(script, "run")
    first = wf.run(5)
    second = wf.resume(first.state, "r", wait_id=first.suspension.wait_id)
    third = wf.raise_event(second.state, "go", "g")
    done = wf.timeout_event(third.state)
    assert done.value == [5, "r", "g", "TimeoutError"]
    assert first.state.entry_point == "run"


async def test_async_api(engine):
    first = await engine.arun_workflow(SCRIPT, "main", 1, run_id="async-run")
    second = await engine.araise_event(SCRIPT, first.state, "go", 2)
    done = await engine.aresume_workflow(SCRIPT, second.state, wait_id=second.suspension.wait_id)
    assert done.value == [1, 2]
    timeout_script = "async function main() { try { await waitForEvent('x'); } catch (e) { return e.name; } }"
    pending = await engine.arun_workflow(timeout_script, "main")
    assert (await engine.atimeout_event(timeout_script, pending.state)).value == "TimeoutError"
    assert (await engine.arecover_workflow(SCRIPT, second.state)).status is WorkflowStatus.SUSPENDED


async def test_sync_api_works_inside_a_running_event_loop(engine):
    async def fetch_it(x):
        await asyncio.sleep(0.01)
        return x + 1

    engine.register_step_function("fetchIt", fetch_it)
    result = engine.run_workflow("async function main() { return await fetchIt(1); }", "main")
    assert result.value == 2


async def test_async_runs_can_overlap(engine):
    async def slow(x):
        await asyncio.sleep(0.2)
        return x

    engine.register_step_function("slow", slow)
    script = "async function main(x) { return await slow(x); }"
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await asyncio.gather(*(engine.arun_workflow(script, "main", i) for i in range(4)))
    assert [r.value for r in results] == [0, 1, 2, 3]
    assert loop.time() - start < 0.7


# -- parse_duration --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("10s", timedelta(seconds=10)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        ("1h 30m", timedelta(minutes=90)),
        ("PT1H", timedelta(hours=1)),
        ("PT1M30S", timedelta(seconds=90)),
        ("P1D", timedelta(days=1)),
        ("P1DT2H", timedelta(hours=26)),
        (1500, timedelta(milliseconds=1500)),
        (0, timedelta(0)),
        (2.5, timedelta(microseconds=2500)),
        ("250", timedelta(milliseconds=250)),
        (timedelta(seconds=3), timedelta(seconds=3)),
    ],
)
def test_parse_duration_forms(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "soon", "5 parsecs", "h", "PT", "P", "1h-", "-5s", -1, True, None, float("nan"), float("inf"), [1]],
)
def test_parse_duration_invalid(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_engine_default_clock_is_aware_utc():
    engine = WorkflowEngine()
    result = engine.run_workflow("async function main() { await sleep('1s'); }", "main")
    assert result.suspension.resume_at.tzinfo is not None


def test_limits_defaults_and_engine_keywords():
    limits = Limits()
    assert (limits.time, limits.memory, limits.stack, limits.payload) == (
        10.0,
        128 * 2**20,
        1 * 2**20,
        2 * 2**20,
    )
    assert limits.memory >= 64 * limits.payload  # the rule in Limits' docstring
    seen = []
    engine = WorkflowEngine(clock=None, limits=None, on_console=lambda lvl, msg: seen.append(msg))
    assert engine.limits == Limits()
    engine.run_workflow("function main() { console.log('hi'); }", "main")
    assert seen == ["hi"]

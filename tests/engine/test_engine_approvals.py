"""Approval flows in the bare engine: matching, counting, defaults on timeout,
schemas, where and why a wait waits, and the lost-race fault message."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from jsflow import (
    EventNotAwaitedError,
    PayloadSchemaError,
    ScriptError,
    WorkflowState,
    WorkflowStatus,
    payload_matches,
)


# -- matching --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "payload", "expected"),
    [
        ({"order": "A-17"}, {"order": "A-17", "ok": True}, True),
        ({"order": "A-17"}, {"order": "A-18"}, False),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3}, True),
        ({"a": {"b": 1}}, {"a": {"b": 2}}, False),
        ({"tags": [1, 2]}, {"tags": [1, 2]}, True),
        ({"tags": [1]}, {"tags": [1, 2]}, False),  # arrays compare whole
        ({"x": True}, {"x": 1}, False),  # JSON types: true is not 1
        ({"x": 1}, {"x": 1.0}, True),
        ({"x": None}, {}, False),
        ({}, "anything", False),
        ({}, {"a": 1}, True),
    ],
)
def test_payload_matches_is_a_deep_subset(pattern, payload, expected):
    assert payload_matches(pattern, payload) is expected


MATCHED = """
async function main() {
  const a = waitForEvent('approval', { match: { order: 'A-17' } });
  const b = waitForEvent('approval', { match: { order: 'A-18' } });
  return [await a, await b];
}
"""


def test_raise_event_reaches_the_wait_whose_match_it_satisfies(engine):
    first = engine.run_workflow(MATCHED)
    second = engine.raise_event(MATCHED, first.state, "approval", {"order": "A-18", "by": "bo"})
    assert [w.wait_id for w in second.waits] == [0]
    assert second.waits[0].match == {"order": "A-17"}
    with pytest.raises(EventNotAwaitedError):
        engine.raise_event(MATCHED, second.state, "approval", {"order": "A-99"})
    done = engine.raise_event(MATCHED, second.state, "approval", {"order": "A-17", "by": "al"})
    assert done.value == [{"order": "A-17", "by": "al"}, {"order": "A-18", "by": "bo"}]


def test_match_must_be_an_object(engine):
    result = engine.run_workflow("async function main() { return await waitForEvent('x', { match: 3 }); }")
    assert result.status is WorkflowStatus.FAULTED
    assert "match must be an object" in str(result.error)


# -- counting ----------------------------------------------------------------------------
VOTES = """
async function main() {
  const votes = await waitForEvents('vote', { count: 3, distinct: 'voter', timeout: '1d' });
  return votes.map(v => v.voter);
}
"""


def test_wait_for_events_counts_distinct_voters_and_journals_each(engine):
    state = engine.run_workflow(VOTES).state
    progress = []
    for voter in ["ann", "bob"]:
        result = engine.raise_event(VOTES, state, "vote", {"voter": voter})
        state = result.state
        wait = result.waits[0]
        progress.append((wait.count, wait.received, wait.description))
    described = "waiting for 2 more 'vote' events (have: ann), 1 of 3 received"
    assert progress[0] == (3, [{"voter": "ann"}], described)
    assert "2 of 3" in progress[1][2]
    with pytest.raises(EventNotAwaitedError):  # ann again is not counted
        engine.raise_event(VOTES, state, "vote", {"voter": "ann"})
    # progress survives a round trip of the state (and so a restart)
    state = WorkflowState.deserialize(state.serialize())
    assert [e.type for e in state.journal] == ["event", "event"]
    replayed = engine.replay(VOTES, state).waits[0]  # a counting wait keeps its site through replay
    assert replayed.location is not None and replayed.location["line"] == 3
    done = engine.raise_event(VOTES, state, "vote", {"voter": "cy"})
    assert done.status is WorkflowStatus.COMPLETED
    assert done.value == ["ann", "bob", "cy"]


def test_wait_for_events_with_several_names_gives_name_and_payload(engine):
    script = "async function main() { return await waitForEvents(['yes', 'no'], { count: 2 }); }"
    state = engine.run_workflow(script).state
    state = engine.raise_event(script, state, "yes", 1).state
    done = engine.raise_event(script, state, "no", 2)
    assert done.value == [{"name": "yes", "payload": 1}, {"name": "no", "payload": 2}]


def test_wait_for_events_timeout_rejects_with_what_arrived(engine):
    script = """
    async function main() {
      try { await waitForEvents('vote', { count: 2, timeout: '1h' }); }
      catch (e) { return [e.name, e.received]; }
    }"""
    state = engine.raise_event(script, engine.run_workflow(script).state, "vote", "ann").state
    assert engine.timeout_event(script, state).value == ["TimeoutError", ["ann"]]


def test_wait_for_events_timeout_with_default(engine):
    script = "async function main() { return waitForEvents('v', {count: 2, timeout: '1h', default: []}); }"
    state = engine.run_workflow(script).state
    assert engine.timeout_event(script, state).value == []


def test_wait_for_events_needs_a_count(engine):
    result = engine.run_workflow("async function main() { return await waitForEvents('v'); }")
    assert "count" in str(result.error)


def test_wait_for_events_with_match(engine):
    script = "async function main() { return await waitForEvents('v', { count: 1, match: { ok: true } }); }"
    state = engine.run_workflow(script).state
    with pytest.raises(EventNotAwaitedError):
        engine.raise_event(script, state, "v", {"ok": False})
    assert engine.raise_event(script, state, "v", {"ok": True}).value == [{"ok": True}]


# -- timeout as a value --------------------------------------------------------------------
def test_timeout_with_default_resolves_and_is_journaled(engine):
    script = "async function main() { return await waitForEvent('x', { timeout: '1h', default: 'late' }); }"
    result = engine.timeout_event(script, engine.run_workflow(script).state)
    assert result.value == "late"
    entry = result.state.journal[-1]
    assert (entry.type, entry.result, entry.error) == ("timeout", "late", None)
    # replay gives the journaled value, even if the script's default changed
    changed = script.replace("'late'", "'other'")
    assert engine.replay(changed, result.state).ok


def test_timeout_with_null_default_resolves_null_and_undefined_keeps_rejecting(engine):
    script = "async function main() { return await waitForEvent('x', { timeout: '1h', default: null }); }"
    assert engine.timeout_event(script, engine.run_workflow(script).state).value is None
    script = "async function main() { return await waitForEvent('x', {timeout: '1h', default: undefined}); }"
    result = engine.timeout_event(script, engine.run_workflow(script).state)
    assert result.status is WorkflowStatus.FAULTED and "TimeoutError" in str(result.error)


# -- schemas ----------------------------------------------------------------------------------
ITEMS_SCHEMA = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"qty": {"type": "integer"}}, "required": ["qty"]},
        }
    },
    "required": ["items"],
}


def test_event_violating_schema_is_refused_with_a_pointer(engine):
    script = f"async function main() {{ return await waitForEvent('order', {{schema: {ITEMS_SCHEMA!r}}}); }}"
    script = script.replace("'", '"')
    state = engine.run_workflow(script).state
    with pytest.raises(PayloadSchemaError) as info:
        engine.raise_event(script, state, "order", {"items": [{"qty": 1}, {"qty": "two"}]})
    assert isinstance(info.value, ValueError)
    assert info.value.path == "/items/1/qty"
    with pytest.raises(PayloadSchemaError) as info:
        engine.raise_event(script, state, "order", {"items": [{}]})
    assert info.value.path == "/items/0/qty"
    good = {"items": [{"qty": 2}]}
    assert engine.raise_event(script, state, "order", good).value == good


def test_match_is_checked_before_schema(engine):
    script = """async function main() {
      return await waitForEvent('e', { match: { kind: 'a' }, schema: { type: 'object', required: ['n'] } });
    }"""
    state = engine.run_workflow(script).state
    with pytest.raises(EventNotAwaitedError):  # not matched: it never reaches the schema
        engine.raise_event(script, state, "e", {"kind": "b"})
    with pytest.raises(PayloadSchemaError):
        engine.raise_event(script, state, "e", {"kind": "a"})


def test_suspend_function_schema_dict_and_pydantic(engine):
    class Decision(BaseModel):
        approved: bool
        by: str

    engine.register_suspend_function("decide", schema=Decision)
    engine.register_suspend_function("count", schema={"type": "integer", "minimum": 1})
    script = "async function main() { return [await decide(), await count()]; }"
    first = engine.run_workflow(script)
    assert first.waits[0].schema["properties"]["approved"]["type"] == "boolean"
    with pytest.raises(PayloadSchemaError) as info:
        engine.resume_workflow(script, first.state, {"approved": "yes", "by": "al"})
    assert info.value.path == "/approved"
    second = engine.resume_workflow(script, first.state, {"approved": True, "by": "al"})
    with pytest.raises(PayloadSchemaError) as info:
        engine.resume_workflow(script, second.state, 0)
    assert info.value.path == ""
    assert engine.resume_workflow(script, second.state, 2).value == [{"approved": True, "by": "al"}, 2]


def test_invalid_schemas_are_refused(engine):
    with pytest.raises(ValueError):
        engine.register_suspend_function("bad", schema={"type": "nonsense"})
    result = engine.run_workflow("async function main() { await waitForEvent('x', {schema: {type: 7}}); }")
    assert result.status is WorkflowStatus.FAULTED and "JSON Schema" in str(result.error)


# -- where and why -------------------------------------------------------------------------------
def test_waits_carry_location_and_description(engine):
    engine.register_suspend_function("getApproval")
    script = (
        "async function main() {\n"
        "  const a = getApproval('manager', 'A-17');\n"
        "  const s = sleep('1h');\n"
        "  const e = waitForEvent('approval', { match: { order: 'A-17' } });\n"
        "  return [await a, await s, await e];\n"
        "}\n"
    )
    waits = engine.run_workflow(script).waits
    assert [w.location["line"] for w in waits] == [2, 3, 4]
    assert all(w.location["column"] >= 1 for w in waits)
    line = script.splitlines()[1]
    assert line[waits[0].location["column"] - 1 :].startswith("getApproval")
    assert waits[0].description == "waiting for getApproval('manager', 'A-17')"
    assert waits[1].description.startswith("sleeping until ") and waits[1].description.endswith("Z")
    assert waits[2].description == 'waiting for event \'approval\' matching {"order":"A-17"}'


def test_location_in_a_module_and_after_replay(engine):
    script = "\n\nexport async function main() {\n  await sleep(5);\n  return await waitForEvent('go');\n}\n"
    first = engine.run_workflow(script)
    assert first.waits[0].location["line"] == 4
    second = engine.resume_workflow(script, first.state)
    assert second.waits[0].location["line"] == 5


def test_a_script_prepare_stack_trace_does_not_change_locations(engine):
    script = (
        "Error.prepareStackTrace = () => 'mine';\n"
        "async function main() {\n  const e = new Error('x');\n"
        "  await waitForEvent('go');\n  return e.stack;\n}"
    )
    first = engine.run_workflow(script)
    assert first.waits[0].location["line"] == 4
    assert engine.raise_event(script, first.state, "go").value == "mine"


# -- the lost race --------------------------------------------------------------------------------
def test_awaiting_a_race_loser_names_the_race_and_waitforevents(engine):
    script = """async function main() {
  const pending = [waitForEvent('vote-ann'), waitForEvent('vote-bob'), waitForEvent('vote-cy')];
  await Promise.race(pending);
  for (const p of pending) await p;
  return 'done';
}"""
    state = engine.run_workflow(script).state
    result = engine.raise_event(script, state, "vote-ann")
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, ScriptError)
    message = str(result.error)
    assert "line 3" in message and "waitForEvents" in message and "vote-bob" in message


def test_location_of_a_call_spread_over_lines_is_its_first_line(engine):
    script = (
        "async function main() {\n"
        "  const v = await waitForEvents('vote', {\n    count: 2,\n  });\n  return v;\n}"
    )
    wait = engine.run_workflow(script).waits[0]
    assert wait.location == {"line": 2, "column": script.splitlines()[1].index("waitForEvents") + 1}

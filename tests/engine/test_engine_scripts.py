"""Scripts: plain and ES module forms, load and runtime errors, sandbox limits,
hostile scripts, helper code and injected values."""

from __future__ import annotations

import time

import pytest

from jsflow import Limits, ResourceLimitError, ScriptError, WorkflowEngine, WorkflowStatus

NORMAL = "async function main(x) { await sleep('1s'); return x * 2; }"


def assert_engine_still_works(engine):
    first = engine.run_workflow(NORMAL, "main", 21)
    assert first.status is WorkflowStatus.SUSPENDED
    assert engine.resume_workflow(NORMAL, first.state).value == 42


# -- script forms --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("script", "entry"),
    [
        ("function main(a, b) { return a + b; }", "main"),
        ("async function start(a, b) { return a + b; }", "start"),
        ("var main = (a, b) => a + b;", "main"),
        ("globalThis.main = async (a, b) => a + b;", "main"),
        ("export function main(a, b) { return a + b; }", "main"),
        ("export async function main(a, b) { return a + b; }", "main"),
        ("export default function (a, b) { return a + b; }", "default"),
        ("export default async function run(a, b) { return a + b; }", "default"),
        ("function x(a, b) { return a + b; }\nexport { x as main };", "main"),
        ("const helper = 1;\nexport const main = (a, b) => a + b + helper - 1;", "main"),
    ],
)
def test_script_forms(engine, script, entry):
    result = engine.run_workflow(script, entry, 2, 3)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value == 5


def test_module_workflow_suspends_and_resumes(engine):
    script = "export async function main(x) { await sleep('1m'); return x; }"
    first = engine.run_workflow(script, "main", "m")
    assert engine.resume_workflow(script, first.state).value == "m"


def test_undefined_return_is_none(engine):
    assert engine.run_workflow("function main() {}", "main").value is None


# -- load errors ---------------------------------------------------------------------
def _script_error(result) -> ScriptError:
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, ScriptError), result.error
    return result.error


def test_missing_entry_point(engine):
    err = _script_error(engine.run_workflow("function other() {}", "main"))
    assert "main" in err.message and "not defined" in err.message


def test_entry_point_not_a_function(engine):
    err = _script_error(engine.run_workflow("var main = 5;", "main"))
    assert "main" in err.message and "number" in err.message


def test_module_entry_point_missing_or_not_a_function(engine):
    err = _script_error(engine.run_workflow("export function other() {}", "main"))
    assert "main" in err.message
    err = _script_error(engine.run_workflow("export const main = 'x';", "main"))
    assert "main" in err.message and "string" in err.message


@pytest.mark.parametrize("module", [False, True])
def test_syntax_error_names_the_line(engine, module):
    script = "function ok() {}\n\nfunction main() {\n  return 1 +;\n}\n"
    if module:
        script = "export " + script.replace("export ", "")
    err = _script_error(engine.run_workflow(script, "main"))
    assert err.js_name == "SyntaxError"
    assert "line 4" in str(err)


def test_top_level_throw_is_a_script_error(engine):
    err = _script_error(engine.run_workflow("throw new RangeError('at load');\nfunction main() {}", "main"))
    assert err.js_name == "RangeError" and err.message == "at load"


# -- runtime errors ------------------------------------------------------------------
def test_script_runtime_error_has_name_message_stack(engine):
    script = """function helper(o) { return o.missing.field; }
async function main() { await sleep('1s'); return helper({}); }"""
    first = engine.run_workflow(script, "main")
    err = _script_error(engine.resume_workflow(script, first.state))
    assert err.js_name == "TypeError"
    assert "field" in err.message
    assert "helper" in err.stack
    assert str(err).startswith("TypeError")


def test_thrown_custom_error_and_non_error_values(engine):
    err = _script_error(
        engine.run_workflow(
            "class MyError extends Error { constructor(m) { super(m); this.name = 'MyError'; } }\n"
            "function main() { throw new MyError('custom'); }",
            "main",
        )
    )
    assert (err.js_name, err.message) == ("MyError", "custom")
    err = _script_error(engine.run_workflow("async function main() { throw 'plain string'; }", "main"))
    assert err.message == "plain string"
    err = _script_error(engine.run_workflow("function main() { throw {code: 7}; }", "main"))
    assert isinstance(err.message, str)


def test_huge_error_message_is_bounded(engine):
    err = _script_error(engine.run_workflow("function main() { throw new Error('x'.repeat(5e6)); }", "main"))
    assert len(err.message) < 10_000 and len(err.stack) < 10_000


def test_workflow_awaiting_a_promise_that_never_settles_faults(engine):
    err = _script_error(engine.run_workflow("async function main() { await new Promise(() => {}); }", "main"))
    assert "never settles" in err.message


def test_non_json_return_value_faults(engine):
    err = _script_error(engine.run_workflow("function main() { return 10n; }", "main"))
    assert "JSON" in err.message or "BigInt" in err.message


def test_non_json_arguments_raise_type_error_before_running(engine):
    calls = []
    engine.register_step_function("s", lambda: calls.append(1))
    for bad in (object(), {1, 2}, b"bytes"):
        with pytest.raises(TypeError):
            engine.run_workflow("async function main() { await s(); }", "main", bad)
    assert calls == []


def test_script_must_be_a_string(engine):
    with pytest.raises(TypeError):
        engine.run_workflow(b"function main() {}", "main")


def test_unserialisable_step_arguments_reject_in_js(engine):
    engine.register_step_function("s", lambda x: x)
    script = "async function main() { try { await s(() => 1n + 1n, 10n); } catch (e) { return e.name; } }"
    assert engine.run_workflow(script, "main").value == "TypeError"


# -- sandbox isolation ---------------------------------------------------------------
def test_sandbox_has_no_host_access(engine):
    script = """async function main() {
      const out = [typeof require, typeof process, typeof std, typeof os, typeof fetch, typeof import_meta];
      try { await import('os'); out.push('imported'); } catch (e) { out.push('blocked'); }
      return out;
    }"""
    result = engine.run_workflow(script, "main")
    assert result.value[:5] == ["undefined"] * 5
    assert result.value[-1] == "blocked"


def test_execute_helper_code_and_set_value(engine):
    engine.execute("function double(x) { return x * 2; }")
    engine.execute("var LIB = { version: CONFIG.v };")
    engine.set_value("CONFIG", {"v": 3, "name": "cfg"})
    engine.set_value("LIMIT", 10)
    script = "async function main() { await sleep('1s'); return [double(LIMIT), LIB.version, CONFIG.name]; }"
    first = engine.run_workflow(script, "main")
    assert engine.resume_workflow(script, first.state).value == [20, 3, "cfg"]


def test_set_value_requires_json(engine):
    with pytest.raises((TypeError, ValueError)):
        engine.set_value("bad", object())


# -- resource limits --------------------------------------------------------------------
LIMIT_CASES = [
    ("function main() { for (;;) {} }", "time"),
    ("async function main() { for (;;) { await null; } }", "time"),
    ("async function main() { await sleep('1s'); for (;;) {} }", "time"),
    ("function main() { const a = []; for (;;) a.push('x'.repeat(100000) + a.length); }", "memory"),
    ("function f(n) { return f(n + 1) + 1; }\nfunction main() { return f(0); }", "stack"),
    (
        "function f(n) { return [f(n + 1)]; }\nasync function main() { await null; try { return f(0); } "
        "catch (e) { return f(0); } }",
        "stack",
    ),
]


@pytest.mark.parametrize(("script", "limit"), LIMIT_CASES)
def test_resource_limits_fault_promptly_and_engine_stays_usable(small_engine, script, limit):
    start = time.perf_counter()
    first = small_engine.run_workflow(script, "main")
    if first.status is WorkflowStatus.SUSPENDED:
        start = time.perf_counter()
        first = small_engine.resume_workflow(script, first.state)
    elapsed = time.perf_counter() - start
    assert first.status is WorkflowStatus.FAULTED
    assert isinstance(first.error, ResourceLimitError), first.error
    assert first.error.limit == limit
    assert elapsed < 5, elapsed
    assert len(str(first.error)) < 10_000
    assert_engine_still_works(small_engine)


def test_time_limit_is_per_call_and_covers_live_steps(clock):
    engine = WorkflowEngine(clock=clock, limits=Limits(time=0.5))
    engine.register_step_function("s", lambda: 1)
    script = "async function main() { await s(); for (;;) {} }"
    result = engine.run_workflow(script, "main")
    assert isinstance(result.error, ResourceLimitError) and result.error.limit == "time"
    assert [e.type for e in result.state.journal] == ["step"]  # the journal is kept for audit


def test_limit_in_helper_code(small_engine):
    small_engine.execute("for (;;) {}")
    result = small_engine.run_workflow("function main() {}", "main")
    assert isinstance(result.error, ResourceLimitError) and result.error.limit == "time"


# -- hostile scripts ---------------------------------------------------------------------
def test_throw_object_with_looping_to_string(small_engine):
    start = time.perf_counter()
    result = small_engine.run_workflow("function main() { throw { toString() { for (;;) {} } }; }", "main")
    assert result.status is WorkflowStatus.FAULTED
    assert time.perf_counter() - start < 5
    assert_engine_still_works(small_engine)


def test_async_throw_object_with_looping_getters(small_engine):
    script = """async function main() {
      await null;
      throw { get message() { for (;;) {} }, get name() { for (;;) {} }, get stack() { for (;;) {} } };
    }"""
    start = time.perf_counter()
    result = small_engine.run_workflow(script, "main")
    assert result.status is WorkflowStatus.FAULTED
    assert time.perf_counter() - start < 5
    assert_engine_still_works(small_engine)


def test_return_value_with_looping_to_json(small_engine):
    start = time.perf_counter()
    result = small_engine.run_workflow("function main() { return { toJSON() { for (;;) {} } }; }", "main")
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, ResourceLimitError)
    assert time.perf_counter() - start < 5
    assert_engine_still_works(small_engine)


def test_step_argument_with_looping_to_json(small_engine):
    small_engine.register_step_function("s", lambda x: x)
    result = small_engine.run_workflow(
        "async function main() { await s({ toJSON() { for (;;) {} } }); }", "main"
    )
    assert isinstance(result.error, ResourceLimitError)
    assert_engine_still_works(small_engine)


HOSTILE = """
const mySleep = sleep, myStep = add;
async function main() {
  const r1 = Math.random(), t1 = Date.now();
  await mySleep('1h');
  globalThis.sleep = () => 'nope';
  delete globalThis.waitForEvent;
  JSON.stringify = () => '"hacked"';
  JSON.parse = () => 42;
  try { Math.random = () => 0.5; } catch (e) {}
  const realDate = Date;
  Date = function () { return 0; };
  try { Object.prototype.toJSON = undefined; } catch (e) {}
  Array.prototype.push = function () { throw new Error('no push'); };
  Array.prototype.indexOf = function () { throw new Error('no indexOf'); };
  Object.defineProperty(Array.prototype, '2', { set(v) { throw new Error('no index set'); } });
  Promise.prototype.then = function () { throw new Error('no then'); };
  const r2 = Math.random();
  const sum = await myStep(2, 3);
  await mySleep('1h');
  return { r1, r2, sum, t1, t2: realDate.now(), sleepType: typeof sleep };
}"""


def test_overwriting_globals_does_not_break_replay_or_host(engine, clock):
    engine.register_step_function("add", lambda a, b: a + b)
    first = engine.run_workflow(HOSTILE, "main", run_id="hostile")
    assert first.status is WorkflowStatus.SUSPENDED
    clock.advance(hours=1)
    second = engine.resume_workflow(HOSTILE, first.state)
    assert second.status is WorkflowStatus.SUSPENDED, second.error
    assert [e.type for e in second.state.journal] == ["resume", "step"]
    clock.advance(hours=1)
    done = engine.resume_workflow(HOSTILE, second.state)
    assert done.status is WorkflowStatus.COMPLETED, done.error
    value = done.value
    assert value["sum"] == 5 and value["r2"] != 0.5 and value["sleepType"] == "function"
    # replay gives the same answer and the engine is unharmed
    assert engine.recover_workflow(HOSTILE, done.state).value == value
    assert_engine_still_works(engine)


def test_prototype_pollution_does_not_leak_into_the_next_run(engine):
    engine.run_workflow("function main() { Object.prototype.polluted = 1; Array.prototype.x = 2; }", "main")
    result = engine.run_workflow("function main() { return [({}).polluted, [].x]; }", "main")
    assert result.value == [None, None]

"""``WorkflowEngine.check`` reads the script's parse tree (issue 19, item 6):
every call of an unregistered global function, wherever it stands, with its
line and column; and the event names the script can wait for."""

from __future__ import annotations

import pytest

from jsflow import CallSite, ScriptEvents, WorkflowEngine, script_events

SCRIPT = """async function main(order) {
  const r = await Promise.race([getApproval('manager'), sleep('1d')]);
  Promise.resolve(1).then(() => notifyTeam(order));
  const later = fetchQuote(order);
  function nested() { return deepHelper(1); }
  const local = (x) => x;
  return [r, later, nested(), local(2), order.total(), Math.max(1, 2), JSON.stringify({})];
}
"""


def test_every_call_of_an_unknown_global_is_reported_with_its_position() -> None:
    found = WorkflowEngine().check(SCRIPT)
    assert found.ok
    assert found.undefined_calls == [
        CallSite("getApproval", 2, 33),
        CallSite("notifyTeam", 3, 33),
        CallSite("fetchQuote", 4, 17),
        CallSite("deepHelper", 5, 30),
    ]
    assert str(found.undefined_calls[0]) == "getApproval at 2:33"


def test_registered_functions_are_not_undefined() -> None:
    engine = WorkflowEngine()
    engine.register_suspend_function("getApproval")
    engine.register_step_function("notifyTeam", lambda order: None)
    assert [s.name for s in engine.check(SCRIPT).undefined_calls] == ["fetchQuote", "deepHelper"]


def test_each_call_is_listed_and_compares_to_its_name() -> None:
    found = WorkflowEngine().check("async function main() { await ask(1);\n  await ask(2); }")
    assert found.undefined_calls == ["ask", "ask"]  # the plain names of earlier versions
    assert [(s.line, s.column) for s in found.undefined_calls] == [(1, 31), (2, 9)]


def test_script_definitions_builtins_and_engine_globals_are_known() -> None:
    script = """
    var counter = () => 1; let helper = function () {}; class Box {}
    function top() {}
    async function main(cb, { pick = () => 0 }, ...rest) {
      try { cb(); } catch (oops) { oops(); }
      for (const each of rest) each();
      counter(); helper(); top(); pick(); new Box();
      parseInt('1'); isNaN(1); String(1); Number('2'); Boolean(0); Symbol('s'); BigInt(1);
      Array.from([]); Object.keys({}); new Date(0); encodeURIComponent('x'); structuredCloneIsMissing();
      await sleep('1s'); console.log(1); await waitForEvent('go'); const h = await createHook();
      await step('s', () => 1); cancelWait(h); patched('p'); defineQuery('q', () => 1);
      return globalThis.x;
    }
    """
    names = [s.name for s in WorkflowEngine().check(script).undefined_calls]
    assert names == ["structuredCloneIsMissing"]


def test_a_module_s_own_functions_are_known() -> None:
    script = "function helper() { return 1; }\nexport async function main() { return helper() + other(); }"
    found = WorkflowEngine().check(script)
    assert found.ok and found.kind == "module"
    assert found.undefined_calls == [CallSite("other", 2, 50)]


def test_a_script_that_does_not_load_reports_no_calls_but_its_events() -> None:
    found = WorkflowEngine().check("async function main() { await waitForEvent('go'); nope(); }\nlet x = ;")
    assert not found.ok and found.undefined_calls == []
    assert found.event_names == ["go"]


@pytest.mark.parametrize(
    ("script", "names", "yes", "no"),
    [
        ("await waitForEvent('approval');", ["approval"], ["approval"], ["approvals", "x"]),
        ("await waitForEvent([\"a\", 'b']);", ["a", "b"], ["a", "b"], ["c"]),
        ("await waitForEvent(`vote-${who}`);", ["vote-*"], ["vote-ann", "vote-"], ["vote", "avote-x"]),
        (
            "await waitForEvents([`r-${a}-${b}`, 'done'], { count: 2 });",
            ["done", "r-*-*"],
            ["r-1-2"],
            ["r-1"],
        ),
        ("await waitForEvent(nameOf(who));", ["*"], ["anything"], []),
        ("await waitForEvent('it\\'s');", ["it's"], ["it's"], ["it\\'s"]),
        ("const s = 'approval'; await sleep('1s');", [], [], ["approval"]),
    ],
)
def test_event_names_the_script_can_wait_for(
    script: str, names: list[str], yes: list[str], no: list[str]
) -> None:
    source = f"async function main(who, a, b) {{ {script} }}"
    found = WorkflowEngine().check(source)
    assert found.event_names == names
    assert all(found.waits_for(n) for n in yes)
    assert not any(found.waits_for(n) for n in no)
    events = script_events(source)
    assert isinstance(events, ScriptEvents) and events.all() == names

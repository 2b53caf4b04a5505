"""Workflow time, seeded randomness, console routing and continueAsNew."""

from __future__ import annotations

import logging
from datetime import timedelta

from engine_helpers import T0, T0_MS, FakeClock, ms

from jsflow import WorkflowEngine, WorkflowStatus

TIME_SCRIPT = """async function main() {
  const t0 = Date.now(), d0 = new Date().getTime(), s0 = typeof Date();
  await work();
  const t1 = Date.now();
  await sleep('1h');
  const t2 = new Date().getTime();
  return [t0, d0, s0, t1, t2, new Date(5).getTime(), new Date('2020-01-01T00:00:00Z').getTime(),
          Date.UTC(2000, 0, 1), new Date() instanceof Date];
}"""


def test_workflow_time(engine, clock):
    def work():
        clock.advance(minutes=1)
        return None

    engine.register_step_function("work", work)
    first = engine.run_workflow(TIME_SCRIPT, "main")
    assert first.state.started_at_ms == T0_MS
    clock.advance(hours=2)
    resumed_at = ms(clock.now)
    done = engine.resume_workflow(TIME_SCRIPT, first.state)
    t0, d0, s0, t1, t2, five, fixed, utc, is_date = done.value
    assert t0 == d0 == T0_MS and s0 == "string"
    assert t1 == ms(T0 + timedelta(minutes=1))
    assert t2 == resumed_at
    assert five == 5 and fixed == 1577836800000 and utc == 946684800000 and is_date is True
    # identical on replay, whatever the clock says now
    clock.advance(days=100)
    assert engine.recover_workflow(TIME_SCRIPT, done.state).value == done.value


def test_random_is_seeded_by_run_id():
    script = "function main() { return [Math.random(), Math.random(), Math.random()]; }"
    a1 = WorkflowEngine(clock=FakeClock()).run_workflow(script, "main", run_id="run-1").value
    a2 = WorkflowEngine(clock=FakeClock()).run_workflow(script, "main", run_id="run-1").value
    b = WorkflowEngine(clock=FakeClock()).run_workflow(script, "main", run_id="run-2").value
    assert a1 == a2
    assert a1 != b
    assert len(set(a1)) == 3 and all(0 <= x < 1 for x in a1 + b)


def test_random_sequence_continues_identically_across_replays(engine):
    script = """async function main() {
      const a = Math.random(); await sleep('1s'); const b = Math.random(); await sleep('1s');
      return [a, b, Math.random()];
    }"""
    s1 = engine.run_workflow(script, "main", run_id="same").state
    s2 = engine.resume_workflow(script, s1).state
    done = engine.resume_workflow(script, s2)
    straight = WorkflowEngine().run_workflow(
        "function main() { return [Math.random(), Math.random(), Math.random()]; }", "main", run_id="same"
    )
    assert done.value == straight.value


def test_math_random_cannot_be_replaced(engine):
    script = """function main() {
      try { Math.random = () => 0.5; } catch (e) {}
      try { Object.defineProperty(Math, 'random', { value: () => 0.5 }); } catch (e) {}
      return Math.random();
    }"""
    assert engine.run_workflow(script, "main").value != 0.5


def test_nondeterministic_globals_are_removed(engine):
    script = """function main() {
      return ['performance', 'WeakRef', 'FinalizationRegistry', 'SharedArrayBuffer', 'Atomics',
              'require', 'process', 'fetch', 'setTimeout', 'os', 'std'].map(n => typeof globalThis[n]);
    }"""
    assert set(engine.run_workflow(script, "main").value) == {"undefined"}


CONSOLE_SCRIPT = """async function main() {
  console.log('start', 1, {a: 1});
  console.info('info'); console.warn('warn'); console.error('error'); console.debug('debug');
  await sleep('1h');
  console.log('after sleep');
  await sleep('1h');
  console.log('end', [1, 2]);
  return 'ok';
}"""


def test_console_routed_to_callback_and_logger_and_silent_on_replay(clock, caplog):
    seen = []
    engine = WorkflowEngine(clock=clock, on_console=lambda level, msg: seen.append((level, msg)))
    caplog.set_level(logging.DEBUG, logger="jsflow.console")
    first = engine.run_workflow(CONSOLE_SCRIPT, "main")
    assert seen == [
        ("log", 'start 1 {"a":1}'),
        ("info", "info"),
        ("warn", "warn"),
        ("error", "error"),
        ("debug", "debug"),
    ]
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert records == [
        ("jsflow.console", logging.INFO, 'start 1 {"a":1}'),
        ("jsflow.console", logging.INFO, "info"),
        ("jsflow.console", logging.WARNING, "warn"),
        ("jsflow.console", logging.ERROR, "error"),
        ("jsflow.console", logging.DEBUG, "debug"),
    ]
    seen.clear()
    caplog.clear()
    second = engine.resume_workflow(CONSOLE_SCRIPT, first.state)
    assert seen == [("log", "after sleep")]
    third = engine.resume_workflow(CONSOLE_SCRIPT, second.state)
    assert third.value == "ok"
    assert seen == [("log", "after sleep"), ("log", "end [1,2]")]
    assert len(caplog.records) == 2
    seen.clear()
    engine.recover_workflow(CONSOLE_SCRIPT, third.state)
    assert seen == []


def test_console_message_is_bounded(engine):
    seen = []
    engine.on_console = lambda level, msg: seen.append(msg)
    engine.run_workflow("function main() { console.log('x'.repeat(100000)); }", "main")
    assert 0 < len(seen[0]) < 20000


def test_console_cannot_be_replaced_to_escape(engine):
    seen = []
    engine.on_console = lambda level, msg: seen.append(msg)
    script = "function main() { try { console.log = null; } catch (e) {} console.log('still'); }"
    engine.run_workflow(script, "main")
    assert seen == ["still"]


# -- continueAsNew -------------------------------------------------------------------
def test_continue_as_new(engine, clock):
    calls = []
    engine.register_step_function("tick", lambda n: calls.append(n) or n)
    seen = []
    engine.on_console = lambda level, msg: seen.append(msg)
    script = """async function main(n, acc) {
      await tick(n);
      if (n < 2) {
        await continueAsNew(n + 1, acc + ',' + n);
        console.log('after continueAsNew');
        await tick(-1);
      }
      return acc;
    }"""
    first = engine.run_workflow(script, "main", 0, "s", run_id="gen-0", metadata={"tenant": "t1"})
    assert first.status is WorkflowStatus.CONTINUED_AS_NEW
    fresh = first.state
    assert fresh.run_id != "gen-0" and fresh.parent_run_id == "gen-0"
    assert fresh.arguments == [1, "s,0"]
    assert fresh.journal == [] and fresh.waits == []
    assert fresh.metadata == {"tenant": "t1"}
    assert fresh.entry_point == "main"
    assert first.value is None and first.error is None and first.waits == []
    clock.advance(hours=1)
    second = engine.recover_workflow(script, fresh)
    assert second.status is WorkflowStatus.CONTINUED_AS_NEW
    assert second.state.parent_run_id == fresh.run_id
    assert second.state.started_at_ms == ms(clock.now)
    third = engine.recover_workflow(script, second.state)
    assert third.status is WorkflowStatus.COMPLETED and third.value == "s,0,1"
    assert calls == [0, 1, 2]
    assert seen == []


def test_code_after_unawaited_continue_as_new_has_no_effect(engine):
    calls = []
    engine.register_step_function("side", lambda: calls.append(1))
    seen = []
    engine.on_console = lambda level, msg: seen.append(msg)
    script = "async function main() { continueAsNew(7); console.log('x'); side(); return 'finished'; }"
    result = engine.run_workflow(script, "main")
    assert result.status is WorkflowStatus.CONTINUED_AS_NEW
    assert result.state.arguments == [7]
    assert calls == [] and seen == []


def test_continue_as_new_after_a_suspension(engine):
    script = "async function main(n) { if (n === 0) { await sleep('1m'); continueAsNew(1); } return n; }"
    first = engine.run_workflow(script, "main", 0)
    result = engine.resume_workflow(script, first.state)
    assert result.status is WorkflowStatus.CONTINUED_AS_NEW
    assert result.state.arguments == [1]
    assert engine.recover_workflow(script, result.state).value == 1

"""Every engine call is bounded: JS step retries are charged to the time
budget; memory and stack limits cannot be caught by the script; with default
limits any payload under Limits.payload can be delivered and kept."""

from __future__ import annotations

import time

import pytest

from jsflow import Limits, ResourceLimitError, WorkflowEngine, WorkflowStatus


@pytest.mark.parametrize("backoff", [1000, 0])
def test_js_step_retries_are_charged_to_the_time_budget(clock, backoff):
    engine = WorkflowEngine(clock=clock, limits=Limits(time=1.0))
    script = f"""
    async function main() {{
      return await step('s', () => {{ throw new Error('no'); }}, {{ retries: 1e9, backoff: {backoff} }});
    }}
    """
    started = time.perf_counter()
    result = engine.run_workflow(script)
    assert time.perf_counter() - started < 3.0
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, ResourceLimitError)
    assert result.error.limit == "time"
    if backoff:  # with no backoff the JS time of the attempts may run out first
        assert "'s'" in str(result.error)


def test_a_few_short_retries_still_succeed(engine):
    script = """
    let n = 0;
    async function main() {
      const body = () => { if (++n < 3) throw new Error('again'); return n; };
      return await step('s', body, { retries: 3, backoff: 5 });
    }
    """
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value == 3


@pytest.mark.parametrize("shape", ["text", "objects"])
def test_default_limits_hold_any_payload_under_the_payload_limit(shape):
    # the worst shape at a 2 MiB payload (64 MiB of JS objects) keeps the test
    # light; memory stays at its default: room for delivered values is added to it
    limits = Limits() if shape == "text" else Limits(payload=2 * 2**20)
    engine = WorkflowEngine(limits=limits)
    script = "async function main() { const p = await waitForEvent('big'); await sleep('1s'); return p; }"
    budget = (13 * 2**20 if shape == "text" else limits.payload) - 16  # 13 MiB: the 12.6 MB event
    # a long string, and the shape with the most JS heap per JSON byte
    payload = "x" * budget if shape == "text" else [{}] * (budget // 3)
    result = engine.run_workflow(script)
    result = engine.raise_event(script, result.state, "big", payload)
    assert result.status is WorkflowStatus.SUSPENDED, result.error
    result = engine.resume_workflow(script, result.state)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value == payload


def test_a_script_alone_is_held_to_the_memory_limit():
    engine = WorkflowEngine(limits=Limits(memory=32 * 2**20))
    script = "async function main(p) { const a = []; for (;;) a.push(p + a.length); }"
    result = engine.run_workflow(script, "main", "x" * 1000)
    assert result.status is WorkflowStatus.FAULTED and result.error.limit == "memory"


OOM = "const a = []; for (;;) a.push(new Array(1000).fill(i));"
STACK = "const f = () => f(); f();"


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        (
            f"let n = 0; for (let i = 0; i < 1001; i++) {{ try {{ {OOM} }} catch (e) {{ n++; }} }} return n;",
            "memory",
        ),
        (
            f"let n = 0; for (let i = 0; i < 1001; i++) {{ try {{ {OOM} }} catch {{ n++; }} }} return n;",
            "memory",
        ),
        (f"let i = 0; try {{ {OOM} }} catch ({{ message }}) {{ return message; }}", "memory"),
        (
            f"for (let i = 0; i < 3; i++) {{ try {{ try {{ {OOM} }} finally {{ }} }} catch (e) {{}} }}"
            " return 1;",
            "memory",
        ),
        (
            f"let i = 0; return await Promise.resolve().then(() => {{ {OOM} }}).catch(() => 'caught');",
            "memory",
        ),
        (
            f"let i = 0; const r = await Promise.allSettled([(async () => {{ {OOM} }})()]);"
            " return r[0].status;",
            "memory",
        ),
        (f"let i = 0; {OOM}", "memory"),
        (f"for (let i = 0; i < 100; i++) {{ try {{ {STACK} }} catch (e) {{}} }} return 'survived';", "stack"),
        (f"try {{ {STACK} }} catch (e) {{ return e.message; }}", "stack"),
        (
            f"let i = 0; return await step('s', () => {{ {OOM} }}).catch((e) => 'caught ' + e.message);",
            "memory",
        ),
    ],
)
def test_memory_and_stack_limits_cannot_be_caught(clock, body, limit):
    engine = WorkflowEngine(clock=clock, limits=Limits(time=5.0, memory=16 * 2**20, stack=256 * 2**10))
    result = engine.run_workflow(f"async function main() {{ {body} }}")
    assert result.status is WorkflowStatus.FAULTED, result.value
    assert isinstance(result.error, ResourceLimitError), result.error
    assert result.error.limit == limit
    assert "null" not in str(result.error)


def test_ordinary_errors_are_still_caught(engine):
    script = """
    async function main() {
      const out = [];
      try { null.x; } catch (e) { out.push(e.name); }
      try { throw new RangeError('r'); } catch { out.push('bare'); }
      try { throw { message: 'm' }; } catch ({ message }) { out.push(message); }
      try { try { throw new Error('inner'); } finally { out.push('finally'); } }
      catch (e) { out.push(e.message); }
      out.push(await Promise.reject(new Error('p')).catch((e) => e.message));
      const s = "try {} catch (e) {}"; const re = /catch (e) {/; out.push(s.length, re.source);
      try { eval('1'); } catch (e) { out.push(e.name); }
      return out;
    }
    """
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value == ["TypeError", "bare", "m", "finally", "inner", "p", 19, "catch (e) {", "EvalError"]


def test_catch_guards_leave_tricky_source_alone(engine):
    script = r"""
    class Thenable { catch(fn) { return 'method ' + fn; } }
    const obj = { catch(e) { return 'obj ' + e; } };
    const quote = /["'`]/.test('"');            // a regex with quotes
    const tpl = `a ${ { x: '}' }.x } catch (e) { ${ 1 + 1 } }`;
    const ratio = (4) / 2 / 1;                   // divisions after a parenthesis
    /* try { } catch (e) { } */ // catch (e) {
    async function main() {
      let out = [quote, tpl, ratio, new Thenable().catch(null), obj.catch(7)];
      try { throw new Error('x'); } catch (e) /* c */ { out.push(e.message); }
      return out;
    }
    """
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value == [True, "a } catch (e) { 2 }", 2, "method null", "obj 7", "x"]


@pytest.mark.parametrize(
    "hide",
    [
        "const x = {} / 1; try { OOM } catch (e) { n++; } const y = 2 / 1;",
        "if (n >= 0) /`/.test('a'); try { OOM } catch (e) { n++; } //`\n",
    ],
)
def test_catch_guards_are_not_hidden_by_lexing_tricks(clock, hide):
    engine = WorkflowEngine(clock=clock, limits=Limits(time=5.0, memory=16 * 2**20))
    body = hide.replace("OOM", "let i = 0; " + OOM)
    result = engine.run_workflow(f"async function main() {{ let n = 0; {body} return n; }}")
    assert isinstance(result.error, ResourceLimitError), (result.status, result.value, result.error)

"""Resource limits no script can catch, whatever its source looks like (issue 18, item 1).

Each case hides a ``catch`` (or another way of swallowing an error) from a
naive reading of the source; the run must still fault with
ResourceLimitError. ``STACK`` and ``OOM`` are the two ways to hit a limit.
"""

from __future__ import annotations

import pytest

from js_runtime import native_status
from jsflow import Limits, ResourceLimitError, WorkflowEngine, WorkflowStatus

OOM = "const a = []; for (let i = 0; ; i++) a.push(new Array(1000).fill(i));"
BIG = "'x'.repeat(64 * 2 ** 20);"  # one allocation over the limit
STACK = "const f = () => f(); f();"
CAUGHT = "try { LIMIT } catch (e) { n++; }"  # the catch a naive lexer must not lose

# (id, body of main, limit). LIMIT is replaced by STACK or OOM as the case says.
SHAPES = [
    ("cr-line-comment", "// a comment ending at CR\r" + CAUGHT, "memory"),
    ("u2028-line-comment", "// a comment ending at LS\u2028" + CAUGHT, "memory"),
    ("u2029-line-comment", "// a comment ending at PS\u2029" + CAUGHT, "memory"),
    ("nbsp-after-try", "try\u00a0{ LIMIT } catch (e) { n++; }", "memory"),
    ("ideographic-space-after-catch", "try { LIMIT } catch\u3000(e) { n++; }", "memory"),
    ("crlf-line-continuation", "const s = 'a\\\r\nb'; " + CAUGHT + " // '", "memory"),
    ("html-open-comment", "n <!-- /* an HTML-like comment\n" + CAUGHT + " // */", "memory"),
    ("html-close-comment", "/*\n*/ --> /* an HTML-like close comment\n" + CAUGHT + " // */", "memory"),
    ("division-after-function-expression", "const q = function () {} / 2; " + CAUGHT + " // /", "memory"),
    ("regex-after-function-declaration", "function g() {}\n/'/.test(''); " + CAUGHT + " // '", "memory"),
    ("division-after-class-expression", "const q = class {} / 2; " + CAUGHT + " // /", "memory"),
    ("regex-after-class-declaration", "class K {}\n/'/.test(''); " + CAUGHT + " // '", "memory"),
    ("division-after-nested-object", "const q = {a: {}} / 2; " + CAUGHT + " // /", "memory"),
    ("regex-after-nested-block", "{a: {}}\n/'/.test(''); " + CAUGHT + " // '", "memory"),
    (
        "division-after-method-named-if",
        "const o = { if: (x) => x }; const q = o.if(1) / 2; " + CAUGHT + " // /",
        "memory",
    ),
    ("division-after-identifier-of", "let of = 4; const q = of / 2; " + CAUGHT + " // /", "memory"),
    ("regex-after-extends", "class R extends /'/.constructor {} " + CAUGHT + " // '", "memory"),
    ("paren-in-catch-default", "try { LIMIT } catch ({ message = ')' }) { n++; }", "memory"),
    ("bare-catch", "try { LIMIT } catch { n++; }", "memory"),
    (
        "finally-return",
        "for (let i = 0; i < 3; i++) { (() => { try { LIMIT } finally { return; } })(); }",
        "memory",
    ),
    (
        "using-suppressed-error",
        "try { using r = { [Symbol.dispose]() { throw new Error('dispose'); } }; LIMIT } catch (e) { n++; }",
        "stack",
    ),
    (
        "disposable-stack",
        "const ds = new DisposableStack(); ds.defer(() => { throw new Error('later'); });"
        " ds.defer(() => { LIMIT }); try { ds.dispose(); } catch (e) { n++; }",
        "stack",
    ),
    (
        "aggregate-error",
        "try { await Promise.any([(async () => { LIMIT })(), Promise.reject(1)]); } catch (e) { n++; }",
        "stack",
    ),
    ("oom-caught-51-times", "for (let k = 0; k < 51; k++) { try { BIG } catch (e) { n++; } }", "memory"),
    (
        "oom-growth-caught-51-times",
        "for (let k = 0; k < 51; k++) { try { OOM } catch (e) { n++; } }",
        "memory",
    ),
    (
        "recursion-swallowed",
        "function d(m) { try { return d(m + 1); } catch (e) { return 'swallowed'; } } return d(0);",
        "stack",
    ),
    (
        "recursion-swallowed-by-name-check",
        "function d(m) { try { return d(m + 1); } catch (e) { return e.name + e.message; } } return d(0);",
        "stack",
    ),
    ("stack-caught-in-loop", "for (let k = 0; k < 100; k++) { try { STACK } catch (e) { n++; } }", "stack"),
]


def _body(body: str, limit: str) -> str:
    hit = {"stack": STACK, "memory": OOM}[limit]
    return body.replace("LIMIT", hit).replace("OOM", OOM).replace("BIG", BIG).replace("STACK", STACK)


@pytest.mark.parametrize(("body", "limit"), [pytest.param(b, lim, id=i) for i, b, lim in SHAPES])
def test_a_limit_faults_whatever_the_source_shape(body: str, limit: str) -> None:
    engine = WorkflowEngine(limits=Limits(time=10.0, memory=16 * 2**20, stack=256 * 2**10))
    script = f"async function main() {{ let n = 0;\n{_body(body, limit)}\nreturn 'swallowed ' + n; }}"
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.FAULTED, result.value
    assert isinstance(result.error, ResourceLimitError), result.error
    assert result.error.limit == limit


DROPPED = [
    pytest.param("(async () => { LIMIT })(); await null;", id="async-function-not-awaited"),
    pytest.param("new Promise(() => { LIMIT }); await null;", id="throwing-executor-dropped"),
    pytest.param(
        "Promise.resolve().then(() => { LIMIT }); await null; await null;", id="then-callback-dropped"
    ),
]


@pytest.mark.skipif(not native_status().enabled, reason="the rejection tracker is a native path")
@pytest.mark.parametrize("limit", ["stack", "memory"])
@pytest.mark.parametrize("body", DROPPED)
def test_a_limit_in_a_promise_nobody_handles_still_faults(body: str, limit: str) -> None:
    # No catch clause and no rejection handler sees these errors: the
    # sandbox's rejection tracker (outside the script) does.
    engine = WorkflowEngine(limits=Limits(time=10.0, memory=16 * 2**20, stack=256 * 2**10))
    script = f"async function main() {{ let n = 0;\n{_body(body, limit)}\nreturn 'swallowed'; }}"
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.FAULTED, result.value
    assert isinstance(result.error, ResourceLimitError), result.error
    assert result.error.limit == limit


def test_ordinary_rejections_nobody_handles_are_not_limits() -> None:
    engine = WorkflowEngine()
    script = """async function main() {
      Promise.reject(new RangeError('Maximum call stack size')); (async () => { throw new Error('x'); })();
      new Promise(() => { throw { message: 'out of memory' }; }); await null; return 'fine';
    }"""
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value == "fine"


@pytest.mark.parametrize("limit", ["stack", "memory"])
def test_a_limit_inside_prepare_stack_trace_still_faults(limit: str) -> None:
    # QuickJS discards what Error.prepareStackTrace throws; the bridge keeps it.
    engine = WorkflowEngine(limits=Limits(time=10.0, memory=16 * 2**20, stack=256 * 2**10))
    body = "Error.prepareStackTrace = () => { LIMIT }; for (let k = 0; k < 5; k++) new Error('x').stack;"
    script = f"async function main() {{ let n = 0;\n{_body(body, limit)}\nreturn 'swallowed'; }}"
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.FAULTED, result.value
    assert isinstance(result.error, ResourceLimitError), result.error
    assert result.error.limit == limit


def test_a_script_prepare_stack_trace_still_formats_stacks() -> None:
    script = (
        "async function main() { Error.prepareStackTrace = (e, sites) => 'mine ' + sites.length;"
        " return new Error('x').stack; }"
    )
    result = WorkflowEngine().run_workflow(script)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value.startswith("mine ")


ITERATOR_CLOSE = [
    pytest.param(
        "function* g() { try { yield 1; } finally { LIMIT } }"
        " try { for (const x of g()) { throw new Error('plain'); } } catch (e) { n++; }",
        id="generator-finally",
    ),
    pytest.param(
        "const it = { [Symbol.iterator]() { return this; }, next() { return { done: false, value: 1 }; },"
        " return() { LIMIT } };"
        " try { for (const x of it) { throw new Error('plain'); } } catch (e) { n++; }",
        id="iterator-return-method",
    ),
    pytest.param(
        "const it = { [Symbol.iterator]() { return this; }, next: () => ({ done: false, value: 1 }),"
        " return: () => { LIMIT } };"
        " try { for (const x of it) { throw new Error('plain'); } } catch (e) { n++; }",
        id="iterator-return-arrow",
    ),
]


@pytest.mark.parametrize("limit", ["stack", "memory"])
@pytest.mark.parametrize("body", ITERATOR_CLOSE)
def test_a_limit_discarded_while_closing_an_iterator_still_faults(body: str, limit: str) -> None:
    # QuickJS drops what an iterator's return() throws while another error propagates.
    engine = WorkflowEngine(limits=Limits(time=10.0, memory=16 * 2**20, stack=256 * 2**10))
    script = f"async function main() {{ let n = 0;\n{_body(body, limit)}\nreturn 'swallowed ' + n; }}"
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.FAULTED, result.value
    assert isinstance(result.error, ResourceLimitError), result.error
    assert result.error.limit == limit


@pytest.mark.parametrize(
    "line",
    [
        "  try { null.x; } catch (err) { return await waitForEvent('approval'); }",
        "  try { null.x; } finally { await waitForEvent('approval'); }",
        "  try { null.x; } catch ({ message = ')' }) { return await waitForEvent('approval'); } // é",
        "  const é = 'é'; try { null.x; } catch { return await waitForEvent('approval'); }",
    ],
)
def test_wait_locations_point_into_the_script_as_written(line: str) -> None:
    # the guards the sandbox inserts on a line move nothing the author sees
    script = f"async function main() {{\n{line}\n}}"
    result = WorkflowEngine().run_workflow(script)
    assert result.waits[0].location == {"line": 2, "column": line.index("waitForEvent") + 1}

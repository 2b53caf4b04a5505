"""JS steps: step(name, fn, {retries, backoff, factor}) (issue 5)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from engine_helpers import FakeClock
from fetch_helpers import LoopbackServer, loopback_server

from jsflow import JournalCompatibilityError, ScriptError, WorkflowEngine, WorkflowStatus


class Counter:
    """A Python step the JS step bodies call through the ephemeral channel."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


@pytest.fixture
def counter() -> Counter:
    return Counter()


@pytest.fixture
def eng(clock: FakeClock, counter: Counter) -> WorkflowEngine:
    return WorkflowEngine(clock=clock).register_step_function("tick", counter)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as srv:
        yield srv


def test_runs_once_and_replays_without_running(eng: WorkflowEngine, counter: Counter) -> None:
    script = """async function main() {
        const v = await step('compute', async () => {
            const n = await tick();
            return {n, doubled: n * 2};
        });
        const ev = await waitForEvent('go');
        return [v, ev];
    }"""
    first = eng.run_workflow(script)
    assert first.status is WorkflowStatus.SUSPENDED
    assert counter.calls == 1
    [entry] = first.state.journal  # the body's tick() is not journaled separately
    assert (entry.slot, entry.type, entry.name, entry.result) == (
        0,
        "step",
        "compute",
        {"n": 1, "doubled": 2},
    )
    assert first.suspension is not None and first.suspension.wait_id == 1
    done = eng.raise_event(script, first.state, "go", "x")
    assert done.value == [{"n": 1, "doubled": 2}, "x"]
    assert counter.calls == 1


def test_retries_inside_the_step(eng: WorkflowEngine, counter: Counter) -> None:
    script = """async function main() {
        return await step('flaky', async () => {
            const n = await tick();
            if (n < 3) throw new Error('attempt ' + n + ' failed');
            return n;
        }, {retries: 3});
    }"""
    result = eng.run_workflow(script)
    assert result.value == 3
    assert counter.calls == 3
    assert [(e.type, e.name) for e in result.state.journal] == [("step", "flaky")]


def test_inline_backoff_waits_in_process(eng: WorkflowEngine, counter: Counter) -> None:
    script = """async function main() {
        return await step('flaky', async () => {
            const n = await tick();
            if (n < 3) throw new Error('no');
            return n;
        }, {retries: 2, backoff: 100, factor: 2});
    }"""
    start = time.monotonic()
    result = eng.run_workflow(script)
    assert result.value == 3
    assert time.monotonic() - start >= 0.3  # 100 ms, then 200 ms


def test_error_is_journaled_and_replayed(eng: WorkflowEngine, counter: Counter) -> None:
    script = """async function main() {
        let caught;
        try {
            await step('doomed', async () => { await tick(); throw new RangeError('no way'); }, {retries: 1});
        } catch (e) { caught = [e instanceof RangeError, e.name, e.message]; }
        await sleep('1m');
        return caught;
    }"""
    first = eng.run_workflow(script)
    assert counter.calls == 2
    entry = first.state.journal[0]
    assert (entry.type, entry.name, entry.error) == (
        "step_error",
        "doomed",
        {"name": "RangeError", "message": "no way"},
    )
    done = eng.resume_workflow(script, first.state)
    assert done.value == [True, "RangeError", "no way"]
    assert counter.calls == 2


def test_uncaught_step_error_faults(eng: WorkflowEngine) -> None:
    result = eng.run_workflow(
        "async function main() { await step('s', () => { throw new TypeError('bad'); }); }"
    )
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, ScriptError) and result.error.js_name == "TypeError"


def test_long_backoff_becomes_a_durable_retry_wait(
    eng: WorkflowEngine, counter: Counter, clock: FakeClock
) -> None:
    script = """async function main() {
        return await step('later', async () => {
            const n = await tick();
            if (n < 2) throw new Error('not yet');
            return 'done ' + n;
        }, {retries: 1, backoff: 60000});
    }"""
    first = eng.run_workflow(script)
    assert first.status is WorkflowStatus.SUSPENDED
    wait = first.suspension
    assert wait is not None and wait.is_retry and wait.function_name == "later"
    assert wait.resume_at == clock.now + timedelta(minutes=1)
    assert first.state.journal == []
    clock.advance(minutes=1)
    done = eng.resume_workflow(script, first.state)
    assert done.value == "done 2"
    assert counter.calls == 2


def test_retries_exhausted_after_durable_wait(eng: WorkflowEngine, counter: Counter) -> None:
    script = """async function main() {
        return await step('never', async () => { await tick(); throw new Error('still no'); },
                          {retries: 1, backoff: 5000}).catch(e => e.message);
    }"""
    first = eng.run_workflow(script)
    assert first.status is WorkflowStatus.SUSPENDED
    done = eng.resume_workflow(script, first.state)
    assert done.value == "still no"
    assert counter.calls == 2


def test_renamed_step_is_drift(eng: WorkflowEngine) -> None:
    script = "async function main() { await step('a', () => 1); return await waitForEvent('go'); }"
    first = eng.run_workflow(script)
    changed = script.replace("step('a'", "step('b'")
    result = eng.raise_event(changed, first.state, "go")
    assert result.status is WorkflowStatus.FAULTED
    err = result.error
    assert isinstance(err, JournalCompatibilityError)
    assert (err.slot_index, err.expected_name, err.encountered_name) == (0, "a", "b")


def test_suspensions_inside_a_body_are_refused(eng: WorkflowEngine) -> None:
    result = eng.run_workflow(
        """async function main() {
            return await step('s', async () => {
                const a = await sleep('1s').then(() => 'slept', e => e.name);
                const b = await step('inner', () => 1).then(() => 'nested', e => e.name);
                return [a, b];
            });
        }"""
    )
    assert result.value == ["TypeError", "TypeError"]
    assert len(result.state.journal) == 1


def test_body_randomness_does_not_shift_the_workflow(clock: FakeClock) -> None:
    lines: list[str] = []
    engine = WorkflowEngine(clock=clock, on_console=lambda level, msg: lines.append(msg))
    script = """async function main() {
        await step('noisy', () => Math.random() + Math.random());
        const x = Math.random();
        console.log(String(x));
        await sleep('1s');
        return x;
    }"""
    first = engine.run_workflow(script, run_id="r1")
    done = engine.resume_workflow(script, first.state)
    assert str(done.value) == lines[0]


def test_concurrent_steps_and_journaled_fetch(clock: FakeClock) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"path": request.url.path})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    engine = WorkflowEngine(clock=clock).enable_fetch(client, resolver=lambda h, p: ["93.184.216.34"])
    script = """async function main() {
        const [a, b, c] = await Promise.all([
            step('a', async () => (await (await fetch('https://x.example/a1')).json()).path +
                                  (await (await fetch('https://x.example/a2')).json()).path),
            fetch('https://x.example/outside').then(r => r.json()),
            step('b', async () => (await fetch('https://x.example/b')).status),
        ]);
        await sleep('1s');
        return [a, b, c];
    }"""
    first = engine.run_workflow(script)
    assert sorted(seen) == ["/a1", "/a2", "/b", "/outside"]
    kinds = sorted((e.slot, e.name) for e in first.state.journal)
    assert kinds == [(0, "a"), (1, "fetch"), (2, "b")]
    done = engine.resume_workflow(script, first.state)
    assert done.value == ["/a1/a2", {"path": "/outside"}, 200]
    assert len(seen) == 4


def test_fetch_inside_step_against_real_server(server: LoopbackServer, clock: FakeClock) -> None:
    engine = WorkflowEngine(clock=clock).enable_fetch(allow_hosts=["127.0.0.1"], timeout=2.0)
    script = """async function main(base) {
        const got = await step('load', async () => {
            const r = await fetch(base + '/flaky/1');
            return await r.json();
        }, {retries: 2});
        await sleep('1s');
        return got;
    }"""
    first = engine.run_workflow(script, "main", server.base)
    assert [e.name for e in first.state.journal] == ["load"]
    assert server.flaky_seen == 2
    done = engine.resume_workflow(script, first.state)
    assert done.value == {"ok": True}
    assert server.flaky_seen == 2


def test_step_argument_validation(eng: WorkflowEngine) -> None:
    result = eng.run_workflow(
        """async function main() {
            const out = [];
            for (const f of [() => step(''), () => step('x', 1), () => step('x', () => 1, {retries: -1}),
                             () => step('x', () => 1, {backoff: 'soon'})]) {
                try { f(); out.push('ok'); } catch (e) { out.push(e.name); }
            }
            return out;
        }"""
    )
    assert result.value == ["TypeError"] * 4

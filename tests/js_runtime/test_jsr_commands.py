from __future__ import annotations

import time

import pytest

from js_runtime import Sandbox, SandboxClosedError, SandboxLimits, TimeLimitExceeded


def test_order_preserved_and_take_empties(sb: Sandbox) -> None:
    for i in range(5):
        sb.call("q", {"n": i})
    sb.run_script("void 0")
    assert sb.take_commands() == [{"n": i} for i in range(5)]
    assert sb.take_commands() == []


def test_commands_from_jobs(sb: Sandbox) -> None:
    sb.install("host.register('later', x => { Promise.resolve().then(() => host.emit(x)); })")
    sb.call("q", "a")
    sb.call("later", "b")
    sb.call("q", "c")
    assert sb.drain() >= 1
    assert sb.take_commands() == ["a", "c", "b"]


def test_guest_cannot_reach_host(sb: Sandbox) -> None:
    sb.run_script("globalThis.__value = [typeof host, typeof __jsr_boot, typeof dispatch]")
    assert sb.call("get") == ["undefined", "undefined", "undefined"]


def test_emit_survives_array_prototype_setter(sb: Sandbox) -> None:
    sb.run_script("Object.defineProperty(Array.prototype, '0', { set() { throw new Error('hijack'); } });")
    sb.call("q", 1)
    sb.call("q", 2)
    assert sb.take_commands() == [1, 2]


def test_repeat_and_drain_stops_at_first_answer_and_drains_each_time() -> None:
    with Sandbox() as sb:
        sb.start_budget()
        sb.install(
            "let n = 0;"
            "host.register('tick', () => { n += 1;"
            " Promise.resolve().then(() => host.emit(n));"
            " return n === 3 ? { stop: n } : null; });"
        )
        assert sb.repeat_and_drain("tick", 10) == (2, {"stop": 3})
        assert sb.take_commands() == [1, 2, 3]
        assert sb.repeat_and_drain("tick", 2) is None
        assert sb.take_commands() == [4, 5]


def test_repeat_and_drain_shares_one_budget() -> None:
    with Sandbox(SandboxLimits(time=0.3)) as sb:
        sb.start_budget()
        # each call spins 50 ms: fine alone, over the budget by the seventh
        sb.install(
            "host.register('spin', () => { const end = Date.now() + 50;"
            " while (Date.now() < end) {} return null; });"
        )
        started = time.perf_counter()
        with pytest.raises(TimeLimitExceeded):
            sb.repeat_and_drain("spin", 100)
        assert time.perf_counter() - started < 3
        with pytest.raises(SandboxClosedError):
            sb.call("spin")

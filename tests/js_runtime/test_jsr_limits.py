"""Every QuickJS hazard listed in docs/concepts.md ("The sandbox"): each must stop promptly."""

from __future__ import annotations

import pytest

from js_runtime import (
    JSRuntimeError,
    MemoryLimitExceeded,
    ResourceLimitExceeded,
    Sandbox,
    SandboxClosedError,
    SandboxLimits,
    StackLimitExceeded,
    TimeLimitExceeded,
)


def test_infinite_loop_in_script(sb: Sandbox, prompt) -> None:
    with prompt(), pytest.raises(TimeLimitExceeded) as info:
        sb.run_script("for (;;) {}")
    assert info.value.limit == "time"
    assert isinstance(info.value, ResourceLimitExceeded)


def test_infinite_loop_cannot_be_caught(sb: Sandbox, prompt) -> None:
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.run_script("for (;;) { try { for (;;) {} } catch (e) {} }")


def test_infinite_loop_in_op(sb: Sandbox, prompt) -> None:
    sb.install("host.register('spin', () => { for (;;) {} })")
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.call("spin")


def test_infinite_loop_in_promise_job(sb: Sandbox, prompt) -> None:
    sb.run_script("Promise.resolve().then(() => { for (;;) {} })")
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.drain()
    with pytest.raises(SandboxClosedError):
        sb.drain()


def test_endless_chain_of_short_jobs(new_sandbox, prompt) -> None:
    # Memory is generous so the chain (which retains its promises) hits the
    # shared time budget, not the memory limit, first.
    sb = new_sandbox(SandboxLimits(time=0.3, memory=512 * 2**20))
    sb.run_script("Promise.resolve().then(function f() { return Promise.resolve().then(f); })")
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.drain()


def test_endless_chain_without_growth(sb: Sandbox, prompt) -> None:
    sb.run_script("Promise.resolve().then(function f() { Promise.resolve().then(f); })")
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.drain()


def test_endless_chain_from_module(sb: Sandbox, prompt) -> None:
    src = "Promise.resolve().then(function f() { Promise.resolve().then(f); });\nexport const main = 1;"
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.run_module(src, ["main"])


BURN = "host.register('burn', s => { const t = Date.now(); while (Date.now() - t < s * 1000) {} })"


def test_one_budget_across_calls(new_sandbox, prompt) -> None:
    sb = new_sandbox(SandboxLimits(time=0.3, wall=10))
    sb.install(BURN)
    with prompt(5), pytest.raises(TimeLimitExceeded):
        for _ in range(5):
            sb.call("burn", 0.1)
    assert sb.cpu_used >= 0.25


def test_start_budget_resets(new_sandbox) -> None:
    sb = new_sandbox(SandboxLimits(time=0.3, wall=10))
    sb.install(BURN)
    for _ in range(5):
        sb.start_budget()
        sb.call("burn", 0.1)
        assert sb.cpu_used < 0.3


def test_wall_budget_backs_up_cpu(new_sandbox, prompt) -> None:
    sb = new_sandbox(SandboxLimits(time=10, wall=0.3))
    sb.install(BURN)
    with prompt(), pytest.raises(TimeLimitExceeded):
        for _ in range(10):
            sb.call("burn", 0.1)


@pytest.mark.parametrize(
    "bomb",
    [
        "const a = []; for (let i = 0; ; i++) a.push('x'.repeat(1 << 20) + i);",
        "globalThis.s = 'x'.repeat(100 * 2 ** 20);",
        "globalThis.t = new Uint8Array(100 * 2 ** 20);",
        "globalThis.b = new ArrayBuffer(2 ** 30);",
    ],
    ids=["array-of-strings", "huge-string", "typed-array", "array-buffer"],
)
def test_memory_bomb(sb: Sandbox, prompt, bomb: str) -> None:
    with prompt(), pytest.raises(MemoryLimitExceeded) as info:
        sb.run_script(bomb)
    assert info.value.limit == "memory"
    with pytest.raises(SandboxClosedError, match="memory"):
        sb.call("id", 1)


def test_memory_bomb_in_module(sb: Sandbox, prompt) -> None:
    with prompt(), pytest.raises(MemoryLimitExceeded):
        sb.run_module("export const main = new Uint8Array(100 * 2 ** 20);", ["main"])


def test_process_usable_after_many_memory_errors(new_sandbox) -> None:
    for _ in range(5):
        sb = new_sandbox()
        with pytest.raises(MemoryLimitExceeded):
            sb.run_script("globalThis.s = 'x'.repeat(100 * 2 ** 20);")
        sb.close()
    assert new_sandbox().call("add", 1, 1) == 2


@pytest.mark.parametrize(
    "src",
    [
        "function f() { return f() + 1; } f();",
        "const f = (n) => [f(n + 1)]; f(0);",
    ],
    ids=["plain", "arrow"],
)
def test_deep_recursion(sb: Sandbox, prompt, src: str) -> None:
    with prompt(), pytest.raises(StackLimitExceeded) as info:
        sb.run_script(src)
    assert info.value.limit == "stack"
    assert len(str(info.value)) < 200
    assert len(info.value.stack) < 5000


def test_caught_stack_overflow_still_stops(sb: Sandbox, prompt) -> None:
    # RangeError is catchable; a script that keeps recursing from its catch
    # block runs into the time limit instead.
    with prompt(), pytest.raises((StackLimitExceeded, TimeLimitExceeded)):
        sb.run_script("function g() { try { return g(); } catch (e) { return g(); } } g();")


def test_deep_recursion_in_op(sb: Sandbox, prompt) -> None:
    sb.install("host.register('deep', () => { function f() { return f() + 1; } return f(); })")
    with prompt(), pytest.raises(StackLimitExceeded):
        sb.call("deep")


def test_deeply_nested_value_is_not_a_crash(sb: Sandbox, prompt) -> None:
    sb.run_script("let v = []; for (let i = 0; i < 1e5; i++) v = [v]; globalThis.__value = v;")
    with prompt(), pytest.raises(JSRuntimeError):
        sb.call("get")

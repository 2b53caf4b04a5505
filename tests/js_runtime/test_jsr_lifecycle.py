from __future__ import annotations

import gc

import pytest

from js_runtime import (
    JSError,
    Sandbox,
    SandboxClosedError,
    SandboxLimits,
    TimeLimitExceeded,
)


def test_context_manager_closes() -> None:
    with Sandbox(SandboxLimits(time=1)) as sb:
        sb.install("host.register('one', () => 1)")
        assert sb.call("one") == 1
        assert not sb.closed
    assert sb.closed
    with pytest.raises(SandboxClosedError):
        sb.call("one")


@pytest.mark.parametrize(
    "use",
    [
        lambda sb: sb.call("id", 1),
        lambda sb: sb.run_script("1"),
        lambda sb: sb.run_module("export const main = 1", ["main"]),
        lambda sb: sb.drain(),
        lambda sb: sb.take_commands(),
        lambda sb: sb.install(""),
        lambda sb: sb.memory_usage(),
    ],
)
def test_every_entry_point_raises_after_close(use, new_sandbox) -> None:
    sb = new_sandbox()
    sb.close()
    with pytest.raises(SandboxClosedError):
        use(sb)


def test_close_is_idempotent(new_sandbox) -> None:
    sb = new_sandbox()
    sb.close()
    sb.close()
    assert sb.closed


def test_limit_breaks_sandbox_but_process_stays_usable(new_sandbox) -> None:
    sb = new_sandbox()
    with pytest.raises(TimeLimitExceeded):
        sb.run_script("for (;;) {}")
    with pytest.raises(SandboxClosedError, match="time"):
        sb.call("id", 1)
    sb.start_budget()  # a fresh budget does not revive a broken context
    with pytest.raises(SandboxClosedError):
        sb.call("id", 1)
    sb.close()
    with new_sandbox() as fresh:
        assert fresh.call("add", 2, 3) == 5


def test_js_error_does_not_break_sandbox(sb: Sandbox) -> None:
    with pytest.raises(JSError):
        sb.run_script("throw new Error('x')")
    assert sb.call("add", 1, 2) == 3


def test_default_limits() -> None:
    limits = SandboxLimits()
    assert limits.wall_budget == 2 * limits.time + 1
    assert SandboxLimits(wall=5).wall_budget == 5


def test_a_closed_sandbox_frees_its_context_without_the_cycle_collector() -> None:
    """A closed sandbox's QuickJS context (its whole heap) must be freed by
    reference counting: left to Python's cyclic collector, which QuickJS's
    memory does not prompt, a host running many workflows grew by about a
    megabyte per run until a collection happened to run."""
    gc.collect()
    gc.disable()
    try:
        with Sandbox(SandboxLimits(time=1)) as sb:
            sb.install("host.register('one', () => 1)")
            assert sb.call("one") == 1
            sb.run_script("Promise.reject(new Error('nobody handles this'))")
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [type(obj).__name__ for obj in gc.garbage if type(obj).__module__ == "_quickjs"]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []

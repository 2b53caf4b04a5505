from __future__ import annotations

from js_runtime import Sandbox


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

"""Traps on values, hostile thrown values and prototype tampering must neither
hang the process nor break the bridge."""

from __future__ import annotations

import contextlib

import pytest

from js_runtime import JSError, Sandbox, TimeLimitExceeded

LOOP = "for (;;) {}"


@pytest.mark.parametrize(
    "src",
    [
        "throw { toString() { for (;;) {} } };",
        "throw { get message() { for (;;) {} } };",
        "throw { get name() { for (;;) {} } };",
        "throw { get stack() { for (;;) {} } };",
        "throw { [Symbol.toPrimitive]() { for (;;) {} } };",
        "throw new Proxy({}, { get() { for (;;) {} } });",
    ],
)
def test_hostile_thrown_value_stops(sb: Sandbox, prompt, src: str) -> None:
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.run_script(src)


def test_hostile_thrown_value_in_module(sb: Sandbox, prompt) -> None:
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.run_module("throw { toString() { for (;;) {} } };\nexport const main = 1;", ["main"])


def test_hostile_rejection_in_module(sb: Sandbox, prompt) -> None:
    src = "await Promise.reject({ toString() { for (;;) {} } });\nexport const main = 1;"
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.run_module(src, ["main"])


def test_module_syntax_error_cannot_hang(sb: Sandbox, prompt) -> None:
    sb.run_script("try { Error.prototype.toString = function () { for (;;) {} }; } catch (e) {}")
    with prompt(), pytest.raises(JSError) as info:
        sb.run_module("export function main( {", ["main"])
    assert info.value.name == "SyntaxError"


@pytest.mark.parametrize(
    "value",
    [
        "({ get x() { for (;;) {} } })",
        "({ toJSON() { for (;;) {} } })",
        "[1, { get y() { for (;;) {} } }]",
        "new Proxy({}, { ownKeys() { for (;;) {} } })",
    ],
    ids=["getter", "toJSON", "nested-getter", "proxy"],
)
def test_traps_on_returned_values_stop(sb: Sandbox, prompt, value: str) -> None:
    sb.install(f"host.register('trap', () => {value})")
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.call("trap")


def test_huge_error_message_is_truncated(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.run_script("throw new Error('x'.repeat(5e6));")
    assert len(info.value.message) < 5000
    assert len(str(info.value)) < 5000
    assert "truncated" in info.value.message


def test_huge_thrown_string_is_truncated(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.run_script("throw 'y'.repeat(5e6);")
    assert len(info.value.message) < 5000


def test_truncation_survives_tampered_string_methods(sb: Sandbox) -> None:
    sb.run_script(
        "String.prototype.slice = function () { return String(this); };"
        "String.prototype.substring = String.prototype.slice;"
    )
    with pytest.raises(JSError) as info:
        sb.run_script("const e = new Error('x'.repeat(5e6)); e.name = 'N'.repeat(1e6); throw e;")
    assert len(info.value.message) < 5000
    assert len(info.value.name) < 1000
    assert len(info.value.stack) < 10000


@pytest.mark.parametrize(
    "tamper",
    [
        "Error.prototype.toString = function () { for (;;) {} };",
        "Error.prototype.name = 'Evil';",
        "Object.defineProperty(Error.prototype, 'name', { get() { for (;;) {} } });",
        "Object.defineProperty(Error.prototype, 'message', { get() { for (;;) {} } });",
        "InternalError.prototype.toString = function () { for (;;) {} };",
        "Object.defineProperty(InternalError.prototype, 'name', { get() { for (;;) {} } });",
        "RangeError.prototype.toString = function () { for (;;) {} };",
        "Object.setPrototypeOf(InternalError.prototype, { toString() { for (;;) {} } });",
        "Object.prototype[Symbol.toPrimitive] = function () { for (;;) {} };",
        "Object.defineProperty(Object.prototype, Symbol.toPrimitive, { value() { for (;;) {} } });",
    ],
)
def test_prototype_tampering_is_refused_and_loops_still_stop(sb: Sandbox, prompt, tamper: str) -> None:
    # Either the tampering throws (frozen prototypes), or it is harmless: the
    # interrupt that follows must still come back promptly as a time limit.
    with pytest.raises(JSError):
        sb.run_script(tamper)
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.run_script(LOOP)


def test_object_prototype_to_string_tamper_then_loop(sb: Sandbox, prompt) -> None:
    sb.run_script("try { Object.prototype.toString = function () { for (;;) {} }; } catch (e) {}")
    with prompt(), pytest.raises(TimeLimitExceeded):
        sb.run_script(LOOP)


def test_stack_overflow_after_tampering_stops(sb: Sandbox, prompt) -> None:
    sb.run_script("try { RangeError.prototype.toString = () => { for (;;) {} }; } catch (e) {}")
    with prompt(), pytest.raises(Exception) as info:
        sb.run_script("function f() { return f() + 1; } f();")
    assert type(info.value).__name__ == "StackLimitExceeded"


def test_error_subclass_with_name_still_works(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.run_script(
            "class X extends Error { constructor(m) { super(m); this.name = 'X'; } }throw new X('boom');"
        )
    assert (info.value.name, info.value.message) == ("X", "boom")
    sb.run_script(
        "const e = new TypeError('t'); e.message = 'changed'; e.name = 'Y';"
        "globalThis.__value = [e.name, e.message, String(e)];"
    )
    assert sb.call("get") == ["Y", "changed", "Y: changed"]


def test_own_to_primitive_on_objects_still_works(sb: Sandbox) -> None:
    sb.run_script(
        "const o = { [Symbol.toPrimitive]() { return 41; } };"
        "const p = {}; p[Symbol.toPrimitive] = () => 1;"
        "globalThis.__value = [o + 1, p + 1];"
    )
    assert sb.call("get") == [42, 2]


@pytest.mark.parametrize(
    "tamper",
    [
        "Array.prototype.push = null; Array.prototype.slice = null; Array.prototype.map = null;",
        "Array.prototype[Symbol.iterator] = function* () { yield 'evil'; };",
        "Object.defineProperty(Array.prototype, '0', { set() { throw new Error('hijack'); } });",
        "Object.defineProperty(Array.prototype, '1', { set() {}, get() { return 'x'; } });",
        "Object.defineProperty(Object.prototype, '0', { set() { throw 1; } });",
        "Object.defineProperty(Object.prototype, 'ok', { set() { throw 1; } });",
        "Object.defineProperty(Object.prototype, 'main', { set() { throw 1; } });",
        "JSON.stringify = () => '{\"ok\": \"forged\"}'; JSON.parse = () => ['forged'];",
        "Reflect.apply = () => 'forged'; Function.prototype.apply = null;Function.prototype.call = null;",
        "Object.defineProperty = null; Object.keys = null; Array.isArray = null; String = null;",
        "Promise.prototype.then = function () { return this; };",
        "String.prototype.slice = null;",
    ],
)
def test_tampering_after_boot_does_not_break_bridge(sb: Sandbox, tamper: str) -> None:
    sb.run_script(tamper)
    value = [1, "two", {"three": [3.5, None, True]}, [], {}]
    assert sb.call("id", value) == value
    assert sb.call("add", 20, 22) == 42
    sb.call("q", {"cmd": 1})
    sb.call("q", [2])
    assert sb.take_commands() == [{"cmd": 1}, [2]]
    assert sb.run_module("export function main() {}", ["main"]) == {"main": "function"}
    with pytest.raises(JSError) as info:
        sb.run_script("throw new TypeError('still described');")
    assert (info.value.name, info.value.message) == ("TypeError", "still described")


def test_setter_throwing_hostile_value_cannot_freeze(sb: Sandbox, prompt) -> None:
    # The setter runs inside the binding's own JSON.stringify; if anything it
    # throws escaped the bridge, the binding would stringify it with no limit.
    sb.run_script(
        "let n = 0; Object.defineProperty(Array.prototype, '0', { set() {"
        " throw { toString() { if (n++ > 0) for (;;) {} return 'x'; } }; } });"
    )
    with prompt():
        assert sb.call("id", [1, {"a": 2}]) == [1, {"a": 2}]
        with pytest.raises(JSError):
            sb.run_script("throw new Error('e')")


def test_fallback_serialiser_matches_json_semantics(sb: Sandbox) -> None:
    sb.run_script("Object.defineProperty(Array.prototype, '0', { set() { throw 1; } });")
    sb.run_script(
        "globalThis.__value = { a: undefined, b: () => 1, c: [undefined, () => 1, NaN],"
        " d: new Date(0), e: { toJSON(k) { return 'key:' + k; } }, 'q\"\\u0000': '\\ud800' };"
    )
    assert sb.call("get") == {
        "c": [None, None, None],
        "d": "1970-01-01T00:00:00.000Z",
        "e": "key:e",
        'q"\x00': "\ud800",
    }
    sb.run_script("const c = {}; c.self = c; globalThis.__value = c;")
    with pytest.raises(JSError):
        sb.call("get")
    big = [{"k": i, "s": "x" * 50} for i in range(2000)]
    assert sb.call("id", big) == big  # long output is a rope string inside JS
    sb.install("host.register('nest', () => { let v = []; for (let i = 0; i < 50; i++) v = [v]; return v; })")
    assert sb.call("nest") is not None


@pytest.mark.parametrize(
    "src",
    [
        "Error.stackTraceLimit = 1e6;",
        "Object.defineProperty(Error, 'stackTraceLimit', { value: 1e6 });",
        "delete Error.stackTraceLimit; Error.stackTraceLimit = 1e6;",
    ],
)
def test_stack_trace_limit_cannot_be_raised(sb: Sandbox, src: str) -> None:
    with contextlib.suppress(JSError):
        sb.run_script(src)
    sb.run_script("globalThis.__value = Error.stackTraceLimit;")
    assert sb.call("get") == 10
    sb.run_script(
        "function r(n) { if (n === 0) throw new Error('deep'); r(n - 1); }"
        "try { r(60); } catch (e) { globalThis.__value = e.stack.split('\\n').length; }"
    )
    assert sb.call("get") <= 12


@pytest.mark.parametrize("proto", ["Object.prototype", "Array.prototype"])
def test_shared_to_json_cannot_forge_replies_or_commands(sb: Sandbox, proto: str) -> None:
    # JSON.stringify consults toJSON on every object it writes, the bridge's
    # own replies and queued commands included.
    sb.run_script(
        f"try {{ {proto}.toJSON = function () {{ return {{ forged: true }}; }}; }}"
        " catch (e) { globalThis.__value = e.name; }"
    )
    assert sb.call("get") == "TypeError"
    sb.call("q", {"cmd": [1]})
    assert sb.take_commands() == [{"cmd": [1]}]
    assert sb.call("id", {"a": [1]}) == {"a": [1]}


def test_own_to_json_still_works(sb: Sandbox) -> None:
    sb.run_script(
        "const o = {}; o.toJSON = () => 'mine'; const a = [1]; a.toJSON = () => 'arr';"
        "globalThis.__value = JSON.parse(JSON.stringify([o, a, { toJSON() { return 3; } }]));"
    )
    assert sb.call("get") == ["mine", "arr", 3]

from __future__ import annotations

import pytest

from js_runtime import JSError, JSRuntimeError, Sandbox


@pytest.mark.parametrize(
    ("src", "name", "message"),
    [
        ("throw new TypeError('bad type');", "TypeError", "bad type"),
        ("null.x;", "TypeError", None),
        ("undefinedName;", "ReferenceError", "undefinedName is not defined"),
        ("class MyErr extends Error { get name() { return 'MyErr'; } } throw new MyErr('m');",
         "MyErr", "m"),
        ("class E2 extends RangeError {} throw new E2('r');", "RangeError", "r"),
        ("throw 'a string';", "Error", "a string"),
        ("throw 42;", "Error", "42"),
        ("throw undefined;", "Error", "undefined"),
        ("throw { name: 'Plain', message: 'object' };", "Plain", "object"),
        ("throw Object.create(null);", "Error", None),
    ],
)  # fmt: skip
def test_thrown_values(sb: Sandbox, src: str, name: str, message: str | None) -> None:
    with pytest.raises(JSError) as info:
        sb.run_script(src)
    err = info.value
    assert isinstance(err, JSRuntimeError)
    assert err.name == name
    if message is not None:
        assert err.message == message
    assert isinstance(err.stack, str)
    assert sb.call("id", 1) == 1  # a guest error does not break the sandbox


def test_stack_is_carried(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.run_script("function inner() { throw new Error('x'); }\nfunction outer() { inner(); }\nouter();")
    assert "inner" in info.value.stack and "outer" in info.value.stack


def test_error_from_op(sb: Sandbox) -> None:
    sb.install("host.register('fail', () => { throw new RangeError('out of range'); })")
    with pytest.raises(JSError) as info:
        sb.call("fail")
    assert (info.value.name, info.value.message) == ("RangeError", "out of range")
    assert str(info.value) == "RangeError: out of range"


def test_script_syntax_error_names_line(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.run_script("const a = 1;\nconst b = 2;\nconst c = ;\n")
    err = info.value
    assert err.name == "SyntaxError"
    assert ":3:" in err.stack or "line 3" in err.message


def test_module_syntax_error(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.run_module("export function main( {", ["main"])
    assert info.value.name == "SyntaxError"
    assert sb.call("id", 1) == 1


def test_module_top_level_throw(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.run_module("throw new TypeError('top');\nexport const main = 1;", ["main"])
    assert (info.value.name, info.value.message) == ("TypeError", "top")


def test_module_rejected_top_level_await(sb: Sandbox) -> None:
    src = "await Promise.reject(new RangeError('tla'));\nexport const main = 1;"
    with pytest.raises(JSError) as info:
        sb.run_module(src, ["main"])
    assert (info.value.name, info.value.message) == ("RangeError", "tla")


def test_module_top_level_await_never_settles(sb: Sandbox) -> None:
    with pytest.raises(JSError, match="did not finish"):
        sb.run_module("await new Promise(() => {});\nexport const main = 1;", ["main"])


def test_module_top_level_await_resolves(sb: Sandbox) -> None:
    src = "const v = await Promise.resolve(7);\nexport function main() { return v; }"
    assert sb.run_module(src, ["main"]) == {"main": "function"}


@pytest.mark.parametrize(
    ("src", "exports", "expected"),
    [
        ("export function main() {}", ["main"], {"main": "function"}),
        ("function f() {}\nexport { f as main };", ["main"], {"main": "function"}),
        ("const a = 1, b = 'x';\nexport { a, b as main };", ["a", "main"],
         {"a": "number", "main": "string"}),
        ("export default function () { return 1; }", ["default"], {"default": "function"}),
        ("export default function main() { return 1; }\nmain();", ["default"],
         {"default": "function"}),
        ("export default class K {}\nnew K();", ["default"], {"default": "function"}),
        ("export default 42;", ["default"], {"default": "number"}),
        ("export const x = 1;", ["main", "default"], {"main": "undefined", "default": "undefined"}),
        ("export let main = {};", ["main"], {"main": "object"}),
    ],
)  # fmt: skip
def test_export_capture(sb: Sandbox, src: str, exports: list[str], expected: dict) -> None:
    assert sb.run_module(src, exports) == expected


def test_module_exports_are_reachable(sb: Sandbox) -> None:
    sb.install("host.register('runMain', () => globalThis.__jsr_module_exports.main());")
    sb.run_module("export default function () { return 'dflt'; }", ["default"])
    sb.run_module("function f() { return 'renamed'; }\nexport { f as main };", ["main"])
    assert sb.call("runMain") == "renamed"

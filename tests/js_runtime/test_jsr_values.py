from __future__ import annotations

import pytest

from js_runtime import JSError, Sandbox, encode

VALUES = [
    "a\x00b",
    "\x00",
    "\ud800",
    "x\udc00y",
    "\U0001f600 emoji, ünïcödé, 中文, \u2028\u2029",
    2**31,
    2**31 + 1,
    -(2**31) - 1,
    2**53,
    -(2**53),
    1.5,
    0,
    True,
    False,
    None,
    [],
    {},
    {"nested": {"list": [1, "two", {"three": [None, 2**40, "\x00"]}]}, "": "empty key"},
    ["\ud800", {"\x00key": "\udfff"}],
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:30] for v in VALUES])
def test_round_trip(sb: Sandbox, value) -> None:
    out = sb.call("id", value)
    assert out == value
    assert type(out) is type(value)


def test_values_arrive_exactly_in_js(sb: Sandbox) -> None:
    sb.install(
        "host.register('inspect', (s, n) => [s.length, s.charCodeAt(1), s.charCodeAt(2),"
        " n === 2 ** 53, Number.isInteger(n)])"
    )
    assert sb.call("inspect", "a\x00\ud800", 2**53) == [3, 0, 0xD800, True, True]


def test_integer_arithmetic_above_2_31(sb: Sandbox) -> None:
    assert sb.call("add", 2**31, 2**31) == 2**32
    assert sb.call("add", 2**52, 2**52) == 2**53


def test_bigint_result_is_js_error(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.call("big")
    assert info.value.name == "TypeError"
    assert sb.call("id", 1) == 1


def test_unusual_results(sb: Sandbox) -> None:
    sb.install(
        "host.register('undef', () => undefined);"
        "host.register('nan', () => [NaN, Infinity, -0]);"
        "host.register('fn', () => ({ f() {}, s: Symbol('x'), u: undefined, k: 1 }));"
    )
    assert sb.call("undef") is None
    assert sb.call("nan") == [None, None, 0]
    assert sb.call("fn") == {"k": 1}


def test_encode_is_ascii_and_rejects_nan() -> None:
    assert encode(["\x00\ud800é"]) == '["\\u0000\\ud800\\u00e9"]'
    with pytest.raises(ValueError):
        encode(float("nan"))


def test_script_source_with_nul_and_surrogates(sb: Sandbox) -> None:
    sb.run_script("globalThis.__value = 'a\x00\ud800';")
    assert sb.call("get") == "a\x00\ud800"


def test_module_source_the_binding_cannot_pass(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.run_module("export const main = 'a\x00';", ["main"])
    assert info.value.name == "SyntaxError"
    assert sb.call("id", 1) == 1


def test_unknown_op(sb: Sandbox) -> None:
    with pytest.raises(JSError, match="unknown op"):
        sb.call("nope")

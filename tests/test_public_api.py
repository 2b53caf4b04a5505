"""Each package re-exports its public API from __init__ with a sorted __all__."""

from __future__ import annotations

import js_runtime


def test_js_runtime_all_sorted() -> None:
    assert list(js_runtime.__all__) == sorted(js_runtime.__all__)
    assert len(set(js_runtime.__all__)) == len(js_runtime.__all__)


def test_js_runtime_all_exist() -> None:
    for name in js_runtime.__all__:
        assert hasattr(js_runtime, name), name


def test_js_runtime_errors_share_one_base() -> None:
    for name in js_runtime.__all__:
        obj = getattr(js_runtime, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, js_runtime.JSRuntimeError), name

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


# -- jsflow (the engine) ------------------------------------------------------------------
import jsflow  # noqa: E402

# The names the engine exports (docs/embedding.md, "The engine", lists them in one import).
SPEC_IMPORTS = [
    "WorkflowEngine", "WorkflowStatus", "WorkflowResult", "WorkflowState", "JournalEntry",
    "Wait", "RetryableStepError", "RetryPolicy", "Limits", "parse_duration",
    "WorkflowError", "ScriptError", "JournalCompatibilityError", "ResourceLimitError",
    "StateVersionError", "InvalidStateError", "EventNotAwaitedError", "PayloadTooLargeError",
]  # fmt: skip


def test_jsflow_all_sorted_and_unique() -> None:
    assert list(jsflow.__all__) == sorted(jsflow.__all__)
    assert len(set(jsflow.__all__)) == len(jsflow.__all__)


def test_jsflow_all_exist() -> None:
    for name in jsflow.__all__:
        assert hasattr(jsflow, name), name


def test_jsflow_exports_every_spec_import() -> None:
    missing = [name for name in SPEC_IMPORTS if name not in jsflow.__all__]
    assert missing == []


def test_jsflow_errors_share_one_base() -> None:
    for name in jsflow.__all__:
        obj = getattr(jsflow, name)
        if isinstance(obj, type) and issubclass(obj, BaseException) and name != "RetryableStepError":
            assert issubclass(obj, jsflow.WorkflowError), name
    assert issubclass(jsflow.InvalidStateError, ValueError)
    assert issubclass(jsflow.PayloadTooLargeError, ValueError)
    assert not issubclass(jsflow.RetryableStepError, jsflow.WorkflowError)

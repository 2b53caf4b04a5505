"""Registered Python functions and how one step call is executed.

A step's outcome is plain data (``StepOutcome``) so the run loop can journal
it before the script sees it. The step can read ``current_step()`` for its
slot, attempt and idempotency key; that context var is how Python code learns
which durable call it is serving without any argument plumbing.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from js_runtime import MAX_NESTING, nesting_over

from ._errors import RetryableStepError
from ._retry import RetryPolicy
from ._state import JournalEntry


@dataclass(frozen=True)
class StepFunction:
    name: str
    fn: Callable[..., Any]
    retry: RetryPolicy | None = None
    is_async: bool = False


@dataclass(frozen=True)
class SuspendFunction:
    name: str
    resume_at: Callable[..., Any] | None = None
    schema: Any = None  # JSON Schema a resume value must satisfy


@dataclass(frozen=True)
class StepContext:
    """What a running step may know about itself.

    ``idempotency_key`` is ``"<workflow id>:<slot>"`` (the workflow id is the
    ``workflow_id`` metadata a host sets, else the run id): the same on every
    re-execution of this call, different for every other call.
    """

    run_id: str
    slot: int
    name: str
    attempt: int = 1
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def workflow_id(self) -> str:
        return self.metadata.get("workflow_id") or self.run_id

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow_id}:{self.slot}"


_current: ContextVar[StepContext | None] = ContextVar("jsflow_current_step", default=None)


def current_step() -> StepContext:
    """The context of the step being executed; LookupError outside a step."""
    ctx = _current.get()
    if ctx is None:
        raise LookupError("current_step() is only available inside a running step function")
    return ctx


@dataclass(frozen=True)
class StepOutcome:
    """ok: ``value`` is the JSON-clean result; error: ``error`` has name and
    message; retry: ``retry_after`` and ``error`` say when and why."""

    kind: str
    value: Any = None
    error: dict[str, str] | None = None
    retry_after: timedelta | None = None


def is_async_callable(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


async def execute_step(
    step: StepFunction, args: list[Any], ctx: StepContext, payload_limit: int
) -> StepOutcome:
    """Run a step with its retry policy and turn every ending into an outcome."""
    try:
        value = await _call_with_policy(step, args, ctx)
    except RetryableStepError as exc:
        return StepOutcome(
            "retry",
            retry_after=exc.retry_after,
            error={"name": "RetryableStepError", "message": clip_message(str(exc.message))},
        )
    except Exception as exc:
        return StepOutcome("error", error=error_description(exc))
    return encode_result(step.name, value, payload_limit)


MAX_ERROR_MESSAGE = 2000
"""Error text kept of a failed step (characters), as for errors thrown in JS:
the message is journaled, and an unbounded one would bloat every state."""


def clip_message(text: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated {len(text) - limit} chars]"


def error_description(exc: BaseException) -> dict[str, str]:
    """A step's exception as the journaled ``{name, message}``, both bounded."""
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not escape the step boundary
        message = f"<{type(exc).__name__} could not be described>"
    return {"name": clip_message(type(exc).__name__, 200), "message": clip_message(message)}


async def _call_with_policy(step: StepFunction, args: list[Any], ctx: StepContext) -> Any:
    if step.retry is None:
        return await _call_once(step, args, ctx)
    if step.is_async:
        async for attempt in step.retry.async_retrying():
            with attempt:
                n = attempt.retry_state.attempt_number
                return await _call_once(step, args, replace(ctx, attempt=ctx.attempt + n - 1))
    else:
        for attempt in step.retry.retrying():
            with attempt:
                n = attempt.retry_state.attempt_number
                return await _call_once(step, args, replace(ctx, attempt=ctx.attempt + n - 1))
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover


async def _call_once(step: StepFunction, args: list[Any], ctx: StepContext) -> Any:
    token = _current.set(ctx)
    try:
        result = step.fn(*args)
        if inspect.isawaitable(result):
            result = await result
        return result
    finally:
        _current.reset(token)


def encode_result(name: str, value: Any, payload_limit: int) -> StepOutcome:
    """JSON-clean a step result; unserialisable or oversized results fail the
    step with an error the script can catch."""
    if (
        value is None
        or type(value) is bool
        or (type(value) is int and -_MAX_JS_NUMBER <= value <= _MAX_JS_NUMBER)
        or (
            type(value) is str and len(value) * 6 + 2 <= payload_limit  # \uXXXX is the worst case
        )
    ):
        return StepOutcome("ok", value=value)  # already JSON-clean: skip the round trip
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        return StepOutcome(
            "error",
            error={
                "name": "TypeError",
                "message": f"step {name!r} returned a value that is not JSON-serialisable: {exc}",
            },
        )
    if nesting_over(text):
        return StepOutcome(
            "error",
            error={
                "name": "TypeError",
                "message": f"step {name!r} returned a value nested more than {MAX_NESTING} levels deep",
            },
        )
    size = json_size(text, value)
    if size > payload_limit:
        return StepOutcome(
            "error",
            error={
                "name": "PayloadTooLargeError",
                "message": f"step {name!r} returned {size} bytes of JSON, "
                f"over the limit of {payload_limit} bytes",
            },
        )
    try:
        return StepOutcome("ok", value=json.loads(text, parse_int=_js_int))
    except ValueError as exc:
        return StepOutcome(
            "error",
            error={
                "name": "TypeError",
                "message": f"step {name!r} returned a value that is not JSON-serialisable: {exc}",
            },
        )


_MAX_JS_NUMBER = 2**1024 - 2**971  # the largest finite double
_MAX_INT_DIGITS = len(str(_MAX_JS_NUMBER))


def _js_int(text: str) -> int:
    """An integer that JS can hold as a number (it may round, as JSON.parse does)."""
    value = int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else None
    if value is None or not -_MAX_JS_NUMBER <= value <= _MAX_JS_NUMBER:
        raise ValueError(f"the integer {text[:20]}... is too large for a JS number")
    return value


def json_size(ascii_text: str, value: Any) -> int:
    """UTF-8 size of the compact JSON; the ASCII form is an upper bound, so the
    exact size is computed only when that bound is not already small."""
    if ascii_text.isascii() and "\\u" not in ascii_text:
        return len(ascii_text)
    exact = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return len(exact.encode("utf-8", "surrogatepass"))


def outcome_entry(slot: int, name: str, outcome: StepOutcome, at_ms: int) -> JournalEntry:
    """The journal entry of a step's final outcome, for Python and JS steps alike."""
    if outcome.kind == "ok":
        return JournalEntry(slot=slot, type="step", name=name, result=outcome.value, at_ms=at_ms)
    return JournalEntry(slot=slot, type="step_error", name=name, error=outcome.error, at_ms=at_ms)

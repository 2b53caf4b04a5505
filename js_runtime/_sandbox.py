"""One QuickJS context with limits, a JSON bridge and a command queue.

Why it is shaped like this (see ARCHITECTURE.md, "QuickJS facts"):

- The guest never calls into Python. Trusted code queues commands with
  ``host.emit`` and Python collects them with :meth:`Sandbox.take_commands`.
- Every answer crosses as a JSON string produced inside JS under the time
  limit, so Python never runs a guest getter, ``toJSON`` or ``toString``
  without a limit, and strings survive NUL and lone surrogates.
- CPU time is one budget per :meth:`Sandbox.start_budget`, spent by every
  eval and every job; it is re-armed before each call because the binding's
  limit is per call. A wall-clock budget backs it up.
- After a limit fires the context is discarded (quickjs-ng may leave promises
  pending after an interrupt): every later call raises SandboxClosedError.
- A context is not thread-safe: use one sandbox from one thread at a time.
"""

from __future__ import annotations

import json
import re
import time
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from itertools import accumulate
from typing import Any, NoReturn

import quickjs

from ._catchguard import guard_catches
from ._errors import (
    LIMIT_ERRORS,
    BridgeError,
    JSError,
    JSRuntimeError,
    MemoryLimitExceeded,
    SandboxClosedError,
    StackLimitExceeded,
    TimeLimitExceeded,
)


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text("utf-8")


_BRIDGE_SOURCE = (
    _read("_bridge.js")
    .replace("__JSR_DESCRIBE_SOURCE__", json.dumps(_read("_describe.js")))
    .replace("__JSR_SERIALISE_SOURCE__", json.dumps(_read("_serialise.js")))
)
_EXPORTS_GLOBAL = "__jsr_module_exports"
_OK_NULL = '{"ok":null}'


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one sandbox. ``time`` is CPU seconds per budget; ``wall``
    defaults to ``2 * time + 1`` seconds of wall time spent inside JS."""

    time: float = 10.0
    memory: int = 128 * 2**20
    stack: int = 1 * 2**20
    wall: float | None = None

    @property
    def wall_budget(self) -> float:
        return self.wall if self.wall is not None else 2 * self.time + 1


def encode(value: Any) -> str:
    """JSON for the guest: ASCII only, so NULs and lone surrogates cross intact."""
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


class Sandbox:
    """A QuickJS runtime+context pair with a hardened bridge installed."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._ctx: Any = quickjs.Context()
        self._closed = False
        self._broken: str | None = None
        self._used = 0.0  # seconds inside JS since start_budget
        self._t0 = 0.0
        self._ctx.set_memory_limit(self.limits.memory)
        self._ctx.set_max_stack_size(self.limits.stack)
        self._dispatch, self._host, self._watch_module = self._boot()

    # -- lifecycle ---------------------------------------------------------
    def _boot(self) -> tuple[Any, Any, Any]:
        with self._guard():
            ctx = self._ctx
            ctx.eval(f"globalThis.__jsr_boot = {_BRIDGE_SOURCE};")
            parts = tuple(ctx.eval(f"__jsr_boot[{i}]") for i in range(3))
            ctx.eval("delete globalThis.__jsr_boot;")
        return parts  # type: ignore[return-value]

    def close(self) -> None:
        """Release the context. Idempotent; every later call raises."""
        if self._closed:
            return
        self._closed = True
        self._dispatch = self._host = self._watch_module = None
        self._ctx = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- budget ------------------------------------------------------------
    # The budget is charged with the wall time spent inside JS calls: an upper
    # bound of the guest's CPU time that costs ~50 ns to read, where reading
    # process CPU time costs ~0.6 us, twice per call, on the replay hot path.
    # The binding's own per-call limit (armed with what is left) is CPU time.
    def start_budget(self) -> None:
        """Start a fresh time budget (one per engine call)."""
        self._used = 0.0

    @property
    def cpu_used(self) -> float:
        """Seconds spent inside JS since start_budget (measured as wall time)."""
        return self._used

    def set_memory_limit(self, limit: int) -> None:
        """Change the runtime's memory limit (bytes), e.g. to make room for values
        the host hands in; it applies to every later allocation."""
        if self._closed:
            raise SandboxClosedError("sandbox is closed")
        self._ctx.set_memory_limit(int(limit))

    def charge(self, seconds: float) -> None:
        """Charge time spent outside JS on the guest's behalf (say, a retry
        backoff the guest asked for) to the budget; raises TimeLimitExceeded
        (and breaks the sandbox) when that exhausts it."""
        self._used += max(0.0, seconds)
        if self._used >= min(self.limits.time, self.limits.wall_budget):
            self._time_up()

    def _remaining(self) -> float:
        left = min(self.limits.time, self.limits.wall_budget) - self._used
        if left <= 0:
            self._time_up()
        return left

    def _arm(self) -> float:
        if self._closed:
            raise SandboxClosedError("sandbox is closed")
        if self._broken:
            raise SandboxClosedError(f"sandbox was stopped by the {self._broken} limit")
        remaining = self._remaining()
        self._ctx.set_time_limit(remaining)
        self._t0 = time.perf_counter()
        return remaining

    def _charge(self) -> None:
        self._used += time.perf_counter() - self._t0

    @contextmanager
    def _guard(self) -> Iterator[float]:
        """Arm the time limit with what is left, charge what was spent, and
        translate every binding error at this one boundary."""
        remaining = self._arm()
        try:
            yield remaining
        except (quickjs.JSException, ValueError, MemoryError) as exc:
            raise self._translate_any(exc) from exc
        finally:
            self._charge()

    def _translate_any(self, exc: BaseException) -> JSRuntimeError:
        if isinstance(exc, quickjs.JSException):
            return self._translate(exc)
        if isinstance(exc, MemoryError):
            self._broken = "memory"
            return MemoryLimitExceeded("script exceeded the memory limit")
        # NUL or lone surrogate in source the binding must encode
        return JSError("SyntaxError", f"source cannot be passed to the engine: {exc}")

    def _translate(self, exc: BaseException) -> JSRuntimeError:
        text = str(exc.args[0]) if exc.args else str(exc)
        first, _, stack = text.partition("\n")
        name, _, message = first.partition(": ")
        if isinstance(exc, quickjs.StackOverflow) or "call stack size exceeded" in first:
            self._broken = "stack"
            return StackLimitExceeded("script exceeded the stack limit", stack=stack[:4000])
        if first == "InternalError: interrupted":
            self._broken = "time"
            return TimeLimitExceeded(
                f"script exceeded the time limit of {self.limits.time:g}s", stack=stack[:4000]
            )
        # A bare `null` is what QuickJS raises when it runs out of memory again
        # while throwing (the bridge's dispatch lets nothing else escape).
        if first in ("InternalError: out of memory", "null"):
            self._broken = "memory"
            return MemoryLimitExceeded("script exceeded the memory limit", stack=stack[:4000])
        return JSError(name[:200], message[:2000], stack[:4000])

    # -- evaluation ----------------------------------------------------------
    def install(self, source: str) -> None:
        """Run trusted code as ``function (host) { source }``: it can queue
        commands and register ops without exposing anything to guest code."""
        with self._guard():
            installer = self._ctx.eval(f"(function (host) {{ 'use strict';\n{source}\n}})")
            installer(self._host)

    def call(self, op: str, *args: Any) -> Any:
        """Call an op registered by trusted code; arguments and result are JSON."""
        return self.call_encoded(op, encode(list(args)))

    def call_encoded(self, op: str, args_json: str) -> Any:
        """Like :meth:`call` with the argument list already JSON-encoded."""
        self._arm()
        try:
            answer = self._dispatch(op, args_json)
        except (quickjs.JSException, ValueError, MemoryError) as exc:
            raise self._translate_any(exc) from exc
        finally:
            self._charge()
        return self._decode_answer(answer)

    def _decode_answer(self, answer: Any) -> Any:
        if answer == _OK_NULL:
            return None
        if not isinstance(answer, str):
            raise BridgeError(f"bridge answered {type(answer).__name__}, not JSON text")
        if nesting_over(answer, MAX_NESTING + 4):  # + the reply and command envelopes
            raise JSError(
                "TypeError",
                f"a value passed out of the sandbox is nested more than {MAX_NESTING} levels deep",
            )
        try:
            reply = json.loads(answer)
        except (ValueError, RecursionError) as exc:
            raise BridgeError("bridge answered malformed JSON") from exc
        if not isinstance(reply, dict):
            raise BridgeError("bridge answered a non-object")
        if "error" in reply:
            raise self._guest_error(reply["error"])
        return reply.get("ok")

    def _guest_error(self, desc: Any) -> JSRuntimeError:
        if not isinstance(desc, dict):
            return BridgeError("bridge answered a malformed error")
        limit = desc.get("limit")
        if limit in LIMIT_ERRORS:
            self._broken = limit
            return LIMIT_ERRORS[limit](
                f"script exceeded the {limit} limit", stack=_clip(desc.get("stack", ""), 4100)
            )
        return JSError(
            _clip(desc.get("name", "Error"), 300),
            _clip(desc.get("message", ""), 2100),
            _clip(desc.get("stack", ""), 4100),
        )

    def run_script(self, source: str) -> None:
        """Evaluate guest code as a classic script (global declarations stay global).
        Its catch clauses are guarded so limits stay uncatchable (_catchguard.py)."""
        self.call("__evalScript", guard_catches(source))

    def run_module(self, source: str, exports: Sequence[str]) -> dict[str, str]:
        """Evaluate guest code as an ES module and publish the named exports.

        Nothing in the binding returns a module's exports, so a line is appended
        that copies the requested bindings to a global object. Returns
        ``{export: typeof value}`` for the requested names.
        """
        code = _module_with_export_capture(guard_catches(source), exports)
        with self._guard():
            promise = self._ctx.module(code)
            self._watch_module(promise)
        self.drain()
        state = self.call("__moduleState")
        if not state or not state.get("settled"):
            raise JSError("Error", "module evaluation did not finish (top-level await never settled)")
        if state.get("error"):
            raise self._guest_error(state["error"])
        types = self.call("__typeofGlobal", _EXPORTS_GLOBAL)
        if types != "object":
            return dict.fromkeys(exports, "undefined")
        return self.call("__exportTypes", _EXPORTS_GLOBAL, list(exports))

    def drain(self) -> int:
        """Run pending jobs until none is left; returns how many ran."""
        with self._guard() as remaining:
            return self._run_jobs(remaining)

    def call_and_drain(self, op: str, args_json: str = "") -> Any:
        """Call an op, then drain, under one arming of the limit."""
        found = self.repeat_and_drain(op, 1, args_json)
        return None if found is None else found[1]

    def repeat_and_drain(self, op: str, count: int, args_json: str = "") -> tuple[int, Any] | None:
        """Call an op up to ``count`` times, draining after each call, under one
        arming of the limit; stop at the first answer that is not null.

        This is the hot path of journal replay (one call per entry), where
        arming and accounting per call would cost more than the JS work. The
        shared budget is still checked after every call and every job.
        Returns ``(index, answer)`` for the first non-null answer, else None.
        """
        remaining = self._arm()
        dispatch, deadline = self._dispatch, self._t0 + remaining
        found: tuple[int, str] | None = None
        try:
            for index in range(count):
                answer = dispatch(op, args_json)
                if self._run_jobs(remaining, deadline) == 0 and time.perf_counter() > deadline:
                    self._time_up()
                if answer != _OK_NULL:
                    found = (index, answer)
                    break
        except (quickjs.JSException, ValueError, MemoryError) as exc:
            raise self._translate_any(exc) from exc
        finally:
            self._charge()
        return None if found is None else (found[0], self._decode_answer(found[1]))

    def _run_jobs(self, remaining: float, deadline: float | None = None) -> int:
        """Each job is one binding call with its own limit, so the shared
        budget is checked after every job: a chain of short jobs cannot run
        forever."""
        ctx = self._ctx
        count = 0
        if deadline is None:
            deadline = self._t0 + remaining
        perf_counter = time.perf_counter
        while ctx.execute_pending_job():
            count += 1
            if perf_counter() > deadline:
                self._time_up()
        return count

    def _time_up(self) -> NoReturn:
        self._broken = "time"
        raise TimeLimitExceeded(f"script exceeded the time limit of {self.limits.time:g}s")

    def take_commands(self) -> list[Any]:
        """Collect the commands queued by trusted code since the last take."""
        return _commands(self.call_encoded("__take", ""))

    def call_drain_take(self, op: str, args_json: str) -> list[Any]:
        """Call an op, drain, and collect the queued commands, under one arming
        of the limit: the live path's per-completion round trip."""
        remaining = self._arm()
        try:
            answer = self._dispatch(op, args_json)
            self._run_jobs(remaining)
            taken = self._dispatch("__take", "")
        except (quickjs.JSException, ValueError, MemoryError) as exc:
            raise self._translate_any(exc) from exc
        finally:
            self._charge()
        self._decode_answer(answer)  # raises the op's error, if any
        return _commands(self._decode_answer(taken))

    def memory_usage(self) -> dict[str, Any]:
        if self._closed:
            raise SandboxClosedError("sandbox is closed")
        return dict(self._ctx.memory())


MAX_NESTING = 128
"""How deep a JSON value leaving the sandbox may nest: Python's json and
pydantic (which refuses to serialise past ~250 levels) must both handle it."""
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def nesting_over(text: str, limit: int = MAX_NESTING) -> bool:
    """True if the JSON ``text`` nests arrays/objects more than ``limit`` deep.
    Cheap for short text; otherwise a few passes at C speed."""
    if len(text) <= 2 * limit:
        return False
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text) if '"' in text else text)
    if len(brackets) <= 2 * limit:
        return False
    steps = array("b", brackets.encode("ascii").translate(_BRACKET_STEP))
    return max(accumulate(steps)) > limit


def _commands(out: Any) -> list[Any]:
    if out is None:  # an empty queue answers null: the common case, decoded for free
        return []
    if not isinstance(out, list):
        raise BridgeError("command queue is not a list")
    return out


def _clip(value: Any, limit: int) -> str:
    """Bound a guest-supplied field even if the JS-side clipping was subverted."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "... [truncated]"


_EXPORT_LIST = re.compile(r"export\s*\{([^}]*)\}\s*;?")
_EXPORT_DEFAULT = re.compile(r"^(\s*)export\s+default\s+", re.MULTILINE)
_DEFAULT_NAMED = re.compile(
    r"^\s*export\s+default\s+(?:async\s+)?(?:function\s*\*?|class)\s*([A-Za-z_$][\w$]*)",
    re.MULTILINE,
)
_DEFAULT_LOCAL = "__jsr_default_export"
# fmt: off
_RESERVED = frozenset(
    {
        "await", "break", "case", "catch", "class", "const", "continue", "debugger", "default",
        "delete", "do", "else", "enum", "export", "extends", "false", "finally", "for", "function",
        "if", "import", "in", "instanceof", "new", "null", "return", "super", "switch", "this",
        "throw", "true", "try", "typeof", "var", "void", "while", "with", "yield", "let", "static",
        "implements", "interface", "package", "private", "protected", "public",
    }
)
# fmt: on


def _module_with_export_capture(source: str, exports: Sequence[str]) -> str:
    """Append a line copying exported bindings to a global (see run_module)."""
    local_of: dict[str, str] = {name: name for name in exports}
    for match in _EXPORT_LIST.finditer(source):
        for item in match.group(1).split(","):
            parts = item.split()
            if len(parts) == 3 and parts[1] == "as":
                local_of[parts[2]] = parts[0]
    named_default = _DEFAULT_NAMED.search(source)
    if "default" in exports and named_default:
        # `export default function main() {}` declares `main`: capture that, and
        # keep the declaration (rewriting it to an expression would unbind `main`).
        local_of["default"] = named_default.group(1)
    elif "default" in exports and _EXPORT_DEFAULT.search(source):
        source = _EXPORT_DEFAULT.sub(lambda m: f"{m.group(1)}const {_DEFAULT_LOCAL} = ", source)
        local_of["default"] = _DEFAULT_LOCAL
    pairs = ", ".join(
        f"{json.dumps(name)}: (() => {{ try {{ return {local_of[name]}; }} "
        f"catch (e) {{ return undefined; }} }})()"
        for name in exports
        if _is_identifier(local_of[name])
    )
    return f"{source}\n;globalThis.{_EXPORTS_GLOBAL} = {{ {pairs} }};\n"


def _is_identifier(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", name) is not None and name not in _RESERVED

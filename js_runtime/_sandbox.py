"""One QuickJS context with limits, a JSON bridge and a command queue.

Why it is shaped like this (see the documentation site, docs/concepts.md, "The sandbox"):

- The guest never calls into Python. Trusted code queues commands with
  ``host.emit`` and Python collects them with :meth:`Sandbox.take_commands`.
- Every answer crosses as a JSON string produced inside JS under the time
  limit, so Python never runs a guest getter, ``toJSON`` or ``toString``
  without a limit, and strings survive NUL and lone surrogates.
- CPU time is one budget per :meth:`Sandbox.start_budget`, spent by every
  eval and every job; the limit is armed at the start of each section of
  binding calls (see _bytecode.Deadline; without the native paths it is
  re-armed per call, because the binding's limit is per call). A wall-clock
  budget backs it up. JS sections of all sandboxes in a process are
  serialised by one lock, because the limit reads the process CPU clock.
- After a limit fires the context is discarded (quickjs-ng may leave promises
  pending after an interrupt): every later call raises SandboxClosedError.
- A context is not thread-safe: use one sandbox from one thread at a time.
"""

from __future__ import annotations

import json
import re
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from itertools import accumulate
from typing import Any, NoReturn

import quickjs

from . import _bytecode
from ._catchguard import Unguardable, guard_catches
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
# The bridge as a script that parks its three parts behind one-shot getters, so
# it can run as cached bytecode and Python picks the parts up without compiling.
_BRIDGE_BOOT = (
    f"(function (parts) {{ for (let i = 0; i < parts.length; i++) {{ const v = parts[i];"
    f" Object.defineProperty(globalThis, '__jsr_boot' + i, {{ configurable: true, enumerable: false,"
    f" get() {{ delete globalThis['__jsr_boot' + i]; return v; }} }}); }} }})({_BRIDGE_SOURCE});"
)
_NATIVE_SCRIPT_MAX = 1 << 20  # larger scripts compile from source, under the limits
_RETHROW = "{ const e = globalThis.__jsr_pending; delete globalThis.__jsr_pending; throw e; }"

# The binding's time limit reads the process-wide CPU clock, so JS running in
# two threads at once would spend each other's budget. Every JS section (an
# eval, a job, a call on a held function, a replay batch) therefore holds this
# lock: JS sections of all sandboxes in a process run one at a time, and each
# budget measures its own JS. The trade-off: no JS parallelism inside one
# process (use processes for that); Python work (steps, the store) still runs
# concurrently because it runs between JS sections. Time spent waiting for the
# lock is not charged to anyone's budget.
_JS_LOCK = threading.RLock()


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
        self._deadline: Any = None  # a _bytecode.Deadline where the native paths work
        self._held: dict[str, Any] = {}  # op -> zero-argument function (see __hold)
        self._ctx.set_memory_limit(self.limits.memory)
        self._ctx.set_max_stack_size(self.limits.stack)
        if _bytecode.enabled():
            try:
                self._deadline = _bytecode.Deadline(self._ctx)
            except _bytecode.NativeError:
                self._deadline = None
        self._rejections: Any = None  # a _bytecode.RejectionWatch where the native paths work
        self._dispatch, self._host, self._watch_module, self._park, note = self._boot()
        if self._deadline is not None:
            self._rejections = _bytecode.RejectionWatch(self._ctx, note)

    # -- lifecycle ---------------------------------------------------------
    def _boot(self) -> tuple[Any, Any, Any, Any, Any]:
        with self._guard():
            ctx = self._ctx
            if self._run_native(_BRIDGE_BOOT):
                return tuple(ctx.get(f"__jsr_boot{i}") for i in range(5))  # type: ignore[return-value]
            ctx.eval(f"globalThis.__jsr_boot = {_BRIDGE_SOURCE};")
            parts = tuple(ctx.eval(f"__jsr_boot[{i}]") for i in range(5))
            ctx.eval("delete globalThis.__jsr_boot;")
        return parts  # type: ignore[return-value]

    def _run_native(self, script: str, call_with: Any = None) -> bool:
        """Run trusted ``script`` as cached bytecode (see _bytecode); False if
        the native path is unavailable, and then nothing ran. Call inside a
        guard: a JS error is re-thrown through the binding and translated."""
        if self._deadline is None:  # ctypes calls need our deadline: the binding's is per call
            return False
        try:
            code = _bytecode.compiled_trusted(script)
            _bytecode.run(self._ctx, code, call_with)
        except _bytecode.NativeThrew:
            self._ctx.eval(_RETHROW)  # raises the parked error through the binding
            raise BridgeError("a native error was parked but not re-thrown") from None
        except _bytecode.NativeError:
            return False  # raised before anything ran (no compile, pointers did not verify)
        return True

    def close(self) -> None:
        """Release the context. Idempotent; every later call raises."""
        if self._closed:
            return
        self._closed = True
        if self._rejections is not None:
            self._rejections.close()
            self._rejections = None
        if self._deadline is not None:
            self._deadline.close()  # before the context (its record dies with us)
            self._deadline = None
        self._dispatch = self._host = self._watch_module = self._park = None
        self._ctx = None

    def __del__(self) -> None:
        # The native deadline's record must not outlive its installation: a
        # held function could otherwise run JS after the sandbox is gone.
        with suppress(Exception):  # at interpreter shutdown there is nothing left to protect
            self.close()

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
    # What interrupts running JS is a process-CPU limit: armed once per section
    # (_bytecode.Deadline) where the native paths work, else the binding's own
    # per-call limit, re-armed with what is left. Sections hold _JS_LOCK.
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
        _JS_LOCK.acquire()
        if self._deadline is not None:
            self._deadline.arm(remaining)  # one arming covers every call of the section
        else:
            self._ctx.set_time_limit(remaining)  # the binding re-arms it per call
        self._t0 = time.perf_counter()
        return remaining

    def _charge(self) -> None:
        """Charge the time since _arm and release the JS lock it took; then
        raise the limit the rejection tracker saw in a promise nobody handled
        (host-side state: nothing the script does can reset it)."""
        self._used += time.perf_counter() - self._t0
        _JS_LOCK.release()
        watch = self._rejections
        if watch is not None and watch.kind is not None and self._broken is None:
            self._broken = watch.kind
            raise LIMIT_ERRORS[watch.kind](f"script exceeded the {watch.kind} limit (in a rejected promise)")

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
        if first in ("InternalError: out of memory", "InternalError", "null"):
            self._broken = "memory"
            return MemoryLimitExceeded("script exceeded the memory limit", stack=stack[:4000])
        return JSError(name[:200], message[:2000], stack[:4000])

    # -- evaluation ----------------------------------------------------------
    def install(self, source: str) -> None:
        """Run trusted code as ``function (host) { source }``: it can queue
        commands and register ops without exposing anything to guest code."""
        wrapped = f"(function (host) {{ 'use strict';\n{source}\n}})"
        with self._guard():
            if not self._run_native(wrapped, self._host):
                self._ctx.eval(wrapped)(self._host)

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

        Its catch clauses are guarded so limits stay uncatchable (_catchguard.py).
        Where the native paths work, the guarded script is compiled once per
        process and run from bytecode; one that does not compile (or is large)
        is evaluated from source, which reports the syntax error as before."""
        guarded = self._guarded(source, module=False)
        if self._deadline is not None and len(guarded) <= _NATIVE_SCRIPT_MAX:
            with self._guard():
                try:
                    _bytecode.run(self._ctx, _bytecode.compiled(guarded), park=(self._park, self._deadline))
                    ran = True
                except _bytecode.NativeThrew:
                    ran = True
                except _bytecode.NativeLost:
                    raise BridgeError("a script error could not be handed to the bridge") from None
                except _bytecode.NativeError:
                    ran = False  # nothing ran
            if ran:
                # raises a parked error (described in JS) or a sticky limit
                self.call("__throwPending")
                return
        self.call("__evalScript", guarded)

    def _guarded(self, source: str, *, module: bool) -> str:
        """``source`` with its catch clauses guarded (_catchguard.py). A source
        the parser cannot read is passed on unchanged only if QuickJS cannot
        compile it either (it then reports its own syntax error and runs
        nothing); one QuickJS would run is refused: it could hide a catch."""
        try:
            return guard_catches(source, module=module)
        except Unguardable as exc:
            if not _compiles(source, module=module, memory=self.limits.memory):
                return source
            raise JSError(
                "SyntaxError",
                f"the sandbox cannot parse this script (line {exc.line}, column {exc.column}); "
                "it uses syntax the guard of resource limits does not know",
                f"    at <input>:{exc.line}:{exc.column}\n",
            ) from None

    def run_module(self, source: str, exports: Sequence[str]) -> dict[str, str]:
        """Evaluate guest code as an ES module and publish the named exports.

        Nothing in the binding returns a module's exports, so a line is appended
        that copies the requested bindings to a global object. Returns
        ``{export: typeof value}`` for the requested names.
        """
        code = _module_with_export_capture(self._guarded(source, module=True), exports)
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
        arming and accounting per call would cost more than the JS work. With
        ``args_json`` empty the op is called as a held function (see __hold).
        Returns ``(index, answer)`` for the first non-null answer, else None.
        """
        call = self._held_op(op) if not args_json else (lambda: self._dispatch(op, args_json))
        remaining = self._arm()
        deadline = self._t0 + remaining
        run_job, perf_counter = self._ctx.execute_pending_job, time.perf_counter
        # One native deadline covers every call of the batch, so a chain of
        # short jobs is stopped by it and the wall clock (a backup) is read
        # every 64 entries; with the binding's per-call limit instead, the wall
        # clock is checked after every job and every entry.
        check_each_job = self._deadline is None
        wall_every = 1 if check_each_job else 64
        found: tuple[int, str] | None = None
        try:
            for index in range(count):
                answer = call()
                while run_job():  # the journal-order drain: entry k settles before k+1
                    if check_each_job and perf_counter() > deadline:
                        self._time_up()
                if index % wall_every == 0 and perf_counter() > deadline:
                    self._time_up()
                if answer is not None and answer != _OK_NULL:
                    found = (index, answer)
                    break
        except (quickjs.JSException, ValueError, MemoryError) as exc:
            raise self._translate_any(exc) from exc
        finally:
            self._charge()
        return None if found is None else (found[0], self._decode_answer(found[1]))

    def _held_op(self, op: str) -> Any:
        held = self._held.get(op)
        if held is None:
            self.call("__hold", op)
            held = self._held[op] = self._ctx.get("__jsr_held")
        return held

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


def _compiles(source: str, *, module: bool, memory: int) -> bool:
    """Whether QuickJS compiles ``source``: evaluated in a scratch context
    behind a leading ``throw``, so nothing of it runs."""
    scratch = quickjs.Context()
    scratch.set_memory_limit(memory)
    head, newline, rest = source.partition("\n") if source.startswith("#!") else ("", "", source)
    probe = f"{head}{newline}throw 0;{rest}"
    try:
        if module:
            scratch.module(probe)
        else:
            scratch.eval(probe)
    except quickjs.JSException as exc:
        return not str(exc).startswith("SyntaxError")
    except (ValueError, MemoryError):
        return False
    return True


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

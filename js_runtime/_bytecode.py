"""Native fast paths into the quickjs-ng shared library, through ctypes.

Why: compiling the bridge and the prelude from source is most of the cost of
a fresh sandbox, and the binding arms its time limit with a process-CPU clock
read (~0.5 us) on every call, which dominates journal replay. The binding's
shared library exports ``JS_WriteObject``, ``JS_ReadObject``,
``JS_EvalFunction``, ``JS_Call`` and ``JS_SetInterruptHandler`` although the
Python wrapper does not expose them, so this module

- compiles trusted sources once per process to bytecode (keyed by the
  binding version, the engine version and the source's hash) and evaluates
  that bytecode in each fresh context;
- installs the binding's own interrupt handler with our own deadline record,
  so a section of binding calls (the replay loop) runs under one arming of
  the time limit instead of one clock read per call.

Both need raw pointers read from the wrapper objects, whose layout is private
to the binding. So the binding version is pinned (``EXPECTED_BINDING``), every
pointer is verified before use (``JS_GetRuntime(context)`` must be the
runtime and the runtime's opaque pointer must be the wrapper object itself),
and :func:`status` reports a self-test run at import. On any mismatch the
module is disabled and the sandbox evaluates source exactly as before. Set
``JS_RUNTIME_NATIVE=0`` to disable it by hand (a test does, and compares).
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata
from typing import Any, NoReturn

import quickjs

EXPECTED_BINDING = "0.17.0.2"
_DISABLE_ENV = "JS_RUNTIME_NATIVE"
_TAG_EXCEPTION = 6
_TAG_OBJECT = -1
_TAG_UNDEFINED = 3
_TAG_NULL = 2
_TAG_INT = 0
_EVAL_COMPILE_ONLY = 1 << 5  # JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY
_OBJ_BYTECODE = 1 << 0  # JS_WRITE_OBJ_BYTECODE / JS_READ_OBJ_BYTECODE
# JS_WRITE_OBJ_STRIP_SOURCE: trusted code (the bridge and the prelude) needs no
# source text (only Function.prototype.toString reads it); without it the
# bytecode is a quarter of the size and a fresh sandbox ~50 us cheaper. Line
# tables stay, so stack frames in trusted code keep their positions.
_STRIP = 1 << 4
_CLOCKS_PER_SEC = 1_000_000  # POSIX (XSI) fixes it; the handler compares clock() ticks
_HEAD = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD


class JSValue(ctypes.Structure):
    """quickjs-ng's JSValue on 64-bit targets (no NaN boxing): union + int64 tag."""

    _fields_ = (("u", ctypes.c_uint64), ("tag", ctypes.c_int64))


class _InterruptData(ctypes.Structure):
    """The binding's ``InterruptData``: the handler interrupts once
    ``clock() - start >= limit``."""

    _fields_ = (("start", ctypes.c_long), ("limit", ctypes.c_long))


class NativeError(Exception):
    """A native step failed before anything ran: the caller falls back to source."""


class NativeThrew(NativeError):
    """The JS that ran threw; its value was parked (see :func:`run`)."""


class NativeLost(NativeError):
    """The JS that ran threw and its value could not be parked."""


@dataclass(frozen=True)
class NativeStatus:
    """Whether the native fast paths are in use, and why not if they are not."""

    enabled: bool
    reason: str


class _Lib:
    """The shared library's functions with their C signatures."""

    def __init__(self, path: str) -> None:
        # Functions that can run JS go through CDLL, which releases the GIL for
        # the call; small accessors go through PyDLL, which keeps it (a GIL
        # round trip costs more than they do, and much more on a busy machine).
        lib, quick = ctypes.CDLL(path), ctypes.PyDLL(path)
        vp, js, i32 = ctypes.c_void_p, JSValue, ctypes.c_int
        self.handle = lib
        sigs: dict[str, tuple[Any, Any, list[Any]]] = {
            "JS_GetRuntime": (quick, vp, [vp]),
            "JS_GetRuntimeOpaque": (quick, vp, [vp]),
            "JS_GetVersion": (quick, ctypes.c_char_p, []),
            "JS_UpdateStackTop": (quick, None, [vp]),
            "JS_SetInterruptHandler": (quick, None, [vp, vp, vp]),
            "JS_GetException": (quick, js, [vp]),
            "JS_GetGlobalObject": (quick, js, [vp]),
            "js_free": (quick, None, [vp, vp]),
            "JS_Eval": (lib, js, [vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, i32]),
            "JS_WriteObject": (lib, vp, [vp, ctypes.POINTER(ctypes.c_size_t), js, i32]),
            "JS_ReadObject": (lib, js, [vp, ctypes.c_char_p, ctypes.c_size_t, i32]),
            "JS_EvalFunction": (lib, js, [vp, js]),
            "JS_Call": (lib, js, [vp, js, js, i32, ctypes.POINTER(js)]),
            "JS_FreeValue": (lib, None, [vp, js]),
            "JS_SetPropertyStr": (lib, i32, [vp, js, ctypes.c_char_p, js]),
            "JS_SetHostPromiseRejectionTracker": (quick, None, [vp, vp, vp]),
            "JS_IsUncatchableError": (quick, ctypes.c_bool, [js]),
        }
        for name, (dll, restype, argtypes) in sigs.items():
            fn = getattr(dll, name)
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)
        self.handler = _static_function(path, lib, "js_interrupt_handler")


def _clock() -> int:
    """``clock()`` as the binding's handler reads it: process CPU time in
    microseconds (glibc and musl compute both from CLOCK_PROCESS_CPUTIME_ID;
    the self-test checks that the two agree)."""
    return time.process_time_ns() // 1000


def _static_function(path: str, lib: ctypes.CDLL, name: str) -> int:
    """Address of a static (non-exported) function, from the ELF symbol table.

    The load base is the dynamic address of an exported function minus its
    symbol value; it must agree for several exported functions, so a symbol
    table that does not belong to the loaded file is refused."""
    exported = ("JS_GetRuntime", "JS_Call", "JS_EvalFunction", "JS_SetInterruptHandler")
    symbols = _elf_symbols(path, {name, *exported})
    bases = {
        ctypes.cast(getattr(lib, sym), ctypes.c_void_p).value - symbols[sym][0]  # type: ignore[operator]
        for sym in exported
    }
    value, size = symbols[name]
    if len(bases) != 1 or not 0 < size < 512:
        raise NativeError(f"symbol table does not match the loaded library ({name})")
    return bases.pop() + value


def _elf_symbols(path: str, wanted: set[str]) -> dict[str, tuple[int, int]]:
    """``{name: (value, size)}`` of function symbols in an ELF64 LE .symtab."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:6] != b"\x7fELF\x02\x01":
        raise NativeError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    found: dict[str, tuple[int, int]] = {}
    for sh in sections:
        if sh[1] != 2:  # SHT_SYMTAB
            continue
        strtab = sections[sh[6]]
        str_off, sym_off, count = strtab[4], sh[4], sh[5] // 24
        for i in range(count):
            st_name, st_info, _, _, st_value, st_size = struct.unpack_from("<IBBHQQ", data, sym_off + i * 24)
            if st_info & 0xF != 2 or not st_value:  # STT_FUNC, defined
                continue
            end = data.index(b"\0", str_off + st_name)
            sym = data[str_off + st_name : end].decode("ascii", "replace")
            if sym in wanted:
                found[sym] = (st_value, st_size)
    missing = wanted - set(found)
    if missing:
        raise NativeError(f"symbols not found: {sorted(missing)}")
    return found


_lib: _Lib | None = None
_status = NativeStatus(False, "not initialised")


def status() -> NativeStatus:
    """The result of the import-time self-test."""
    return _status


def enabled() -> bool:
    return _lib is not None


# -- pointers ----------------------------------------------------------------
def pointers(ctx: Any) -> tuple[int, int]:
    """``(runtime, context)`` read from a ``quickjs.Context``, verified: the
    context must belong to the runtime, and the runtime's opaque pointer is
    the wrapper object itself (the binding sets it so)."""
    lib = _need()
    if type(ctx) is not quickjs.Context:
        raise NativeError("not a quickjs.Context")
    base = id(ctx)
    rt = ctypes.c_void_p.from_address(base + _HEAD).value
    jsctx = ctypes.c_void_p.from_address(base + _HEAD + ctypes.sizeof(ctypes.c_void_p)).value
    if not rt or not jsctx or lib.JS_GetRuntime(jsctx) != rt or lib.JS_GetRuntimeOpaque(rt) != base:
        raise NativeError("context pointers do not verify")
    return rt, jsctx


def object_value(ctx: Any, obj: Any) -> JSValue:
    """The JSValue held by a ``quickjs.Object`` of ``ctx`` (verified owner)."""
    if type(obj) is not quickjs.Object:
        raise NativeError("not a quickjs.Object")
    base = id(obj)
    owner = ctypes.c_void_p.from_address(base + _HEAD).value
    if owner != id(ctx):
        raise NativeError("object does not belong to this context")
    value = JSValue.from_address(base + _HEAD + ctypes.sizeof(ctypes.c_void_p))
    if value.tag != _TAG_OBJECT:
        raise NativeError("held value is not an object")
    return value


def _need() -> _Lib:
    if _lib is None:
        raise NativeError(f"native paths disabled: {_status.reason}")
    return _lib


# -- bytecode ------------------------------------------------------------------
_CACHE_BYTES = 32 * 2**20  # bytecode kept per process, least recently used dropped first
_cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
_cache_size = 0
_cache_lock = threading.Lock()


def compiled(source: str) -> bytes:
    """Bytecode of ``source`` as a global script, compiled once per process
    (keyed by the source itself: the binding and the engine are fixed per
    process; a disk cache would add both versions and the source's hash).
    Raises NativeError if it does not compile; the caller then evaluates the
    source, so a syntax error is reported the usual way. Guest code keeps its
    source text: ``Function.prototype.toString`` must answer as it would."""
    return _cached(source, _OBJ_BYTECODE)


def compiled_trusted(source: str) -> bytes:
    """Like :func:`compiled` for trusted code, without its source text."""
    return _cached(source, _OBJ_BYTECODE | _STRIP)


def _cached(source: str, flags: int) -> bytes:
    global _cache_size
    key = (source, flags)
    with _cache_lock:
        code = _cache.get(key)
        if code is not None:
            _cache.move_to_end(key)
            return code
    code = _compile(source, flags)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = code
            _cache_size += len(code) + len(source)
        while _cache_size > _CACHE_BYTES and len(_cache) > 1:
            (old, _), old_code = _cache.popitem(last=False)
            _cache_size -= len(old_code) + len(old)
    return code


def _compile(source: str, flags: int) -> bytes:
    lib = _need()
    if "\0" in source:  # the binding refuses these sources; keep the same errors
        raise NativeError("source contains NUL")
    try:
        raw = source.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, refused by the binding too
        raise NativeError("source is not encodable") from exc
    scratch = quickjs.Context()
    _, jsctx = pointers(scratch)
    lib.JS_UpdateStackTop(lib.JS_GetRuntime(jsctx))
    fn = lib.JS_Eval(jsctx, raw, len(raw), b"<input>", _EVAL_COMPILE_ONLY)
    if fn.tag == _TAG_EXCEPTION:
        lib.JS_FreeValue(jsctx, lib.JS_GetException(jsctx))
        raise NativeError("source does not compile")
    size = ctypes.c_size_t(0)
    buf = lib.JS_WriteObject(jsctx, ctypes.byref(size), fn, flags)
    lib.JS_FreeValue(jsctx, fn)
    if not buf:
        lib.JS_FreeValue(jsctx, lib.JS_GetException(jsctx))
        raise NativeError("bytecode could not be written")
    try:
        return ctypes.string_at(buf, size.value)
    finally:
        lib.js_free(jsctx, buf)
        del scratch


def run(ctx: Any, code: bytes, call_with: Any = None, park: tuple[Any, Deadline] | None = None) -> None:
    """Evaluate bytecode in ``ctx``; if ``call_with`` (a ``quickjs.Object`` of
    ``ctx``) is given, the script's value is a function called with it.

    On a JS exception NativeThrew is raised after the value is parked: handed
    to ``park`` (a bridge function held by Python, and the context's deadline,
    re-armed for that one call), or without one (while the bridge itself
    boots) stored in the global ``__jsr_pending``. The sandbox re-throws it
    through the binding or the bridge, so it is translated like any other
    error."""
    lib = _need()
    rt, jsctx = pointers(ctx)
    arg = object_value(ctx, call_with) if call_with is not None else None
    park_fn = object_value(ctx, park[0]) if park is not None else None
    lib.JS_UpdateStackTop(rt)
    fn = lib.JS_ReadObject(jsctx, code, len(code), _OBJ_BYTECODE)
    if fn.tag == _TAG_EXCEPTION:
        _park_exception(lib, jsctx, park_fn, park)
    result = lib.JS_EvalFunction(jsctx, fn)  # takes ownership of fn
    if result.tag == _TAG_EXCEPTION:
        _park_exception(lib, jsctx, park_fn, park)
    if arg is None:
        lib.JS_FreeValue(jsctx, result)
        return
    called = lib.JS_Call(jsctx, result, JSValue(0, _TAG_UNDEFINED), 1, ctypes.byref(arg))
    lib.JS_FreeValue(jsctx, result)
    if called.tag == _TAG_EXCEPTION:
        _park_exception(lib, jsctx, park_fn, park)
    lib.JS_FreeValue(jsctx, called)


def _park_exception(lib: _Lib, jsctx: int, park_fn: JSValue | None, park: Any) -> NoReturn:
    exc = lib.JS_GetException(jsctx)
    if park_fn is None:
        glob = lib.JS_GetGlobalObject(jsctx)
        lib.JS_SetPropertyStr(jsctx, glob, b"__jsr_pending", exc)  # takes ownership of exc
        lib.JS_FreeValue(jsctx, glob)
        raise NativeThrew("script threw")
    deadline: Deadline = park[1]
    saved = deadline.saved()
    deadline.arm(1.0)  # an interrupted script spent the budget; park is one assignment
    try:
        done = lib.JS_Call(jsctx, park_fn, JSValue(0, _TAG_UNDEFINED), 1, ctypes.byref(exc))
    finally:
        deadline.restore(saved)
        lib.JS_FreeValue(jsctx, exc)
    if done.tag == _TAG_EXCEPTION:
        lib.JS_FreeValue(jsctx, lib.JS_GetException(jsctx))
        raise NativeLost("a script error could not be parked")
    lib.JS_FreeValue(jsctx, done)
    raise NativeThrew("script threw")


# -- the time limit, armed once per section -------------------------------------
class Deadline:
    """The binding's own interrupt handler, installed once per context with a
    record of ours. The binding's per-call limit stays off, so it never
    replaces or removes the handler, and arming a section of any number of
    binding calls (a replay batch) is two stores and one clock read instead of
    a clock read per call. :meth:`close` before the context is dropped."""

    def __init__(self, ctx: Any) -> None:
        lib = self._lib = _need()
        self._rt, _ = pointers(ctx)
        self._data = _InterruptData(_clock(), 0)  # expired until armed
        ctx.set_time_limit(-1)  # the binding leaves the handler alone from here
        lib.JS_SetInterruptHandler(self._rt, lib.handler, ctypes.addressof(self._data))

    def arm(self, seconds: float) -> None:
        data = self._data
        data.limit = int(seconds * _CLOCKS_PER_SEC) if seconds > 0 else 0
        data.start = time.process_time_ns() // 1000

    def saved(self) -> tuple[int, int]:
        return self._data.start, self._data.limit

    def restore(self, saved: tuple[int, int]) -> None:
        self._data.start, self._data.limit = saved

    def close(self) -> None:
        self._lib.JS_SetInterruptHandler(self._rt, None, None)


# -- limits in rejected promises nobody handles ------------------------------------
_TRACKER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, JSValue, JSValue, ctypes.c_bool, ctypes.c_void_p)
_REJECTION_KINDS = {1: "memory", 2: "stack"}


class RejectionWatch:
    """QuickJS's host promise rejection tracker, installed once per context.

    A stack overflow or out-of-memory error in a promise nobody handles (an
    async function called without ``await``, a throwing ``new Promise``
    executor) never reaches a catch clause or a rejection handler, so the
    catch guard cannot see it. QuickJS tells the host about every rejection
    that has no handler yet; this hands the reason to the bridge's
    ``noteRejection`` (which sets the bridge's sticky flag) and keeps what it
    found in :attr:`kind`, host-side state the script cannot reach. If even
    that call fails (the rejection happened at the very end of the stack or
    of memory, or the time limit struck), the failure is the answer.
    :meth:`close` before the context is dropped."""

    def __init__(self, ctx: Any, note: Any) -> None:
        lib = self._lib = _need()
        self._rt, _ = pointers(ctx)
        self._note_owner = note  # keeps the JS function alive while we hold its value
        self._note = object_value(ctx, note)
        self.kind: str | None = None
        self._callback = _TRACKER(self._on_rejection)
        lib.JS_SetHostPromiseRejectionTracker(self._rt, ctypes.cast(self._callback, ctypes.c_void_p), None)

    def _on_rejection(
        self, jsctx: int, _promise: JSValue, reason: JSValue, handled: bool, _opaque: int
    ) -> None:
        if handled or self.kind is not None or reason.tag not in (_TAG_OBJECT, _TAG_NULL):
            return
        lib = self._lib
        arg = JSValue(reason.u, reason.tag)
        out = lib.JS_Call(jsctx, self._note, JSValue(0, _TAG_UNDEFINED), 1, ctypes.byref(arg))
        if out.tag == _TAG_EXCEPTION:
            exc = lib.JS_GetException(jsctx)
            if lib.JS_IsUncatchableError(exc):
                self.kind = "time"
            else:
                self.kind = "memory" if exc.tag == _TAG_NULL else "stack"
            lib.JS_FreeValue(jsctx, exc)
            return
        if out.tag == _TAG_INT:
            self.kind = _REJECTION_KINDS.get(ctypes.c_int32(out.u & 0xFFFFFFFF).value)
        lib.JS_FreeValue(jsctx, out)

    def close(self) -> None:
        """Uninstall, then let go of the callback (it refers back to this watch)
        and of the JS function (it holds the context): without this the context
        lives on in a reference cycle, QuickJS heap and all, until Python's
        cyclic collector happens to run."""
        self._lib.JS_SetHostPromiseRejectionTracker(self._rt, None, None)
        self._callback = self._note_owner = None


# -- self-test -----------------------------------------------------------------
def _self_test() -> None:
    ctx = quickjs.Context()
    pointers(ctx)
    ctx.eval("globalThis.box = { n: 1 };")
    run(ctx, compiled("(function (box) { box.n += 41; globalThis.seen = typeof box; })"), ctx.get("box"))
    if ctx.eval("box.n") != 42 or ctx.eval("seen") != "object":
        raise NativeError("bytecode round trip gave a different result")
    try:
        run(ctx, compiled("throw new RangeError('x')"))
    except NativeThrew:
        pass
    else:
        raise NativeError("exception not reported")
    if ctx.eval("__jsr_pending instanceof RangeError") is not True:
        raise NativeError("exception not parked")
    lib = _need()
    handler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lib.handler)
    data = _InterruptData(_clock(), 10 * _CLOCKS_PER_SEC)
    if handler(None, ctypes.addressof(data)) != 0:
        raise NativeError("interrupt handler fired early (clocks disagree?)")
    data.start -= 20 * _CLOCKS_PER_SEC
    if handler(None, ctypes.addressof(data)) == 0:
        raise NativeError("interrupt handler did not fire (clocks disagree?)")
    deadline = Deadline(ctx)
    deadline.arm(0.0)
    try:
        ctx.eval("for (;;) {}")
    except quickjs.JSException as exc:
        if "interrupted" not in str(exc):
            raise NativeError(f"unexpected interrupt error {exc}") from exc
    else:
        raise NativeError("deadline did not interrupt")
    finally:
        deadline.close()


def _init() -> None:
    global _lib, _status
    if os.environ.get(_DISABLE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        _status = NativeStatus(False, f"disabled by {_DISABLE_ENV}")
        return
    try:
        version = metadata.version("quickjs-ng")
        if version != EXPECTED_BINDING:
            raise NativeError(f"binding is quickjs-ng {version}, expected {EXPECTED_BINDING}")
        if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
            raise NativeError(f"unsupported platform {sys.platform}")
        import _quickjs  # the extension module the wrapper imports

        _lib = _Lib(_quickjs.__file__)
        _self_test()
    except Exception as exc:  # any doubt at all: evaluate source instead
        _lib = None
        _cache.clear()
        _status = NativeStatus(False, f"{type(exc).__name__}: {exc}")
        return
    _status = NativeStatus(True, f"quickjs-ng {EXPECTED_BINDING}, engine {_lib.JS_GetVersion().decode()}")


_init()

"""``WorkflowEngine.check``: does a script load, is its entry point a function,
which global functions does it call that nothing defines, and which events
can it wait for.

Loading happens in a sandbox exactly as a run does (same prelude,
registrations, extensions, plain-script vs module rule): QuickJS is the
parser whose verdict matters, and top-level errors show too. Only the
script's top-level code runs, which should only define functions. The rest
is read from a tree-sitter parse tree (_parse.py), so a call is found
wherever it stands: inside ``Promise.race([...])``, a ``.then`` callback, a
nested function, or assigned to a variable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from js_runtime import ResourceLimitExceeded

from ._errors import ResourceLimitError, ScriptError, WorkflowError
from ._extension import Extension
from ._names import BUILTIN_NAMES
from ._parse import CallSite, ScriptEvents, read_script
from ._run import Finished, Run, RunConfig, is_module
from ._state import WorkflowState

# Standard ECMAScript globals, and the engine's built-ins (some are defined by
# the prelude only in some versions): never "undefined", whatever the sandbox
# holds (it removes a few standard ones that would break determinism).
STANDARD_GLOBALS = frozenset(
    [
        "AggregateError",
        "Array",
        "ArrayBuffer",
        "AsyncDisposableStack",
        "Atomics",
        "BigInt",
        "BigInt64Array",
        "BigUint64Array",
        "Boolean",
        "DataView",
        "Date",
        "DisposableStack",
        "Error",
        "EvalError",
        "FinalizationRegistry",
        "Float16Array",
        "Float32Array",
        "Float64Array",
        "Function",
        "Infinity",
        "Int16Array",
        "Int32Array",
        "Int8Array",
        "Intl",
        "Iterator",
        "JSON",
        "Map",
        "Math",
        "NaN",
        "Number",
        "Object",
        "Promise",
        "Proxy",
        "RangeError",
        "ReferenceError",
        "Reflect",
        "RegExp",
        "Set",
        "SharedArrayBuffer",
        "String",
        "SuppressedError",
        "Symbol",
        "SyntaxError",
        "TypeError",
        "URIError",
        "Uint16Array",
        "Uint32Array",
        "Uint8Array",
        "Uint8ClampedArray",
        "WeakMap",
        "WeakRef",
        "WeakSet",
        "decodeURI",
        "decodeURIComponent",
        "encodeURI",
        "encodeURIComponent",
        "escape",
        "eval",
        "globalThis",
        "isFinite",
        "isNaN",
        "parseFloat",
        "parseInt",
        "undefined",
        "unescape",
    ]
)


@dataclass(frozen=True)
class ScriptCheck:
    """What ``WorkflowEngine.check`` found, without running the workflow.

    ``kind`` is "script" or "module"; ``entry_type`` the ``typeof`` of the
    entry point; ``error`` a ``ScriptError`` when ``ok`` is False.
    ``undefined_calls`` lists every call (a :class:`CallSite`, in source
    order) of a global function that neither the script, nor the standard
    library, nor the engine's built-ins, nor a registration defines: usually
    a step or suspend function this process has not registered (empty when
    the script does not load). ``event_names`` are the event names the script
    can wait for (see :meth:`waits_for`): string literals, and template
    literals as patterns with ``*`` for each substitution (``vote-*``);
    ``"*"`` when a name is computed at run time.
    """

    ok: bool
    kind: str
    entry_point: str
    entry_type: str = "undefined"
    error: WorkflowError | None = None
    undefined_calls: list[CallSite] = field(default_factory=list)
    event_names: list[str] = field(default_factory=list)
    events: ScriptEvents = field(default_factory=ScriptEvents, repr=False)

    def waits_for(self, name: str) -> bool:
        """Whether some ``waitForEvent``/``waitForEvents`` of the script can be
        for the event ``name`` (by literal, pattern, or a computed name)."""
        return self.events.matches(name)


def check_script(config: RunConfig, script: str, entry: str, extensions: Sequence[Extension]) -> ScriptCheck:
    facts = read_script(script)
    kind = "module" if is_module(script) else "script"
    found = {"events": facts.events, "event_names": facts.events.all()}
    run = Run(config, script, WorkflowState(run_id="check", entry_point=entry, started_at_ms=0))
    try:
        run.start_budget()
        try:
            run.load()
        except Finished as done:
            return ScriptCheck(False, kind, entry, run.entry_type, done.result.error, **found)  # type: ignore[arg-type]
        except ResourceLimitExceeded as exc:
            error = ResourceLimitError(f"top-level code {exc}", limit=exc.limit)
            return ScriptCheck(False, kind, entry, run.entry_type, error, **found)  # type: ignore[arg-type]
        if kind == "script":  # a module's entry type is known from loading it
            run.entry_type = run.sandbox.call("__typeofGlobal", run.entry_global)
        known = {n for ext in extensions for n in ext.globals} | facts.declared
        undefined = _undefined(run, facts.calls, known)
    finally:
        run.close()
    if run.entry_type != "function":
        where = "exported" if kind == "module" else "defined"
        error = ScriptError(
            f"entry point {entry!r} is not {where} as a function (it is {run.entry_type})",
            js_name="ReferenceError",
        )
        return ScriptCheck(False, kind, entry, run.entry_type, error, undefined, **found)  # type: ignore[arg-type]
    return ScriptCheck(True, kind, entry, run.entry_type, None, undefined, **found)  # type: ignore[arg-type]


def _undefined(run: Run, calls: list[CallSite], known: set[str]) -> list[CallSite]:
    """The calls whose name is not known and not a global after loading."""
    verdict: dict[str, bool] = {}
    out = []
    for site in calls:
        name = site.name
        if name not in verdict:
            verdict[name] = not (
                name in known
                or name in STANDARD_GLOBALS
                or name in BUILTIN_NAMES
                or run.sandbox.call("__typeofGlobal", name) != "undefined"
            )
        if verdict[name]:
            out.append(site)
    return out

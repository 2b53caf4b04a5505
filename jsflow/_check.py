"""``WorkflowEngine.check``: does a script load, and is its entry point a function.

Why load it in a sandbox instead of parsing it in Python: QuickJS is the only
parser whose verdict matters, and loading it exactly as a run does (same
prelude, registrations, extensions, plain-script vs module rule) also
catches top-level errors. Only the script's top-level code runs, which
should only define functions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from js_runtime import ResourceLimitExceeded

from ._extension import Extension
from ._run import Finished, Run, RunConfig, is_module
from ._state import WorkflowState

if TYPE_CHECKING:
    from ._engine import ScriptCheck

_CALLED = re.compile(r"\bawait\s+([A-Za-z_$][\w$]*)\s*\(")
_DECLARED = r"(?:function\s*\*?\s*{0}\b|(?:const|let|var|class)\s+{0}\b)"


def check_script(config: RunConfig, script: str, entry: str, extensions: Sequence[Extension]) -> ScriptCheck:
    from ._engine import ScriptCheck
    from ._errors import ResourceLimitError, ScriptError

    kind = "module" if is_module(script) else "script"
    run = Run(config, script, WorkflowState(run_id="check", entry_point=entry, started_at_ms=0))
    try:
        run.start_budget()
        try:
            run.load()
        except Finished as done:
            return ScriptCheck(False, kind, entry, run.entry_type, done.result.error)
        except ResourceLimitExceeded as exc:
            error = ResourceLimitError(f"top-level code {exc}", limit=exc.limit)
            return ScriptCheck(False, kind, entry, run.entry_type, error)
        if kind == "script":  # a module's entry type is known from loading it
            run.entry_type = run.sandbox.call("__typeofGlobal", run.entry_global)
        known = {n for ext in extensions for n in ext.globals}
        undefined = _undefined_calls(run, script, known)
    finally:
        run.close()
    if run.entry_type != "function":
        where = "exported" if kind == "module" else "defined"
        error = ScriptError(
            f"entry point {entry!r} is not {where} as a function (it is {run.entry_type})",
            js_name="ReferenceError",
        )
        return ScriptCheck(False, kind, entry, run.entry_type, error, undefined)
    return ScriptCheck(True, kind, entry, run.entry_type, None, undefined)


def _undefined_calls(run: Run, source: str, known: set[str]) -> list[str]:
    """``await name(...)`` where ``name`` is neither a global after loading nor
    declared in the source: almost always a step or suspend function that this
    process has not registered."""
    out = []
    for name in dict.fromkeys(_CALLED.findall(source)):
        if name in known or re.search(_DECLARED.format(re.escape(name)), source):
            continue
        if run.sandbox.call("__typeofGlobal", name) != "undefined":
            continue
        out.append(name)
    return out

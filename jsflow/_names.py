"""Names a registration may not take: jsflow's built-ins and what JavaScript needs.

Why reserved: a step or suspend function registered as ``sleep`` would replace
the durable timer, and one registered as ``cancelWait`` or ``createHook``
would silently change what scripts rely on. So every built-in a script can
call is refused with a ``ValueError`` that names it; a built-in added later
goes into ``BUILTIN_NAMES`` too.
"""

from __future__ import annotations

import re

INTERNAL_PREFIX = "__j"

#: globals jsflow gives every script (and those its extensions add)
BUILTIN_NAMES = frozenset(
    {
        "cancelWait",
        "console",
        "continueAsNew",
        "createHook",
        "defineQuery",
        "deprecatePatch",
        "fetch",
        "patched",
        "sleep",
        "startWorkflow",
        "step",
        "waitForEvent",
        "waitForEvents",
    }
)
#: names JavaScript itself (or the prelude) depends on
_LANGUAGE_NAMES = frozenset(
    {
        "sleep_",
        "__proto__",
        "constructor",
        "CancelledError",
        "ChildWorkflowError",
        "Date",
        "Math",
        "globalThis",
        "Promise",
        "JSON",
    }
)
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def check_registration_name(name: object) -> None:
    """Raise ``ValueError`` unless ``name`` may be registered as a step or suspend function."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValueError(f"{name!r} is not a valid JavaScript identifier")
    if name in BUILTIN_NAMES:
        raise ValueError(
            f"{name!r} is a jsflow built-in and cannot be registered as a step or suspend function"
        )
    if name in _LANGUAGE_NAMES or name.startswith(INTERNAL_PREFIX):
        raise ValueError(f"{name!r} is reserved by jsflow")

"""Extensions: how built-ins such as the host's ``createHook`` plug into a run.

Why not registrations on the engine: an engine is shared (two hosts on one
engine, a CLI and a server), while what a built-in needs is per caller (the
host's secret, clock and URL). So an extension is handed to each run
(``engine.open_run(..., extensions=[...])``) and never changes the engine.

Why internal functions are not globals: a script that could call
``__jhook_create`` itself, or define a JS step by that name, could forge what
the extension journals. An extension's steps and suspend functions are put
in a frozen ``ops`` object that only the extension's own JS sees: the
engine evaluates ``(<js>)(ops)`` before any user code, then deletes the one
global through which ``ops`` was passed. Their names must start with
``__j`` (reserved: the public registrations and JS ``step()`` refuse them),
so a journal entry with such a name can only come from an extension.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._names import INTERNAL_PREFIX, check_registration_name
from ._waits import schema_of


@dataclass(frozen=True)
class Extension:
    """A built-in made of JS and internal steps or suspend functions.

    ``js``: source of a JS function expression ``function (ops) { ... }``; it
    runs once per sandbox before user code and typically defines globals
    (``globalThis.createHook = ...``) that call ``ops.<name>(...)``.
    ``steps``: internal name -> Python callable (run once, journaled, like
    any step). ``suspends``: internal name -> ``resume_at(*args)`` callable
    or None (like ``register_suspend_function``). ``globals``: the names the
    JS defines, so ``engine.check`` knows a script may call them.
    ``suspend_functions``: public name -> ``resume_at`` or None: suspend
    functions scripts call as globals, like ``register_suspend_function``,
    but only in the runs the extension is handed to (a host's token suspend
    functions: a host never changes an engine that others share).
    ``schemas``: public suspend name -> the JSON Schema (or pydantic model)
    its resume value must satisfy, as ``register_suspend_function(schema=)``.
    ``descriptions``: internal suspend name -> what a wait on it is, in
    words ("waiting for an HTTP call to its hook"), shown instead of the name.
    """

    name: str
    js: str
    steps: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    suspends: Mapping[str, Callable[..., Any] | None] = field(default_factory=dict)
    globals: tuple[str, ...] = ()
    suspend_functions: Mapping[str, Callable[..., Any] | None] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)
    schemas: Mapping[str, Any] = field(default_factory=dict)
    public_names: Mapping[str, str] = field(default_factory=dict)  # internal name -> e.g. "hook.wait"

    def __post_init__(self) -> None:
        for fn_name in self.suspend_functions:
            check_registration_name(fn_name)
        # checked and converted once (a pydantic model becomes its JSON Schema)
        object.__setattr__(self, "schemas", {k: schema_of(v) for k, v in self.schemas.items()})
        for fn_name in [*self.steps, *self.suspends]:
            if not fn_name.startswith(INTERNAL_PREFIX) or not fn_name.isidentifier():
                raise ValueError(
                    f"extension {self.name!r}: internal function {fn_name!r} must be an identifier "
                    f"starting with {INTERNAL_PREFIX!r}"
                )
        if set(self.steps) & set(self.suspends):
            raise ValueError(f"extension {self.name!r}: a name is both a step and a suspend function")

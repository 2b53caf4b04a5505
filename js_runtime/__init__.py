"""js_runtime: a hardened QuickJS sandbox host that knows nothing of workflows.

Public surface: :class:`Sandbox` (one context with limits, a JSON bridge and a
command queue), :class:`SandboxLimits`, the error hierarchy drawn in
``js_runtime._errors``, and :func:`native_status`, which says whether the
native fast paths (cached bytecode, one limit arming per replay batch) passed
their import-time self-test or why the sandbox evaluates source instead, and
:func:`parse_javascript`, the tree-sitter parse that the catch guard and
``jsflow check`` share, and :func:`source_position`, which maps a position
QuickJS reports (in the source as the catch guard rewrote it) back to the
script as written.
"""

from ._bytecode import NativeStatus
from ._bytecode import status as native_status
from ._catchguard import source_position
from ._errors import (
    BridgeError,
    JSError,
    JSRuntimeError,
    MemoryLimitExceeded,
    ResourceLimitExceeded,
    SandboxClosedError,
    StackLimitExceeded,
    TimeLimitExceeded,
)
from ._jsparse import parse_javascript
from ._sandbox import MAX_NESTING as MAX_NESTING  # a constant: kept out of the sorted __all__
from ._sandbox import Sandbox, SandboxLimits, encode, nesting_over

__all__ = [
    "BridgeError",
    "JSError",
    "JSRuntimeError",
    "MemoryLimitExceeded",
    "NativeStatus",
    "ResourceLimitExceeded",
    "Sandbox",
    "SandboxClosedError",
    "SandboxLimits",
    "StackLimitExceeded",
    "TimeLimitExceeded",
    "encode",
    "native_status",
    "nesting_over",
    "parse_javascript",
    "source_position",
]

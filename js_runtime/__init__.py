"""js_runtime: a hardened QuickJS sandbox host that knows nothing of workflows.

Public surface: :class:`Sandbox` (one context with limits, a JSON bridge and a
command queue), :class:`SandboxLimits`, and the error hierarchy drawn in
``js_runtime._errors``.
"""

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
from ._sandbox import MAX_NESTING as MAX_NESTING  # a constant: kept out of the sorted __all__
from ._sandbox import Sandbox, SandboxLimits, encode, nesting_over

__all__ = [
    "BridgeError",
    "JSError",
    "JSRuntimeError",
    "MemoryLimitExceeded",
    "ResourceLimitExceeded",
    "Sandbox",
    "SandboxClosedError",
    "SandboxLimits",
    "StackLimitExceeded",
    "TimeLimitExceeded",
    "encode",
    "nesting_over",
]

"""Errors raised by the sandbox host.

Hierarchy::

    JSRuntimeError                 base of everything raised here
    +-- JSError                    a value thrown by guest code (name, message, stack)
    +-- ResourceLimitExceeded      a limit stopped the guest (limit: time|memory|stack)
    |   +-- TimeLimitExceeded
    |   +-- MemoryLimitExceeded
    |   +-- StackLimitExceeded
    +-- SandboxClosedError         use after close(), or after a limit broke the context
    +-- BridgeError                the guest answered something that is not our protocol

Every quickjs exception is translated at one boundary (``_sandbox._translate``)
with ``raise ... from exc``; nothing from the binding leaks out.
"""

from __future__ import annotations


class JSRuntimeError(Exception):
    """Base class of every error the sandbox host raises."""


class JSError(JSRuntimeError):
    """A value thrown by guest code; fields are bounded in size by the bridge."""

    def __init__(self, name: str, message: str, stack: str = "") -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message
        self.stack = stack


class ResourceLimitExceeded(JSRuntimeError):
    """Guest code ran into a configured limit; the context is no longer usable."""

    limit: str = ""

    def __init__(self, message: str, *, stack: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.stack = stack


class TimeLimitExceeded(ResourceLimitExceeded):
    limit = "time"


class MemoryLimitExceeded(ResourceLimitExceeded):
    limit = "memory"


class StackLimitExceeded(ResourceLimitExceeded):
    limit = "stack"


class SandboxClosedError(JSRuntimeError):
    """The sandbox was closed, or broken by a limit and must be discarded."""


class BridgeError(JSRuntimeError):
    """The guest side of the bridge answered outside the protocol."""


LIMIT_ERRORS: dict[str, type[ResourceLimitExceeded]] = {
    "time": TimeLimitExceeded,
    "memory": MemoryLimitExceeded,
    "stack": StackLimitExceeded,
}

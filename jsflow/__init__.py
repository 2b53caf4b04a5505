"""jsflow: durable JavaScript workflows for Python, on an embedded QuickJS sandbox.

The engine (this package) turns "script + state + event" into "result + new
state". The durable host is ``jsflow.host``; the CLI is ``jsflow.cli``.
"""

from ._durations import parse_duration
from ._engine import BoundWorkflow, WorkflowEngine
from ._errors import (
    EventNotAwaitedError,
    InvalidStateError,
    JournalCompatibilityError,
    PayloadTooLargeError,
    ResourceLimitError,
    RetryableStepError,
    ScriptError,
    StateVersionError,
    WaitNotPendingError,
    WorkflowError,
)
from ._retry import RetryPolicy
from ._state import (
    JournalEntry,
    Limits,
    Wait,
    WaitRecord,
    WorkflowResult,
    WorkflowState,
    WorkflowStatus,
)
from ._steps import StepContext, current_step

__all__ = [
    "BoundWorkflow",
    "EventNotAwaitedError",
    "InvalidStateError",
    "JournalCompatibilityError",
    "JournalEntry",
    "Limits",
    "PayloadTooLargeError",
    "ResourceLimitError",
    "RetryPolicy",
    "RetryableStepError",
    "ScriptError",
    "StateVersionError",
    "StepContext",
    "Wait",
    "WaitNotPendingError",
    "WaitRecord",
    "WorkflowEngine",
    "WorkflowError",
    "WorkflowResult",
    "WorkflowState",
    "WorkflowStatus",
    "current_step",
    "parse_duration",
]

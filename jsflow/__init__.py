"""jsflow: durable JavaScript workflows for Python, on an embedded QuickJS sandbox.

The engine (this package) turns "script + state + event" into "result + new
state". The durable host is ``jsflow.host``; the CLI is ``jsflow.cli``.
"""

from ._actions import Action, Cancel, RaiseEvent, Resume, Timeout
from ._check import ScriptCheck
from ._durations import parse_duration
from ._engine import BoundWorkflow, WorkflowEngine
from ._errors import (
    EventNotAwaitedError,
    InvalidPayloadError,
    InvalidStateError,
    JournalCompatibilityError,
    PayloadSchemaError,
    PayloadTooLargeError,
    QueryError,
    QueryNotFoundError,
    ResourceLimitError,
    RetryableStepError,
    RunClosedError,
    RunFinishedError,
    ScriptError,
    StateVersionError,
    WaitNotPendingError,
    WorkflowCancelledError,
    WorkflowError,
)
from ._extension import Extension
from ._ids import MAX_WORKFLOW_ID_LENGTH, text_problem, workflow_id_problem
from ._live import LiveRun, ReplayOutcome, run_sync
from ._parse import CallSite, ScriptEvents, script_events
from ._payload import validate_payload
from ._retry import RetryPolicy
from ._run import JournalWrite
from ._sizes import parse_size
from ._state import (
    JournalEntry,
    Limits,
    Wait,
    WaitRecord,
    WorkflowResult,
    WorkflowState,
    WorkflowStatus,
    datetime_to_ms,
    ms_to_datetime,
)
from ._steps import StepContext, current_step
from ._waits import payload_matches

__all__ = [  # noqa: RUF022 - plain sorted() order, as tests/test_public_api.py checks
    "Action",
    "BoundWorkflow",
    "CallSite",
    "Cancel",
    "EventNotAwaitedError",
    "Extension",
    "InvalidPayloadError",
    "InvalidStateError",
    "JournalCompatibilityError",
    "JournalEntry",
    "JournalWrite",
    "Limits",
    "LiveRun",
    "MAX_WORKFLOW_ID_LENGTH",
    "PayloadSchemaError",
    "PayloadTooLargeError",
    "QueryError",
    "QueryNotFoundError",
    "RaiseEvent",
    "ReplayOutcome",
    "ResourceLimitError",
    "Resume",
    "RetryPolicy",
    "RetryableStepError",
    "RunClosedError",
    "RunFinishedError",
    "ScriptCheck",
    "ScriptError",
    "ScriptEvents",
    "StateVersionError",
    "StepContext",
    "Timeout",
    "Wait",
    "WaitNotPendingError",
    "WaitRecord",
    "WorkflowCancelledError",
    "WorkflowEngine",
    "WorkflowError",
    "WorkflowResult",
    "WorkflowState",
    "WorkflowStatus",
    "current_step",
    "datetime_to_ms",
    "ms_to_datetime",
    "parse_duration",
    "parse_size",
    "payload_matches",
    "run_sync",
    "script_events",
    "text_problem",
    "validate_payload",
    "workflow_id_problem",
]

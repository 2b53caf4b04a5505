"""Durable orchestration for jsflow workflows.

The engine (``jsflow``) advances one workflow by one event; the host keeps
many alive: it stores them, fires their timers, delivers their events and
resume tokens, and survives crashes. Storage lives in ``jsflow.host.store``.

::

    from jsflow.host import WorkflowHost

    with WorkflowHost("sqlite:///app.db") as host:
        host.register_script("approval", source)
        inst = host.start("approval", {"amount": 10}, workflow_id="order-1")
        host.send_event("order-1", "approved", {"by": "ann"})
        host.run_due()          # fire due timers, recover stuck runs
"""

from ._errors import (
    AdvanceFailedError,
    AlreadyResumedError,
    CorruptStateError,
    HostClosedError,
    HostError,
    IdempotencyKeyConflictError,
    InvalidCursorError,
    InvalidScheduleError,
    InvalidWorkflowIdError,
    MissingRegistrationError,
    QueryError,
    QueryNotFoundError,
    TokenError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    UnknownScheduleError,
    UnknownScriptError,
    UnknownWorkflowError,
    UpgradeError,
    WaitSelectionError,
    WorkflowBusyError,
    WorkflowExistsError,
    WorkflowFinishedError,
    WorkflowNotFaultedError,
)
from ._host import WorkflowHost
from ._kinds import WAITING_ON, WaitKind, wait_category
from ._query import HistoryPage, InstancePage
from ._schedules import Schedule
from ._start_event import StartSpec
from ._tokens import hash_token, new_token
from ._views import EventReceipt, HistoryItem, ReplayReport, TokenInfo, WaitInfo, WorkflowInstance
from .store import InstanceStatus, ScriptVersion

__all__ = [
    "WAITING_ON",
    "AdvanceFailedError",
    "AlreadyResumedError",
    "CorruptStateError",
    "EventReceipt",
    "HistoryItem",
    "HistoryPage",
    "HostClosedError",
    "HostError",
    "IdempotencyKeyConflictError",
    "InstancePage",
    "InstanceStatus",
    "InvalidCursorError",
    "InvalidScheduleError",
    "InvalidWorkflowIdError",
    "MissingRegistrationError",
    "QueryError",
    "QueryNotFoundError",
    "ReplayReport",
    "Schedule",
    "ScriptVersion",
    "StartSpec",
    "TokenError",
    "TokenExpiredError",
    "TokenInfo",
    "TokenNotFoundError",
    "TokenUsedError",
    "UnknownScheduleError",
    "UnknownScriptError",
    "UnknownWorkflowError",
    "UpgradeError",
    "WaitInfo",
    "WaitKind",
    "WaitSelectionError",
    "WorkflowBusyError",
    "WorkflowExistsError",
    "WorkflowFinishedError",
    "WorkflowHost",
    "WorkflowInstance",
    "WorkflowNotFaultedError",
    "hash_token",
    "new_token",
    "wait_category",
]

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
    AlreadyResumedError,
    CorruptStateError,
    HostClosedError,
    HostError,
    InvalidCursorError,
    TokenError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    UnknownScriptError,
    UnknownWorkflowError,
    UpgradeError,
    WorkflowBusyError,
    WorkflowFinishedError,
    WorkflowNotFaultedError,
)
from ._host import WorkflowHost
from ._query import HistoryPage, InstancePage
from ._views import EventReceipt, HistoryItem, ReplayReport, WaitInfo, WorkflowInstance
from .store import ScriptVersion

__all__ = [
    "AlreadyResumedError",
    "CorruptStateError",
    "EventReceipt",
    "HistoryItem",
    "HistoryPage",
    "HostClosedError",
    "HostError",
    "InstancePage",
    "InvalidCursorError",
    "ReplayReport",
    "ScriptVersion",
    "TokenError",
    "TokenExpiredError",
    "TokenNotFoundError",
    "TokenUsedError",
    "UnknownScriptError",
    "UnknownWorkflowError",
    "UpgradeError",
    "WaitInfo",
    "WorkflowBusyError",
    "WorkflowFinishedError",
    "WorkflowHost",
    "WorkflowInstance",
    "WorkflowNotFaultedError",
]

"""Errors of the workflow engine.

Hierarchy::

    WorkflowError                      base of every engine error
    +-- ScriptError                    the script failed: js_name, message, stack
    +-- JournalCompatibilityError      the journal no longer matches the script (drift)
    +-- ResourceLimitError             time, memory or stack limit (limit=...)
    +-- StateVersionError              state written by a newer jsflow
    +-- InvalidStateError (ValueError) state that is not a valid WorkflowState
    +-- EventNotAwaitedError           raise_event for a name no wait listens for
    +-- WaitNotPendingError (LookupError)  resume/timeout of a wait that is not pending
    +-- PayloadTooLargeError (ValueError)  a JSON value over limits.payload
    +-- PayloadSchemaError (ValueError)    a payload that violates its wait's JSON Schema
    +-- WorkflowCancelledError         the outcome of a delivered cancellation (reason)
    +-- QueryError                     a query handler failed (carries the script's error)
    +-- QueryNotFoundError (LookupError)  no query of that name is defined

``RetryableStepError`` is not a WorkflowError: step functions raise it to ask
for a durable retry later. Errors carry their facts as attributes, not only in
the message, so callers never parse text.
"""

from __future__ import annotations

from datetime import timedelta


class WorkflowError(Exception):
    """Base class of every error the engine raises or returns."""


class ScriptError(WorkflowError):
    """The workflow script threw, or could not be loaded."""

    def __init__(self, message: str, *, js_name: str = "Error", stack: str = "") -> None:
        super().__init__(f"{js_name}: {message}" if js_name else message)
        self.js_name = js_name
        self.message = message
        self.stack = stack


class JournalCompatibilityError(WorkflowError):
    """A journaled completion does not match what the script scheduled."""

    def __init__(
        self,
        message: str,
        *,
        slot_index: int,
        expected_type: str | None,
        expected_name: str | None,
        encountered_type: str | None,
        encountered_name: str | None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.slot_index = slot_index
        self.expected_type = expected_type
        self.expected_name = expected_name
        self.encountered_type = encountered_type
        self.encountered_name = encountered_name


class ResourceLimitError(WorkflowError):
    """The script ran past a sandbox limit: ``limit`` is time, memory or stack."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


class StateVersionError(WorkflowError):
    """The state was written by a newer version of jsflow."""

    def __init__(self, version: int, supported: int) -> None:
        super().__init__(
            f"workflow state has version {version}, newer than this jsflow supports "
            f"(version {supported}); upgrade jsflow to resume it"
        )
        self.version = version
        self.supported = supported


class InvalidStateError(WorkflowError, ValueError):
    """The state text or object is not a valid WorkflowState."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EventNotAwaitedError(WorkflowError):
    """raise_event named an event no pending waitForEvent listens for."""

    def __init__(self, event_name: str, awaited: list[str]) -> None:
        listening = ", ".join(repr(n) for n in awaited) if awaited else "no events"
        super().__init__(f"the workflow is not waiting for event {event_name!r} (it waits for {listening})")
        self.event_name = event_name
        self.awaited = awaited


class WaitNotPendingError(WorkflowError, LookupError):
    """A resume or timeout named a wait that is not pending (e.g. already resumed)."""

    def __init__(self, wait_id: int | None, pending: list[int]) -> None:
        what = "no wait is pending" if not pending else f"pending waits are {pending}"
        target = "the workflow" if wait_id is None else f"wait {wait_id}"
        super().__init__(f"cannot complete {target}: {what} (already resumed or finished?)")
        self.wait_id = wait_id
        self.pending = pending


class PayloadTooLargeError(WorkflowError, ValueError):
    """A JSON value is larger than ``limits.payload``."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} is {size} bytes of JSON, over the limit of {limit} bytes")
        self.what = what
        self.size = size
        self.limit = limit


class PayloadSchemaError(WorkflowError, ValueError):
    """A resume value or event payload violates the JSON Schema of the wait it
    would reach; nothing was stored. ``path`` is the RFC 6901 JSON Pointer of
    the first violation (``""`` for the whole value), ``reason`` what is wrong."""

    def __init__(self, what: str, path: str, reason: str) -> None:
        where = f"at {path!r}" if path else "at the top level"
        super().__init__(f"{what} does not match the wait's schema {where}: {reason}")
        self.what = what
        self.path = path
        self.reason = reason


class InvalidPayloadError(WorkflowError, TypeError, ValueError):
    """A value given to a workflow is not storable JSON: not JSON at all, nested
    too deeply, or not valid Unicode. ``what`` names the value, ``reason`` the problem."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what} {reason}")
        self.what = what
        self.reason = reason


class RunClosedError(WorkflowError):
    """A ``LiveRun`` was used after ``close()`` (or after it finished and was closed)."""


class RunFinishedError(WorkflowError):
    """A ``LiveRun`` was asked to advance after its workflow finished; ``status`` says how."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the run already finished ({status}); nothing is pending")
        self.status = status


class WorkflowCancelledError(WorkflowError):
    """How a cancelled run ended: the ``error`` of a CANCELLED result.

    ``reason`` is what the canceller gave; ``cleanup_cut_short`` says why the
    script's cleanup was stopped early (time budget, the journal-entry cap, a
    wait left pending), or is None when the cleanup ran to its end."""

    def __init__(self, reason: str | None, cleanup_cut_short: str | None = None) -> None:
        what = "the workflow was cancelled" + (f": {reason}" if reason else "")
        if cleanup_cut_short:
            what += f" (cleanup cut short: {cleanup_cut_short})"
        super().__init__(what)
        self.reason = reason
        self.cleanup_cut_short = cleanup_cut_short


class QueryError(WorkflowError):
    """A query handler failed: it threw, was async, called a step, suspend or
    wait (a ``TypeError`` in the script), or ran past the time budget.
    ``error`` is the script's error (a ``ScriptError`` with ``js_name``, or a
    ``ResourceLimitError``); ``js_name`` and ``message`` are copied from it."""

    def __init__(self, name: str, error: WorkflowError) -> None:
        super().__init__(f"query {name!r} failed: {error}")
        self.name = name
        self.error = error
        self.js_name = getattr(error, "js_name", type(error).__name__)
        self.message = getattr(error, "message", str(error))


class QueryNotFoundError(WorkflowError, LookupError):
    """The script defines no query of that name; ``defined`` lists the ones it does."""

    def __init__(self, name: str, defined: list[str]) -> None:
        known = ", ".join(repr(n) for n in defined) if defined else "none"
        super().__init__(f"the workflow defines no query {name!r} (defined: {known})")
        self.name = name
        self.defined = defined


class RetryableStepError(Exception):
    """Raised by a step to be retried durably at now + retry_after.

    The workflow suspends on a retry wait; nothing is journaled, and resuming
    the wait runs the step again.
    """

    def __init__(self, message: str = "", retry_after: timedelta | float = 0) -> None:
        super().__init__(message)
        self.message = message
        if isinstance(retry_after, timedelta):
            self.retry_after = retry_after
        else:
            self.retry_after = timedelta(seconds=float(retry_after))

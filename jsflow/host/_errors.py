"""Errors raised by ``WorkflowHost``.

Why a hierarchy of its own: a caller of the host (the CLI, an HTTP handler,
application code) must tell "no such workflow" (404) from "already resumed"
(409) from "stored state is corrupt" (500, page someone) without parsing
messages. Every class carries its facts as attributes. Where the store or
engine already has a class for the same fact, the host class inherits from
both, so ``except HostError`` and ``except store.UnknownWorkflowError`` (or
``except WaitNotPendingError``) both work. Store errors are translated into
these at one boundary (``translate``), with the original chained as
``__cause__``.

::

    HostError                                 base of everything the host raises
    ├── HostClosedError                       the host was used after close()
    ├── UnknownWorkflowError  (+store)        no instance with that id
    ├── UnknownScriptError    (+store)        no script with that name/hash
    ├── WorkflowExistsError                   start() with an id that runs another script/arguments
    ├── WorkflowFinishedError                 the instance is completed/faulted/cancelled
    ├── WorkflowNotFaultedError               retry() of an instance that is not faulted
    ├── AlreadyResumedError   (+WaitNotPendingError)  the wait was completed by someone else
    ├── CorruptStateError     (+InvalidStateError)    the stored engine state cannot be read
    ├── WorkflowBusyError                     too many concurrent writers; try again
    ├── UpgradeError                          upgrade() refused: replay found drift
    ├── InvalidCursorError    (+ValueError)   a paging cursor this host did not make
    ├── MissingRegistrationError              this process lacks a step/suspend the instance needs
    ├── WaitSelectionError    (+LookupError)  a bare resume found no single suspend/token wait
    ├── InvalidWorkflowIdError (+ValueError)  an empty or non-string workflow id
    ├── IdempotencyKeyConflictError (+store)  an idempotency key reused for another event name or payload
    ├── AdvanceFailedError                    an advance failed unexpectedly; the instance was faulted
    ├── QueryError                            a query handler failed (carries the script's error)
    ├── QueryNotFoundError    (+LookupError)  the script defines no query of that name
    ├── UnknownScheduleError  (+LookupError)  no schedule with that name
    ├── InvalidScheduleError  (+ValueError)   a bad cron expression, time zone or option
    └── TokenError            (+store)        resume-token problems
        ├── TokenNotFoundError (+store)       forged or unknown token
        ├── TokenUsedError     (+store)       single use: already consumed
        └── TokenExpiredError  (+store)       past expires_at (or its wait timed out)

Engine errors that are about the caller's input pass through unchanged:
``PayloadTooLargeError`` and ``TypeError`` for payloads that are too large or
not JSON.
"""

from __future__ import annotations

from typing import Any

from jsflow import InvalidStateError, WaitNotPendingError

from . import store as store_errors
from ._kinds import RESUMABLE_KINDS


class HostError(Exception):
    """Base class of every error ``WorkflowHost`` raises."""


class HostClosedError(HostError):
    """The host was closed; create a new one."""


class UnknownWorkflowError(HostError, store_errors.UnknownWorkflowError):
    """No workflow instance has this id (``workflow_id``)."""


class UnknownScriptError(HostError, store_errors.UnknownScriptError):
    """No stored script matches ``name`` (and ``hash``)."""


class WorkflowFinishedError(HostError):
    """The instance has finished (``status``) and accepts no more events or resumes."""

    def __init__(self, workflow_id: str, status: str, action: str = "advance") -> None:
        super().__init__(f"workflow {workflow_id!r} is {status}; cannot {action} it")
        self.workflow_id = workflow_id
        self.status = status
        self.action = action


class WorkflowExistsError(HostError):
    """``start()`` with a ``workflow_id`` that already exists under another script
    name or other arguments. Starting it again with the same script name and
    arguments is not an error: it returns the existing instance.
    ``script_name`` is the existing instance's script; ``conflict`` says what
    differs ("script" or "arguments")."""

    def __init__(self, workflow_id: str, script_name: str, conflict: str) -> None:
        super().__init__(
            f"workflow {workflow_id!r} already exists with other {conflict} "
            f"(script {script_name!r}); choose another id or start it with the same script and arguments"
        )
        self.workflow_id = workflow_id
        self.script_name = script_name
        self.conflict = conflict


class WorkflowNotFaultedError(HostError):
    """``retry()`` only applies to faulted instances."""

    def __init__(self, workflow_id: str, status: str) -> None:
        super().__init__(f"workflow {workflow_id!r} is {status}, not faulted; nothing to retry")
        self.workflow_id = workflow_id
        self.status = status


class AlreadyResumedError(HostError, WaitNotPendingError):
    """The wait is no longer pending: another delivery (or a timer, or a cancel) won."""

    def __init__(self, workflow_id: str, wait_id: int | None, pending: list[int]) -> None:
        WaitNotPendingError.__init__(self, wait_id, pending)
        self.args = (f"workflow {workflow_id!r}: {self.args[0]}",)
        self.workflow_id = workflow_id


class CorruptStateError(HostError, InvalidStateError):
    """The stored engine state of ``workflow_id`` cannot be read; nothing was changed."""

    def __init__(self, workflow_id: str, reason: str) -> None:
        InvalidStateError.__init__(self, f"stored state of workflow {workflow_id!r} is unreadable: {reason}")
        self.workflow_id = workflow_id
        self.reason = reason


class WorkflowBusyError(HostError):
    """Other writers kept changing the instance; the operation gave up after ``attempts``."""

    def __init__(self, workflow_id: str, attempts: int) -> None:
        super().__init__(f"workflow {workflow_id!r} kept changing under us ({attempts} attempts); try again")
        self.workflow_id = workflow_id
        self.attempts = attempts


class UpgradeError(HostError):
    """``upgrade()`` found that the new script does not replay the instance's journal."""

    def __init__(self, workflow_id: str, report: Any) -> None:
        super().__init__(f"cannot upgrade workflow {workflow_id!r}: {report.message}")
        self.workflow_id = workflow_id
        self.report = report


class InvalidCursorError(HostError, ValueError):
    """A paging cursor (``list_page``/``history_page``) that does not decode, or
    belongs to another listing; ``reason`` says which."""

    def __init__(self, cursor: str, reason: str) -> None:
        super().__init__(f"invalid cursor: {reason}")
        self.cursor = cursor
        self.reason = reason


class TokenError(HostError, store_errors.TokenError):
    """Base of resume-token errors; ``token_hash`` is the hash, never the token."""


class TokenNotFoundError(TokenError, store_errors.TokenNotFoundError):
    """No such token was issued (forged, mistyped, or from another store)."""


class TokenUsedError(TokenError, store_errors.TokenUsedError):
    """The token was already used: its wait was resumed."""


class TokenExpiredError(TokenError, store_errors.TokenExpiredError):
    """The token expired (its wait timed out or will at ``expires_at``)."""


class MissingRegistrationError(HostError):
    """This process cannot run the instance: ``missing`` names steps or suspend
    functions its starting process had and the script uses. Nothing was changed;
    a process that registers them (e.g. started with the same ``--app``) can."""

    def __init__(self, workflow_id: str, missing: list[str]) -> None:
        names = ", ".join(sorted(missing))
        super().__init__(
            f"workflow {workflow_id!r} needs {names}, which this process has not registered; "
            "nothing was changed (run it from a process that registers them, e.g. with the same --app)"
        )
        self.workflow_id = workflow_id
        self.missing = sorted(missing)


class WaitSelectionError(HostError, LookupError):
    """A resume without a wait id needs exactly one pending suspend or token wait.

    ``pending`` lists every pending wait as ``{"wait_id", "kind", "function_name"}``;
    pass one of those ids. Timers (sleep, retries, event timeouts) complete early
    only by an explicit wait id."""

    def __init__(self, workflow_id: str, pending: list[dict[str, Any]]) -> None:
        candidates = [p for p in pending if p["kind"] in RESUMABLE_KINDS]
        listed = ", ".join(f"{p['wait_id']} ({p['kind']} {p['function_name']})" for p in pending) or "none"
        if candidates:
            why = f"{len(candidates)} suspend/token waits are pending"
        else:
            why = "no suspend or token wait is pending"
        super().__init__(
            f"cannot resume workflow {workflow_id!r} without a wait id: {why}; pending waits: {listed}"
        )
        self.workflow_id = workflow_id
        self.pending = pending


class InvalidWorkflowIdError(HostError, ValueError):
    """Not a valid workflow id (``jsflow.workflow_id_problem``: a non-empty string
    of valid Unicode without NUL, at most ``jsflow.MAX_WORKFLOW_ID_LENGTH``
    characters). ``workflow_id`` is what was given (shortened), ``reason`` why."""

    def __init__(self, workflow_id: Any, reason: str = "must be a non-empty string") -> None:
        shown = (
            workflow_id[:80] + "..."
            if isinstance(workflow_id, str) and len(workflow_id) > 80
            else workflow_id
        )
        super().__init__(f"workflow id {shown!r} {reason}")
        self.workflow_id = workflow_id
        self.reason = reason


class IdempotencyKeyConflictError(HostError, store_errors.IdempotencyKeyConflictError):
    """``send_event`` with an idempotency key that was first used for another event
    name or payload: nothing was stored (``workflow_id``, ``idempotency_key``,
    ``event_id`` of the first request)."""


class AdvanceFailedError(HostError):
    """An advance failed with an unexpected error after it changed the instance;
    the instance was faulted (``retry`` runs it again from its last good state).
    ``cause_type`` and ``message`` describe the original error."""

    def __init__(self, workflow_id: str, cause: BaseException) -> None:
        super().__init__(f"advancing workflow {workflow_id!r} failed: {type(cause).__name__}: {cause}"[:2000])
        self.workflow_id = workflow_id
        self.cause_type = type(cause).__name__
        self.message = str(cause)[:2000]


_MAP: dict[type[BaseException], type[HostError]] = {
    store_errors.UnknownWorkflowError: UnknownWorkflowError,
    store_errors.UnknownScriptError: UnknownScriptError,
    store_errors.TokenNotFoundError: TokenNotFoundError,
    store_errors.TokenUsedError: TokenUsedError,
    store_errors.TokenExpiredError: TokenExpiredError,
    store_errors.IdempotencyKeyConflictError: IdempotencyKeyConflictError,
}


def translate(exc: BaseException) -> BaseException:
    """The host class for a store error (same attributes), or ``exc`` itself."""
    cls = _MAP.get(type(exc))
    if cls is None:
        return exc
    new = cls.__new__(cls)
    new.args = exc.args
    new.__dict__.update(exc.__dict__)
    return new


class QueryError(HostError):
    """A query handler failed (issue 20): it threw, was async, called a step,
    suspend or wait, or ran past the time budget. ``error`` is the script's
    error (a ``ScriptError``, usually with ``js_name`` "TypeError", or a
    ``ResourceLimitError``); ``js_name`` and ``message`` are copied from it."""

    def __init__(self, workflow_id: str, name: str, error: BaseException) -> None:
        super().__init__(f"query {name!r} of workflow {workflow_id!r} failed: {error}")
        self.workflow_id = workflow_id
        self.name = name
        self.error = error
        self.js_name = str(getattr(error, "js_name", type(error).__name__))
        self.message = str(getattr(error, "message", error))


class QueryNotFoundError(HostError, LookupError):
    """The instance's script defines no query ``name``; ``defined`` lists those it does."""

    def __init__(self, workflow_id: str, name: str, defined: list[str]) -> None:
        known = ", ".join(repr(n) for n in defined) if defined else "none"
        super().__init__(f"workflow {workflow_id!r} defines no query {name!r} (defined: {known})")
        self.workflow_id = workflow_id
        self.name = name
        self.defined = defined


class UnknownScheduleError(HostError, LookupError):
    """No schedule has this ``name``."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}")
        self.name = name


class InvalidScheduleError(HostError, ValueError):
    """A schedule definition the host refuses: ``field`` names the parameter
    (name, cron, timezone, overlap, catch_up), ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason

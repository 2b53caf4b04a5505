"""The store interface a backend author implements.

Two classes, in the spirit of huey's storage: ``StoreSession``, every
per-instance operation grouped by concept (scripts, workflows, journal,
history, waits, inbox, tokens, requirements and recovery) run inside one
transaction; and ``Store``, which opens sessions and holds the few
operations that are store-wide by nature (timer claims, stale-run claims,
the fenced journal insert, the hook secret, close). Every method is one the
host calls, and none forwards to another: a caller that wants one operation
opens a unit of work for it (``store.read(lambda tx: tx.get_workflow(wid))``
or ``with store.transaction() as tx: ...``).

Why a session and not one-shot methods: the host advances an instance with
several writes that must land together or not at all (new state + pending
waits + history + consumed inbox event + consumed token).

To add a backend:

1. subclass ``Store`` and ``StoreSession``; implement every abstract method
   (records in ``jsflow.host.store``: ``WorkflowRecord``, ``PendingWait``, ...;
   raise the errors of ``jsflow.host.store``, translated from your driver's at
   one boundary; a lost connection is ``StoreUnavailableError``);
2. for a SQL database, subclass ``jsflow.host.store.SQLStore`` instead and
   supply its dialect hooks: the SQL is written once;
3. run the contract suite against it: subclass ``jsflow.testing.StoreContract``
   and override ``make_store`` (see docs/embedding.md).

Transactions commit when the ``with`` block ends normally and roll back
completely when it raises; they do not nest, and a session belongs to the
thread that opened it. Time: aware UTC datetimes, millisecond precision.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._changes import ChangeBoard
from ._codec import Clock, utc_now
from ._errors import StoreUnavailableError
from ._records import (
    HistoryEvent,
    InboxEvent,
    PendingWait,
    ScriptVersion,
    TimerClaim,
    TokenRecord,
    WorkflowPageQuery,
    WorkflowRecord,
)
from ._schedules import ScheduleSession
from ._schema import MIGRATIONS

if TYPE_CHECKING:  # tenacity (~5 MB of RSS) only once the store fails
    import tenacity

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "Capabilities",
    "Store",
    "StoreSession",
    "schema_migrations",
]

DEFAULT_LIST_LIMIT = 100
#: the names a process has registered (None: no filter); instances that need
#: another name are left to a process that has it
Capabilities = Collection[str] | None
T = TypeVar("T")
log = logging.getLogger("jsflow.store")


class StoreSession(ScheduleSession, ABC):
    """One transaction's view of the store. Obtain with ``Store.transaction()``.

    Everything done through a session commits when the ``with`` block exits
    normally and is rolled back entirely when it raises. A session must not be
    used after its block ends (``StoreClosedError``) nor shared across threads.
    """

    # -- scripts ---------------------------------------------------------------
    @abstractmethod
    def put_script(self, name: str, source: str) -> ScriptVersion:
        """Store ``source`` under ``name``; idempotent (same name + source -> same version).

        The version put most recently becomes the name's latest, so
        re-registering an older source makes it latest again.
        """

    @abstractmethod
    def get_script(self, name: str, hash: str | None = None) -> ScriptVersion | None:
        """The latest version of ``name``, or the version with ``hash``; None if absent."""

    @abstractmethod
    def list_scripts(self, name: str | None = None) -> list[ScriptVersion]:
        """Every stored version (of ``name`` if given), by name, oldest registration first."""

    # -- workflows -------------------------------------------------------------
    @abstractmethod
    def create_workflow(self, record: WorkflowRecord) -> tuple[WorkflowRecord, bool]:
        """Insert ``record`` unless its workflow id exists; returns (stored record, created).

        The stored version is 1. Raises ``UnknownScriptError`` when the script
        version is not stored.
        """

    @abstractmethod
    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The instance, or None."""

    def get_workflow_header(
        self, workflow_id: str
    ) -> tuple[WorkflowRecord, list[PendingWait], list[str]] | None:
        """The instance with its pending waits and its requirements, or None: what
        an advance reads besides the journal. A backend that can read all three
        with one statement overrides this (PostgreSQL: one round trip)."""
        record = self.get_workflow(workflow_id)
        if record is None:
            return None
        return record, self.list_waits(workflow_id), self.get_requirements(workflow_id)

    @abstractmethod
    def list_workflows(
        self,
        *,
        status: str | Iterable[str] | None = None,
        script_name: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
        offset: int = 0,
    ) -> list[WorkflowRecord]:
        """Instances by ``created_at`` then id; ``created_after`` inclusive, ``created_before``
        exclusive."""

    @abstractmethod
    def page_workflows(self, query: WorkflowPageQuery) -> list[WorkflowRecord]:
        """Up to ``query.limit`` instances matching ``query``, newest first, strictly
        after ``query.before`` in that order (see ``WorkflowPageQuery``)."""

    @abstractmethod
    def count_workflows_by_status(self) -> dict[str, int]:
        """How many instances have each status (statuses with none are absent)."""

    @abstractmethod
    def save_workflow(self, record: WorkflowRecord, expected_version: int | None = None) -> WorkflowRecord:
        """Overwrite the instance if its stored version is ``expected_version``
        (default ``record.version``); returns it with ``version`` + 1 and a new ``updated_at``.

        ``workflow_id``, ``script_name`` and ``created_at`` never change.
        Raises ``ConcurrencyError`` or ``UnknownWorkflowError``.
        """

    @abstractmethod
    def bump_workflow(self, workflow_id: str, expected_version: int) -> int:
        """Advance the version and ``updated_at`` if the version is still
        ``expected_version``; the new version, else ``ConcurrencyError``."""

    @abstractmethod
    def mark_faulted(self, workflow_id: str, expected_version: int, error_json: str) -> bool:
        """Set status "faulted" and the error with one minimal UPDATE (version-checked,
        nothing else touched): the last-resort write when a richer save failed.
        False if the version moved."""

    @abstractmethod
    def delete_workflows(self, workflow_ids: Sequence[str]) -> list[str]:
        """Delete the *finished* instances among ``workflow_ids`` with everything
        that belongs to them (history, waits, inbox events, tokens, journal).

        Unfinished and unknown ids are skipped, so a retention job can never
        remove a live instance. Returns the ids deleted, in the order given.
        """

    # -- journal (the run's entries, one row each) -----------------------------
    @abstractmethod
    def append_journal(self, workflow_id: str, seq: int, entry_json: str) -> None:
        """Store journal entry number ``seq`` of the instance's current run."""

    @abstractmethod
    def read_journal(self, workflow_id: str, start: int = 0) -> list[str]:
        """Entries with ``seq >= start``, in order (JSON texts)."""

    @abstractmethod
    def read_journal_page(self, workflow_id: str, start: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` stored journal rows with ``seq >= start`` as ``(seq, entry_json)``,
        in order (``read_journal`` bounded, for paging long timelines)."""

    @abstractmethod
    def trim_journal(self, workflow_id: str, keep: int) -> None:
        """Delete entries with ``seq >= keep`` (a retry, a continue-as-new)."""

    # -- history (the lifecycle timeline) --------------------------------------
    @abstractmethod
    def append_history(
        self,
        workflow_id: str,
        kind: str,
        detail: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> HistoryEvent:
        """Append one lifecycle event (seq = previous + 1) to the instance's timeline."""

    @abstractmethod
    def list_history(self, workflow_id: str, *, after_seq: int = 0) -> list[HistoryEvent]:
        """The timeline in seq order, from ``after_seq`` + 1."""

    @abstractmethod
    def list_history_page(
        self, workflow_id: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[HistoryEvent]:
        """Up to ``limit`` lifecycle events with ``seq > after_seq``, in seq order
        (``list_history`` bounded, for paging long timelines)."""

    # -- waits -----------------------------------------------------------------
    @abstractmethod
    def replace_waits(self, workflow_id: str, waits: Sequence[PendingWait]) -> None:
        """Make ``waits`` the instance's complete set of pending waits.

        Claims on the previous rows are dropped (the optimistic version check,
        not the claim, is what stops a wait from being fired twice).
        """

    @abstractmethod
    def list_waits(self, workflow_id: str) -> list[PendingWait]:
        """The instance's pending waits by wait id."""

    # -- inbox -----------------------------------------------------------------
    @abstractmethod
    def enqueue_event(self, workflow_id: str, name: str, payload_json: str) -> int:
        """Persist an incoming event; returns its id (ids increase). Unknown instance:
        ``UnknownWorkflowError``."""

    @abstractmethod
    def enqueue_event_once(
        self, workflow_id: str, name: str, payload_json: str, idempotency_key: str
    ) -> tuple[int, bool]:
        """Store the event unless one with this key exists for the instance:
        ``(event_id, created)``; the existing event's id when not created."""

    @abstractmethod
    def get_event(self, event_id: int) -> InboxEvent | None:
        """One inbox event, delivered or not."""

    @abstractmethod
    def pending_events(self, workflow_id: str, names: Iterable[str] | None = None) -> list[InboxEvent]:
        """Undelivered events (named one of ``names`` if given), oldest first."""

    @abstractmethod
    def mark_event_delivered(self, event_id: int, wait_id: int) -> InboxEvent:
        """Record delivery to ``wait_id``; ``InboxError`` if unknown or already delivered."""

    @abstractmethod
    def stranded_workflows(
        self, before: datetime, limit: int, capabilities: Capabilities = None
    ) -> list[str]:
        """Suspended instances with an undelivered event received before
        ``before`` whose name a pending event wait lists; oldest event first."""

    # -- tokens ----------------------------------------------------------------
    @abstractmethod
    def put_token(
        self,
        token_hash: str,
        workflow_id: str,
        wait_id: int,
        *,
        expires_at: datetime | None,
        kind: str = "hook",
        metadata: dict[str, Any] | None = None,
    ) -> TokenRecord:
        """Store a resume token by its sha256 hash (``ValueError`` for anything else)."""

    @abstractmethod
    def get_token(self, token_hash: str) -> TokenRecord | None:
        """The token record, used or not; None if unknown."""

    @abstractmethod
    def consume_token(self, token_hash: str, *, now: datetime | None = None) -> TokenRecord:
        """Mark the token used, once. Raises ``TokenNotFoundError``, ``TokenUsedError`` or
        ``TokenExpiredError`` (expired when ``now`` >= ``expires_at``)."""

    @abstractmethod
    def retarget_token(self, token_hash: str, wait_id: int) -> None:
        """Point an unused token at another wait of its instance (a createHook
        waited on again after its first wait lost a race)."""

    # -- requirements and recovery bookkeeping ---------------------------------
    @abstractmethod
    def set_requirements(self, workflow_id: str, names: Iterable[str]) -> None:
        """Replace the names the instance needs registered to run."""

    @abstractmethod
    def get_requirements(self, workflow_id: str) -> list[str]:
        """The names the instance needs, sorted."""

    @abstractmethod
    def note_recovery(self, workflow_id: str) -> int:
        """Count one more recovery attempt; returns the count."""

    @abstractmethod
    def recovery_attempts(self, workflow_id: str) -> int:
        """Recovery attempts counted since the instance last advanced cleanly."""

    @abstractmethod
    def clear_recoveries(self, workflow_id: str) -> None:
        """Forget recovery attempts (the instance advanced cleanly)."""


class Store(ABC):
    """A durable store: opens sessions, and runs the store-wide operations.

    ``clock`` stamps ``created_at``/``updated_at``/``at`` values the caller
    does not give; decisions that depend on time take ``now=`` explicitly.
    ``transient_retry_seconds``: how long ``read``/``write`` (and SQL stores'
    own statements) retry ``StoreUnavailableError`` before raising it.
    """

    transient_retry_seconds: float = 15.0

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or utc_now
        self.changes = ChangeBoard()

    # -- units of work ---------------------------------------------------------
    @abstractmethod
    def transaction(self, *, write: bool = True) -> AbstractContextManager[StoreSession]:
        """Open a unit of work: ``with store.transaction() as tx: ...``.

        Commits on normal exit, rolls back on any exception. ``write=False``
        is a hint for read-only work. Transactions do not nest: calling
        ``transaction()`` inside an open transaction on the same thread raises
        ``StoreError``.
        """

    def read(self, op: Callable[[StoreSession], T]) -> T:
        """``op(session)`` in a read-only transaction, run again from the start
        while the database is unavailable (a read is always safe to repeat)."""

        def once() -> T:
            with self.transaction(write=False) as tx:
                return op(tx)

        return self.retrying(once)

    def write(self, op: Callable[[StoreSession], T]) -> T:
        """``op(session)`` in a writing transaction, run again from the start while
        the database is unavailable before the commit was sent; a failure of the
        commit itself (its outcome unknown: ``at_commit``) is raised, never
        repeated blindly."""

        def once() -> T:
            with self.transaction() as tx:
                return op(tx)

        return self.retrying(once)

    def retrying(self, op: Callable[[], T]) -> T:
        """Run ``op`` again while it fails with ``StoreUnavailableError`` (a lost
        connection, a restarting server, a lock wait that timed out), with
        exponential backoff and jitter, for at most ``transient_retry_seconds``;
        then raise the last error with ``retried_for`` set. Only for work that
        is safe to repeat; a commit whose outcome is unknown (``at_commit``) is
        never repeated."""
        started = time.monotonic()
        try:  # the common case without tenacity's per-call cost (a hot path)
            return op()
        except StoreUnavailableError as exc:
            if exc.at_commit:
                raise
            log.warning("store unavailable, retrying: %s", exc.reason)
        import tenacity

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_repeatable),
            stop=tenacity.stop_after_delay(self.transient_retry_seconds),
            wait=tenacity.wait_exponential_jitter(multiplier=0.05, max=2.0),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return retrying(op)
        except StoreUnavailableError as exc:
            exc.retried_for = round(time.monotonic() - started, 3)
            raise

    # -- journal (the hot path) --------------------------------------------------
    @abstractmethod
    def append_journal_checked(
        self, workflow_id: str, expected_version: int, seq: int, entry_json: str
    ) -> None:
        """Store journal entry ``seq`` in its own transaction, only while the instance
        is still at ``expected_version`` (the fence: whoever takes an instance over
        bumps its version first); ``ConcurrencyError`` otherwise. One statement
        where the database allows (a step completion is one round trip), and
        repeatable: finding the very row it wrote is success."""

    # -- timers ------------------------------------------------------------------
    @abstractmethod
    def claim_due_timers(
        self,
        now: datetime,
        limit: int,
        worker_id: str,
        lease_seconds: float,
        capabilities: Capabilities = None,
    ) -> list[TimerClaim]:
        """Lease up to ``limit`` waits with ``resume_at`` <= ``now`` that are unclaimed or
        whose lease expired, earliest first. Each due wait goes to one caller only,
        across threads and processes, until its lease passes. ``capabilities``: the
        names this process has registered; waits of instances that require
        another name are not claimed (None: no filter)."""

    @abstractmethod
    def complete_claim(self, workflow_id: str, wait_id: int, worker_id: str) -> bool:
        """Delete a claimed wait that needs no firing; False if not held by ``worker_id``."""

    @abstractmethod
    def next_due_time(self) -> datetime | None:
        """When the next timer becomes claimable (resume_at, or lease end if claimed)."""

    # -- recovery ----------------------------------------------------------------
    @abstractmethod
    def claim_stale_runs(
        self, updated_before: datetime, limit: int, capabilities: Capabilities = None
    ) -> list[WorkflowRecord]:
        """Take up to ``limit`` instances left "running" with ``updated_at`` before
        ``updated_before`` (their worker died or stalled) that a process with
        ``capabilities`` can run, least recently updated first.

        Each is re-stamped (``updated_at`` = now, ``version`` + 1) in the same
        transaction, so other workers no longer see it as stale and the previous
        owner's next write fails its version check (the fence). Returns the
        re-stamped records. Exclusive across processes: two callers never take
        the same instance.
        """

    # -- settings ----------------------------------------------------------------
    @abstractmethod
    def hook_secret(self) -> str:
        """This store's key for createHook tokens: random, made when the store was
        first used and kept in the store itself, so every process and every
        restart on the store derives the same hook URLs. (A host given
        ``hook_secret=`` uses that instead.)"""

    # -- change notifications (see ``_changes``) ---------------------------------
    def change_marker(self) -> int:
        """A position in this store's change stream; take it *before* reading, then
        ``wait_for_change(..., since=marker)`` so a change in between is not missed."""
        return self.changes.marker()

    def notify(self, *keys: str) -> None:
        """Announce that ``keys`` changed (stores do this after each commit).
        In-process waiters wake at once; PostgreSQL also tells other processes."""
        self.changes.post(keys)

    def wait_for_change(self, timeout: float, *keys: str, since: int | None = None) -> bool:
        """Block up to ``timeout`` seconds until one of ``keys`` (any key if none)
        changes after ``since`` (default: now). True when woken by a change, False
        at the timeout. Backends without a cross-process channel (SQLite, memory)
        only see changes made through this store object: elsewhere the timeout is
        the poll interval."""
        return self.changes.wait(timeout, keys, since)

    # -- lifetime ----------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release connections; later use raises ``StoreClosedError``. Idempotent."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _repeatable(error: BaseException) -> bool:
    return isinstance(error, StoreUnavailableError) and not error.at_commit


def _log_retry(state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "store unavailable (attempt %d), retrying in %.2f s: %s",
        state.attempt_number,
        state.upcoming_sleep,
        getattr(error, "reason", error),
    )


def schema_migrations() -> tuple[str, ...]:
    """The ordered schema migrations every SQL store applies (migration N is item N - 1)."""
    return MIGRATIONS

"""The store interface: what the durable host needs from a database.

Why two classes: the host advances an instance with several writes that
must land together or not at all (new state + pending waits + history +
consumed inbox event + consumed token). ``StoreSession`` is that unit of work:
every per-instance operation, run inside one transaction. ``Store`` opens
sessions (``with store.transaction() as tx:``) and also offers each session
operation as a one-shot method that runs in its own short transaction, plus
the few operations that are store-wide by nature (timer claims, close).

Operations are grouped by concept: scripts, workflows, history, waits,
inbox, tokens. Records are in ``_records``; errors in ``_errors``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any

from ._changes import ChangeBoard
from ._codec import Clock, normalize_time, utc_now
from ._durable import DurableOneShots, DurableSession
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
from ._schedules import ScheduleOneShots, ScheduleSession

DEFAULT_LIST_LIMIT = 100


class StoreSession(DurableSession, ScheduleSession, ABC):
    """One transaction's view of the store. Obtain with ``Store.transaction()``.

    Everything done through a session commits when the ``with`` block exits
    normally and is rolled back entirely when it raises. A session must not be
    used after its block ends (``StoreClosedError``) nor shared across threads.
    """

    # -- scripts -------------------------------------------------------------
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

    # -- workflows -----------------------------------------------------------
    @abstractmethod
    def create_workflow(self, record: WorkflowRecord) -> tuple[WorkflowRecord, bool]:
        """Insert ``record`` unless its workflow id exists; returns (stored record, created).

        The stored version is 1. Raises ``UnknownScriptError`` when the script
        version is not stored.
        """

    @abstractmethod
    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The instance, or None."""

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
    def save_workflow(self, record: WorkflowRecord, expected_version: int | None = None) -> WorkflowRecord:
        """Overwrite the instance if its stored version is ``expected_version``
        (default ``record.version``); returns it with ``version`` + 1 and a new ``updated_at``.

        ``workflow_id``, ``script_name`` and ``created_at`` never change.
        Raises ``ConcurrencyError`` or ``UnknownWorkflowError``.
        """

    @abstractmethod
    def page_workflows(self, query: WorkflowPageQuery) -> list[WorkflowRecord]:
        """Up to ``query.limit`` instances matching ``query``, newest first, strictly
        after ``query.before`` in that order (see ``WorkflowPageQuery``)."""

    @abstractmethod
    def count_workflows_by_status(self) -> dict[str, int]:
        """How many instances have each status (statuses with none are absent)."""

    # -- history -------------------------------------------------------------
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

    @abstractmethod
    def read_journal_page(self, workflow_id: str, start: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` stored journal rows with ``seq >= start`` as ``(seq, entry_json)``,
        in order (``read_journal`` bounded, for paging long timelines)."""

    # -- waits / timers ------------------------------------------------------
    @abstractmethod
    def replace_waits(self, workflow_id: str, waits: Sequence[PendingWait]) -> None:
        """Make ``waits`` the instance's complete set of pending waits.

        Claims on the previous rows are dropped (the optimistic version check,
        not the claim, is what stops a wait from being fired twice).
        """

    @abstractmethod
    def list_waits(self, workflow_id: str) -> list[PendingWait]:
        """The instance's pending waits by wait id."""

    # -- inbox ---------------------------------------------------------------
    @abstractmethod
    def enqueue_event(self, workflow_id: str, name: str, payload_json: str) -> int:
        """Persist an incoming event; returns its id (ids increase). Unknown instance:
        ``UnknownWorkflowError``."""

    @abstractmethod
    def get_event(self, event_id: int) -> InboxEvent | None:
        """One inbox event, delivered or not."""

    @abstractmethod
    def pending_events(self, workflow_id: str, names: Iterable[str] | None = None) -> list[InboxEvent]:
        """Undelivered events (named one of ``names`` if given), oldest first."""

    @abstractmethod
    def mark_event_delivered(self, event_id: int, wait_id: int) -> InboxEvent:
        """Record delivery to ``wait_id``; ``InboxError`` if unknown or already delivered."""

    # -- tokens --------------------------------------------------------------
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

    # -- retention -----------------------------------------------------------
    @abstractmethod
    def delete_workflows(self, workflow_ids: Sequence[str]) -> list[str]:
        """Delete the *finished* instances among ``workflow_ids`` with everything
        that belongs to them (history, waits, inbox events, tokens, journal).

        Unfinished and unknown ids are skipped, so a retention job can never
        remove a live instance. Returns the ids deleted, in the order given.
        """


class Store(DurableOneShots, ScheduleOneShots, StoreSession):
    """A durable store. Every session operation is also a one-shot method here.

    Subclasses implement ``transaction``, ``claim_due_timers``,
    ``release_claim``, ``complete_claim``, ``next_due_time`` and ``close``.
    ``clock`` stamps ``created_at``/``updated_at``/``at`` values the caller
    does not give; decisions that depend on time take ``now=`` explicitly.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or utc_now
        self.changes = ChangeBoard()

    # -- change notifications (see ``_changes``) -------------------------------
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

    def claim_stale_runs(
        self, updated_before: datetime, limit: int, capabilities: Collection[str] | None = None
    ) -> list[WorkflowRecord]:
        """Take up to ``limit`` instances left "running" with ``updated_at`` before
        ``updated_before`` (their worker died or stalled) that a process with
        ``capabilities`` can run, least recently updated first.

        Each is re-stamped (``updated_at`` = now, ``version`` + 1) in the same
        transaction, so other workers no longer see it as stale and the previous
        owner's next write fails its version check (the fence). Returns the
        re-stamped records. This generic form selects, then re-stamps each with
        the version check (exclusive on SQLite and the memory store, whose writer
        is single); PostgreSQL overrides it with one ``FOR UPDATE SKIP LOCKED``
        statement.
        """
        taken: list[WorkflowRecord] = []
        with self.transaction() as tx:
            for record in tx.list_stale(updated_before, limit, capabilities):
                version = tx.bump_workflow(record.workflow_id, record.version)
                taken.append(replace(record, version=version, updated_at=normalize_time(self.clock())))
        return taken

    # -- store-wide operations -----------------------------------------------
    @abstractmethod
    def transaction(self, *, write: bool = True) -> AbstractContextManager[StoreSession]:
        """Open a unit of work: ``with store.transaction() as tx: ...``.

        Commits on normal exit, rolls back on any exception. ``write=False``
        is a hint for read-only work. Transactions do not nest: calling
        ``transaction()`` or a one-shot method of this store inside an open
        transaction on the same thread raises ``StoreError``.
        """

    @abstractmethod
    def claim_due_timers(
        self,
        now: datetime,
        limit: int,
        worker_id: str,
        lease_seconds: float,
        capabilities: Collection[str] | None = None,
    ) -> list[TimerClaim]:
        """Lease up to ``limit`` waits with ``resume_at`` <= ``now`` that are unclaimed or
        whose lease expired, earliest first. Each due wait goes to one caller only,
        across threads and processes, until its lease passes. ``capabilities``: the
        names this process has registered; waits of instances that require
        another name are not claimed (None: no filter)."""

    @abstractmethod
    def release_claim(self, workflow_id: str, wait_id: int, worker_id: str) -> bool:
        """Give a claimed wait back (claimable again at once); False if not held."""

    @abstractmethod
    def complete_claim(self, workflow_id: str, wait_id: int, worker_id: str) -> bool:
        """Delete a claimed wait that needs no firing; False if not held by ``worker_id``."""

    @abstractmethod
    def next_due_time(self) -> datetime | None:
        """When the next timer becomes claimable (resume_at, or lease end if claimed)."""

    @abstractmethod
    def hook_secret(self) -> str:
        """This store's key for createHook tokens: random, made when the store was
        first opened and kept in the store itself, so every process and every
        restart on the store derives the same hook URLs. (A host given
        ``hook_secret=`` uses that instead.)"""

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

    # -- one-shot forms of the session operations ----------------------------
    def put_script(self, name: str, source: str) -> ScriptVersion:
        with self.transaction() as tx:
            return tx.put_script(name, source)

    def get_script(self, name: str, hash: str | None = None) -> ScriptVersion | None:
        with self.transaction(write=False) as tx:
            return tx.get_script(name, hash)

    def list_scripts(self, name: str | None = None) -> list[ScriptVersion]:
        with self.transaction(write=False) as tx:
            return tx.list_scripts(name)

    def create_workflow(self, record: WorkflowRecord) -> tuple[WorkflowRecord, bool]:
        with self.transaction() as tx:
            return tx.create_workflow(record)

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        with self.transaction(write=False) as tx:
            return tx.get_workflow(workflow_id)

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
        with self.transaction(write=False) as tx:
            return tx.list_workflows(
                status=status,
                script_name=script_name,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                offset=offset,
            )

    def save_workflow(self, record: WorkflowRecord, expected_version: int | None = None) -> WorkflowRecord:
        with self.transaction() as tx:
            return tx.save_workflow(record, expected_version)

    def page_workflows(self, query: WorkflowPageQuery) -> list[WorkflowRecord]:
        with self.transaction(write=False) as tx:
            return tx.page_workflows(query)

    def count_workflows_by_status(self) -> dict[str, int]:
        with self.transaction(write=False) as tx:
            return tx.count_workflows_by_status()

    def append_history(
        self,
        workflow_id: str,
        kind: str,
        detail: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> HistoryEvent:
        with self.transaction() as tx:
            return tx.append_history(workflow_id, kind, detail, at=at)

    def list_history(self, workflow_id: str, *, after_seq: int = 0) -> list[HistoryEvent]:
        with self.transaction(write=False) as tx:
            return tx.list_history(workflow_id, after_seq=after_seq)

    def list_history_page(
        self, workflow_id: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[HistoryEvent]:
        with self.transaction(write=False) as tx:
            return tx.list_history_page(workflow_id, after_seq=after_seq, limit=limit)

    def read_journal_page(self, workflow_id: str, start: int, limit: int) -> list[tuple[int, str]]:
        with self.transaction(write=False) as tx:
            return tx.read_journal_page(workflow_id, start, limit)

    def replace_waits(self, workflow_id: str, waits: Sequence[PendingWait]) -> None:
        with self.transaction() as tx:
            tx.replace_waits(workflow_id, waits)

    def list_waits(self, workflow_id: str) -> list[PendingWait]:
        with self.transaction(write=False) as tx:
            return tx.list_waits(workflow_id)

    def enqueue_event(self, workflow_id: str, name: str, payload_json: str) -> int:
        with self.transaction() as tx:
            return tx.enqueue_event(workflow_id, name, payload_json)

    def get_event(self, event_id: int) -> InboxEvent | None:
        with self.transaction(write=False) as tx:
            return tx.get_event(event_id)

    def pending_events(self, workflow_id: str, names: Iterable[str] | None = None) -> list[InboxEvent]:
        with self.transaction(write=False) as tx:
            return tx.pending_events(workflow_id, names)

    def mark_event_delivered(self, event_id: int, wait_id: int) -> InboxEvent:
        with self.transaction() as tx:
            return tx.mark_event_delivered(event_id, wait_id)

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
        with self.transaction() as tx:
            return tx.put_token(
                token_hash,
                workflow_id,
                wait_id,
                expires_at=expires_at,
                kind=kind,
                metadata=metadata,
            )

    def get_token(self, token_hash: str) -> TokenRecord | None:
        with self.transaction(write=False) as tx:
            return tx.get_token(token_hash)

    def consume_token(self, token_hash: str, *, now: datetime | None = None) -> TokenRecord:
        with self.transaction() as tx:
            return tx.consume_token(token_hash, now=now)

    def delete_workflows(self, workflow_ids: Sequence[str]) -> list[str]:
        with self.transaction() as tx:
            return tx.delete_workflows(workflow_ids)

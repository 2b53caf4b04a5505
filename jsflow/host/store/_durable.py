"""Store operations of the instance driver: journal rows, fencing, requirements,
recovery bookkeeping, stranded events and idempotent events.

Why these exist (each keeps a promise of the host):

- journal rows: a step completion appends one row instead of rewriting the
  whole state, so host time per step stays flat as a journal grows. The
  ``workflows.state`` column keeps a small header (the state without the
  rows); ``seq`` is the entry's index in the run's journal.
- ``bump_workflow``: the version check of a journal write without rewriting
  the header: a worker that lost the instance (its version moved) cannot add
  a row, because the bump and the insert share one transaction.
- requirements: the step and suspend names an instance needs; workers that
  lack one never claim it (``capabilities`` filters), so a process started
  without the app leaves the instance alone.
- recoveries: how often recovery of an instance was attempted since it last
  advanced cleanly; the host faults an instance whose recovery keeps failing.
- ``list_stale`` orders by last update: a recovery attempt updates the row,
  so every stale instance gets its turn whatever else is stale.
- ``stranded_workflows``: suspended instances holding a buffered event that a
  pending ``waitForEvent`` listens for (a sender died between storing and
  delivering).
- ``enqueue_event_once``: one stored event per (instance, idempotency key).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from ._records import WorkflowRecord

Capabilities = Collection[str] | None


class DurableSession(ABC):
    """The driver's per-transaction operations (mixed into ``StoreSession``)."""

    @abstractmethod
    def append_journal(self, workflow_id: str, seq: int, entry_json: str) -> None:
        """Store journal entry number ``seq`` of the instance's current run."""

    @abstractmethod
    def append_journal_checked(
        self, workflow_id: str, expected_version: int, seq: int, entry_json: str
    ) -> None:
        """``append_journal`` in one statement, only while the instance is still at
        ``expected_version`` (the fence: whoever takes an instance over bumps its
        version first); ``ConcurrencyError`` otherwise."""

    @abstractmethod
    def retarget_token(self, token_hash: str, wait_id: int) -> None:
        """Point an unused token at another wait of its instance (a createHook
        waited on again after its first wait lost a race)."""

    @abstractmethod
    def mark_faulted(self, workflow_id: str, expected_version: int, error_json: str) -> bool:
        """Set status "faulted" and the error with one minimal UPDATE (version-checked,
        nothing else touched): the last-resort write when a richer save failed.
        False if the version moved."""

    @abstractmethod
    def read_journal(self, workflow_id: str, start: int = 0) -> list[str]:
        """Entries with ``seq >= start``, in order (JSON texts)."""

    @abstractmethod
    def trim_journal(self, workflow_id: str, keep: int) -> None:
        """Delete entries with ``seq >= keep`` (a retry, a continue-as-new)."""

    @abstractmethod
    def bump_workflow(self, workflow_id: str, expected_version: int) -> int:
        """Advance the version and ``updated_at`` if the version is still
        ``expected_version``; the new version, else ``ConcurrencyError``."""

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

    @abstractmethod
    def list_stale(
        self, before: datetime, limit: int, capabilities: Capabilities = None
    ) -> list[WorkflowRecord]:
        """ "running" instances last updated before ``before``, least recently
        updated first, that a process with ``capabilities`` can run (None: any)."""

    @abstractmethod
    def stranded_workflows(
        self, before: datetime, limit: int, capabilities: Capabilities = None
    ) -> list[str]:
        """Suspended instances with an undelivered event received before
        ``before`` whose name a pending event wait lists; oldest event first."""

    @abstractmethod
    def enqueue_event_once(
        self, workflow_id: str, name: str, payload_json: str, idempotency_key: str
    ) -> tuple[int, bool]:
        """Store the event unless one with this key exists for the instance:
        ``(event_id, created)``; the existing event's id when not created."""


class DurableOneShots:
    """One-shot forms for ``Store`` (each in its own short transaction)."""

    def transaction(self, *, write: bool = True) -> AbstractContextManager[Any]:  # pragma: no cover
        raise NotImplementedError

    def append_journal(self, workflow_id: str, seq: int, entry_json: str) -> None:
        with self.transaction() as tx:
            tx.append_journal(workflow_id, seq, entry_json)

    def append_journal_checked(
        self, workflow_id: str, expected_version: int, seq: int, entry_json: str
    ) -> None:
        with self.transaction() as tx:
            tx.append_journal_checked(workflow_id, expected_version, seq, entry_json)

    def retarget_token(self, token_hash: str, wait_id: int) -> None:
        with self.transaction() as tx:
            tx.retarget_token(token_hash, wait_id)

    def mark_faulted(self, workflow_id: str, expected_version: int, error_json: str) -> bool:
        with self.transaction() as tx:
            return tx.mark_faulted(workflow_id, expected_version, error_json)  # type: ignore[no-any-return]

    def trim_journal(self, workflow_id: str, keep: int) -> None:
        with self.transaction() as tx:
            tx.trim_journal(workflow_id, keep)

    def bump_workflow(self, workflow_id: str, expected_version: int) -> int:
        with self.transaction() as tx:
            return tx.bump_workflow(workflow_id, expected_version)  # type: ignore[no-any-return]

    def set_requirements(self, workflow_id: str, names: Iterable[str]) -> None:
        with self.transaction() as tx:
            tx.set_requirements(workflow_id, names)

    def note_recovery(self, workflow_id: str) -> int:
        with self.transaction() as tx:
            return tx.note_recovery(workflow_id)  # type: ignore[no-any-return]

    def enqueue_event_once(
        self, workflow_id: str, name: str, payload_json: str, idempotency_key: str
    ) -> tuple[int, bool]:
        with self.transaction() as tx:
            return tx.enqueue_event_once(workflow_id, name, payload_json, idempotency_key)  # type: ignore[no-any-return]

    def read_journal(self, workflow_id: str, start: int = 0) -> list[str]:
        with self.transaction(write=False) as tx:
            return tx.read_journal(workflow_id, start)  # type: ignore[no-any-return]

    def get_requirements(self, workflow_id: str) -> list[str]:
        with self.transaction(write=False) as tx:
            return tx.get_requirements(workflow_id)  # type: ignore[no-any-return]

    def list_stale(
        self, before: datetime, limit: int, capabilities: Capabilities = None
    ) -> list[WorkflowRecord]:
        with self.transaction(write=False) as tx:
            return tx.list_stale(before, limit, capabilities)  # type: ignore[no-any-return]

    def stranded_workflows(
        self, before: datetime, limit: int, capabilities: Capabilities = None
    ) -> list[str]:
        with self.transaction(write=False) as tx:
            return tx.stranded_workflows(before, limit, capabilities)  # type: ignore[no-any-return]

    def recovery_attempts(self, workflow_id: str) -> int:
        with self.transaction(write=False) as tx:
            return tx.recovery_attempts(workflow_id)  # type: ignore[no-any-return]

    def clear_recoveries(self, workflow_id: str) -> None:
        with self.transaction() as tx:
            tx.clear_recoveries(workflow_id)

"""The memory store's form of the driver's operations (see ``_durable``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ._changes import workflow_key
from ._codec import check_json_text, normalize_time, same_request
from ._errors import ConcurrencyError, IdempotencyKeyConflictError
from ._records import InboxEvent, WorkflowRecord


@dataclass(slots=True)
class DurableData:
    journal: dict[str, tuple[str, ...]] = field(default_factory=dict)
    requirements: dict[str, tuple[str, ...]] = field(default_factory=dict)
    recoveries: dict[str, int] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], int] = field(default_factory=dict)

    def snapshot(self) -> DurableData:
        return DurableData(
            dict(self.journal), dict(self.requirements), dict(self.recoveries), dict(self.idempotency)
        )


def runnable(data: DurableData, workflow_id: str, capabilities: Collection[str] | None) -> bool:
    if capabilities is None:
        return True
    return set(data.requirements.get(workflow_id, ())) <= set(capabilities)


class MemoryDurableSession:
    """Mixin for the memory session: needs ``_d()``, ``_now()``, ``_require()`` and ``changed``."""

    changed: set[str]

    def _d(self) -> Any:  # pragma: no cover - provided by the session
        raise NotImplementedError

    def _now(self) -> datetime:  # pragma: no cover
        raise NotImplementedError

    def _require(self, workflow_id: str) -> WorkflowRecord:  # pragma: no cover
        raise NotImplementedError

    def _durable(self) -> DurableData:
        data: DurableData = self._d().durable
        return data

    def append_journal(self, workflow_id: str, seq: int, entry_json: str) -> None:
        self._require(workflow_id)
        check_json_text(entry_json, "entry_json")
        rows = self._durable().journal.get(workflow_id, ())
        if seq != len(rows):
            raise ValueError(f"journal entry {seq} of {workflow_id!r} is out of order (have {len(rows)})")
        self._durable().journal[workflow_id] = (*rows, entry_json)

    def append_journal_checked(
        self, workflow_id: str, expected_version: int, seq: int, entry_json: str
    ) -> None:
        current = self._require(workflow_id)
        if current.version != expected_version:
            raise ConcurrencyError(workflow_id, expected_version, current.version)
        self.append_journal(workflow_id, seq, entry_json)

    def retarget_token(self, token_hash: str, wait_id: int) -> None:
        tokens = self._d().tokens
        record = tokens.get(token_hash)
        if record is not None and record.used_at is None:
            tokens[token_hash] = replace(record, wait_id=wait_id)

    def mark_faulted(self, workflow_id: str, expected_version: int, error_json: str) -> bool:
        current = self._d().workflows.get(workflow_id)
        if current is None or current.version != expected_version:
            return False
        self._d().workflows[workflow_id] = replace(
            current,
            status="faulted",
            error_json=error_json,
            version=expected_version + 1,
            updated_at=self._now(),
        )
        return True

    def read_journal(self, workflow_id: str, start: int = 0) -> list[str]:
        return list(self._durable().journal.get(workflow_id, ())[max(start, 0) :])

    def trim_journal(self, workflow_id: str, keep: int) -> None:
        rows = self._durable().journal.get(workflow_id, ())
        self._durable().journal[workflow_id] = rows[: max(keep, 0)]

    def bump_workflow(self, workflow_id: str, expected_version: int) -> int:
        current = self._require(workflow_id)
        if current.version != expected_version:
            raise ConcurrencyError(workflow_id, expected_version, current.version)
        self._d().workflows[workflow_id] = replace(
            current, version=expected_version + 1, updated_at=self._now()
        )
        return expected_version + 1

    def bump_and_get(self, workflow_id: str, expected_version: int) -> WorkflowRecord:
        """``bump_workflow``, returning the re-stamped record (a stale-run claim)."""
        self.bump_workflow(workflow_id, expected_version)
        record: WorkflowRecord = self._d().workflows[workflow_id]
        return record

    def set_requirements(self, workflow_id: str, names: Iterable[str]) -> None:
        self._require(workflow_id)
        self._durable().requirements[workflow_id] = tuple(sorted(set(names)))

    def get_requirements(self, workflow_id: str) -> list[str]:
        return list(self._durable().requirements.get(workflow_id, ()))

    def note_recovery(self, workflow_id: str) -> int:
        count = self._durable().recoveries.get(workflow_id, 0) + 1
        self._durable().recoveries[workflow_id] = count
        return count

    def recovery_attempts(self, workflow_id: str) -> int:
        return self._durable().recoveries.get(workflow_id, 0)

    def clear_recoveries(self, workflow_id: str) -> None:
        self._durable().recoveries.pop(workflow_id, None)

    def list_stale(
        self, before: datetime, limit: int, capabilities: Collection[str] | None = None
    ) -> list[WorkflowRecord]:
        before = normalize_time(before)
        rows = [
            r
            for r in self._d().workflows.values()
            if r.status == "running"
            and r.updated_at < before
            and runnable(self._durable(), r.workflow_id, capabilities)
        ]
        rows.sort(key=lambda r: (r.updated_at, r.workflow_id))
        return rows[: max(limit, 0)]

    def stranded_workflows(
        self, before: datetime, limit: int, capabilities: Collection[str] | None = None
    ) -> list[str]:
        before = normalize_time(before)
        data = self._d()
        listening: dict[str, set[str]] = {}
        for (wid, _), row in data.waits.items():
            if row.wait.kind == "event" and row.wait.event_names:
                listening.setdefault(wid, set()).update(row.wait.event_names)
        found: dict[str, int] = {}
        for event in sorted(data.inbox.values(), key=lambda e: e.event_id):
            wid = event.workflow_id
            record = data.workflows.get(wid)
            if (
                event.delivered_at is None
                and event.received_at < before
                and record is not None
                and record.status == "suspended"
                and event.name in listening.get(wid, ())
                and runnable(self._durable(), wid, capabilities)
            ):
                found.setdefault(wid, event.event_id)
        return list(found)[: max(limit, 0)]

    def enqueue_event_once(
        self, workflow_id: str, name: str, payload_json: str, idempotency_key: str
    ) -> tuple[int, bool]:
        self._require(workflow_id)
        check_json_text(payload_json, "payload_json")
        keys = self._durable().idempotency
        existing = keys.get((workflow_id, idempotency_key))
        data = self._d()
        if existing is not None:
            first = data.inbox[existing]
            if not same_request(first.name, first.payload_json, name, payload_json):
                raise IdempotencyKeyConflictError(workflow_id, idempotency_key, existing)
            return existing, False
        event_id = data.next_id()
        data.inbox[event_id] = InboxEvent(event_id, workflow_id, name, payload_json, self._now())
        keys[(workflow_id, idempotency_key)] = event_id
        self.changed.add(workflow_key(workflow_id))
        return event_id, True

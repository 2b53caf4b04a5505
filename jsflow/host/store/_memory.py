"""In-memory store for unit tests and throwaway embedding.

Why it exists: host and worker tests should not need a database file, yet
must see exactly the semantics of the real stores; the shared contract suite
(tests/host/store_contract.py) holds it to that. One lock serializes
transactions; a transaction works on the live data after taking a shallow
snapshot, and puts the snapshot back if the block raises, so nothing is ever
half-written. Records are frozen, so shallow copies suffice.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from ._changes import TIMER_NOTIFY_HORIZON, TIMERS_KEY, workflow_key
from ._codec import (
    Clock,
    ascii_lower,
    check_json_text,
    check_token_hash,
    dump_json,
    normalize_time,
    optional_time,
)
from ._errors import (
    ConcurrencyError,
    InboxError,
    StoreClosedError,
    StoreError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    UnknownScriptError,
    UnknownWorkflowError,
)
from ._memory_durable import DurableData, MemoryDurableSession, runnable
from ._records import (
    TERMINAL_STATUSES,
    HistoryEvent,
    InboxEvent,
    PendingWait,
    ScriptVersion,
    TimerClaim,
    TokenRecord,
    WorkflowPageQuery,
    WorkflowRecord,
    validate_wait,
    validate_workflow,
)
from ._schedules import MemoryScheduleSession, ScheduleData
from .backend import DEFAULT_LIST_LIMIT, Store, StoreSession


@dataclass(frozen=True, slots=True)
class _WaitRow:
    wait: PendingWait
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None


@dataclass(slots=True)
class _Data:
    scripts: dict[tuple[str, str], tuple[ScriptVersion, int]] = field(default_factory=dict)
    workflows: dict[str, WorkflowRecord] = field(default_factory=dict)
    history: dict[str, tuple[HistoryEvent, ...]] = field(default_factory=dict)
    waits: dict[tuple[str, int], _WaitRow] = field(default_factory=dict)
    inbox: dict[int, InboxEvent] = field(default_factory=dict)
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    counter: int = 0
    durable: DurableData = field(default_factory=DurableData)
    schedules: ScheduleData = field(default_factory=ScheduleData)

    def snapshot(self) -> _Data:
        return _Data(
            dict(self.scripts),
            dict(self.workflows),
            dict(self.history),
            dict(self.waits),
            dict(self.inbox),
            dict(self.tokens),
            self.counter,
            self.durable.snapshot(),
            self.schedules.snapshot(),
        )

    def next_id(self) -> int:
        self.counter += 1
        return self.counter


class MemoryStore(Store):
    """A thread-safe store that lives in this process only."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._data = _Data()
        self._closed = False
        self._hook_secret = secrets.token_hex(32)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[StoreSession]:
        if self._closed:
            raise StoreClosedError("store is closed")
        if getattr(self._local, "active", False):
            raise StoreError("transactions do not nest: use the open transaction's session")
        with self._lock:
            self._local.active = True
            saved = self._data.snapshot()
            session = _MemorySession(self, self._data)
            try:
                yield session
            except BaseException:
                self._data = saved
                raise
            finally:
                session.done = True
                self._local.active = False
        if session.changed:
            self.notify(*session.changed)

    def claim_due_timers(
        self,
        now: datetime,
        limit: int,
        worker_id: str,
        lease_seconds: float,
        capabilities: Collection[str] | None = None,
    ) -> list[TimerClaim]:
        now = normalize_time(now)
        lease_end = normalize_time(now + timedelta(seconds=lease_seconds))
        with self.transaction():
            due = [
                (key, row)
                for key, row in self._data.waits.items()
                if row.wait.resume_at is not None
                and row.wait.resume_at <= now
                and (row.claimed_by is None or (row.claim_expires_at or now) <= now)
                and runnable(self._data.durable, key[0], capabilities)
            ]
            due.sort(key=lambda item: (item[1].wait.resume_at, item[0]))
            claims = []
            for key, row in due[: max(limit, 0)]:
                self._data.waits[key] = replace(row, claimed_by=worker_id, claim_expires_at=lease_end)
                claims.append(TimerClaim(key[0], row.wait, worker_id, lease_end))
            return claims

    def append_journal_checked(
        self, workflow_id: str, expected_version: int, seq: int, entry_json: str
    ) -> None:
        with self.transaction() as tx:
            cast(_MemorySession, tx).append_journal_checked(workflow_id, expected_version, seq, entry_json)

    def claim_stale_runs(
        self, updated_before: datetime, limit: int, capabilities: Collection[str] | None = None
    ) -> list[WorkflowRecord]:
        with self.transaction() as tx:
            session = cast(_MemorySession, tx)
            return [
                session.bump_and_get(record.workflow_id, record.version)
                for record in session.list_stale(updated_before, limit, capabilities)
            ]

    def complete_claim(self, workflow_id: str, wait_id: int, worker_id: str) -> bool:
        with self.transaction():
            row = self._data.waits.get((workflow_id, wait_id))
            if row is None or row.claimed_by != worker_id:
                return False
            del self._data.waits[(workflow_id, wait_id)]
            return True

    def next_due_time(self) -> datetime | None:
        with self.transaction(write=False):
            times = []
            for row in self._data.waits.values():
                if row.wait.resume_at is None:
                    continue
                due = row.wait.resume_at
                if row.claimed_by is not None and row.claim_expires_at is not None:
                    due = max(due, row.claim_expires_at)
                times.append(due)
            return min(times, default=None)

    def hook_secret(self) -> str:
        if self._closed:
            raise StoreClosedError("store is closed")
        return self._hook_secret

    def close(self) -> None:
        self._closed = True


class _MemorySession(MemoryDurableSession, MemoryScheduleSession, StoreSession):
    def __init__(self, store: MemoryStore, data: _Data) -> None:
        self._store = store
        self._data = data
        self.done = False
        self.changed: set[str] = set()  # change keys announced after commit

    def _d(self) -> _Data:
        if self.done:
            raise StoreClosedError("transaction already finished")
        return self._data

    def _now(self) -> datetime:
        return normalize_time(self._store.clock())

    def _require(self, workflow_id: str) -> WorkflowRecord:
        record = self._d().workflows.get(workflow_id)
        if record is None:
            raise UnknownWorkflowError(workflow_id)
        return record

    # -- scripts -------------------------------------------------------------
    def put_script(self, name: str, source: str) -> ScriptVersion:
        if not isinstance(name, str) or not name or not isinstance(source, str):
            raise ValueError("script name must be a non-empty string and source a string")
        data = self._d()
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        existing = data.scripts.get((name, digest))
        version = existing[0] if existing else ScriptVersion(name, digest, source, self._now())
        data.scripts[(name, digest)] = (version, data.next_id())
        return version

    def get_script(self, name: str, hash: str | None = None) -> ScriptVersion | None:
        data = self._d()
        if hash is not None:
            found = data.scripts.get((name, hash))
            return found[0] if found else None
        versions = [v for (n, _), v in data.scripts.items() if n == name]
        return max(versions, key=lambda v: v[1])[0] if versions else None

    def list_scripts(self, name: str | None = None) -> list[ScriptVersion]:
        rows = [v for (n, _), v in self._d().scripts.items() if name is None or n == name]
        rows.sort(key=lambda v: (v[0].name, v[1]))
        return [v[0] for v in rows]

    # -- workflows -----------------------------------------------------------
    def create_workflow(self, record: WorkflowRecord) -> tuple[WorkflowRecord, bool]:
        record = validate_workflow(record)
        data = self._d()
        existing = data.workflows.get(record.workflow_id)
        if existing is not None:
            return existing, False
        if (record.script_name, record.script_hash) not in data.scripts:
            raise UnknownScriptError(record.script_name, record.script_hash)
        stored = replace(
            record,
            created_at=normalize_time(record.created_at),
            updated_at=normalize_time(record.updated_at),
            version=1,
        )
        data.workflows[record.workflow_id] = stored
        return stored, True

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        return self._d().workflows.get(workflow_id)

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
        statuses = {status} if isinstance(status, str) else None if status is None else set(status)
        after, before = optional_time(created_after), optional_time(created_before)
        rows = [
            r
            for r in self._d().workflows.values()
            if (statuses is None or r.status in statuses)
            and (script_name is None or r.script_name == script_name)
            and (after is None or r.created_at >= after)
            and (before is None or r.created_at < before)
        ]
        rows.sort(key=lambda r: (r.created_at, r.workflow_id))
        return rows[max(offset, 0) :][: max(limit, 0)]

    def page_workflows(self, query: WorkflowPageQuery) -> list[WorkflowRecord]:
        data = self._d()
        after, before = optional_time(query.created_after), optional_time(query.created_before)
        needle = ascii_lower(query.id_contains) if query.id_contains else None
        kinds = None if query.wait_kinds is None else set(query.wait_kinds)
        waiting = None
        if kinds is not None:
            waiting = {wid for (wid, _), row in data.waits.items() if row.wait.kind in kinds}
        key = None if query.before is None else (normalize_time(query.before[0]), query.before[1])
        rows = [
            r
            for r in data.workflows.values()
            if (query.statuses is None or r.status in query.statuses)
            and (query.script_name is None or r.script_name == query.script_name)
            and (waiting is None or r.workflow_id in waiting)
            and (after is None or r.created_at >= after)
            and (before is None or r.created_at < before)
            and (needle is None or needle in ascii_lower(r.workflow_id))
            and (key is None or (r.created_at, r.workflow_id) < key)
        ]
        rows.sort(key=lambda r: (r.created_at, r.workflow_id), reverse=True)
        return rows[: max(int(query.limit), 0)]

    def count_workflows_by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self._d().workflows.values():
            counts[record.status] = counts.get(record.status, 0) + 1
        return counts

    def save_workflow(self, record: WorkflowRecord, expected_version: int | None = None) -> WorkflowRecord:
        record = validate_workflow(record)
        expected = record.version if expected_version is None else expected_version
        data = self._d()
        current = self._require(record.workflow_id)
        if current.version != expected:
            raise ConcurrencyError(record.workflow_id, expected, current.version)
        if (current.script_name, record.script_hash) not in data.scripts:
            raise UnknownScriptError(current.script_name, record.script_hash)
        stored = replace(
            record,
            script_name=current.script_name,
            created_at=current.created_at,
            updated_at=self._now(),
            version=expected + 1,
        )
        data.workflows[record.workflow_id] = stored
        if stored.status != "running":
            self.changed.add(workflow_key(record.workflow_id))
        return stored

    # -- history -------------------------------------------------------------
    def append_history(
        self,
        workflow_id: str,
        kind: str,
        detail: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> HistoryEvent:
        self._require(workflow_id)
        detail = dict(detail or {})
        dump_json(detail)  # same refusal of non-JSON values as the SQL stores
        events = self._data.history.get(workflow_id, ())
        event = HistoryEvent(
            workflow_id,
            len(events) + 1,
            self._now() if at is None else normalize_time(at),
            kind,
            detail,
        )
        self._data.history[workflow_id] = (*events, event)
        return event

    def list_history(self, workflow_id: str, *, after_seq: int = 0) -> list[HistoryEvent]:
        return [e for e in self._d().history.get(workflow_id, ()) if e.seq > after_seq]

    def list_history_page(
        self, workflow_id: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[HistoryEvent]:
        return [e for e in self._d().history.get(workflow_id, ()) if e.seq > after_seq][: max(int(limit), 0)]

    def read_journal_page(self, workflow_id: str, start: int, limit: int) -> list[tuple[int, str]]:
        rows = self._durable().journal.get(workflow_id, ())
        first = max(start, 0)
        return list(enumerate(rows[first : first + max(int(limit), 0)], start=first))

    # -- waits ---------------------------------------------------------------
    def replace_waits(self, workflow_id: str, waits: Sequence[PendingWait]) -> None:
        self._require(workflow_id)
        checked = [validate_wait(w) for w in waits]
        if len({w.wait_id for w in checked}) != len(checked):
            raise ValueError("duplicate wait_id in replace_waits")
        data = self._data
        for key in [k for k in data.waits if k[0] == workflow_id]:
            del data.waits[key]
        for wait in checked:
            wait = replace(
                wait,
                resume_at=optional_time(wait.resume_at),
                event_names=None if wait.event_names is None else tuple(wait.event_names),
            )
            data.waits[(workflow_id, wait.wait_id)] = _WaitRow(wait)
            if wait.resume_at is not None and wait.resume_at <= self._now() + TIMER_NOTIFY_HORIZON:
                self.changed.add(TIMERS_KEY)

    def list_waits(self, workflow_id: str) -> list[PendingWait]:
        rows = [(k[1], r.wait) for k, r in self._d().waits.items() if k[0] == workflow_id]
        return [wait for _, wait in sorted(rows, key=lambda item: item[0])]

    # -- inbox ---------------------------------------------------------------
    def enqueue_event(self, workflow_id: str, name: str, payload_json: str) -> int:
        self._require(workflow_id)
        check_json_text(payload_json, "payload_json")
        event_id = self._data.next_id()
        self.changed.add(workflow_key(workflow_id))
        self._data.inbox[event_id] = InboxEvent(event_id, workflow_id, name, payload_json, self._now())
        return event_id

    def get_event(self, event_id: int) -> InboxEvent | None:
        return self._d().inbox.get(event_id)

    def pending_events(self, workflow_id: str, names: Iterable[str] | None = None) -> list[InboxEvent]:
        wanted = None if names is None else set(names)
        rows = [
            e
            for e in self._d().inbox.values()
            if e.workflow_id == workflow_id
            and e.delivered_at is None
            and (wanted is None or e.name in wanted)
        ]
        return sorted(rows, key=lambda e: e.event_id)

    def mark_event_delivered(self, event_id: int, wait_id: int) -> InboxEvent:
        event = self._d().inbox.get(event_id)
        if event is None:
            raise InboxError(event_id, "unknown")
        if event.delivered_at is not None:
            raise InboxError(event_id, "delivered")
        event = replace(event, delivered_at=self._now(), wait_id=wait_id)
        self._data.inbox[event_id] = event
        return event

    # -- tokens --------------------------------------------------------------
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
        check_token_hash(token_hash)
        self._require(workflow_id)
        if token_hash in self._data.tokens:
            raise StoreError("a token with this hash already exists")
        metadata = dict(metadata or {})
        dump_json(metadata)
        record = TokenRecord(
            token_hash,
            workflow_id,
            wait_id,
            kind,
            self._now(),
            optional_time(expires_at),
            None,
            metadata,
        )
        self._data.tokens[token_hash] = record
        return record

    def get_token(self, token_hash: str) -> TokenRecord | None:
        return self._d().tokens.get(token_hash)

    def consume_token(self, token_hash: str, *, now: datetime | None = None) -> TokenRecord:
        record = self._d().tokens.get(token_hash)
        if record is None:
            raise TokenNotFoundError(token_hash)
        now = self._now() if now is None else normalize_time(now)
        if record.used_at is not None:
            raise TokenUsedError(token_hash, record.workflow_id, record.wait_id, record.used_at)
        if record.expires_at is not None and now >= record.expires_at:
            raise TokenExpiredError(token_hash, record.workflow_id, record.wait_id, record.expires_at)
        record = replace(record, used_at=now)
        self._data.tokens[token_hash] = record
        return record

    # -- retention -----------------------------------------------------------
    def delete_workflows(self, workflow_ids: Sequence[str]) -> list[str]:
        data = self._d()
        deleted = [
            wid
            for wid in dict.fromkeys(workflow_ids)
            if wid in data.workflows and data.workflows[wid].status in TERMINAL_STATUSES
        ]
        gone = set(deleted)
        for wid in deleted:
            del data.workflows[wid]
            data.history.pop(wid, None)
        data.waits = {k: v for k, v in data.waits.items() if k[0] not in gone}
        data.inbox = {k: v for k, v in data.inbox.items() if v.workflow_id not in gone}
        data.tokens = {k: v for k, v in data.tokens.items() if v.workflow_id not in gone}
        durable = data.durable
        for wid in deleted:
            durable.journal.pop(wid, None)
            durable.requirements.pop(wid, None)
            durable.recoveries.pop(wid, None)
        durable.idempotency = {k: v for k, v in durable.idempotency.items() if k[0] not in gone}
        return deleted

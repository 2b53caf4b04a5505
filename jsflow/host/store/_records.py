"""Plain records the store reads and writes.

Why frozen dataclasses: records cross threads and are kept by the memory
store as-is, so they must not change under anyone's feet; change one with
``dataclasses.replace``. Timestamps are aware UTC datetimes, kept to
millisecond precision by every backend. JSON payloads the store does not
interpret (engine state, results, errors, event payloads, wait arguments) are
strings; small structured values the host reads (metadata, history details)
are dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ._codec import check_json_text, check_metadata, check_token_hash, to_ms, utc_now


class InstanceStatus(StrEnum):
    """Lifecycle status of a workflow instance (``WorkflowRecord.status`` holds the string)."""

    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAULTED = "faulted"
    CANCELLED = "cancelled"
    #: a listing's stand-in for a stored row that cannot be decoded (never stored
    #: as a status): ``error`` says what is wrong, the rest of the listing works
    CORRUPT = "corrupt"

    @staticmethod
    def is_terminal(status: str) -> bool:
        """True for statuses after which the instance never runs again."""
        return status in TERMINAL_STATUSES


#: the statuses an instance can be stored with
WORKFLOW_STATUSES: frozenset[str] = frozenset(
    s.value for s in InstanceStatus if s is not InstanceStatus.CORRUPT
)
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "faulted", "cancelled"})


@dataclass(frozen=True, slots=True)
class ScriptVersion:
    """One content-addressed version of a named script (``hash`` = sha256 hex of the source)."""

    name: str
    hash: str
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """One workflow instance. ``state`` is the engine's serialized state, opaque to the store.

    ``version`` is the optimistic-concurrency counter: 1 after create, +1 per save.
    """

    workflow_id: str
    script_name: str
    script_hash: str
    entry_point: str = "main"
    status: str = InstanceStatus.RUNNING.value
    state: str | None = None
    result_json: str | None = None
    error_json: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    version: int = 0
    cancel_reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One lifecycle event of an instance's timeline; ``seq`` counts from 1 per instance."""

    workflow_id: str
    seq: int
    at: datetime
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PendingWait:
    """A wait the instance is suspended on (mirrors the engine's ``Wait``).

    ``kind`` is the host's classification (e.g. "sleep", "event", "retry",
    "suspend", "hook"); ``token_hash`` links a resume token; waits with a
    ``resume_at`` are timers that ``claim_due_timers`` hands out.
    """

    wait_id: int
    function_name: str
    kind: str = "wait"
    resume_at: datetime | None = None
    event_names: tuple[str, ...] | None = None
    is_retry: bool = False
    token_hash: str | None = None
    arguments_json: str = "[]"
    #: JSON object: what the engine says about the wait beyond the columns above
    #: (location, description, match, count, received, distinct, schema, default);
    #: the host reads it back as an engine ``Wait`` to decide which wait an event reaches
    detail_json: str | None = None


@dataclass(frozen=True, slots=True)
class TimerClaim:
    """A due wait leased to ``worker_id`` until ``lease_expires_at``."""

    workflow_id: str
    wait: PendingWait
    worker_id: str
    lease_expires_at: datetime


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """An external event, persisted on arrival; ``delivered_at``/``wait_id`` set on delivery."""

    event_id: int
    workflow_id: str
    name: str
    payload_json: str
    received_at: datetime
    delivered_at: datetime | None = None
    wait_id: int | None = None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A resume token, known only by its sha256 hash, tied to one wait of one instance."""

    token_hash: str
    workflow_id: str
    wait_id: int
    kind: str
    created_at: datetime
    expires_at: datetime | None
    used_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def validate_workflow(record: WorkflowRecord) -> WorkflowRecord:
    """Check a record before it is written; returns it with metadata copied."""
    metadata = check_workflow(record)
    return replace(record, status=str(record.status), metadata=metadata)


def check_workflow(record: WorkflowRecord) -> dict[str, str]:
    """The checks of ``validate_workflow`` without the copy (for stores that
    serialize the record at once); returns the checked metadata."""
    if not isinstance(record, WorkflowRecord):
        raise TypeError(f"expected a WorkflowRecord, got {type(record).__name__}")
    for name in ("workflow_id", "script_name", "script_hash", "entry_point"):
        value = getattr(record, name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"WorkflowRecord.{name} must be a non-empty string")
    if record.status not in WORKFLOW_STATUSES:
        raise ValueError(f"unknown workflow status {record.status!r}")
    if record.state is not None and not isinstance(record.state, str):
        raise TypeError("WorkflowRecord.state must be a string (the serialized engine state)")
    check_json_text(record.result_json, "result_json")
    check_json_text(record.error_json, "error_json")
    to_ms(record.created_at)
    to_ms(record.updated_at)
    return check_metadata(record.metadata)


def validate_wait(wait: PendingWait) -> PendingWait:
    """Check a wait before it is written."""
    if not isinstance(wait, PendingWait):
        raise TypeError(f"expected a PendingWait, got {type(wait).__name__}")
    if isinstance(wait.wait_id, bool) or not isinstance(wait.wait_id, int):
        raise TypeError("PendingWait.wait_id must be an int")
    if wait.resume_at is not None:
        to_ms(wait.resume_at)
    if wait.event_names is not None and not all(isinstance(n, str) for n in wait.event_names):
        raise TypeError("PendingWait.event_names must be strings")
    if wait.token_hash is not None:
        check_token_hash(wait.token_hash)
    check_json_text(wait.arguments_json, "arguments_json")
    if wait.detail_json is not None:
        check_json_text(wait.detail_json, "detail_json")
    return wait


@dataclass(frozen=True, slots=True)
class WorkflowPageQuery:
    """One page of instances, newest first (``created_at`` desc, ``workflow_id`` desc).

    Why keyset paging: an offset re-reads every skipped row and shifts when
    instances are created between pages; ``before`` (the last row's
    ``(created_at, workflow_id)``) is an index seek and stable. ``statuses`` /
    ``wait_kinds`` of None mean "any"; an empty tuple matches nothing.
    ``wait_kinds`` keeps instances with at least one pending wait of one of
    those ``PendingWait.kind`` values. ``id_contains`` is an ASCII
    case-insensitive substring of the workflow id. ``created_after`` is
    inclusive, ``created_before`` exclusive.
    """

    statuses: tuple[str, ...] | None = None
    script_name: str | None = None
    wait_kinds: tuple[str, ...] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    id_contains: str | None = None
    before: tuple[datetime, str] | None = None
    limit: int = 50

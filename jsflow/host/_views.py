"""What the host hands back to callers: read-only views of stored records.

Why separate from the store records: the store keeps JSON text and internal
bookkeeping (versions, token hashes); callers (the CLI, an HTTP API, tests)
want parsed values and only the facts that mean something to them. Views are
frozen dataclasses so they can be shared across threads and cached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from jsflow import JournalEntry, Wait, ms_to_datetime

from ._child_events import CHILD_START
from ._hooks import HOOK_CREATE, HOOK_WAIT
from .store import (
    CorruptRecordError,
    HistoryEvent,
    InstanceStatus,
    PendingWait,
    StoreSession,
    WorkflowRecord,
)

#: metadata keys the host itself sets on every instance
WORKFLOW_ID_KEY = "workflow_id"


@dataclass(frozen=True, slots=True)
class WaitInfo:
    """One pending wait of an instance.

    ``kind`` is the host's classification, a ``WaitKind`` value: "sleep",
    "event", "retry", "continue" (a parked ``continueAsNew`` chain), "token"
    (a Python suspend function with resume-token hooks), "hook" (JS
    ``createHook``) or "suspend" (any other suspend function).
    ``has_token``/``token_expires_at``: the wait can be resumed with a token
    (the raw token is never stored, so it cannot be shown).
    """

    wait_id: int
    function_name: str
    kind: str
    resume_at: datetime | None = None
    event_names: tuple[str, ...] | None = None
    is_retry: bool = False
    arguments: list[Any] = field(default_factory=list)
    has_token: bool = False
    token_expires_at: datetime | None = None
    location: dict[str, int] | None = None
    description: str = ""
    count: int | None = None
    received: list[Any] | None = None
    match: dict[str, Any] | None = None
    distinct: str | None = None
    schema: Any = None
    has_default: bool = False

    def as_wait(self) -> Wait:
        """The engine's ``Wait`` for this row: ``accepts`` and ``check_payload`` decide
        whether an event reaches it, exactly as the bare engine's ``raise_event`` does."""
        return Wait(
            wait_id=self.wait_id,
            function_name=self.function_name,
            arguments=list(self.arguments),
            resume_at=self.resume_at,
            event_names=list(self.event_names) if self.event_names is not None else None,
            is_retry=self.is_retry,
            location=self.location,
            description=self.description,
            match=self.match,
            count=self.count,
            received=self.received,
            distinct=self.distinct,
            schema=self.schema,
            has_default=self.has_default,
            event_array=bool(self.event_names) and _array_form(self.arguments),
        )


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A resume token issued by the call that returned it.

    The raw token exists only here (and in ``before_suspend``): the store keeps
    its hash. ``kind`` is "token" (a Python suspend function with hooks) or
    "hook" (JS ``createHook``; ``url`` is where an external system posts to).
    ``workflow_id``: the instance whose wait it resumes."""

    wait_id: int
    function_name: str
    kind: str
    token: str
    expires_at: datetime | None
    url: str | None = None
    workflow_id: str = ""


@dataclass(frozen=True, slots=True)
class WorkflowInstance:
    """A workflow instance as callers see it.

    ``status`` is one of running, suspended, completed, faulted, cancelled
    (``InstanceStatus``). ``tokens``: resume tokens issued by the call that
    returned this view (empty on reads).
    ``value`` is the return value (completed); ``error`` a dict with
    ``type``, ``message`` and, for script errors, ``js_name``/``stack``
    (faulted). ``metadata`` always holds ``workflow_id``.
    """

    workflow_id: str
    script_name: str
    script_hash: str
    status: InstanceStatus
    value: Any = None
    error: dict[str, Any] | None = None
    waits: tuple[WaitInfo, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    cancel_reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    entry_point: str = "main"
    tokens: tuple[TokenInfo, ...] = ()

    @property
    def parent_id(self) -> str | None:
        """The instance that started this one with ``startWorkflow``, if any."""
        return self.metadata.get("parent_id")

    @property
    def is_finished(self) -> bool:
        """True once the instance can never run again."""
        return self.status in ("completed", "faulted", "cancelled")


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One line of an instance's timeline: a lifecycle event or a journal entry.

    ``source`` is "lifecycle" (started, suspended, event_received, ...) or
    "journal" (a step result, resume, event or timeout the script saw).
    """

    at: datetime
    source: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventReceipt:
    """What ``send_event`` did: the event is stored as ``event_id``; ``delivered``
    says whether a waiting ``waitForEvent`` received it now (else it is buffered
    and delivered, FIFO per name, when the workflow waits for it)."""

    event_id: int
    workflow_id: str
    name: str
    delivered: bool
    wait_id: int | None = None
    duplicate: bool = False  # an earlier send with the same idempotency key stored it

    @property
    def buffered(self) -> bool:
        """Stored and waiting for a ``waitForEvent`` that listens for it."""
        return not self.delivered


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """Result of replaying one instance's journal against a script source.

    ``ok`` is True when the journal replays without drift and the pending
    waits are the same calls as before. Otherwise ``message`` says what
    changed and, for journal drift, ``slot_index``/``expected_*``/
    ``encountered_*`` locate it (as in ``JournalCompatibilityError``).
    ``patches``: which ``patched()`` calls took the new path during the replay.
    """

    workflow_id: str
    script_name: str
    script_hash: str
    status: str
    ok: bool
    message: str = ""
    slot_index: int | None = None
    expected_type: str | None = None
    expected_name: str | None = None
    encountered_type: str | None = None
    encountered_name: str | None = None
    #: the names ``patched()`` returned true for during the replay (markers in the journal)
    patches: tuple[str, ...] = ()


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


#: internal names (``__j...``) never reach callers: what a script author wrote instead
_PUBLIC_NAMES = {HOOK_WAIT: "hook.wait", HOOK_CREATE: "createHook", CHILD_START: "startWorkflow"}


def public_name(name: str) -> str:
    """A function name as callers see it: built-ins' internal names replaced."""
    found = _PUBLIC_NAMES.get(name)
    if found is not None:
        return found
    return "built-in" if name.startswith("__j") else name


def _array_form(arguments: list[Any]) -> bool:
    return bool(arguments) and isinstance(arguments[0], list)


_DETAIL_SKIP = frozenset(("wait_id", "function_name", "arguments", "resume_at", "event_names", "is_retry"))


def wait_detail(wait: Wait) -> dict[str, Any]:
    """What a store row keeps of an engine ``Wait`` beyond its columns (``detail_json``)."""
    return {k: v for k, v in wait.to_dict().items() if k not in _DETAIL_SKIP and v not in (None, False)}


def wait_info(wait: PendingWait, token_expires_at: datetime | None = None) -> WaitInfo:
    detail = _loads(wait.detail_json) or {}
    if not isinstance(detail, dict):
        detail = {}
    location = detail.get("location")
    return WaitInfo(
        wait_id=wait.wait_id,
        function_name=public_name(wait.function_name),
        kind=wait.kind,
        resume_at=wait.resume_at,
        event_names=wait.event_names,
        is_retry=wait.is_retry,
        arguments=list(_loads(wait.arguments_json) or []),
        has_token=wait.token_hash is not None,
        token_expires_at=token_expires_at if wait.token_hash is not None else None,
        location=dict(location) if isinstance(location, dict) else None,
        description=str(detail.get("description") or ""),
        count=detail.get("count"),
        received=detail.get("received"),
        match=detail.get("match"),
        distinct=detail.get("distinct"),
        schema=detail.get("schema"),
        has_default=bool(detail.get("has_default")),
    )


def instance_view(record: WorkflowRecord, waits: list[PendingWait]) -> WorkflowInstance:
    """Build the caller's view; token expiry equals the token wait's ``resume_at``."""
    return WorkflowInstance(
        workflow_id=record.workflow_id,
        script_name=record.script_name,
        script_hash=record.script_hash,
        status=InstanceStatus(record.status),
        value=_loads(record.result_json),
        error=_loads(record.error_json),
        waits=tuple(wait_info(w, w.resume_at) for w in waits),
        created_at=record.created_at,
        updated_at=record.updated_at,
        cancel_reason=record.cancel_reason,
        metadata=dict(record.metadata),
        entry_point=record.entry_point,
    )


def listed_view(tx: StoreSession, record: WorkflowRecord) -> WorkflowInstance:
    """One item of a listing. A row the store could not decode comes as status
    "corrupt" with the error; so does an instance whose waits cannot be read.
    Either way the rest of the listing is shown."""
    if record.status == InstanceStatus.CORRUPT:
        return instance_view(record, [])
    try:
        waits = tx.list_waits(record.workflow_id)
    except CorruptRecordError as exc:
        error = {"type": "CorruptRecordError", "message": str(exc)}
        return instance_view(replace(record, status=InstanceStatus.CORRUPT, error_json=json.dumps(error)), [])
    return instance_view(record, waits)


def lifecycle_item(event: HistoryEvent) -> HistoryItem:
    return HistoryItem(at=event.at, source="lifecycle", kind=event.kind, detail=dict(event.detail))


def journal_item(entry: JournalEntry) -> HistoryItem:
    """A journal entry as a timeline line (the same shape ``history`` gives)."""
    detail: dict[str, Any] = {"slot": entry.slot, "name": public_name(entry.name)}
    if entry.type in ("step_error", "cancel") or (entry.type == "timeout" and entry.error is not None):
        detail["error"] = entry.error
    else:
        detail["result"] = entry.result
    if entry.event is not None:
        detail["event"] = entry.event
    return HistoryItem(ms_to_datetime(entry.at_ms), "journal", entry.type, detail)


#: lifecycle kinds that start an advance (they sort before same-time journal entries)
BEFORE_RUN = frozenset(
    {"started", "event_received", "retried", "upgraded", "cancel_requested", "cancel_delivered"}
)


def merge_timeline(
    lifecycle: list[HistoryItem], journal: list[HistoryItem], limit: int | None = None
) -> tuple[list[HistoryItem], int, int]:
    """The one history merge: two time-ordered lists into one, earlier first;
    on equal times a lifecycle event that starts an advance goes before the
    journal entries, others after. Returns the merged items (at most ``limit``)
    and how many of each list they took."""
    out: list[HistoryItem] = []
    i = j = 0
    while (limit is None or len(out) < limit) and (i < len(lifecycle) or j < len(journal)):
        if j >= len(journal) or (i < len(lifecycle) and _life_first(lifecycle[i], journal[j])):
            out.append(lifecycle[i])
            i += 1
        else:
            out.append(journal[j])
            j += 1
    return out, i, j


def _life_first(life: HistoryItem, entry: HistoryItem) -> bool:
    return life.at < entry.at or (life.at == entry.at and life.kind in BEFORE_RUN)

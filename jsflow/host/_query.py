"""Paged reads of instances and timelines, for the HTTP API, the web view and the CLI.

Why keyset paging with opaque cursors: a caller pages through thousands of
instances while new ones are being created; an offset would shift under it
and re-read every skipped row. The cursor carries the last row's sort key
(``created_at``, ``workflow_id``), so the next page is one index seek and
never repeats or skips a row. Cursors are opaque (base64url JSON with a kind
tag) so their shape can change without breaking callers; a cursor that does
not decode, or that belongs to another kind of listing, raises
``InvalidCursorError`` (a ``ValueError``), which an HTTP layer answers with 400.

``waiting_on`` takes the words of ``_kinds``: a category ("timer", "event",
"token", "suspend") or any wait kind ("sleep", "retry", "hook", ...).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jsflow import JournalEntry, datetime_to_ms, ms_to_datetime

from ._context import HostContext
from ._errors import CorruptStateError, InvalidCursorError, UnknownWorkflowError
from ._input import check_text
from ._kinds import kinds_for
from ._load import decode_header
from ._views import HistoryItem, WorkflowInstance, journal_item, lifecycle_item, listed_view, merge_timeline
from .store import InstanceStatus, WorkflowPageQuery

WORKFLOW_STATUSES = frozenset(s.value for s in InstanceStatus)
MAX_PAGE = 1000
_LIST_TAG = "w"
_HISTORY_TAG = "t"


@dataclass(frozen=True, slots=True)
class InstancePage:
    """One page of instances, newest first; pass ``next_cursor`` back for the
    next page (None: this was the last one)."""

    items: list[WorkflowInstance]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of an instance's timeline, oldest first; ``next_cursor`` as in
    ``InstancePage``."""

    items: list[HistoryItem]
    next_cursor: str | None


def encode_cursor(tag: str, payload: dict[str, Any]) -> str:
    text = json.dumps({"k": tag, **payload}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(tag: str, cursor: str) -> dict[str, Any]:
    """The payload of a cursor made by ``encode_cursor(tag, ...)``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursorError(cursor, "not a cursor this host made") from exc
    if not isinstance(data, dict) or data.get("k") != tag:
        raise InvalidCursorError(cursor, "not a cursor for this listing")
    return data


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}")
    return limit


def _statuses(status: str | list[str] | None) -> tuple[str, ...] | None:
    if status is None:
        return None
    values = (status,) if isinstance(status, str) else tuple(status)
    unknown = sorted(set(values) - WORKFLOW_STATUSES)
    if unknown:
        raise ValueError(f"unknown status {unknown[0]!r} (one of {', '.join(sorted(WORKFLOW_STATUSES))})")
    return values


def _wait_kinds(waiting_on: str | list[str] | None) -> tuple[str, ...] | None:
    if waiting_on is None:
        return None
    return tuple(k.value for k in kinds_for(waiting_on))


def _list_key(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    data = decode_cursor(_LIST_TAG, cursor)
    at, workflow_id = data.get("t"), data.get("id")
    if isinstance(at, bool) or not isinstance(at, int) or not isinstance(workflow_id, str):
        raise InvalidCursorError(cursor, "damaged cursor")
    try:
        return ms_to_datetime(at), workflow_id
    except (OverflowError, ValueError, OSError) as exc:
        raise InvalidCursorError(cursor, "damaged cursor") from exc


def list_page(
    ctx: HostContext,
    *,
    status: str | list[str] | None,
    script: str | None,
    waiting_on: str | list[str] | None,
    created_after: datetime | None,
    created_before: datetime | None,
    search: str | None,
    limit: int,
    cursor: str | None,
) -> InstancePage:
    """One page of instances newest first; fetches ``limit + 1`` rows to know
    whether another page exists."""
    limit = _check_limit(limit)
    check_text(search, "the search term")
    check_text(script, "the script name")
    query = WorkflowPageQuery(
        statuses=_statuses(status),
        script_name=script,
        wait_kinds=_wait_kinds(waiting_on),
        created_after=created_after,
        created_before=created_before,
        id_contains=search or None,
        before=_list_key(cursor),
        limit=limit + 1,
    )
    with ctx.store.transaction(write=False) as tx:
        records = tx.page_workflows(query)
        items = [listed_view(tx, r) for r in records[:limit]]
    next_cursor = None
    if len(records) > limit:
        last = records[limit - 1]
        key = {"t": datetime_to_ms(last.created_at), "id": last.workflow_id}
        next_cursor = encode_cursor(_LIST_TAG, key)
    return InstancePage(items, next_cursor)


def count_by_status(ctx: HostContext) -> dict[str, int]:
    """Instances per status, every status present (zero when none)."""
    counts = dict.fromkeys(sorted(WORKFLOW_STATUSES), 0)
    counts.update(ctx.store.read(lambda tx: tx.count_workflows_by_status()))
    return counts


def _history_cursor(workflow_id: str, cursor: str | None) -> tuple[int, int]:
    """(last lifecycle seq shown, journal entries shown) from a cursor."""
    if cursor is None:
        return 0, 0
    data = decode_cursor(_HISTORY_TAG, cursor)
    life, pos = data.get("l"), data.get("j")
    for value in (life, pos):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidCursorError(cursor, "damaged cursor")
    if data.get("id") != workflow_id:
        raise InvalidCursorError(cursor, "a cursor for another workflow")
    return life, pos  # type: ignore[return-value]


def _journal_slice(ctx: HostContext, tx: Any, record: Any, pos: int, count: int) -> list[HistoryItem]:
    """Up to ``count`` journal entries from position ``pos``: the few kept inline in
    the stored header first, then the journal rows (one bounded range read)."""
    header = decode_header(record)
    inline = list(header.journal)
    entries = inline[pos : pos + count]
    if len(entries) < count:
        start = max(pos, len(inline))
        for _seq, text in tx.read_journal_page(record.workflow_id, start, count - len(entries)):
            try:
                entries.append(JournalEntry.model_validate_json(text))
            except ValueError as exc:
                raise CorruptStateError(record.workflow_id, f"journal entry {_seq}: {exc}") from exc
    return [journal_item(e) for e in ctx.hooks.strip(entries)]


def history_page(ctx: HostContext, workflow_id: str, *, limit: int, cursor: str | None) -> HistoryPage:
    """One page of the merged timeline (oldest first), read as two bounded range
    reads (lifecycle events after a seq, journal entries from a position), so a
    later page of a 10,000-entry journal costs what the first one does.

    The cursor holds both positions; the timeline only grows at its end (a
    retry or continue-as-new trims the journal: a cursor from before one may
    then skip entries). It is bound to the workflow id.
    """
    limit = _check_limit(limit)
    life_seq, pos = _history_cursor(workflow_id, cursor)
    corrupt: HistoryItem | None = None
    with ctx.store.transaction(write=False) as tx:
        record = tx.get_workflow(workflow_id)
        if record is None:
            raise UnknownWorkflowError(workflow_id)
        events = tx.list_history_page(workflow_id, after_seq=life_seq, limit=limit + 1)
        try:
            journal = _journal_slice(ctx, tx, record, pos, limit + 1)
        except CorruptStateError as exc:  # the timeline ends by saying why the journal is missing
            journal = []
            corrupt = HistoryItem(record.updated_at, "lifecycle", "corrupt_state", {"reason": exc.reason})
    lifecycle = [lifecycle_item(e) for e in events]
    if corrupt is not None and len(events) <= limit:
        lifecycle.append(corrupt)
    items, i, j = merge_timeline(lifecycle, journal, limit)
    more = i < len(lifecycle) or j < len(journal)
    last_seq = events[min(i, len(events)) - 1].seq if min(i, len(events)) else life_seq
    next_cursor = (
        encode_cursor(_HISTORY_TAG, {"l": last_seq, "j": pos + j, "id": workflow_id}) if more else None
    )
    return HistoryPage(items, next_cursor)

"""Row <-> record mapping of the SQL stores, shared by the session and the dialects.

Why a module of its own: the per-instance statements (``_sql_session``), the
driver's statements (``_sql_durable``) and the dialects' one-statement claims
(``_postgres``) all read the same rows; keeping the decoders here lets each
import them without importing the others. Every row goes through a
``RowDecoder``, so a damaged row raises ``CorruptRecordError`` naming the
table and key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ._codec import EPOCH, RowDecoder, dump_json, to_ms
from ._errors import CorruptRecordError
from ._records import (
    WORKFLOW_STATUSES,
    HistoryEvent,
    InboxEvent,
    InstanceStatus,
    PendingWait,
    ScriptVersion,
    TokenRecord,
    WorkflowRecord,
)

SCRIPT_COLUMNS = "name, hash, source, created_at"
WORKFLOW_COLUMNS = (
    "workflow_id, script_name, script_hash, entry_point, status, state, result_json, "
    "error_json, created_at, updated_at, version, cancel_reason, metadata"
)
WAIT_COLUMNS = (
    "wait_id, function_name, kind, resume_at, event_names, is_retry, token_hash, arguments_json, detail_json"
)
EVENT_COLUMNS = "event_id, workflow_id, name, payload_json, received_at, delivered_at, wait_id"
TOKEN_COLUMNS = "token_hash, workflow_id, wait_id, kind, created_at, expires_at, used_at, metadata"


def script_from_row(row: Sequence[Any]) -> ScriptVersion:
    d = RowDecoder("scripts", (row[0], row[1]))
    return ScriptVersion(
        d.text("name", row[0]),
        d.text("hash", row[1]),
        d.text("source", row[2]),
        d.time("created_at", row[3]),
    )


def workflow_from_row(row: Sequence[Any]) -> WorkflowRecord:
    d = RowDecoder("workflows", row[0])
    status = d.text("status", row[4])
    if status not in WORKFLOW_STATUSES:
        raise d.fail(f"status: unknown value {status!r}")
    return WorkflowRecord(
        workflow_id=d.text("workflow_id", row[0]),
        script_name=d.text("script_name", row[1]),
        script_hash=d.text("script_hash", row[2]),
        entry_point=d.text("entry_point", row[3]),
        status=status,
        state=d.text("state", row[5], optional=True),
        result_json=d.json_text("result_json", row[6]),
        error_json=d.json_text("error_json", row[7]),
        created_at=d.time("created_at", row[8]),
        updated_at=d.time("updated_at", row[9]),
        version=d.integer("version", row[10]),
        cancel_reason=d.text("cancel_reason", row[11], optional=True),
        metadata=d.metadata("metadata", row[12]),
    )


def listed_workflow_from_row(row: Sequence[Any]) -> WorkflowRecord:
    """A row of a listing: the record, or, when the row cannot be decoded, a
    stand-in with status "corrupt" and the decoding error, so that one damaged
    row never takes a whole listing down (reading that instance still raises)."""
    try:
        return workflow_from_row(row)
    except CorruptRecordError as exc:
        error = {"type": "CorruptRecordError", "message": str(exc), "column": exc.reason.split(":")[0]}
        return WorkflowRecord(
            workflow_id=_text_or(row[0], repr(row[0])),
            script_name=_text_or(row[1], ""),
            script_hash=_text_or(row[2], ""),
            status=InstanceStatus.CORRUPT,
            error_json=json.dumps(error, ensure_ascii=True),
            created_at=_time_or_epoch(row[8]),
            updated_at=_time_or_epoch(row[9]),
            version=row[10] if type(row[10]) is int else 0,
        )


def _text_or(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _time_or_epoch(value: Any) -> datetime:
    try:
        return RowDecoder("workflows", None).time("created_at", value)
    except CorruptRecordError:
        return EPOCH


def wait_from_row(workflow_id: str, row: Sequence[Any]) -> PendingWait:
    d = RowDecoder("waits", (workflow_id, row[0]))
    names = None if row[4] is None else d.json("event_names", row[4], list)
    if names is not None and not all(isinstance(n, str) for n in names):
        raise d.fail("event_names: expected a list of strings")
    return PendingWait(
        wait_id=d.integer("wait_id", row[0]),
        function_name=d.text("function_name", row[1]),
        kind=d.text("kind", row[2]),
        resume_at=d.opt_time("resume_at", row[3]),
        event_names=None if names is None else tuple(names),
        is_retry=bool(d.integer("is_retry", row[5])),
        token_hash=d.text("token_hash", row[6], optional=True),
        arguments_json=d.json_text("arguments_json", row[7]) or "[]",
        detail_json=d.json_text("detail_json", row[8]),
    )


def wait_to_row(w: PendingWait) -> tuple[Any, ...]:
    """The values of ``WAIT_COLUMNS`` for ``w``: the inverse of ``wait_from_row``."""
    return (
        w.wait_id,
        w.function_name,
        w.kind,
        None if w.resume_at is None else to_ms(w.resume_at),
        None if w.event_names is None else dump_json(list(w.event_names)),
        int(bool(w.is_retry)),
        w.token_hash,
        w.arguments_json,
        w.detail_json,
    )


def event_from_row(row: Sequence[Any]) -> InboxEvent:
    d = RowDecoder("inbox", row[0])
    return InboxEvent(
        event_id=d.integer("event_id", row[0]),
        workflow_id=d.text("workflow_id", row[1]),
        name=d.text("name", row[2]),
        payload_json=d.json_text("payload_json", row[3]) or "null",
        received_at=d.time("received_at", row[4]),
        delivered_at=d.opt_time("delivered_at", row[5]),
        wait_id=None if row[6] is None else d.integer("wait_id", row[6]),
    )


def token_from_row(row: Sequence[Any]) -> TokenRecord:
    d = RowDecoder("tokens", row[0])
    return TokenRecord(
        token_hash=d.text("token_hash", row[0]),
        workflow_id=d.text("workflow_id", row[1]),
        wait_id=d.integer("wait_id", row[2]),
        kind=d.text("kind", row[3]),
        created_at=d.time("created_at", row[4]),
        expires_at=d.opt_time("expires_at", row[5]),
        used_at=d.opt_time("used_at", row[6]),
        metadata=d.json("metadata", row[7], dict),
    )


#: every table holding per-instance rows, deleted before ``workflows`` (add new ones here)
CHILD_TABLES = (
    "history",
    "wait_event_names",
    "waits",
    "inbox",
    "tokens",
    "journal",
    "requirements",
    "recoveries",
)


def history_from_row(workflow_id: str, row: Sequence[Any]) -> HistoryEvent:
    seq, at, kind, detail = row
    d = RowDecoder("history", (workflow_id, seq))
    return HistoryEvent(
        workflow_id,
        d.integer("seq", seq),
        d.time("at", at),
        d.text("kind", kind),
        d.json("detail", detail, dict),
    )

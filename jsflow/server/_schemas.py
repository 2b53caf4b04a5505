"""The JSON shapes of the API (request bodies and responses), as pydantic models.

Why models for responses too: they are the OpenAPI document, which clients
generate code from and ``schemathesis`` checks every answer against; a field
that drifts from its declared type fails a test instead of a client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """``type`` is the error class (``TokenUsedError``); more fields depend on it."""

    model_config = ConfigDict(extra="allow")
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class ScriptIn(_In):
    name: str = Field(min_length=1, max_length=200)
    source: str = Field(max_length=10_000_000)


class ScriptOut(_Out):
    name: str
    hash: str
    created_at: datetime


class ScriptDetail(ScriptOut):
    source: str


class ScriptList(_Out):
    items: list[ScriptOut]


class StartIn(_In):
    script: str = Field(min_length=1, max_length=200)
    args: list[Any] = Field(default_factory=list)
    workflow_id: str | None = Field(default=None, min_length=1, description="the host's id rule applies")
    entry_point: str = Field(default="main", min_length=1, max_length=200)
    version: str | None = Field(default=None, min_length=1, max_length=200, description="a script hash")
    metadata: dict[str, str] | None = None


class ResumeIn(_In):
    value: Any = None
    wait_id: int | None = Field(default=None, ge=0, le=2**53)


class CancelIn(_In):
    reason: str | None = Field(default=None, max_length=10_000)
    cleanup: bool = Field(
        default=True,
        description="deliver the cancellation into the script so its catch/finally blocks can "
        "compensate (false: cancel at once, no script code runs)",
    )


class TokenResumeIn(_In):
    token: str = Field(min_length=1, max_length=1000)
    payload: Any = None


class WaitLocation(_Out):
    line: int
    column: int


class WaitOut(_Out):
    wait_id: int
    kind: str = Field(description="sleep, event, retry, token, hook or suspend")
    function_name: str
    names: list[str] | None = Field(description="event names a waitForEvent accepts")
    resume_at: datetime | None = Field(description="when its timer fires (a token's expiry)")
    url: str | None = Field(default=None, description="createHook waits: the URL that resumes it")
    has_token: bool
    arguments: list[Any]
    location: WaitLocation | None = Field(
        default=None, description="where in the script the wait was made (1-based line and column)"
    )
    description: str = Field(default="", description="what the wait waits for, in words")
    count: int | None = Field(default=None, description="waitForEvents: how many events it needs")
    received: list[Any] | None = Field(default=None, description="waitForEvents: what arrived so far")
    match: dict[str, Any] | None = Field(default=None, description="the pattern an event must contain")
    schema_: Any = Field(
        default=None, alias="schema", description="the JSON Schema a payload or resume value must satisfy"
    )


class InboxOut(_Out):
    event_id: int
    name: str
    received_at: datetime


class IssuedTokenOut(_Out):
    """A resume token issued by this call: shown once, the store keeps only its hash."""

    wait_id: int
    function_name: str
    kind: str = Field(description="token (a Python suspend function) or hook (JS createHook)")
    token: str
    expires_at: datetime | None
    url: str | None = Field(default=None, description="hooks: where an external system posts to")


class InstanceOut(_Out):
    workflow_id: str
    status: str = Field(description="running, suspended, completed, faulted or cancelled")
    script: str
    version: str = Field(description="the script version's hash")
    entry_point: str
    args: list[Any] | None
    value: Any = None
    error: ErrorDetail | None = None
    waits: list[WaitOut]
    inbox: list[InboxOut] = Field(description="events received but not awaited yet")
    tokens: list[IssuedTokenOut] = Field(default_factory=list, description="tokens issued by this call")
    created_at: datetime | None
    updated_at: datetime | None
    cancel_reason: str | None = None
    metadata: dict[str, str]
    parent_id: str | None = Field(
        default=None, description="the instance that started this one (startWorkflow)"
    )
    children: list[str] = Field(default_factory=list, description="ids of the child workflows it started")


class InstanceList(_Out):
    items: list[InstanceOut]
    next_cursor: str | None


class HistoryItemOut(_Out):
    at: datetime
    source: str = Field(description="lifecycle or journal")
    kind: str
    detail: dict[str, Any]


class HistoryList(_Out):
    items: list[HistoryItemOut]
    next_cursor: str | None


class EventReceiptOut(_Out):
    event_id: int
    workflow_id: str
    name: str
    delivered: bool
    buffered: bool
    wait_id: int | None = None
    duplicate: bool = Field(default=False, description="an earlier send with this Idempotency-Key stored it")
    status: str | None = Field(default=None, description="with ?wait: the status the instance reached")
    instance: InstanceOut | None = Field(
        default=None, description="with ?wait, admin keys only: the state after delivery"
    )


class TokenReceiptOut(_Out):
    """``POST /v1/resume?wait=N``: what the instance did with the resume."""

    status: str = Field(description="running, suspended, completed, faulted or cancelled")
    instance: InstanceOut | None = Field(default=None, description="admin keys only: the instance")


class Health(_Out):
    status: str = Field(description="ok: the server answers and its store is reachable")

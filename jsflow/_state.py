"""The durable state of one workflow run, and what an engine call returns.

The state is a small JSON document: the arguments, the start time and the
journal of completions. It never contains the script, so a script can be
upgraded (checked by replay) without migrating state. ``version`` guards the
format: older versions are read, newer ones refused.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticSerializationError

from ._errors import InvalidStateError, StateVersionError, WorkflowError
from ._waits import check_schema, distinct_value, payload_matches, received_payload

EntryType = Literal["step", "step_error", "resume", "event", "timeout", "patch", "cancel"]
#: entry types that complete no slot: a patch marker and a delivered cancellation
CONTROL_TYPES = frozenset({"patch", "cancel"})

# Times are ms since the epoch from the year 1 to 9800 (a datetime holds up to
# 9999, and a wait may end up to 100 years after the workflow's time) and
# counters fit a JS number exactly: a forged or corrupted state is refused with
# InvalidStateError at the boundary, not with an OSError or OverflowError deep
# inside a run.
MIN_MS = -62_135_596_800_000
MAX_MS = 247_090_953_600_000
MAX_COUNT = 2**53 - 1
MAX_DUE_MS = 253_402_300_799_999  # a wait's due time: the end of the year 9999
TimeMs = Annotated[int, Field(ge=MIN_MS, le=MAX_MS)]


class JournalEntry(BaseModel):
    """One completion: which slot, what kind, the outcome and when it happened."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slot: int = Field(ge=0, le=MAX_COUNT)
    type: EntryType
    name: str
    result: Any = None
    error: dict[str, str] | None = None
    at_ms: TimeMs
    event: str | None = None


class WaitRecord(BaseModel):
    """Facts about a pending wait that must not change on replay.

    ``resume_at_ms`` is fixed when the wait is first scheduled (a custom
    ``resume_at`` callable might not be deterministic); retry waits exist only
    here, since a retry journals nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    slot: int = Field(ge=0, le=MAX_COUNT)
    resume_at_ms: Annotated[int, Field(ge=MIN_MS, le=MAX_DUE_MS)] | None = None
    is_retry: bool = False
    attempt: int = Field(default=0, ge=0, le=MAX_COUNT)
    error: dict[str, str] | None = None


class WorkflowState(BaseModel):
    """Everything needed to resume a run, given the same script."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    CURRENT_VERSION: ClassVar[int] = 1

    version: int = 1
    run_id: str
    parent_run_id: str | None = None
    entry_point: str = "main"
    arguments: list[Any] = Field(default_factory=list)
    started_at_ms: TimeMs
    journal: list[JournalEntry] = Field(default_factory=list)
    waits: list[WaitRecord] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)

    def serialize(self) -> str:
        """Compact JSON; contains ``"version":N``.

        Strings from JS may hold lone surrogates, which UTF-8 cannot encode:
        such a state is written as ASCII JSON with ``\\uXXXX`` escapes, which
        ``deserialize`` reads back to the same strings.
        """
        try:
            return self.model_dump_json(exclude_none=True)
        except PydanticSerializationError:
            data = self.model_dump(mode="json", exclude_none=True)
            return json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))

    @classmethod
    def deserialize(cls, text: str | bytes) -> WorkflowState:
        """Parse state text, refusing newer versions and malformed documents.

        The fast path validates straight from JSON in pydantic's core (about
        twice as fast as json.loads + model_validate on long journals); any
        failure, or a version that is not current, takes the slow path, which
        gives the precise error.
        """
        try:
            state = cls.model_validate_json(text, strict=True)
        except (ValidationError, ValueError, TypeError):
            pass
        else:
            if state.version == cls.CURRENT_VERSION and "version" in state.model_fields_set:
                return state
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise InvalidStateError(f"workflow state is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise InvalidStateError("workflow state is nested too deeply") from exc
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Any) -> WorkflowState:
        if not isinstance(raw, dict):
            raise InvalidStateError("workflow state must be a JSON object")
        version = raw.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidStateError("workflow state has no integer 'version' field")
        if version > cls.CURRENT_VERSION:
            raise StateVersionError(version, cls.CURRENT_VERSION)
        if version < 1:
            raise InvalidStateError(f"workflow state version {version} is not valid")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise InvalidStateError(f"workflow state is malformed: {_first_error(exc)}") from exc
        except RecursionError as exc:
            raise InvalidStateError("workflow state is nested too deeply") from exc

    @classmethod
    def coerce(cls, state: WorkflowState | str | bytes | dict[str, Any]) -> WorkflowState:
        if isinstance(state, WorkflowState):
            return state
        if isinstance(state, dict):
            return cls.from_dict(state)
        if isinstance(state, str | bytes):
            return cls.deserialize(state)
        raise InvalidStateError(f"expected WorkflowState or its JSON text, got {type(state).__name__}")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


class WorkflowStatus(enum.StrEnum):
    COMPLETED = "completed"
    SUSPENDED = "suspended"
    FAULTED = "faulted"
    CONTINUED_AS_NEW = "continued_as_new"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Wait:
    """A pending wait. ``wait_id`` is its slot: stable across replays.

    ``location`` is ``{"line": L, "column": C}`` (1-based, in the workflow
    script) of the call that made the wait, or None when unknown (a retry);
    ``description`` says in words what it waits for. Event waits carry their
    options: ``match`` (deep-subset pattern), ``count`` and ``received``
    (``waitForEvents``: how many it needs and what arrived so far),
    ``distinct`` (the payload field counted once per value), and any wait may
    carry ``schema`` (the JSON Schema its payload must satisfy) and a
    ``default`` (the value a timeout resolves with, when ``has_default``).
    ``accepts`` and ``check_payload`` are the one decision of whether an
    event reaches this wait; the durable host uses them too.
    """

    wait_id: int
    function_name: str
    arguments: list[Any]
    resume_at: datetime | None = None
    event_names: list[str] | None = None
    is_retry: bool = False
    location: dict[str, int] | None = None
    description: str = ""
    match: dict[str, Any] | None = None
    count: int | None = None
    received: list[Any] | None = None
    distinct: str | None = None
    schema: Any = None
    has_default: bool = False
    default: Any = None
    event_array: bool = False  # waitForEvent([names]): payloads arrive as {name, payload}

    def accepts(self, event_name: str, payload: Any) -> bool:
        """Whether event ``event_name`` with ``payload`` reaches this wait:
        it listens for the name, ``match`` is a deep subset of the payload,
        and (``distinct``) its value was not counted yet. The schema is not
        part of this: an accepted event that violates it is refused
        (``check_payload``), never passed on to a later wait."""
        if not self.event_names or event_name not in self.event_names:
            return False
        if self.match is not None and not payload_matches(self.match, payload):
            return False
        if self.distinct is not None and self.received:
            value = distinct_value(payload, self.distinct)
            seen = [
                distinct_value(received_payload(i, self.event_array), self.distinct) for i in self.received
            ]
            if any(_same(value, v) for v in seen):
                return False
        return True

    def check_payload(self, payload: Any, what: str = "the payload") -> None:
        """Raise ``PayloadSchemaError`` when ``payload`` violates this wait's schema."""
        check_schema(self.schema, payload, what)

    def to_dict(self) -> dict[str, Any]:
        """The wait as JSON types (``resume_at`` as ISO 8601), for storing and APIs."""
        # a shallow copy: the values are JSON values already, and
        # ``dataclasses.asdict`` deep-copies them (the largest cost of a suspension's view)
        out = {name: getattr(self, name) for name in _WAIT_FIELDS}
        out["resume_at"] = self.resume_at.isoformat() if self.resume_at else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Wait:
        """The inverse of ``to_dict`` (unknown keys are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("resume_at"), str):
            values["resume_at"] = datetime.fromisoformat(values["resume_at"])
        return cls(**values)


_WAIT_FIELDS = tuple(f.name for f in dataclasses.fields(Wait))


def _same(a: Any, b: Any) -> bool:
    return payload_matches(a, b) and payload_matches(b, a)


@dataclass(frozen=True)
class WorkflowResult:
    status: WorkflowStatus
    state: WorkflowState
    value: Any = None
    error: WorkflowError | None = None
    waits: list[Wait] = field(default_factory=list)

    @property
    def suspension(self) -> Wait | None:
        """The first-scheduled pending wait, if any."""
        return self.waits[0] if self.waits else None

    def raise_for_status(self) -> WorkflowResult:
        if self.status is WorkflowStatus.FAULTED and self.error is not None:
            raise self.error
        return self


@dataclass(frozen=True)
class Limits:
    """Per-call limits: JS CPU seconds, runtime memory and stack bytes, and the
    largest JSON value (argument, result, payload) in bytes.

    Why they are consistent: ``memory`` is the script's own working memory.
    Values the host hands in (arguments, the replayed journal, step results,
    resume values, event payloads) get room of their own: a run's QuickJS
    memory limit is ``memory`` plus 64 bytes per byte of JSON delivered to it
    (``[{},{},...]``, the shape with the most JS heap per JSON byte, takes
    about 52). So any value under ``payload`` can be delivered to a script,
    kept and returned, with the defaults as with any other setting, while a
    script that allocates on its own is held to ``memory``.
    """

    time: float = 10.0
    memory: int = 128 * 2**20
    stack: int = 1 * 2**20
    payload: int = 50 * 2**20


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_to_datetime(ms: int) -> datetime:
    """Milliseconds since the epoch (journal times, wait due times, the store's
    columns) -> an aware UTC datetime. The one conversion jsflow uses."""
    return _EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(value: datetime) -> int:
    """An aware datetime -> whole milliseconds since the epoch (rounded down);
    ``ValueError`` for a naive one. The one conversion jsflow uses."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")
    return (value - _EPOCH) // timedelta(milliseconds=1)

"""Schedules in the store (issue 20): one row per schedule and its history lines.

Why a row with a version: every worker process looks at every schedule; the
one that advances a schedule's ``cursor`` (the last slot time it handled)
does so with a compare-and-set on ``version``, in the same transaction that
creates the slot's instance. A worker that lost the race rolls back, instance
included, so each slot is handled once across processes (and the instance
id, ``{name}@{slot}``, is unique anyway).

``ScheduleSession`` is the interface (mixed into ``StoreSession``);
``SQLScheduleSession`` and ``MemoryScheduleSession`` implement it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ._codec import from_ms, normalize_time, to_ms
from ._errors import StoreError


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A stored schedule. ``cursor``: slots at or before it are handled;
    ``last_instance``: the instance of the most recent started slot."""

    name: str
    cron: str
    script: str
    args_json: str
    timezone: str
    overlap: str
    catch_up: str
    paused: bool
    cursor: datetime
    created_at: datetime
    updated_at: datetime
    last_instance: str | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class ScheduleEvent:
    """One history line of a schedule (started, skipped, missed, paused, ...)."""

    name: str
    at: datetime
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


class ScheduleConflictError(StoreError):
    """Another writer changed the schedule first (its version moved)."""

    def __init__(self, name: str, expected: int) -> None:
        super().__init__(f"schedule {name!r} was modified concurrently (expected version {expected})")
        self.name = name
        self.expected = expected


class ScheduleSession(ABC):
    """What a session offers for schedules."""

    @abstractmethod
    def put_schedule(self, record: ScheduleRecord) -> ScheduleRecord:
        """Insert or replace (by name); the stored version is returned."""

    @abstractmethod
    def get_schedule(self, name: str) -> ScheduleRecord | None: ...

    @abstractmethod
    def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""

    @abstractmethod
    def save_schedule(self, record: ScheduleRecord, expected_version: int) -> ScheduleRecord:
        """Compare-and-set: ``ScheduleConflictError`` unless the stored version is ``expected_version``."""

    @abstractmethod
    def delete_schedule(self, name: str) -> bool:
        """Delete the schedule and its history; False if there was none."""

    @abstractmethod
    def append_schedule_history(self, name: str, at: datetime, kind: str, detail: dict[str, Any]) -> None: ...

    @abstractmethod
    def list_schedule_history(self, name: str, limit: int = 100) -> list[ScheduleEvent]:
        """The most recent lines, oldest first."""


# -- SQL -------------------------------------------------------------------------------------
_COLUMNS = (
    "name, cron, script, args_json, timezone, overlap, catch_up, paused, cursor_ms, "
    "created_at, updated_at, last_instance, version"
)


def _from_row(row: tuple[Any, ...]) -> ScheduleRecord:
    return ScheduleRecord(
        name=str(row[0]),
        cron=str(row[1]),
        script=str(row[2]),
        args_json=str(row[3]),
        timezone=str(row[4]),
        overlap=str(row[5]),
        catch_up=str(row[6]),
        paused=bool(row[7]),
        cursor=from_ms(int(row[8])),
        created_at=from_ms(int(row[9])),
        updated_at=from_ms(int(row[10])),
        last_instance=None if row[11] is None else str(row[11]),
        version=int(row[12]),
    )


def _params(r: ScheduleRecord, version: int) -> tuple[Any, ...]:
    return (
        r.name,
        r.cron,
        r.script,
        r.args_json,
        r.timezone,
        r.overlap,
        r.catch_up,
        1 if r.paused else 0,
        to_ms(r.cursor),
        to_ms(r.created_at),
        to_ms(r.updated_at),
        r.last_instance,
        version,
    )


class SQLScheduleSession(ScheduleSession):
    """Mixin for ``SQLSession``: needs ``query`` and ``execute``."""

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:  # pragma: no cover
        raise NotImplementedError

    def execute(self, sql: str, params: Any = ()) -> int:  # pragma: no cover
        raise NotImplementedError

    def put_schedule(self, record: ScheduleRecord) -> ScheduleRecord:
        old = self.get_schedule(record.name)
        version = (old.version if old is not None else 0) + 1
        if old is not None:
            self.execute("DELETE FROM schedules WHERE name = ?", (record.name,))
        marks = ", ".join("?" for _ in _COLUMNS.split(","))
        self.execute(f"INSERT INTO schedules ({_COLUMNS}) VALUES ({marks})", _params(record, version))
        return replace(record, version=version)

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        rows = self.query(f"SELECT {_COLUMNS} FROM schedules WHERE name = ?", (name,))
        return _from_row(rows[0]) if rows else None

    def list_schedules(self) -> list[ScheduleRecord]:
        return [_from_row(r) for r in self.query(f"SELECT {_COLUMNS} FROM schedules ORDER BY name")]

    def save_schedule(self, record: ScheduleRecord, expected_version: int) -> ScheduleRecord:
        params = _params(record, expected_version + 1)
        done = self.execute(
            "UPDATE schedules SET cron = ?, script = ?, args_json = ?, timezone = ?, overlap = ?, "
            "catch_up = ?, paused = ?, cursor_ms = ?, created_at = ?, updated_at = ?, "
            "last_instance = ?, version = ? WHERE name = ? AND version = ?",
            (*params[1:], record.name, expected_version),
        )
        if done == 0:
            raise ScheduleConflictError(record.name, expected_version)
        return replace(record, version=expected_version + 1)

    def delete_schedule(self, name: str) -> bool:
        self.execute("DELETE FROM schedule_history WHERE name = ?", (name,))
        return self.execute("DELETE FROM schedules WHERE name = ?", (name,)) > 0

    def append_schedule_history(self, name: str, at: datetime, kind: str, detail: dict[str, Any]) -> None:
        self.execute(
            "INSERT INTO schedule_history (name, at, kind, detail) VALUES (?, ?, ?, ?)",
            (name, to_ms(at), kind, json.dumps(detail, ensure_ascii=True, separators=(",", ":"))),
        )

    def list_schedule_history(self, name: str, limit: int = 100) -> list[ScheduleEvent]:
        rows = self.query(
            "SELECT at, kind, detail FROM schedule_history WHERE name = ? ORDER BY id DESC LIMIT ?",
            (name, int(limit)),
        )
        return [ScheduleEvent(name, from_ms(int(r[0])), str(r[1]), json.loads(r[2])) for r in reversed(rows)]


# -- memory ------------------------------------------------------------------------------------
@dataclass(slots=True)
class ScheduleData:
    rows: dict[str, ScheduleRecord] = field(default_factory=dict)
    history: dict[str, tuple[ScheduleEvent, ...]] = field(default_factory=dict)

    def snapshot(self) -> ScheduleData:
        return ScheduleData(dict(self.rows), dict(self.history))


class MemoryScheduleSession(ScheduleSession):
    """Mixin for the memory session: needs ``_d()`` whose ``schedules`` is a ``ScheduleData``."""

    def _d(self) -> Any:  # pragma: no cover - provided by the session
        raise NotImplementedError

    def _sched(self) -> ScheduleData:
        data: ScheduleData = self._d().schedules
        return data

    def put_schedule(self, record: ScheduleRecord) -> ScheduleRecord:
        old = self._sched().rows.get(record.name)
        stored = _normal(replace(record, version=(old.version if old is not None else 0) + 1))
        self._sched().rows[record.name] = stored
        return stored

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        return self._sched().rows.get(name)

    def list_schedules(self) -> list[ScheduleRecord]:
        return [self._sched().rows[k] for k in sorted(self._sched().rows)]

    def save_schedule(self, record: ScheduleRecord, expected_version: int) -> ScheduleRecord:
        old = self._sched().rows.get(record.name)
        if old is None or old.version != expected_version:
            raise ScheduleConflictError(record.name, expected_version)
        stored = _normal(replace(record, version=expected_version + 1))
        self._sched().rows[record.name] = stored
        return stored

    def delete_schedule(self, name: str) -> bool:
        self._sched().history.pop(name, None)
        return self._sched().rows.pop(name, None) is not None

    def append_schedule_history(self, name: str, at: datetime, kind: str, detail: dict[str, Any]) -> None:
        lines = self._sched().history.get(name, ())
        event = ScheduleEvent(name, normalize_time(at), kind, json.loads(json.dumps(detail)))
        self._sched().history[name] = (*lines, event)

    def list_schedule_history(self, name: str, limit: int = 100) -> list[ScheduleEvent]:
        return list(self._sched().history.get(name, ())[-int(limit) :])


def _normal(record: ScheduleRecord) -> ScheduleRecord:
    """Times as a SQL store would give them back (UTC, millisecond precision)."""
    return replace(
        record,
        cursor=normalize_time(record.cursor),
        created_at=normalize_time(record.created_at),
        updated_at=normalize_time(record.updated_at),
    )

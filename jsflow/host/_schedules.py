"""Cron schedules that start workflows (issue 20).

``add_schedule(name, cron, script, args, timezone=, overlap=, catch_up=)``
stores a schedule; ``run_due`` (every worker pass) starts its due slots.

Slots: the times the cron expression names in the schedule's time zone. A
slot's instance id is ``{name}@{slot in UTC as YYYYMMDDTHHMMSSZ}``. A pass
reads the schedule's ``cursor`` (slots at or before it are handled) and
starts the due slots in ``(cursor, now]`` one at a time: each start is ONE
transaction that creates the slot's instance and moves the cursor to it with
a compare-and-set on the schedule's version, followed by the instance's
first turn. A worker that loses that race rolls back, its instance
included: each slot is handled once across processes and machines (and the
id is unique anyway). An instance created but not yet run when its worker
dies is "running" and recovered after the lease like any other.

On time or missed: a slot seen within a minute of its time is on time and
started; later, it is missed, and ``catch_up`` decides: "latest" starts the
most recent missed slot, "all" every missed slot, "none" none. Slots that
fell while the schedule was paused are never started (resuming moves the
cursor to now). ``overlap="skip"`` skips a slot, with a history line on the
schedule, while the previous slot's instance is unfinished (suspended
included); "allow" starts it anyway. Times come from ``now`` (the worker
pass's) or the host's clock, so tests and simulations drive schedules with
``clock=``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsflow import validate_payload

from ._context import HostContext
from ._deliveries import settle
from ._driver import Delivery, drive
from ._errors import InvalidScheduleError, UnknownScheduleError, UnknownScriptError
from ._load import Loaded
from ._start_event import StartSpec, create_instance
from .store import InstanceStatus, ScheduleConflictError, ScheduleRecord, StoreSession

log = logging.getLogger("jsflow.host")
ON_TIME = timedelta(minutes=1)
OVERLAPS = ("skip", "allow")
CATCH_UPS = ("latest", "all", "none")
#: slots looked at per schedule and pass (a long outage with catch_up="all" takes several passes)
MAX_SLOTS = 1000
SCHEDULE_KEY = "schedule"
SLOT_KEY = "schedule_slot"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as callers see it; ``next_run`` is the next slot (UTC), None while paused."""

    name: str
    cron: str
    script: str
    args: list[Any]
    timezone: str
    overlap: str
    catch_up: str
    paused: bool
    next_run: datetime | None
    last_instance: str | None
    created_at: datetime
    updated_at: datetime


def slot_id(name: str, slot: datetime) -> str:
    """The instance id of a slot: ``{name}@{YYYYMMDDTHHMMSSZ}`` (UTC)."""
    return f"{name}@{slot.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidScheduleError("timezone", f"unknown time zone {timezone!r}") from exc


def _check(name: Any, cron: Any, timezone: Any, overlap: Any, catch_up: Any) -> None:
    from croniter import CroniterBadDateError, croniter  # ~7 MB of RSS: only hosts with schedules

    if not isinstance(name, str) or not name or len(name) > 200 or "@" in name or "\x00" in name:
        raise InvalidScheduleError(
            "name", "a schedule name is a non-empty string of at most 200 characters without '@'"
        )
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise InvalidScheduleError("cron", f"{cron!r} is not a cron expression (like '0 9 * * 1-5')")
    try:
        croniter(cron, datetime.now(UTC)).get_next(datetime)
    except CroniterBadDateError as exc:
        raise InvalidScheduleError("cron", f"{cron!r} names no date that exists (like February 31)") from exc
    _zone(timezone)
    if overlap not in OVERLAPS:
        raise InvalidScheduleError("overlap", f"overlap must be one of {', '.join(OVERLAPS)}")
    if catch_up not in CATCH_UPS:
        raise InvalidScheduleError("catch_up", f"catch_up must be one of {', '.join(CATCH_UPS)}")


def next_slot(record: ScheduleRecord, after: datetime) -> datetime | None:
    """The first slot after ``after`` (UTC); None for an expression that never fires again."""
    from croniter import CroniterBadDateError, croniter

    it = croniter(record.cron, after.astimezone(_zone(record.timezone)))
    try:
        return it.get_next(datetime).astimezone(UTC)  # type: ignore[no-any-return]
    except CroniterBadDateError:
        return None


def view(ctx: HostContext, record: ScheduleRecord) -> Schedule:
    now = ctx.clock()
    nxt = None if record.paused else next_slot(record, max(record.cursor, now))
    return Schedule(
        name=record.name,
        cron=record.cron,
        script=record.script,
        args=json.loads(record.args_json),
        timezone=record.timezone,
        overlap=record.overlap,
        catch_up=record.catch_up,
        paused=record.paused,
        next_run=nxt,
        last_instance=record.last_instance,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


# -- definition --------------------------------------------------------------------------------
def add(
    ctx: HostContext,
    name: str,
    cron: str,
    script: str,
    args: list[Any],
    timezone: str,
    overlap: str,
    catch_up: str,
) -> Schedule:
    """Store (or replace) a schedule; slots after now are its first."""
    _check(name, cron, timezone, overlap, catch_up)
    args_json = validate_payload(list(args), limit=ctx.engine.limits.payload, what="the schedule arguments")
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        if tx.get_script(script, None) is None:
            raise UnknownScriptError(script, None)
        old = tx.get_schedule(name)
        record = ScheduleRecord(
            name=name,
            cron=cron,
            script=script,
            args_json=args_json,
            timezone=timezone,
            overlap=overlap,
            catch_up=catch_up,
            paused=old.paused if old is not None else False,
            cursor=now,
            created_at=old.created_at if old is not None else now,
            updated_at=now,
            last_instance=old.last_instance if old is not None else None,
        )
        stored = tx.put_schedule(record)
        tx.append_schedule_history(name, now, "replaced" if old is not None else "added", {"cron": cron})
    return view(ctx, stored)


def _change(ctx: HostContext, name: str, paused: bool) -> Schedule:
    now = ctx.clock()
    for _ in range(50):
        with ctx.store.transaction() as tx:
            record = _require(tx, name)
            if record.paused == paused:
                return view(ctx, record)
            # resuming moves the cursor to now: slots that fell while paused are never started
            changed = replace(
                record, paused=paused, updated_at=now, cursor=now if not paused else record.cursor
            )
            try:
                saved = tx.save_schedule(changed, record.version)
            except ScheduleConflictError:
                continue
            tx.append_schedule_history(name, now, "paused" if paused else "resumed", {})
            return view(ctx, saved)
    raise InvalidScheduleError("name", f"schedule {name!r} is changing too often; try again")


def pause(ctx: HostContext, name: str) -> Schedule:
    return _change(ctx, name, True)


def resume(ctx: HostContext, name: str) -> Schedule:
    return _change(ctx, name, False)


def remove(ctx: HostContext, name: str) -> None:
    with ctx.store.transaction() as tx:
        if not tx.delete_schedule(name):
            raise UnknownScheduleError(name)


def list_all(ctx: HostContext) -> list[Schedule]:
    return [view(ctx, r) for r in ctx.store.read(lambda tx: tx.list_schedules())]


def get(ctx: HostContext, name: str) -> Schedule:
    with ctx.store.transaction(write=False) as tx:
        return view(ctx, _require(tx, name))


def _require(tx: StoreSession, name: str) -> ScheduleRecord:
    record = tx.get_schedule(name)
    if record is None:
        raise UnknownScheduleError(name)
    return record


# -- running ------------------------------------------------------------------------------------
async def run_due(ctx: HostContext, now: datetime) -> int:
    """Start the due slots of every schedule; returns how many instances were started."""
    started = 0
    for record in ctx.store.read(lambda tx: tx.list_schedules()):
        slot = None if record.paused else next_slot(record, record.cursor)
        if slot is None or slot > now:
            continue
        try:
            started += await _run_one(ctx, record.name, now)
        except Exception:
            log.exception("schedule %r: starting its due slots failed", record.name)
    return started


def next_due(ctx: HostContext) -> datetime | None:
    """When the earliest schedule has its next slot (for the worker's sleep)."""
    found = [next_slot(r, r.cursor) for r in ctx.store.read(lambda tx: tx.list_schedules()) if not r.paused]
    times = [t for t in found if t is not None]
    if not times:
        return None
    # an overdue slot the last pass could not start is retried soon, not in a tight loop
    return max(min(times), ctx.clock() + timedelta(milliseconds=200))


async def _run_one(ctx: HostContext, name: str, now: datetime) -> int:
    """Start the schedule's due slots one at a time: each start is its own
    transaction (instance + cursor), followed by the instance's first turn, so
    ``overlap="skip"`` judges a slot by how the previous one actually went."""
    started = 0
    for _ in range(MAX_SLOTS):
        try:
            with ctx.store.transaction() as tx:
                record = tx.get_schedule(name)
                if record is None or record.paused:
                    return started
                made = _next_start(ctx, tx, record, now)
        except ScheduleConflictError:
            return started  # another worker handled these slots
        if made is None:
            return started
        wid, loaded = made
        if loaded is None:
            continue  # that slot's instance existed already: go on with the next slots
        started += 1
        try:
            await settle(ctx, wid, await drive(ctx, wid, Delivery(owner=True, acquire=False), loaded))
        except Exception:
            log.exception("schedule %r: the first turn of %r failed (recovery finishes it)", name, wid)
    return started


def _slots(record: ScheduleRecord, now: datetime) -> tuple[list[tuple[datetime, bool]], datetime]:
    """The slots in (cursor, now] as (time, on_time), oldest first, and the new cursor."""
    from croniter import CroniterBadDateError, croniter

    it = croniter(record.cron, record.cursor.astimezone(_zone(record.timezone)))
    found: list[datetime] = []
    while len(found) < MAX_SLOTS:
        try:
            slot = it.get_next(datetime).astimezone(UTC)
        except CroniterBadDateError:
            break
        if slot > now:
            break
        found.append(slot)
    cursor = found[-1] if len(found) == MAX_SLOTS else now
    return [(s, now - s <= ON_TIME) for s in found], cursor


def _next_start(
    ctx: HostContext, tx: StoreSession, record: ScheduleRecord, now: datetime
) -> tuple[str, Loaded | None] | None:
    """In the open transaction: pass over the due slots up to the next one to
    start (missed ones ``catch_up`` leaves out, ones ``overlap`` skips), create
    that one's instance and move the cursor to it; None when no slot is left
    to start (the cursor then moves past every due slot)."""
    slots, end = _slots(record, now)
    if not slots:
        return None
    missed = [s for s, on_time in slots if not on_time]
    chosen = {"all": missed, "latest": missed[-1:], "none": []}[record.catch_up]
    passed: list[str] = []
    for slot, on_time in slots:
        wid = slot_id(record.name, slot)
        if not on_time and slot not in chosen:
            passed.append(wid)
            continue
        last = record.last_instance
        if record.overlap == "skip" and last is not None and _unfinished(tx, last):
            tx.append_schedule_history(record.name, now, "skipped", {"slot": wid, "running": last})
            continue
        _note_missed(tx, record.name, now, passed)
        made = _create(ctx, tx, record, slot)
        tx.save_schedule(replace(record, cursor=slot, last_instance=wid), record.version)
        if isinstance(made, Loaded):
            tx.append_schedule_history(record.name, now, "started", {"slot": wid})
            return wid, made
        return wid, None
    _note_missed(tx, record.name, now, passed)
    tx.save_schedule(replace(record, cursor=end), record.version)
    return None


def _note_missed(tx: StoreSession, name: str, now: datetime, passed: list[str]) -> None:
    if passed:
        tx.append_schedule_history(name, now, "missed", {"slots": passed[-20:], "count": len(passed)})


def _create(ctx: HostContext, tx: StoreSession, record: ScheduleRecord, slot: datetime) -> Any:
    meta = {SCHEDULE_KEY: record.name, SLOT_KEY: slot.isoformat()}
    spec = StartSpec(record.script, metadata=meta)
    args = json.loads(record.args_json)
    return create_instance(ctx, tx, slot_id(record.name, slot), spec, args, {"schedule": record.name})


def _unfinished(tx: StoreSession, workflow_id: str) -> bool:
    record = tx.get_workflow(workflow_id)
    return record is not None and not InstanceStatus.is_terminal(record.status)

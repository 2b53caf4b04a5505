"""A run's pending wait as the public ``Wait``: where it was made and, in words,
what it waits for ("waiting for getApproval('manager', 'A-17')", "sleeping
until 2026-12-07 09:00Z", "waiting for 2 more 'vote' events (have: ann), 1
of 3 received"). Built from what the prelude reported when the wait was
scheduled (its options, its call site) and what it received since.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._state import Wait, WaitRecord, ms_to_datetime
from ._waits import describe_call, describe_event_wait, format_time

if TYPE_CHECKING:
    from ._run import RunConfig, Slot


def build_wait(slot: Slot, record: WaitRecord | None, config: RunConfig) -> Wait:
    at = record.resume_at_ms if record else None
    resume_at = ms_to_datetime(at) if at is not None else None
    is_retry = bool(record and record.is_retry)
    opts = slot.options
    schema = opts.get("schema")
    if schema is None and slot.kind == "suspend":
        fn = config.suspends.get(slot.name)
        schema = fn.schema if fn is not None else None
    location = opts.get("site")
    return Wait(
        wait_id=slot.slot,
        function_name=slot.name,
        arguments=list(slot.args),
        resume_at=resume_at,
        event_names=list(slot.names) if slot.kind == "event" and slot.names else None,
        is_retry=is_retry,
        location=dict(location) if isinstance(location, Mapping) else None,
        description=_description(slot, resume_at, is_retry, config),
        match=opts.get("match"),
        count=slot.count,
        received=list(slot.received) if slot.received is not None else None,
        distinct=opts.get("distinct"),
        schema=schema,
        has_default=bool(opts.get("hasDefault")),
        default=opts.get("default"),
        event_array=slot.array,
    )


def _description(slot: Slot, resume_at: Any, is_retry: bool, config: RunConfig) -> str:
    if is_retry:
        return f"waiting to retry step {slot.name}" + (f" at {format_time(resume_at)}" if resume_at else "")
    if slot.kind == "event":
        return describe_event_wait(slot.names or [], slot.options, slot.received, slot.array)
    if slot.name == "sleep" and resume_at is not None and "sleep" not in config.suspends:
        return f"sleeping until {format_time(resume_at)}"
    internal = config.descriptions.get(slot.name)
    if internal is not None:
        return internal
    return describe_call(slot.name, slot.args)

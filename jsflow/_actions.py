"""What an advance asks of a run: resume a wait, deliver an event, or time a
wait out (``None`` instead of an action means "just proceed": start a fresh
run, or finish what was in flight). These are public: the host, the CLI and
``LiveRun.advance`` all speak them. ``check`` validates the action against
the pending waits (raising before anything changes) and builds the journal
entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._describe import build_wait
from ._errors import EventNotAwaitedError, WaitNotPendingError
from ._state import JournalEntry, datetime_to_ms

if TYPE_CHECKING:
    from ._run import Run


@dataclass
class Action:
    """Base of the actions; ``target`` is the wait the action settled on, once checked."""

    target: int = field(default=-1, init=False, repr=False, compare=False)

    def check(self, run: Run) -> JournalEntry | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _pick(self, run: Run, wait_id: int | None) -> int:
        pending = run.pending_waits()
        if wait_id is None:
            if not pending:
                raise WaitNotPendingError(None, pending)
            return pending[0]
        if wait_id not in pending:
            raise WaitNotPendingError(wait_id, pending)
        return wait_id

    @staticmethod
    def _now(run: Run) -> int:
        return datetime_to_ms(run.config.clock())

    @staticmethod
    def _is_retry(run: Run, slot: int) -> bool:
        record = run.waits.get(slot)
        return bool(record and record.is_retry)


@dataclass
class Resume(Action):
    """Complete ``wait_id`` (default: the first-scheduled pending wait) with ``value``."""

    value: Any = None
    wait_id: int | None = None

    def check(self, run: Run) -> JournalEntry | None:
        self.target = slot = self._pick(run, self.wait_id)
        if self._is_retry(run, slot):
            return None
        build_wait(run.slots[slot], run.waits.get(slot), run.config).check_payload(
            self.value, "the resume value"
        )
        name = run.slots[slot].name
        return JournalEntry(slot=slot, type="resume", name=name, result=self.value, at_ms=self._now(run))


@dataclass
class RaiseEvent(Action):
    """Deliver event ``name`` to the first-scheduled ``waitForEvent`` or
    ``waitForEvents`` that accepts it (``Wait.accepts``: the name, ``match``,
    ``distinct``); a payload that violates that wait's schema raises
    ``PayloadSchemaError`` and changes nothing."""

    name: str = ""
    payload: Any = None
    wait_id: int | None = None  # only this wait (a host that chose it already)

    def check(self, run: Run) -> JournalEntry | None:
        awaited: list[str] = []
        for slot in run.pending_waits():
            rec = run.slots.get(slot)
            if rec is None or rec.kind != "event" or not rec.names:
                continue
            if self.wait_id is not None and slot != self.wait_id:
                continue
            wait = build_wait(rec, run.waits.get(slot), run.config)
            if wait.accepts(self.name, self.payload):
                wait.check_payload(self.payload, f"the payload of event {self.name!r}")
                self.target = slot
                return JournalEntry(
                    slot=slot,
                    type="event",
                    name=rec.name,
                    result=self.payload,
                    event=self.name,
                    at_ms=self._now(run),
                )
            awaited += [n for n in rec.names if n not in awaited]
        raise EventNotAwaitedError(self.name, awaited)


@dataclass
class Timeout(Action):
    """Reject ``wait_id`` (default: the first pending ``waitForEvent``) with a TimeoutError."""

    wait_id: int | None = None

    def check(self, run: Run) -> JournalEntry | None:
        if self.wait_id is None:
            events = [s for s in run.pending_waits() if run.slots[s].kind == "event"]
            if not events:
                raise WaitNotPendingError(None, run.pending_waits())
            slot = events[0]
        else:
            slot = self._pick(run, self.wait_id)
        self.target = slot
        if self._is_retry(run, slot):
            return None
        rec = run.slots[slot]
        if rec.options.get("hasDefault"):  # timeout as a value: resolves with the default
            return JournalEntry(
                slot=slot,
                type="timeout",
                name=rec.name,
                result=rec.options.get("default"),
                at_ms=self._now(run),
            )
        shown = run.config.public_names.get(rec.name, rec.name)
        what = f"{rec.name}({', '.join(rec.names or [])})" if rec.kind == "event" else shown
        return JournalEntry(
            slot=slot,
            type="timeout",
            name=rec.name,
            at_ms=self._now(run),
            error={"name": "TimeoutError", "message": f"{what} timed out"},
        )


CANCEL_MESSAGE = "the workflow was cancelled"


@dataclass
class Cancel(Action):
    """Deliver a cancellation into the script: every pending wait rejects with a
    JS ``CancelledError`` (``reason`` on it); the run then ends CANCELLED
    whatever the script does (see ``Run.cancel``)."""

    reason: str | None = None

    def check(self, run: Run) -> JournalEntry | None:
        if run.done or run.continued or run.cancel_entry is not None:
            raise WaitNotPendingError(None, [])
        error = {"name": "CancelledError", "message": CANCEL_MESSAGE}
        if self.reason is not None:
            error["reason"] = str(self.reason)
        return JournalEntry(
            slot=run.next_slot(), type="cancel", name="cancel", error=error, at_ms=self._now(run)
        )

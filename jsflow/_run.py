"""One engine call: load the script, replay the journal, apply one action,
run live until nothing runs, and describe the outcome.

A ``Run`` owns one sandbox. Its phases are separate methods (``start``,
``apply``, ``live``, ``result``) so that a later cache can keep a suspended
run's sandbox and call ``apply``/``live`` again without replaying.

Write-ahead: every live completion is appended to the journal and handed to
``on_journal`` (the host persists it) *before* it is delivered to the script.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from pydantic import TypeAdapter

from js_runtime import (
    JSError,
    ResourceLimitExceeded,
    Sandbox,
    SandboxLimits,
    encode,
    source_position,
)

from ._actions import Action
from ._describe import build_wait
from ._durations import parse_duration
from ._errors import (
    QueryError,
    QueryNotFoundError,
    ResourceLimitError,
    ScriptError,
    WorkflowCancelledError,
    WorkflowError,
)
from ._jssteps import COMMANDS as JS_STEP_COMMANDS
from ._jssteps import JsSteps
from ._prelude import prelude_for
from ._run_errors import drift_error, error_from_description, limit_error, script_error, value_error
from ._state import (
    JournalEntry,
    Limits,
    Wait,
    WaitRecord,
    WorkflowResult,
    WorkflowState,
    WorkflowStatus,
    datetime_to_ms,
)
from ._steps import (
    StepContext,
    StepFunction,
    StepOutcome,
    SuspendFunction,
    execute_step,
    outcome_entry,
)
from ._waits import call_site, lost_race_message, schema_problem

console_logger = logging.getLogger("jsflow.console")
_LOG_LEVELS = {
    "log": logging.INFO,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "debug": logging.DEBUG,
}
#: JS heap allowed per byte of JSON the host delivers (measured worst shape: ~52)
HEADROOM = 64
#: journal entries a script may write while cleaning up after a cancellation
MAX_CLEANUP_ENTRIES = 100
JournalHook = Callable[["JournalWrite"], Awaitable[None] | None]


@dataclass
class RunConfig:
    """What a run needs from the engine: registrations, limits and clock."""

    steps: dict[str, StepFunction]
    suspends: dict[str, SuspendFunction]
    executes: list[str]
    values: dict[str, Any]
    limits: Limits
    clock: Callable[[], datetime]
    on_console: Callable[[str, str], None] | None
    fetch: bool = False  # wrap the built-in 'fetch' step as WHATWG fetch
    internal_steps: list[str] = field(default_factory=list)  # extension steps: not globals
    internal_suspends: list[str] = field(default_factory=list)
    extension_js: list[str] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)  # internal suspend -> words
    public_names: dict[str, str] = field(default_factory=dict)  # internal name -> as scripts write it


@dataclass
class JournalWrite:
    """What ``on_journal`` receives: one new completion, before the script sees it.

    ``entry`` is the new journal entry and ``index`` its position in the
    journal (entries before it were written by earlier calls). ``waits`` are
    the run's wait records after this completion (small: pending waits only).
    ``state()`` builds the whole state; it copies the journal, so a host that
    stores journals append-only writes ``entry`` and never calls it.
    """

    entry: JournalEntry
    index: int
    waits: list[WaitRecord]
    _run: Run = field(repr=False)

    def state(self) -> WorkflowState:
        return self._run.snapshot_state()


@dataclass
class Slot:
    slot: int
    kind: str  # step | suspend | event
    name: str
    args: list[Any]
    at: int
    names: list[str] | None = None
    array: bool = False
    duration: Any = None
    settled: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # site, match, count, schema, default...
    received: list[Any] | None = None  # a counting wait's events so far

    @property
    def count(self) -> int | None:
        count = self.options.get("count")
        return count if isinstance(count, int) else None

    def completes(self, entry: JournalEntry) -> bool:
        """Whether ``entry`` settles this slot (a counting wait needs ``count`` events)."""
        count = self.count
        if count is None or entry.type != "event":
            return True
        return len(self.received or ()) + 1 >= count


class Finished(Exception):
    """Raised inside a run when its outcome is already decided (fault, drift)."""

    def __init__(self, result: WorkflowResult) -> None:
        super().__init__(result.status)
        self.result = result


class Run:
    def __init__(
        self, config: RunConfig, script: str, state: WorkflowState, on_journal: JournalHook | None = None
    ) -> None:
        self.config = config
        self.script = script
        self.state = state
        self.on_journal = on_journal
        self.journal: list[JournalEntry] = list(state.journal)
        self.waits: dict[int, WaitRecord] = {w.slot: w for w in state.waits}
        self.slots: dict[int, Slot] = {}
        #: the slots that may still be pending waits (pruned as they settle), so
        #: finding the pending waits costs the same at any journal length
        self.unsettled: dict[int, Slot] = {}
        self.runnable: list[int] = []
        self.failed_attempts: dict[int, int] = {}  # slot -> durable retries so far
        self.js = JsSteps(self)  # JS step bodies and their ephemeral calls
        self.done = False
        self.continued = False
        self.host_time = 0.0  # seconds spent persisting journal writes, charged to the budget
        self.held = 0  # bytes of JSON the host handed to the script (see hold)
        self.applied = 0  # the bytes the memory limit currently makes room for
        self.entry_type = "undefined"  # known after load for modules; check() asks for scripts
        self._lines: list[str] | None = None  # the script's lines, for wait locations
        self.markers: list[JournalEntry] = []  # patch markers to journal before the next write
        #: the delivered cancellation (a 'cancel' entry), replayed or live; see ``cancel``
        self.cancel_entry: JournalEntry | None = next((e for e in self.journal if e.type == "cancel"), None)
        self.cleanup_entries = 0
        self.cut_short: str | None = None
        limits = config.limits
        self.sandbox = Sandbox(SandboxLimits(time=limits.time, memory=limits.memory, stack=limits.stack))

    def close(self) -> None:
        self.sandbox.close()

    def start_budget(self) -> None:
        """A fresh time budget: one per advance, JS time and journal writes together."""
        self.sandbox.start_budget()
        self.host_time = 0.0

    def hold(self, nbytes: int) -> None:
        """Make room for a value the host hands to the script: the runtime's
        memory limit is ``limits.memory`` (the script's own working memory) plus
        ``HEADROOM`` times the JSON the host delivered to this run, so any value
        under ``limits.payload`` can be delivered, kept and returned whatever
        its shape (``[{},{},...]`` takes about 52 bytes of JS heap per JSON byte)."""
        self.held += nbytes
        if self.held - self.applied < 4096 and self.applied:  # small values: raise in batches
            return
        self.applied = self.held + 4096
        self.sandbox.set_memory_limit(self.config.limits.memory + HEADROOM * self.applied)

    def charge(self, seconds: float) -> None:
        """Charge host work (journal writes) to the budget: an advance that
        loops over cheap steps is bounded by its time limit, host work included."""
        self.host_time += seconds
        limit = self.config.limits.time
        if self.sandbox.cpu_used + self.host_time > limit:
            error = ResourceLimitError(
                f"the advance exceeded the time limit of {limit:g}s "
                f"(script {self.sandbox.cpu_used:.2f}s, journal writes {self.host_time:.2f}s)",
                limit="time",
            )
            raise Finished(self.faulted(error))

    # -- phase 1: load and replay ------------------------------------------
    def start(self) -> None:
        """Load the script and replay the journal; raises Finished on drift,
        load errors or limits."""
        self.start_budget()
        try:
            self.load()
            self._start_entry()
            self._replay()
        except ResourceLimitExceeded as exc:
            raise Finished(self.faulted(limit_error(exc))) from exc
        except JSError as exc:  # e.g. a scheduled call's arguments nested too deeply
            raise Finished(self.faulted(script_error(exc))) from exc

    def load(self) -> None:
        """Install the prelude, registrations and extensions, then evaluate the script."""
        sb, cfg = self.sandbox, self.config
        sb.install(prelude_for([self.script, *cfg.executes], cfg.fetch))
        internal = set(cfg.internal_steps) | set(cfg.internal_suspends)
        sb.call(
            "__define",
            sorted(n for n in cfg.steps if n not in internal),
            sorted(n for n in cfg.suspends if n not in internal),
        )
        if cfg.extension_js:
            sb.call("__defineInternal", sorted(cfg.internal_steps), sorted(cfg.internal_suspends))
            for js in cfg.extension_js:
                sb.run_script(f"({js})(globalThis.__jsflow_ext_ops);")
            sb.run_script("delete globalThis.__jsflow_ext_ops;")
        if cfg.fetch:
            sb.call("__enableFetch")
        for name, value in cfg.values.items():
            sb.call("__setValue", name, value)
        for code in cfg.executes:
            sb.run_script(code)
        entry = self.state.entry_point
        try:
            if is_module(self.script):
                kinds = sb.run_module(self.script, [entry])
                self.entry_type = kinds.get(entry, "undefined")
                if kinds.get(entry) == "function":
                    sb.run_script(
                        f"globalThis.{_ENTRY_GLOBAL} = globalThis.__jsr_module_exports[{encode(entry)}];"
                    )
                    self.entry_global = _ENTRY_GLOBAL
                else:
                    raise Finished(
                        self.faulted(
                            ScriptError(
                                f"entry point {entry!r} is not exported by the module "
                                f"(export is {kinds.get(entry, 'undefined')})",
                                js_name="ReferenceError",
                            )
                        )
                    )
            else:
                sb.run_script(_with_entry_capture(self.script, entry))
                self.entry_global = _ENTRY_GLOBAL if is_identifier(entry) else entry
        except JSError as exc:
            raise Finished(self.faulted(script_error(exc, loading=True))) from exc

    def _start_entry(self) -> None:
        state = self.state
        if not self.journal and state.waits:  # it suspended before: patched() answers as on replay
            self.sandbox.call("__markReplay")
        seed = _seed(state.run_id)
        head = encode(
            [self.entry_global, state.arguments, state.started_at_ms, seed, self.config.limits.payload]
        )
        journal = _journal_json(self.journal)
        self.hold(len(head) + len(journal))
        missing = self.sandbox.call_encoded("__start", f"{head[:-1]},{journal}]")
        if missing:
            what = missing.get("missing")
            detail = "is not defined" if what == "undefined" else f"is a {what}, not a function"
            raise Finished(
                self.faulted(
                    ScriptError(f"entry point {state.entry_point!r} {detail}", js_name="ReferenceError")
                )
            )
        self.sandbox.drain()

    def _replay(self) -> None:
        sb = self.sandbox
        if not self.journal and not self.state.waits:  # a fresh start: live from the first line
            self.process_commands(sb.take_commands())
            return
        # a replay (a start with no journal but stored waits too: silent, see __markReplay)
        drift = sb.repeat_and_drain("__next", len(self.journal)) if self.journal else None
        if drift is not None:
            raise Finished(self.faulted(drift_error(drift[1])))
        sb.take_commands()  # replayed output: schedules come from the snapshot
        snap = sb.call("__snapshot")
        for raw in snap["pending"]:
            self._schedule(raw)
        for slot in [s for s, rec in self.waits.items() if not rec.is_retry and s not in self.slots]:
            del self.waits[slot]  # cancelled after the state was saved (a crash in between)
        self.done = bool(snap["done"])
        self.continued = bool(snap["continued"])

    # -- commands from the sandbox ---------------------------------------------
    def process_commands(self, commands: list[Any]) -> None:
        for cmd in commands:
            op = cmd.get("op") if isinstance(cmd, dict) else None
            if op == "schedule":
                self._schedule(cmd)
            elif op == "console":
                self._console(str(cmd.get("level", "log")), str(cmd.get("message", "")))
            elif op == "done":
                self.done = True
            elif op == "cancel":
                self.cancel_wait(cmd.get("slot"))
            elif op in JS_STEP_COMMANDS:
                self.js.command(cmd)
            elif op == "patch":
                self._marker(cmd)
            elif op == "continue":
                self.continued = True
                return  # nothing after continueAsNew runs

    def _schedule(self, raw: dict[str, Any]) -> None:
        try:
            slot = Slot(
                slot=int(raw["slot"]),
                kind=str(raw["kind"]),
                name=str(raw["name"]),
                args=list(raw.get("args") or []),
                at=int(raw["at"]),
                names=raw.get("names"),
                array=bool(raw.get("array")),
                duration=raw.get("duration"),
                options=dict(raw.get("wait") or {}),
                received=list(raw["received"]) if isinstance(raw.get("received"), list) else None,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            # the prelude builds every command; a malformed one means guest code
            # reached it (a defence in depth: fault the run, never raise)
            error = ScriptError(f"the sandbox sent a malformed command: {exc!r:.200}")
            raise Finished(self.faulted(error)) from exc
        if isinstance(slot.options.get("site"), dict):
            slot.options["site"] = call_site(
                self.script_lines(), self._written_site(slot.options["site"]), slot.name
            )
        problem = schema_problem(slot.options["schema"]) if "schema" in slot.options else None
        if problem is not None:
            error = ScriptError(
                f"{slot.name}: option schema is not a valid JSON Schema: {problem}", js_name="TypeError"
            )
            raise Finished(self.faulted(error))
        self.slots[slot.slot] = slot
        if slot.kind not in ("step", "jsstep"):
            self.unsettled[slot.slot] = slot
        if slot.kind in ("step", "jsstep"):  # jsstep: a JS step body to run
            record = self.waits.get(slot.slot)
            if record is None or not record.is_retry:
                self.runnable.append(slot.slot)
        elif slot.slot not in self.waits:
            self.waits[slot.slot] = WaitRecord(slot=slot.slot, resume_at_ms=self._resume_at(slot))

    def _marker(self, cmd: dict[str, Any]) -> None:
        """A live ``patched(name)``: a marker journaled before the next write."""
        try:
            entry = JournalEntry(
                slot=int(cmd["slot"]), type="patch", name=str(cmd["name"]), at_ms=int(cmd["at"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            error = ScriptError(f"the sandbox sent a malformed command: {exc!r:.200}")
            raise Finished(self.faulted(error)) from exc
        self.markers.append(entry)

    def next_slot(self) -> int:
        """A slot number for an entry that completes no slot (informational only)."""
        known = [e.slot + 1 for e in self.journal[-1:]] + [s + 1 for s in self.slots]
        return max(known, default=0)

    def _written_site(self, site: dict[str, Any]) -> dict[str, Any]:
        """``site`` as QuickJS reported it (in the script as the catch guard
        rewrote it, column in UTF-8 bytes) moved to the script as written."""
        try:
            line, column = int(site.get("line", 0)), int(site.get("column", 1))
        except (TypeError, ValueError):
            return site
        line, column = source_position(self.script, line, column, module=is_module(self.script))
        return {**site, "line": line, "column": column}

    def script_lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.script.splitlines()
        return self._lines

    def cancel_wait(self, slot: Any) -> None:
        """A wait that lost a race, or was cancelled with cancelWait: it is no
        longer pending, so no event, resume or timer can complete it."""
        rec = self.slots.get(slot) if isinstance(slot, int) else None
        if rec is None or rec.settled or rec.kind in ("step", "jsstep"):
            return
        rec.settled = True
        self.waits.pop(slot, None)

    def _resume_at(self, slot: Slot) -> int | None:
        if (
            slot.kind in ("suspend", "event")
            and slot.duration is not None
            and (slot.name != "sleep" or "sleep" not in self.config.suspends)
        ):
            try:
                delta = parse_duration(slot.duration)
            except ValueError as exc:
                raise Finished(self.faulted(ScriptError(f"{slot.name}: {exc}", js_name="TypeError"))) from exc
            return slot.at + int(delta.total_seconds() * 1000)
        fn = self.config.suspends.get(slot.name)
        if fn is None or fn.resume_at is None:
            return None
        when = fn.resume_at(*slot.args)
        if when is None:
            return None
        if isinstance(when, timedelta):
            return slot.at + int(when.total_seconds() * 1000)
        if isinstance(when, datetime):
            return datetime_to_ms(when)
        raise TypeError(
            f"resume_at of {slot.name!r} returned {type(when).__name__}; expected datetime, timedelta or None"
        )

    def _console(self, level: str, message: str) -> None:
        console_logger.log(_LOG_LEVELS.get(level, logging.INFO), message)
        if self.config.on_console is not None:
            self.config.on_console(level, message)

    # -- phase 2: the action ---------------------------------------------------
    def pending_waits(self) -> list[int]:
        """Slots of pending waits, in scheduling order (retry waits included)."""
        live = self.unsettled
        for slot in [k for k, rec in live.items() if rec.settled or self.slots.get(k) is not rec]:
            del live[slot]
        out = list(live)
        out += [slot for slot, rec in self.waits.items() if rec.is_retry]
        return sorted(set(out))

    async def apply(self, action: Action | None) -> None:
        if action is None or self.done or self.continued:
            if action is not None:
                action.check(self)  # raises: nothing is pending in a finished run
            return
        entry = action.check(self)
        if entry is not None and entry.type == "cancel":
            await self.cancel(entry)
            return
        if entry is None:  # a retry wait: the step runs again
            slot = action.target
            record = self.waits.pop(slot, None)
            self.failed_attempts[slot] = record.attempt if record else 0
            self.runnable.append(slot)
            return
        await self.complete(entry)

    # -- phase 3: live -------------------------------------------------------------
    async def complete(self, entry: JournalEntry) -> None:
        """Journal a completion, persist it, then deliver it to the script.
        An event short of a counting wait's ``count`` is journaled and
        delivered the same way, and the wait stays pending."""
        await self.flush_markers()
        slot = self.slots[entry.slot]
        if slot.completes(entry):
            self.waits.pop(entry.slot, None)
            slot.settled = True
        else:
            slot.received = [*(slot.received or ()), received_item(slot, entry)]
        await self._write(entry)
        try:
            args = encode([entry.slot, entry.model_dump(exclude_none=True)])
            self.hold(len(args))
            self.process_commands(self.sandbox.call_drain_take("__deliver", args))
        except ResourceLimitExceeded as exc:
            raise Finished(self.faulted(limit_error(exc))) from exc
        except JSError as exc:
            raise Finished(self.faulted(script_error(exc))) from exc

    async def flush_markers(self) -> None:
        """Journal the patch markers the script recorded since the last write."""
        while self.markers:
            await self._write(self.markers.pop(0))

    async def cancel(self, entry: JournalEntry) -> None:
        """Deliver a cancellation: journal it, drop every pending wait and queued
        step, and let the script's catch/finally blocks run. From here the run
        ends CANCELLED whatever the script does; its cleanup may write at most
        ``MAX_CLEANUP_ENTRIES`` journal entries within the advance's time budget."""
        await self.flush_markers()
        await self._write(entry)
        self.cancel_entry = entry
        for rec in self.slots.values():
            rec.settled = True
        self.waits.clear()
        self.runnable.clear()
        try:
            args = encode([entry.model_dump(exclude_none=True)])
            self.process_commands(self.sandbox.call_drain_take("__deliverCancel", args))
        except ResourceLimitExceeded as exc:
            raise Finished(self.faulted(limit_error(exc))) from exc
        except JSError as exc:
            raise Finished(self.faulted(script_error(exc))) from exc

    async def _write(self, entry: JournalEntry) -> None:
        """Append one entry to the journal and hand it to ``on_journal`` (write-ahead)."""
        if self.cancel_entry is not None:
            if self.cleanup_entries >= MAX_CLEANUP_ENTRIES:
                self.cut_short = f"the cleanup wrote more than {MAX_CLEANUP_ENTRIES} journal entries"
                raise Finished(self.cancelled())
            self.cleanup_entries += 1
        self.journal.append(entry)
        if self.on_journal is not None:
            began = time.perf_counter()
            write = JournalWrite(
                entry, len(self.journal) - 1, [self.waits[k] for k in sorted(self.waits)], self
            )
            ret = self.on_journal(write)
            if inspect.isawaitable(ret):
                await ret
            self.charge(time.perf_counter() - began)

    async def live(self) -> None:
        """Execute runnable steps until nothing runs: sync steps one at a time in
        slot order, async steps concurrently, completions in completion order."""
        queue: asyncio.Queue[tuple[Any, StepOutcome | None]] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not (self.done or self.continued):
                await self.flush_markers()
                if self.js.has_work():
                    await self.js.pump(queue, tasks)
                    continue
                if self.runnable:
                    slot = self.runnable.pop(0)
                    if self.slots[slot].kind == "jsstep":
                        self.js.start(slot)
                        continue
                    step = self.config.steps[self.slots[slot].name]
                    if step.is_async:
                        task = asyncio.ensure_future(self._run_step(slot, queue))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    else:
                        await self._finish_step(slot, await self._execute(slot))
                    continue
                # a finished task leaves `tasks` only in a later loop iteration (done
                # callbacks are scheduled): waiting on it would hang forever
                if queue.empty() and all(task.done() for task in tasks):
                    break
                key, outcome = await queue.get()
                if isinstance(key, tuple):  # an item of the JS step driver
                    await self.js.on_item(key, outcome)
                    continue
                assert outcome is not None
                await self._finish_step(key, outcome)
            await self.flush_markers()
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_step(self, slot: int, queue: asyncio.Queue[tuple[Any, StepOutcome | None]]) -> None:
        queue.put_nowait((slot, await self._execute(slot)))

    async def _execute(self, slot: int) -> StepOutcome:
        rec = self.slots[slot]
        ctx = StepContext(
            run_id=self.state.run_id,
            slot=slot,
            name=rec.name,
            attempt=self.failed_attempts.get(slot, 0) + 1,
            metadata=dict(self.state.metadata),
        )
        return await execute_step(self.config.steps[rec.name], rec.args, ctx, self.config.limits.payload)

    async def _finish_step(self, slot: int, outcome: StepOutcome) -> None:
        rec = self.slots[slot]
        if outcome.kind == "retry":
            assert outcome.retry_after is not None
            at = datetime_to_ms(self.config.clock()) + int(outcome.retry_after.total_seconds() * 1000)
            self.waits[slot] = WaitRecord(
                slot=slot,
                resume_at_ms=at,
                is_retry=True,
                attempt=self.failed_attempts.get(slot, 0) + 1,
                error=outcome.error,
            )
            return
        at_ms = datetime_to_ms(self.config.clock())
        entry = outcome_entry(slot, rec.name, outcome, at_ms)
        await self.complete(entry)

    # -- phase 4: the outcome ------------------------------------------------------
    def snapshot_state(self) -> WorkflowState:
        waits = [self.waits[k] for k in sorted(self.waits)]
        return self.state.model_copy(update={"journal": list(self.journal), "waits": waits})

    def result(self) -> WorkflowResult:
        if self.cancel_entry is not None:
            return self.cancelled()
        try:
            info = self.sandbox.call("__outcome")
        except ResourceLimitExceeded as exc:
            return self.faulted(limit_error(exc))
        if info.get("continued") is not None:
            return self._continued(info["continued"])
        outcome = info.get("outcome")
        state = self.snapshot_state()
        if outcome and outcome["status"] == "completed":
            return self._completed(outcome["json"], state)
        if outcome:
            return WorkflowResult(
                WorkflowStatus.FAULTED, state, error=error_from_description(outcome["error"])
            )
        waits = self.describe_waits()
        if waits:
            return WorkflowResult(WorkflowStatus.SUSPENDED, state, waits=waits)
        return WorkflowResult(
            WorkflowStatus.FAULTED, state, error=ScriptError(self._stuck(), js_name="Error")
        )

    def _stuck(self) -> str:
        """Why the run awaits nothing the engine knows: a wait that lost a race, if any."""
        try:
            lost = self.sandbox.call("__lostRace")
        except (ResourceLimitExceeded, JSError):
            lost = None
        if isinstance(lost, dict):
            return lost_race_message(lost)
        return (
            "the workflow is awaiting something the engine does not know about: no step, "
            "suspend function, sleep or waitForEvent is pending (a promise that never settles?)"
        )

    def _completed(self, text: str, state: WorkflowState) -> WorkflowResult:
        error = value_error("the workflow's return value", text, self.config.limits.payload)
        if error is not None:
            return WorkflowResult(WorkflowStatus.FAULTED, state, error=error)
        return WorkflowResult(WorkflowStatus.COMPLETED, state, value=json.loads(text))

    def _continued(self, args_json: str) -> WorkflowResult:
        error = value_error("the continueAsNew arguments", args_json, self.config.limits.payload)
        if error is not None:
            return self.faulted(error)
        old = self.state
        fresh = WorkflowState(
            run_id=uuid.uuid4().hex,
            parent_run_id=old.run_id,
            entry_point=old.entry_point,
            arguments=json.loads(args_json),
            started_at_ms=datetime_to_ms(self.config.clock()),
            metadata=dict(old.metadata),
        )
        return WorkflowResult(WorkflowStatus.CONTINUED_AS_NEW, fresh)

    def describe_waits(self) -> list[Wait]:
        out = []
        for slot in self.pending_waits():
            rec = self.slots.get(slot)
            if rec is not None:
                out.append(build_wait(rec, self.waits.get(slot), self.config))
        return out

    def fail(self, exc: ResourceLimitExceeded | JSError | WorkflowError) -> NoReturn:
        """End the run faulted (raises ``Finished``): a limit the sandbox hit, an
        error the script threw, or a workflow error a helper such as ``JsSteps``
        found; helpers call this instead of importing this module back."""
        if isinstance(exc, ResourceLimitExceeded):
            error: WorkflowError = limit_error(exc)
        elif isinstance(exc, JSError):
            error = script_error(exc)
        else:
            error = exc
        raise Finished(self.faulted(error)) from exc

    def faulted(self, error: WorkflowError) -> WorkflowResult:
        if self.cancel_entry is not None:  # the cleanup failed or overran: still cancelled
            self.cut_short = self.cut_short or str(error)
            return self.cancelled()
        return WorkflowResult(WorkflowStatus.FAULTED, self.snapshot_state(), error=error)

    def cancelled(self) -> WorkflowResult:
        """The outcome of a run whose cancellation was delivered."""
        assert self.cancel_entry is not None
        error = self.cancel_entry.error or {}
        if self.cut_short is None and self.pending_waits():
            self.cut_short = "the cleanup left a wait pending (a durable step retry?)"
        state = self.snapshot_state().model_copy(update={"waits": []})
        return WorkflowResult(
            WorkflowStatus.CANCELLED,
            state,
            error=WorkflowCancelledError(error.get("reason"), self.cut_short),
        )

    # -- lifecycle reads: patches taken, queries ------------------------------------
    def lifecycle(self) -> dict[str, Any]:
        """What the script did with patches and queries so far (``__lifecycle``)."""
        try:
            info = self.sandbox.call("__lifecycle")
        except (ResourceLimitExceeded, JSError):
            return {"patches": [], "queries": []}
        return info if isinstance(info, dict) else {"patches": [], "queries": []}

    def query(self, name: str, args_json: str) -> Any:
        """Answer query ``name`` from the script's current state; nothing is journaled."""
        try:
            answer = self.sandbox.call_encoded("__query", f"[{encode(name)},{args_json}]")
        except ResourceLimitExceeded as exc:
            raise QueryError(name, limit_error(exc)) from exc
        except JSError as exc:
            raise QueryError(name, script_error(exc)) from exc
        if answer.get("missing"):
            raise QueryNotFoundError(name, [str(n) for n in answer.get("names") or []])
        if "error" in answer:
            raise QueryError(name, error_from_description(answer["error"]))
        text = str(answer.get("json", "null"))
        error = value_error(f"the answer of query {name!r}", text, self.config.limits.payload)
        if error is not None:
            raise QueryError(name, error)
        return json.loads(text)


# -- helpers -------------------------------------------------------------------------
_EXPORT_RE = re.compile(r"(^|[;\n}])\s*export\s", re.MULTILINE)


def is_module(script: str) -> bool:
    return _EXPORT_RE.search(script) is not None


_ENTRY_GLOBAL = "__jsflow_entry"
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def is_identifier(name: str) -> bool:
    return _IDENTIFIER.fullmatch(name) is not None


def _with_entry_capture(script: str, entry: str) -> str:
    """Append a line that publishes the entry point from inside the script's
    own scope: the script runs as eval code, so a top-level ``const main``
    or ``let main`` is not a global and only code in that scope can see it."""
    if not is_identifier(entry):
        return script
    return (
        f"{script}\n;globalThis.{_ENTRY_GLOBAL} = "
        f"(() => {{ try {{ return {entry}; }} catch (e) {{ return undefined; }} }})();\n"
    )


def _seed(run_id: str) -> list[int]:
    digest = hashlib.sha256(run_id.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return words if any(words) else [1, 2, 3, 4]


_JOURNAL = TypeAdapter(list[JournalEntry])


def _journal_json(journal: list[JournalEntry]) -> str:
    """The journal as JSON text for the sandbox, serialised in one pass by
    pydantic's core (a per-entry model_dump costs ~1 us an entry)."""
    try:
        return _JOURNAL.dump_json(journal, exclude_none=True).decode("utf-8")
    except (ValueError, UnicodeError):  # lone surrogates: the slow, exact path
        return encode([e.model_dump(exclude_none=True) for e in journal])


def received_item(slot: Slot, entry: JournalEntry) -> Any:
    """What a counting wait received from one event entry, as the script sees it."""
    return {"name": entry.event, "payload": entry.result} if slot.array else entry.result

"""JS steps: ``await step(name, async () => {...}, {retries, backoff, factor})``.

A JS step is a durable unit written in JS. It takes one slot when called and
is journaled like a Python step (type ``"step"``/``"step_error"``, name = the
step's name), so a renamed step is drift (``JournalCompatibilityError``) and a
journaled step is never run again: on replay its promise settles from the
journal and its body is skipped.

The body runs live, inside the sandbox, driven from here: ``start`` calls the
JS op ``__runStep`` and drains the jobs it queued. Whatever the body calls in
that window takes no slot (the body does not run on replay, so slots it took
would shift every later one). Python steps and ``fetch`` called from a body go
through the *ephemeral channel*: JS emits ``{"op": "ephemeral", id, ...}``,
this module runs the function as a task, and delivers the outcome with
``__ephemeral`` + a drain in the same window; nothing is journaled but the
step's final result. Suspensions (``sleep``, ``waitForEvent``, suspend
functions, nested ``step``) inside a body reject with a ``TypeError``. The
body's ``Math.random`` uses its own stream, so it does not shift the
workflow's.

Retries and backoff. ``retries: n`` allows n more attempts after a thrown
error; before retry k the step waits ``backoff * factor**(k-1)`` ms
(``factor`` defaults to 1: a constant backoff). The sandbox has no timers, so
the wait happens here, and how depends on its length:

- up to ``INLINE_BACKOFF_MAX`` seconds the wait is in-process: an asyncio
  sleep while the rest of the workflow (other steps, other fetches) keeps
  running, and the engine call returns only when the step has finished;
- a longer wait becomes a *durable retry wait*, exactly like a Python step's
  ``RetryableStepError``: the run suspends with a ``Wait`` (``is_retry=True``,
  ``function_name`` = the step name, ``resume_at`` = now + backoff), the
  attempt count is kept in the state, and resuming that wait runs the next
  attempt. A host's timers resume it on time; no thread sleeps for minutes.

In-process retries are charged to the engine call's time budget
(``Limits.time``), the backoff plus ``RETRY_COST`` seconds per attempt, so a
step with ``retries: 1e9`` ends the call promptly with ``ResourceLimitError``
instead of keeping a worker busy forever.

Attempts and their errors are never journaled: only the final value, or the
last attempt's error (replayed as the same JS error name and message).

A body must talk to the workflow only through its return value: it may run
again (retries, recovery after a crash mid-step), and it does not run on
replay, so side effects on workflow variables would differ between live and
replay. Code that a body resumes by resolving a promise the workflow created
elsewhere is outside this model.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from js_runtime import MAX_NESTING, JSError, ResourceLimitExceeded, encode, nesting_over

from ._durations import MAX_DURATION
from ._errors import ResourceLimitError, ScriptError
from ._state import WaitRecord, datetime_to_ms
from ._steps import StepContext, StepOutcome, encode_result, execute_step, outcome_entry

if TYPE_CHECKING:
    from ._run import Run

INLINE_BACKOFF_MAX = 1.0
"""Backoffs up to this many seconds are waited in-process; longer ones suspend."""
RETRY_COST = 0.001
"""Seconds of the time budget charged per in-process retry, on top of its backoff."""

COMMANDS = frozenset({"jsstep", "ephemeral"})

Queue = asyncio.Queue[tuple[Any, StepOutcome | None]]


class JsSteps:
    """The run loop's helper for JS step bodies and their ephemeral calls.

    Queue items it owns are keyed by tuples (``("e", id)`` for an ephemeral
    outcome, ``("again", slot, attempt)`` after an in-process backoff); the run
    loop's own items are keyed by int slots.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.attempts: dict[int, int] = {w.slot: w.attempt for w in run.state.waits if w.is_retry}
        self.requests: list[dict[str, Any]] = []  # ephemeral calls not started yet
        self.finished: list[dict[str, Any]] = []  # step attempts that ended

    # -- from the sandbox --------------------------------------------------------
    def command(self, cmd: dict[str, Any]) -> None:
        if cmd.get("op") == "ephemeral":
            self.requests.append(cmd)
        else:
            self.finished.append(cmd)

    def has_work(self) -> bool:
        return bool(self.requests or self.finished)

    # -- driving bodies ------------------------------------------------------------
    def start(self, slot: int, attempt: int | None = None) -> None:
        """Run one attempt of the body of the JS step at ``slot``."""
        if attempt is None:
            attempt = self.attempts.get(slot, 0) + 1
        self.attempts[slot] = attempt
        self._in_window("__runStep", slot, attempt)

    def _in_window(self, op: str, *args: Any) -> None:
        run, sb = self.run, self.run.sandbox
        try:
            sb.call_and_drain(op, encode(list(args)))
            sb.call("__endStep")  # only on success: after a limit the run is over anyway
            run.process_commands(sb.take_commands())
        except (ResourceLimitExceeded, JSError) as exc:
            run.fail(exc)

    async def pump(self, queue: Queue, tasks: set[asyncio.Task[None]]) -> None:
        """Start requested ephemeral calls; journal or retry finished attempts."""
        while self.requests:
            req = self.requests.pop(0)
            self._spawn(self._ephemeral(req, queue), tasks)
        while self.finished:
            await self._finish(self.finished.pop(0), queue, tasks)

    async def on_item(self, key: tuple[Any, ...], outcome: StepOutcome | None) -> None:
        if key[0] == "e":
            assert outcome is not None
            payload = {"value": outcome.value} if outcome.kind == "ok" else {"error": outcome.error}
            self._in_window("__ephemeral", key[1], payload)
        elif key[0] == "again":
            slot, attempt = key[1], key[2]
            if not self.run.slots[slot].settled:
                self.start(slot, attempt)

    @staticmethod
    def _spawn(coro: Any, tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _ephemeral(self, req: dict[str, Any], queue: Queue) -> None:
        run = self.run
        name = str(req.get("name"))
        fn = run.config.steps.get(name)
        if fn is None:  # pragma: no cover - JS only defines registered names
            outcome = StepOutcome("error", error={"name": "TypeError", "message": f"{name} is not a step"})
        else:
            owner = int(req["owner"])
            ctx = StepContext(
                run_id=run.state.run_id,
                slot=owner,
                name=name,
                attempt=int(req.get("attempt", 1)),
                metadata=dict(run.state.metadata),
            )
            outcome = await execute_step(fn, list(req.get("args") or []), ctx, run.config.limits.payload)
            if outcome.kind == "retry":  # no durable wait inside a body: the step's retries decide
                outcome = StepOutcome("error", error=outcome.error)
        queue.put_nowait((("e", int(req["id"])), outcome))

    async def _finish(self, cmd: dict[str, Any], queue: Queue, tasks: set[asyncio.Task[None]]) -> None:
        try:
            await self._finish_attempt(cmd, queue, tasks)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # see Run.process_commands
            self.run.fail(ScriptError(f"the sandbox sent a malformed command: {exc!r:.200}"))

    async def _finish_attempt(
        self, cmd: dict[str, Any], queue: Queue, tasks: set[asyncio.Task[None]]
    ) -> None:
        run = self.run
        slot, attempt = int(cmd["slot"]), int(cmd["attempt"])
        rec = run.slots[slot]
        if "json" in cmd:
            text = str(cmd["json"])
            if nesting_over(text):
                error = {"name": "TypeError", "message": f"step {rec.name!r} returned a value nested "
                         f"more than {MAX_NESTING} levels deep"}  # fmt: skip
                outcome = StepOutcome("error", error=error)
            else:
                outcome = encode_result(rec.name, json.loads(text), run.config.limits.payload)
        else:
            outcome = StepOutcome("error", error=dict(cmd.get("error") or {}))
            delay = _retry_delay(cmd.get("retry_ms"))
            if delay is not None:
                self._retry(slot, attempt, delay, outcome, queue, tasks)
                return
        at_ms = datetime_to_ms(run.config.clock())
        entry = outcome_entry(slot, rec.name, outcome, at_ms)
        self.attempts.pop(slot, None)
        await run.complete(entry)

    def _retry(
        self,
        slot: int,
        attempt: int,
        delay: float,
        outcome: StepOutcome,
        queue: Queue,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        if delay <= INLINE_BACKOFF_MAX:
            self._charge_retry(slot, delay)

            async def again() -> None:
                await asyncio.sleep(delay)
                queue.put_nowait((("again", slot, attempt + 1), None))

            self._spawn(again(), tasks)
            return
        run = self.run
        at = datetime_to_ms(run.config.clock()) + round(delay * 1000)
        run.waits[slot] = WaitRecord(
            slot=slot, resume_at_ms=at, is_retry=True, attempt=attempt, error=outcome.error
        )

    def _charge_retry(self, slot: int, delay: float) -> None:
        run = self.run
        try:
            run.sandbox.charge(delay + RETRY_COST)
        except ResourceLimitExceeded:
            run.fail(
                ResourceLimitError(
                    f"step {run.slots[slot].name!r}: its retries and backoffs exceeded the time limit "
                    f"of {run.config.limits.time:g}s",
                    limit="time",
                )
            )


def _retry_delay(delay_ms: Any) -> float | None:
    """The backoff before the next attempt in seconds, or None for no retry:
    a backoff that overflowed (``backoff * factor**k``) or would end past
    ``MAX_DURATION`` ends the retries, as the last attempt would."""
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, int | float):
        return None
    if not 0 <= delay_ms <= MAX_DURATION.total_seconds() * 1000:  # NaN fails too
        return None
    return float(delay_ms) / 1000

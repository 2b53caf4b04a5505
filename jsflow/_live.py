"""``LiveRun``: one workflow run held open across advances.

Why an explicit object with a lifetime (in the style of quickjs-emscripten's
runtime and context): a host advances an instance in steps (load, advance
with a write-ahead journal, save), and a warm-run cache wants to keep a
suspended run's sandbox and hand it the next event without replaying. Both
need the run as a value: opened on (script, state), advanced by typed
actions, read, and closed. ``WorkflowEngine.run_workflow`` and friends are
"open, advance once, close".

Budget: ``limits.time`` covers one advance (its JS time plus the time spent
in ``on_journal``); opening (load and replay) shares the budget of the first
advance after it, so "open + advance" costs what one engine call did.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._actions import Action, RaiseEvent, Resume
from ._errors import (
    JournalCompatibilityError,
    QueryError,
    ResourceLimitError,
    RunClosedError,
    RunFinishedError,
    WorkflowError,
)
from ._payload import validate_payload
from ._run import Finished, JournalHook, Run
from ._state import Wait, WorkflowResult, WorkflowState, WorkflowStatus

T = TypeVar("T")


@dataclass(frozen=True)
class ReplayOutcome:
    """What replaying a journal against a script found, without running anything.

    ``ok`` is False when the replay faulted: ``error`` says why (a
    ``JournalCompatibilityError`` for drift, a ``ScriptError`` for a script
    that no longer loads, a ``ResourceLimitError``). ``waits`` are the waits
    pending after the replay (empty when not ok).
    """

    ok: bool
    error: WorkflowError | None = None
    waits: list[Wait] = field(default_factory=list)
    #: the names ``patched()`` returned true for during the replay (markers found)
    patches: list[str] = field(default_factory=list)


class LiveRun:
    """A run opened by ``WorkflowEngine.open_run``; use it from one thread at a time.

    ``advance(action)`` applies one action (``Resume``, ``RaiseEvent``,
    ``Timeout``, or None to proceed) and runs until nothing runs; the run
    stays open while it is suspended and can be advanced again without
    replaying. After it completes, faults or continues as new, ``advance``
    raises ``RunFinishedError``. ``close()`` releases the sandbox; any use
    after it raises ``RunClosedError``.
    """

    def __init__(self, run: Run, payload_limit: int) -> None:
        self._run: Run | None = run
        self._payload_limit = payload_limit
        self._result: WorkflowResult | None = None
        self._fresh = True  # the budget armed by open() is still unused
        try:
            run.start()
        except Finished as done:
            self._result = done.result

    # -- lifetime ---------------------------------------------------------------
    def close(self) -> None:
        """Release the sandbox. Idempotent."""
        if self._run is not None:
            self._run.close()
            self._run = None

    @property
    def closed(self) -> bool:
        return self._run is None

    def __enter__(self) -> LiveRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _live(self) -> Run:
        if self._run is None:
            raise RunClosedError("the run is closed")
        return self._run

    # -- reading ----------------------------------------------------------------
    @property
    def result(self) -> WorkflowResult | None:
        """The outcome of the last advance (or of opening, if that already faulted)."""
        return self._result

    @property
    def finished(self) -> bool:
        """True once the run completed, faulted or continued as new."""
        return self._result is not None and self._result.status is not WorkflowStatus.SUSPENDED

    @property
    def state(self) -> WorkflowState:
        """The state as it is now (the journal so far and the pending waits)."""
        return self._live().snapshot_state()

    @property
    def waits(self) -> list[Wait]:
        """The pending waits, in scheduling order."""
        return self._live().describe_waits()

    @property
    def journal_length(self) -> int:
        return len(self._live().journal)

    @property
    def memory_bytes(self) -> int:
        """Bytes the run's QuickJS runtime holds (``malloc_size``): what keeping it costs."""
        return int(self._live().sandbox.memory_usage().get("malloc_size", 0))

    # -- advancing ----------------------------------------------------------------
    async def aadvance(
        self, action: Action | None = None, *, on_journal: JournalHook | None = None
    ) -> WorkflowResult:
        """Apply ``action`` and run until nothing runs; returns the outcome.

        ``on_journal(write)`` receives each new completion (a ``JournalWrite``)
        before the script sees it; if it raises, the advance stops and the
        exception propagates (the run should then be closed). Invalid actions
        raise before anything changes: ``WaitNotPendingError``,
        ``EventNotAwaitedError``, ``InvalidPayloadError``, ``PayloadTooLargeError``.
        """
        run = self._live()
        if self.finished:
            assert self._result is not None
            raise RunFinishedError(self._result.status.value)
        self._check_values(action)
        if not self._fresh:
            run.start_budget()
        self._fresh = False
        run.on_journal = on_journal
        try:
            await run.apply(action)
            await run.live()
            self._result = run.result()
        except Finished as done:
            self._result = done.result
        finally:
            run.on_journal = None
        return self._result

    def advance(
        self, action: Action | None = None, *, on_journal: JournalHook | None = None
    ) -> WorkflowResult:
        """Sync ``aadvance`` (async steps run on a private event loop)."""
        return run_sync(self.aadvance(action, on_journal=on_journal))

    def _check_values(self, action: Action | None) -> None:
        limit = self._payload_limit
        if isinstance(action, Resume):
            validate_payload(action.value, limit=limit, what="the resume value")
        elif isinstance(action, RaiseEvent):
            if not isinstance(action.name, str) or not action.name:
                raise TypeError("the event name must be a non-empty string")
            validate_payload(action.name, limit=limit, what="the event name")
            validate_payload(action.payload, limit=limit, what="the event payload")

    # -- replay only -------------------------------------------------------------
    def replay_outcome(self) -> ReplayOutcome:
        """What opening found: drift or a load failure, or the pending waits."""
        if self._result is not None and self._result.status is WorkflowStatus.FAULTED:
            return ReplayOutcome(ok=False, error=self._result.error)
        run = self._live()
        patches = [str(p) for p in run.lifecycle().get("patches") or []]
        return ReplayOutcome(ok=True, waits=run.describe_waits(), patches=patches)

    # -- queries -------------------------------------------------------------------
    @property
    def query_names(self) -> list[str]:
        """The names of the queries the script has defined so far (``defineQuery``)."""
        return [str(n) for n in self._live().lifecycle().get("queries") or []]

    def query(self, name: str, *args: Any) -> Any:
        """Answer query ``name`` from the run's current state, within a fresh time
        budget; nothing is journaled. ``QueryNotFoundError`` for an unknown name;
        ``QueryError`` when the handler throws, is async, schedules a step, suspend
        or wait, or runs past the time budget. A handler may change the script's
        variables: a caller that must not see that runs queries on a fresh replay
        (``WorkflowEngine.query``)."""
        run = self._live()
        if not isinstance(name, str) or not name:
            raise TypeError("the query name must be a non-empty string")
        text = validate_payload(list(args), limit=self._payload_limit, what="the query arguments")
        error = self._result.error if self._result is not None else None
        if isinstance(error, ResourceLimitError | JournalCompatibilityError):
            raise QueryError(name, error)  # the sandbox is spent, or its state is not the instance's
        if not self._fresh:
            run.start_budget()
        self._fresh = False
        return run.query(name, text)


# -- running coroutines from sync code ------------------------------------------------
_loops = threading.local()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code: on a private per-thread
    loop, or on a helper thread when called from inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_loops, "loop", None)
        if loop is None or loop.is_closed():
            loop = _loops.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jsflow-sync") as pool:
        return pool.submit(asyncio.run, coro).result()

"""WorkflowEngine: registrations plus the sync and async ways to advance a run.

Every call builds a fresh sandbox and replays the journal (``Run``). The sync
methods drive the same coroutine on a private per-thread event loop, so async
step functions work from sync code; from inside a running loop they hop to a
helper thread rather than fail.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from js_runtime import MAX_NESTING, nesting_over

from ._actions import Action, RaiseEvent, Resume, Timeout
from ._errors import PayloadTooLargeError
from ._fetch import DEFAULT_MAX_RESPONSE_BYTES, Fetcher, Resolver
from ._retry import RetryPolicy
from ._run import Finished, JournalHook, Run, RunConfig, is_identifier
from ._state import Limits, WorkflowResult, WorkflowState, datetime_to_ms
from ._steps import StepFunction, SuspendFunction, is_async_callable, json_size

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
_local = threading.local()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _run_coro(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_local, "loop", None)
        if loop is None or loop.is_closed():
            loop = _local.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jsflow-sync") as pool:
        return pool.submit(asyncio.run, coro).result()


class WorkflowEngine:
    """Runs workflow scripts: one call advances one run by one event."""

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        limits: Limits | None = None,
        on_console: Callable[[str, str], None] | None = None,
    ) -> None:
        self.clock = clock or _utcnow
        self.limits = limits or Limits()
        self.on_console = on_console
        self._steps: dict[str, StepFunction] = {}
        self._suspends: dict[str, SuspendFunction] = {}
        self._policies: dict[str, RetryPolicy] = {}
        self._executes: list[str] = []
        self._values: dict[str, Any] = {}
        self._fetcher: Fetcher | None = None

    # -- registration ----------------------------------------------------------
    def register_step_function(
        self, name: str, fn: Callable[..., Any], *, retry: RetryPolicy | str | None = None
    ) -> WorkflowEngine:
        _check_name(name)
        policy = self._policy(retry)
        self._suspends.pop(name, None)
        self._steps[name] = StepFunction(name, fn, policy, is_async_callable(fn))
        return self

    def register_suspend_function(
        self, name: str, resume_at: Callable[..., Any] | None = None
    ) -> WorkflowEngine:
        _check_name(name)
        self._steps.pop(name, None)
        self._suspends[name] = SuspendFunction(name, resume_at)
        return self

    # -- private hook for jsflow.host: reserved internal names ------------------------
    def _register_internal(
        self,
        name: str,
        *,
        step: Callable[..., Any] | None = None,
        resume_at: Callable[..., Any] | None = None,
    ) -> None:
        """Register a step (``step`` given) or suspend function under a reserved
        ``__j`` name, which the public methods refuse so users cannot collide
        with it. Used by ``jsflow.host`` for ``createHook``; not public API."""
        if not name.startswith("__j"):
            raise ValueError("internal names start with '__j'")
        if step is not None:
            self._suspends.pop(name, None)
            self._steps[name] = StepFunction(name, step, None, is_async_callable(step))
        else:
            self._steps.pop(name, None)
            self._suspends[name] = SuspendFunction(name, resume_at)

    def step(self, name: str | None = None, *, retry: RetryPolicy | str | None = None) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            self.register_step_function(name or fn.__name__, fn, retry=retry)
            return fn

        return decorate

    def suspend(
        self, name: str | None = None, *, resume_at: Callable[..., Any] | None = None
    ) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            self.register_suspend_function(name or fn.__name__, resume_at=resume_at or fn)
            return fn

        return decorate

    def add_retry_policy(self, name: str, policy: RetryPolicy) -> WorkflowEngine:
        self._policies[name] = policy
        return self

    def enable_fetch(
        self,
        client: httpx.Client | httpx.AsyncClient | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | str | None = None,
        allow_hosts: Sequence[str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        resolver: Resolver | None = None,
    ) -> WorkflowEngine:
        """Give scripts a WHATWG-style ``fetch(url, init)`` (see ``_fetch.py``).

        Each ``await fetch(...)`` in the workflow is one journaled step named
        ``fetch`` (replay never re-sends); inside a JS ``step()`` it belongs to
        the step. ``retry`` retries transport errors in-process. Hosts outside
        ``allow_hosts`` (when given) and non-public addresses not explicitly
        allowed are refused before connecting. ``resolver(host, port)`` replaces
        DNS (tests, or a resolver the caller controls); it returns addresses.
        """
        if "fetch" in self._steps or "fetch" in self._suspends:
            raise ValueError("a step or suspend function named 'fetch' is already registered")
        self._fetcher = Fetcher(
            client,
            timeout=timeout,
            retry=self._policy(retry),
            allow_hosts=allow_hosts,
            max_response_bytes=max_response_bytes,
            resolver=resolver,
        )
        return self

    def enable_external_events(self) -> WorkflowEngine:
        """Parity with Jint.Workflows: waitForEvent is always available."""
        return self

    def execute(self, code: str) -> WorkflowEngine:
        """JS evaluated in every fresh sandbox before the workflow script."""
        self._executes.append(code)
        return self

    def set_value(self, name: str, value: Any) -> WorkflowEngine:
        """A JSON value made a global in every sandbox."""
        _check_name(name)
        json.dumps(value, allow_nan=False)  # TypeError/ValueError now, not at run time
        self._values[name] = value
        return self

    def _policy(self, retry: RetryPolicy | str | None) -> RetryPolicy | None:
        if retry is None or isinstance(retry, RetryPolicy):
            return retry
        try:
            return self._policies[retry]
        except KeyError:
            raise ValueError(f"unknown retry policy {retry!r}; add it with add_retry_policy") from None

    def _config(self) -> RunConfig:
        steps = dict(self._steps)
        if self._fetcher is not None:  # fetch is a built-in async step
            steps["fetch"] = StepFunction("fetch", self._fetcher, None, True)
        return RunConfig(
            steps,
            dict(self._suspends),
            list(self._executes),
            dict(self._values),
            self.limits,
            self.clock,
            self.on_console,
            fetch=self._fetcher is not None,
        )

    # -- async API -------------------------------------------------------------------
    async def arun_workflow(
        self,
        script: str,
        entry_point: str = "main",
        *args: Any,
        run_id: str | None = None,
        metadata: dict[str, str] | None = None,
        on_journal: JournalHook | None = None,
    ) -> WorkflowResult:
        self._check_payload("an argument", list(args))
        state = WorkflowState(
            run_id=run_id or uuid.uuid4().hex,
            entry_point=entry_point,
            arguments=list(args),
            started_at_ms=datetime_to_ms(self.clock()),
            metadata=dict(metadata or {}),
        )
        return await self._advance(script, state, None, on_journal)

    async def aresume_workflow(
        self,
        script: str,
        state: WorkflowState | str,
        resume_value: Any = None,
        *,
        wait_id: int | None = None,
        on_journal: JournalHook | None = None,
    ) -> WorkflowResult:
        self._check_payload("the resume value", resume_value)
        action = Resume(value=resume_value, wait_id=wait_id)
        return await self._advance(script, WorkflowState.coerce(state), action, on_journal)

    async def araise_event(
        self,
        script: str,
        state: WorkflowState | str,
        name: str,
        payload: Any = None,
        *,
        on_journal: JournalHook | None = None,
    ) -> WorkflowResult:
        self._check_payload("the event payload", payload)
        action = RaiseEvent(name=str(name), payload=payload)
        return await self._advance(script, WorkflowState.coerce(state), action, on_journal)

    async def atimeout_event(
        self,
        script: str,
        state: WorkflowState | str,
        *,
        wait_id: int | None = None,
        on_journal: JournalHook | None = None,
    ) -> WorkflowResult:
        action = Timeout(wait_id=wait_id)
        return await self._advance(script, WorkflowState.coerce(state), action, on_journal)

    async def arecover_workflow(
        self, script: str, state: WorkflowState | str, *, on_journal: JournalHook | None = None
    ) -> WorkflowResult:
        """Replay and run whatever was in flight, with no new event: how a host
        finishes a run whose process died mid-step."""
        return await self._advance(script, WorkflowState.coerce(state), None, on_journal)

    async def _advance(
        self, script: str, state: WorkflowState, action: Action | None, on_journal: JournalHook | None
    ) -> WorkflowResult:
        if not isinstance(script, str):
            raise TypeError(f"script must be a str, not {type(script).__name__}")
        run = Run(self._config(), script, state, on_journal)
        try:
            run.start()
            await run.apply(action)
            await run.live()
            return run.result()
        except Finished as done:
            return done.result
        finally:
            run.close()

    def _check_payload(self, what: str, value: Any) -> None:
        try:
            text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        except RecursionError:
            text = "[" * (MAX_NESTING + 1)
        if nesting_over(text):
            raise TypeError(f"{what} nests more than {MAX_NESTING} levels deep")
        size = json_size(text, value)
        if size > self.limits.payload:
            raise PayloadTooLargeError(what, size, self.limits.payload)

    # -- sync API ---------------------------------------------------------------------
    def run_workflow(
        self,
        script: str,
        entry_point: str = "main",
        *args: Any,
        run_id: str | None = None,
        metadata: dict[str, str] | None = None,
        on_journal: JournalHook | None = None,
    ) -> WorkflowResult:
        return _run_coro(
            self.arun_workflow(
                script, entry_point, *args, run_id=run_id, metadata=metadata, on_journal=on_journal
            )
        )

    def resume_workflow(
        self,
        script: str,
        state: WorkflowState | str,
        resume_value: Any = None,
        *,
        wait_id: int | None = None,
        on_journal: JournalHook | None = None,
    ) -> WorkflowResult:
        return _run_coro(
            self.aresume_workflow(script, state, resume_value, wait_id=wait_id, on_journal=on_journal)
        )

    def raise_event(
        self,
        script: str,
        state: WorkflowState | str,
        name: str,
        payload: Any = None,
        *,
        on_journal: JournalHook | None = None,
    ) -> WorkflowResult:
        return _run_coro(self.araise_event(script, state, name, payload, on_journal=on_journal))

    def timeout_event(
        self,
        script: str,
        state: WorkflowState | str,
        *,
        wait_id: int | None = None,
        on_journal: JournalHook | None = None,
    ) -> WorkflowResult:
        return _run_coro(self.atimeout_event(script, state, wait_id=wait_id, on_journal=on_journal))

    def recover_workflow(
        self, script: str, state: WorkflowState | str, *, on_journal: JournalHook | None = None
    ) -> WorkflowResult:
        return _run_coro(self.arecover_workflow(script, state, on_journal=on_journal))

    def workflow(self, script: str, entry_point: str = "main") -> BoundWorkflow:
        return BoundWorkflow(self, script, entry_point)


class BoundWorkflow:
    """A script bound to an engine and entry point, for shorter call sites."""

    def __init__(self, engine: WorkflowEngine, script: str, entry_point: str) -> None:
        self.engine, self.script, self.entry_point = engine, script, entry_point

    def run(
        self, *args: Any, run_id: str | None = None, metadata: dict[str, str] | None = None
    ) -> WorkflowResult:
        return self.engine.run_workflow(
            self.script, self.entry_point, *args, run_id=run_id, metadata=metadata
        )

    def resume(
        self, state: WorkflowState | str, resume_value: Any = None, wait_id: int | None = None
    ) -> WorkflowResult:
        return self.engine.resume_workflow(self.script, state, resume_value, wait_id=wait_id)

    def raise_event(self, state: WorkflowState | str, name: str, payload: Any = None) -> WorkflowResult:
        return self.engine.raise_event(self.script, state, name, payload)

    def timeout_event(self, state: WorkflowState | str, wait_id: int | None = None) -> WorkflowResult:
        return self.engine.timeout_event(self.script, state, wait_id=wait_id)


_RESERVED = frozenset(
    {
        "sleep_",
        "step",  # the JS step() global
        "__proto__",
        "constructor",
        "continueAsNew",
        "waitForEvent",
        "console",
        "Date",
        "Math",
        "globalThis",
        "Promise",
        "JSON",
    }
)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not is_identifier(name):
        raise ValueError(f"{name!r} is not a valid JavaScript identifier")
    if name in _RESERVED or name.startswith("__j"):
        raise ValueError(f"{name!r} is reserved by jsflow")

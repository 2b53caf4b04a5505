"""WorkflowEngine: registrations, and the ways to open and advance a run.

Every ``run_workflow``-style call opens a ``LiveRun`` (a fresh sandbox that
loads the script and replays the journal), advances it once and closes it.
``open_run`` hands the run itself to callers that keep it (the host, a
warm-run cache). The sync methods drive the same coroutines on a private
per-thread event loop (``run_sync``), so async step functions work from
sync code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ._actions import Action, Cancel, RaiseEvent, Resume, Timeout
from ._check import ScriptCheck, check_script
from ._extension import Extension
from ._live import LiveRun, ReplayOutcome, run_sync
from ._names import check_registration_name
from ._payload import validate_payload
from ._retry import RetryPolicy
from ._run import JournalHook, JournalWrite, Run, RunConfig
from ._state import Limits, WorkflowResult, WorkflowState, datetime_to_ms
from ._steps import StepFunction, SuspendFunction, is_async_callable
from ._types import declarations
from ._waits import schema_of

if TYPE_CHECKING:  # httpx (and its CLI's imports) cost ~20 MB of RSS: loaded by enable_fetch
    import httpx

    from ._fetch import Fetcher, Resolver

#: fetch()'s cap on a response body (after content decoding)
DEFAULT_MAX_RESPONSE_BYTES = 10 * 2**20

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
StateHook = Callable[[WorkflowState], Any]


def _same_objects(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
        # The RunConfig of the last run, reused while nothing it is built from
        # changed: registrations bump _generation; limits, clock, on_console and
        # the extensions (frozen, replaced when they change) compare by identity.
        self._generation = 0
        self._last_config: tuple[tuple[Any, ...], RunConfig] | None = None

    # -- registration ----------------------------------------------------------
    def register_step_function(
        self, name: str, fn: Callable[..., Any], *, retry: RetryPolicy | str | None = None
    ) -> WorkflowEngine:
        _check_name(name)
        policy = self._policy(retry)
        self._suspends.pop(name, None)
        self._steps[name] = StepFunction(name, fn, policy, is_async_callable(fn))
        self._generation += 1
        return self

    def register_suspend_function(
        self, name: str, resume_at: Callable[..., Any] | None = None, *, schema: Any = None
    ) -> WorkflowEngine:
        """``schema``: a JSON Schema (a dict, Draft 2020-12) or a pydantic model
        class; a resume value that violates it is refused with ``PayloadSchemaError``."""
        _check_name(name)
        json_schema = schema_of(schema)
        self._steps.pop(name, None)
        self._suspends[name] = SuspendFunction(name, resume_at, json_schema)
        self._generation += 1
        return self

    @property
    def step_names(self) -> list[str]:
        """Names of the registered steps (and ``fetch`` when enabled), sorted."""
        names = set(self._steps) | ({"fetch"} if self._fetcher is not None else set())
        return sorted(names)

    def type_declarations(self, *, extensions: Sequence[Extension] = ()) -> str:
        """TypeScript declarations (a global ``.d.ts``) for scripts run by this
        engine: every built-in with its options, and each registered step and
        suspend function with types from its annotations and ``schema``
        (``extensions``: a host's built-ins, whose public suspend functions
        are declared too)."""
        steps = {name: fn.fn for name, fn in self._steps.items()}
        suspends = {name: (fn.resume_at, fn.schema) for name, fn in self._suspends.items()}
        for ext in extensions:
            schemas = getattr(ext, "schemas", {})
            for name, resume_at in getattr(ext, "suspend_functions", {}).items():
                suspends.setdefault(name, (resume_at, schemas.get(name)))
        return declarations(steps, suspends, fetch=self._fetcher is not None)

    @property
    def suspend_names(self) -> list[str]:
        """Names of the registered suspend functions, sorted."""
        return sorted(self._suspends)

    def step(self, name: str | None = None, *, retry: RetryPolicy | str | None = None) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            self.register_step_function(name or fn.__name__, fn, retry=retry)
            return fn

        return decorate

    def suspend(
        self, name: str | None = None, *, resume_at: Callable[..., Any] | None = None, schema: Any = None
    ) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            self.register_suspend_function(name or fn.__name__, resume_at=resume_at or fn, schema=schema)
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
        from ._fetch import Fetcher

        self._generation += 1
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
        self._generation += 1
        return self

    def set_value(self, name: str, value: Any) -> WorkflowEngine:
        """A JSON value made a global in every sandbox."""
        _check_name(name)
        json.dumps(value, allow_nan=False)  # TypeError/ValueError now, not at run time
        self._values[name] = value
        self._generation += 1
        return self

    def _policy(self, retry: RetryPolicy | str | None) -> RetryPolicy | None:
        if retry is None or isinstance(retry, RetryPolicy):
            return retry
        try:
            return self._policies[retry]
        except KeyError:
            raise ValueError(f"unknown retry policy {retry!r}; add it with add_retry_policy") from None

    def _config(self, extensions: Sequence[Extension] = ()) -> RunConfig:
        key = (self._generation, self.limits, self.clock, self.on_console, *extensions)
        last = self._last_config
        if last is not None and _same_objects(last[0], key):
            return last[1]
        config = self._build_config(extensions)
        self._last_config = (key, config)
        return config

    def _build_config(self, extensions: Sequence[Extension]) -> RunConfig:
        steps = dict(self._steps)
        if self._fetcher is not None:  # fetch is a built-in async step
            steps["fetch"] = StepFunction("fetch", self._fetcher, None, True)
        suspends = dict(self._suspends)
        config = RunConfig(
            steps,
            suspends,
            list(self._executes),
            dict(self._values),
            self.limits,
            self.clock,
            self.on_console,
            fetch=self._fetcher is not None,
        )
        for ext in extensions:
            for name, fn in ext.steps.items():
                steps[name] = StepFunction(name, fn, None, is_async_callable(fn))
                config.internal_steps.append(name)
            for name, resume_at in ext.suspends.items():
                suspends[name] = SuspendFunction(name, resume_at)
                config.internal_suspends.append(name)
            for name, resume_at in ext.suspend_functions.items():  # globals, for this run only
                suspends[name] = SuspendFunction(name, resume_at, ext.schemas.get(name))
            config.extension_js.append(ext.js)
            config.descriptions.update(ext.descriptions)
            config.public_names.update(ext.public_names)
        return config

    # -- live runs -------------------------------------------------------------------
    def new_state(
        self,
        entry_point: str = "main",
        *args: Any,
        run_id: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> WorkflowState:
        """The state of a run that has not started: advance it with no action to start it.
        Arguments are validated like every payload (``InvalidPayloadError``,
        ``PayloadTooLargeError``)."""
        text = validate_payload(list(args), limit=self.limits.payload, what="the arguments")
        return WorkflowState(
            run_id=run_id or uuid.uuid4().hex,
            entry_point=entry_point,
            arguments=json.loads(text),
            started_at_ms=datetime_to_ms(self.clock()),
            metadata=dict(metadata or {}),
        )

    def open_run(
        self, script: str, state: WorkflowState | str, *, extensions: Sequence[Extension] = ()
    ) -> LiveRun:
        """Load ``script`` in a fresh sandbox and replay ``state``'s journal.

        The returned ``LiveRun`` is advanced with ``advance``/``aadvance`` and
        must be closed (it is a context manager). A script that does not load
        or drifts from the journal gives a run that is already finished, with
        a FAULTED ``result``. ``extensions`` plug built-ins into this run only.
        """
        if not isinstance(script, str):
            raise TypeError(f"script must be a str, not {type(script).__name__}")
        run = Run(self._config(extensions), script, WorkflowState.coerce(state))
        try:
            return LiveRun(run, self.limits.payload)
        except BaseException:
            run.close()
            raise

    def replay(
        self, script: str, state: WorkflowState | str, *, extensions: Sequence[Extension] = ()
    ) -> ReplayOutcome:
        """Replay the journal against ``script`` without running any step: the drift check."""
        with self.open_run(script, state, extensions=extensions) as run:
            return run.replay_outcome()

    def query(
        self,
        script: str,
        state: WorkflowState | str,
        name: str,
        *args: Any,
        extensions: Sequence[Extension] = (),
    ) -> Any:
        """Answer query ``name`` (a ``defineQuery`` handler) with ``args`` from the
        state's journal replayed against ``script``; no step runs, nothing is
        journaled, ``state`` is unchanged. Bounded by ``limits.time``.
        ``QueryNotFoundError`` for an unknown name, ``QueryError`` when the
        handler throws, is async, or schedules a step, suspend or wait."""
        with self.open_run(script, state, extensions=extensions) as run:
            return run.query(name, *args)

    def list_queries(
        self, script: str, state: WorkflowState | str, *, extensions: Sequence[Extension] = ()
    ) -> list[str]:
        """The names of the queries the script has defined at ``state`` (replayed)."""
        with self.open_run(script, state, extensions=extensions) as run:
            return run.query_names

    def check(
        self, script: str, entry_point: str = "main", *, extensions: Sequence[Extension] = ()
    ) -> ScriptCheck:
        """Load ``script`` as a run would (same prelude, registrations, plain
        script or module) and look at the entry point, without running it."""
        return check_script(self._config(extensions), script, entry_point, extensions)

    # -- one-shot calls ---------------------------------------------------------------
    async def _advance(
        self, script: str, state: WorkflowState, action: Action | None, on_journal: StateHook | None
    ) -> WorkflowResult:
        hook: JournalHook | None = None
        if on_journal is not None:

            def hook(write: JournalWrite) -> Any:
                return on_journal(write.state())

        with self.open_run(script, state) as run:
            if run.finished:
                assert run.result is not None
                return run.result
            return await run.aadvance(action, on_journal=hook)

    def _check_payload(self, what: str, value: Any) -> None:
        validate_payload(value, limit=self.limits.payload, what=what)

    # -- async API -------------------------------------------------------------------
    async def arun_workflow(
        self,
        script: str,
        entry_point: str = "main",
        *args: Any,
        run_id: str | None = None,
        metadata: dict[str, str] | None = None,
        on_journal: StateHook | None = None,
    ) -> WorkflowResult:
        state = self.new_state(entry_point, *args, run_id=run_id, metadata=metadata)
        return await self._advance(script, state, None, on_journal)

    async def aresume_workflow(
        self,
        script: str,
        state: WorkflowState | str,
        resume_value: Any = None,
        *,
        wait_id: int | None = None,
        on_journal: StateHook | None = None,
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
        on_journal: StateHook | None = None,
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
        on_journal: StateHook | None = None,
    ) -> WorkflowResult:
        action = Timeout(wait_id=wait_id)
        return await self._advance(script, WorkflowState.coerce(state), action, on_journal)

    async def acancel_workflow(
        self,
        script: str,
        state: WorkflowState | str,
        reason: str | None = None,
        *,
        on_journal: StateHook | None = None,
    ) -> WorkflowResult:
        """Deliver a cancellation: every pending wait rejects with a JS
        ``CancelledError`` (``reason`` on it), catch/finally blocks may run steps
        to compensate (within ``limits.time`` and at most 100 journal entries),
        and the result is CANCELLED whatever the script does."""
        return await self._advance(script, WorkflowState.coerce(state), Cancel(reason), on_journal)

    async def arecover_workflow(
        self, script: str, state: WorkflowState | str, *, on_journal: StateHook | None = None
    ) -> WorkflowResult:
        """Replay and run whatever was in flight, with no new event: how a host
        finishes a run whose process died mid-step."""
        return await self._advance(script, WorkflowState.coerce(state), None, on_journal)

    # -- sync API ---------------------------------------------------------------------
    def run_workflow(
        self,
        script: str,
        entry_point: str = "main",
        *args: Any,
        run_id: str | None = None,
        metadata: dict[str, str] | None = None,
        on_journal: StateHook | None = None,
    ) -> WorkflowResult:
        return run_sync(
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
        on_journal: StateHook | None = None,
    ) -> WorkflowResult:
        return run_sync(
            self.aresume_workflow(script, state, resume_value, wait_id=wait_id, on_journal=on_journal)
        )

    def raise_event(
        self,
        script: str,
        state: WorkflowState | str,
        name: str,
        payload: Any = None,
        *,
        on_journal: StateHook | None = None,
    ) -> WorkflowResult:
        return run_sync(self.araise_event(script, state, name, payload, on_journal=on_journal))

    def timeout_event(
        self,
        script: str,
        state: WorkflowState | str,
        *,
        wait_id: int | None = None,
        on_journal: StateHook | None = None,
    ) -> WorkflowResult:
        return run_sync(self.atimeout_event(script, state, wait_id=wait_id, on_journal=on_journal))

    def cancel_workflow(
        self,
        script: str,
        state: WorkflowState | str,
        reason: str | None = None,
        *,
        on_journal: StateHook | None = None,
    ) -> WorkflowResult:
        return run_sync(self.acancel_workflow(script, state, reason, on_journal=on_journal))

    def recover_workflow(
        self, script: str, state: WorkflowState | str, *, on_journal: StateHook | None = None
    ) -> WorkflowResult:
        return run_sync(self.arecover_workflow(script, state, on_journal=on_journal))

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


def _check_name(name: str) -> None:
    check_registration_name(name)

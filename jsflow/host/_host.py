"""``WorkflowHost``: the durable host a Python backend embeds.

Why this shape: the engine advances one run by one event and knows nothing
of storage; the host owns a ``Store`` and an engine and turns every public
operation into "load, advance with a write-ahead journal, save with a version
check". Each operation exists as a coroutine (``a``-prefixed) and as a plain
method that drives the coroutine the way ``jsflow._engine`` does, so the same
host serves sync and async code.

Recovery of in-flight runs: while the engine runs an instance its status is
"running" and every journal write refreshes ``updated_at``. An instance left
"running" with ``updated_at`` older than ``lease`` (the process died mid-run)
is finished by ``run_due``/``worker`` with ``engine.recover_workflow``: the
journal replays and only steps without a journaled completion run again.
``recover(workflow_id)`` does the same for one instance on demand.

The facade: ``WorkflowHost`` builds a ``HostContext`` (its parts) and hands
it to the operation modules; none of them imports this module. See ``_load``
(reading an instance), ``_driver`` (the advance loop, concurrency),
``_inbox`` (events), ``_deliveries`` (what each operation consumes),
``_ops``/``_query``/``_fork`` (lifecycle and reads), ``_hooks`` (tokens,
createHook) and ``_timers`` (run_due, worker) for the details.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from jsflow import JournalEntry, WorkflowEngine

from . import (
    _cancel,
    _children,
    _deliveries,
    _fork,
    _inbox,
    _load,
    _ops,
    _queries,
    _query,
    _reissue,
    _replay,
    _schedules,
    _start_event,
    _timers,
    _warm,
)
from . import _hooks as _hooks_module
from ._context import HostContext
from ._errors import HostClosedError
from ._query import HistoryPage, InstancePage
from ._schedules import Schedule
from ._start_event import StartSpec
from ._sync import SyncTwins
from ._tokens import hash_token
from ._views import EventReceipt, HistoryItem, ReplayReport, TokenInfo, WaitInfo, WorkflowInstance
from .store import InboxEvent, ScheduleEvent, ScriptVersion, Store, open_store, timers_key, workflow_key

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_HOOK_BASE_URL = "http://127.0.0.1:8080/hooks"


class WorkflowHost(SyncTwins):
    """Keeps workflows alive in a store: start, events, resumes, timers, recovery.

    ``store``: a ``Store``, a store URL (``sqlite:///path.db``, ``memory://``)
    or None for ``$JSFLOW_DB`` / ``.jsflow/jsflow.db``. A store the host opened
    from a URL is closed by ``close()``; a ``Store`` passed in is not.
    ``engine``: a configured ``WorkflowEngine`` (steps registered on it are
    available to every script), or None for a fresh one using ``clock``.
    ``clock``: zero-argument callable returning an aware UTC datetime.
    ``max_suspension`` caps resume-token expiry. ``hook_base_url`` prefixes the
    ``url`` of JS ``createHook`` objects. ``lease``: how long an instance may
    sit in "running" without a journal write before a worker recovers it.
    ``hook_secret``: key for deriving createHook tokens (see ``_hooks``).
    ``warm_runs``/``warm_bytes``: how many suspended runs, and how much memory,
    to keep live so the next delivery needs no replay (default 64 runs and
    12 MiB, about 27 small runs: a process holding 1,000 suspended instances
    stays under half of DBOS's RSS). A run counts as QuickJS's own count of
    its memory plus about 192 KB it does not see; a run larger than
    ``warm_bytes`` is never kept. ``warm_runs=0`` or ``warm_bytes=0`` turns
    the cache off (see ``_warm``).
    """

    def __init__(
        self,
        store: Store | str | None = None,
        engine: WorkflowEngine | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        max_suspension: timedelta = timedelta(days=60),
        hook_base_url: str = DEFAULT_HOOK_BASE_URL,
        lease: timedelta = timedelta(minutes=5),
        hook_secret: bytes | str | None = None,
        worker_id: str | None = None,
        warm_runs: int = _warm.DEFAULT_MAX_RUNS,
        warm_bytes: int = _warm.DEFAULT_MAX_BYTES,
    ) -> None:
        owns = not isinstance(store, Store)
        opened: Store = store if isinstance(store, Store) else open_store(store, clock=clock)
        engine = engine if engine is not None else WorkflowEngine(clock=clock)
        self._ctx = HostContext(
            opened,
            engine,
            owns_store=owns,
            clock=clock or engine.clock,
            max_suspension=max_suspension,
            hook_base_url=hook_base_url,
            lease=lease,
            hook_secret=hook_secret,
            worker_id=worker_id,
            warm_runs=warm_runs,
            warm_bytes=warm_bytes,
        )
        self._closed = False
        self._lock = threading.Lock()
        #: startWorkflow (child workflows, see ``_children``)
        self._children = _children.Children(self._ctx)
        self._ctx.extra_extensions.append(self._children.extension)
        #: after every driver turn: a child's end reaches its parent, cancels reach children
        self._ctx.turn_listeners.append(functools.partial(_cancel.on_turn, self._ctx))

    # -- the parts (for embedders and tests; the CLI and server use the methods) ------
    @property
    def store(self) -> Store:
        """The store this host keeps its instances in."""
        return self._ctx.store

    @property
    def engine(self) -> WorkflowEngine:
        """The engine that runs the scripts (possibly shared with other hosts)."""
        return self._ctx.engine

    @property
    def clock(self) -> Callable[[], datetime]:
        """The host's clock (its timers, tokens and leases read it)."""
        return self._ctx.clock

    @clock.setter
    def clock(self, value: Callable[[], datetime]) -> None:
        self._ctx.clock = self._ctx.hooks.clock = value

    @property
    def lease(self) -> timedelta:
        return self._ctx.lease

    @property
    def max_suspension(self) -> timedelta:
        return self._ctx.max_suspension

    @property
    def hook_base_url(self) -> str:
        """Prefix of createHook URLs (a server sets its public URL here)."""
        return self._ctx.hook_base_url

    @hook_base_url.setter
    def hook_base_url(self, value: str) -> None:
        self._ctx.hook_base_url = self._ctx.hooks.base_url = value.rstrip("/")

    @property
    def worker_id(self) -> str:
        return self._ctx.worker_id

    @property
    def hooks(self) -> _hooks_module.HookRegistry:
        """This host's token suspend functions and createHook (never on the engine)."""
        return self._ctx.hooks

    @property
    def warm(self) -> _warm.WarmRuns:
        """The warm-run cache (its ``hits``/``misses`` and size)."""
        return self._ctx.warm

    @property
    def token_listeners(self) -> list[Callable[[TokenInfo], Any]]:
        return self._ctx.token_listeners

    def add_token_listener(self, listener: Callable[[TokenInfo], Any]) -> WorkflowHost:
        """Call ``listener(TokenInfo)`` for every resume token this host issues, once
        the suspension is stored, whichever call issued it: a start, an event, or a
        timer a worker fired (calls that return an instance also carry their
        tokens in ``WorkflowInstance.tokens``). A listener's exception is logged."""
        self._ctx.token_listeners.append(listener)
        return self

    # -- what this process can run -------------------------------------------------
    def capabilities(self) -> frozenset[str]:
        """The step and suspend names registered in this process (this host's token
        suspend functions included). An instance whose script uses a name its
        starting process had and this one lacks is left alone
        (``MissingRegistrationError``), and its timers are not claimed here."""
        return self._ctx.capabilities()

    def type_declarations(self) -> str:
        """TypeScript declarations for the scripts this host runs (``jsflow types``):
        the engine's, plus this host's built-ins and token suspend functions."""
        return self.engine.type_declarations(extensions=self._ctx.extensions)

    # -- lifetime ----------------------------------------------------------------
    def close(self) -> None:
        """Close the store if the host opened it. Idempotent; later calls raise HostClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._ctx.warm.clear()
        if self._ctx.owns_store:
            self._ctx.store.close()

    def __enter__(self) -> WorkflowHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise HostClosedError("the WorkflowHost is closed")

    # -- registration ------------------------------------------------------------
    def register_script(self, name: str, source: str) -> ScriptVersion:
        """Store ``source`` under ``name`` (content-addressed: the same source gives
        the same hash; the newest registration becomes the default for ``start``)."""
        self._check_open()
        return _ops.register_script(self._ctx, name, source)

    def register_step_function(self, name: str, fn: Callable[..., Any], **kwargs: Any) -> WorkflowHost:
        """Shortcut for ``host.engine.register_step_function`` (``ValueError`` for a
        built-in's name such as ``sleep``)."""
        self.engine.register_step_function(name, fn, **kwargs)
        return self

    def register_suspend_function(
        self,
        name: str,
        *,
        before_suspend: Callable[[str, datetime, list[Any]], Any] | None = None,
        before_resume: Callable[[Any, list[Any]], Any] | None = None,
        before_timeout_resume: Callable[[list[Any]], Any] | None = None,
        expires_in: timedelta | None = None,
        resume_at: Callable[..., Any] | None = None,
        schema: Any = None,
    ) -> WorkflowHost:
        """A JS-callable suspend function whose waits are resumed with a token.

        When a workflow awaits ``name(...)``, the host creates a random token,
        stores only its hash with the suspension, and after the suspension is
        durably stored calls ``before_suspend(token, expires_at, args)`` (send
        the token somewhere). ``resume_with_token(token, data)`` resumes the
        wait with ``before_resume(data, args)`` (default: ``data``). When
        ``expires_at`` passes first, ``run_due`` resumes it with
        ``before_timeout_resume(args)`` (default: None). ``expires_at`` is
        ``min(now + expires_in, now + max_suspension)``; ``resume_at(*args)``
        (datetime or timedelta) may set it per call instead of ``expires_in``.
        Hook callables may be sync or async. ``schema`` (a JSON Schema dict or a
        pydantic model class) is what a resume value must satisfy: a resume or
        token resume that violates it raises ``PayloadSchemaError`` and the
        token stays unspent. The function belongs to this host only (handed to
        its runs, never registered on the engine, which other hosts may share);
        a built-in's name such as ``sleep`` is a ``ValueError``.
        """
        self.hooks.register(
            name,
            before_suspend=before_suspend,
            before_resume=before_resume,
            before_timeout_resume=before_timeout_resume,
            expires_in=expires_in,
            resume_at=resume_at,
            schema=schema,
        )
        return self

    def suspend_function(self, name: str | None = None, **hooks: Any) -> Callable[[F], F]:
        """Decorator form: the function becomes ``before_suspend``; keyword
        arguments are those of ``register_suspend_function``."""

        def decorate(fn: F) -> F:
            self.register_suspend_function(name or fn.__name__, before_suspend=fn, **hooks)
            return fn

        return decorate

    # -- lifecycle (async) -----------------------------------------------------------
    async def astart(
        self,
        script_name: str,
        *args: Any,
        workflow_id: str | None = None,
        entry_point: str = "main",
        version: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> WorkflowInstance:
        """Start an instance of the script's latest version (or ``version``, a hash)
        and run it to its first suspension or end.

        Idempotent on ``workflow_id``: if it exists with the same script name
        and arguments, the existing instance is returned and nothing runs; with
        another script name or other arguments, ``WorkflowExistsError``.
        ``metadata`` (str -> str) is kept with the instance; ``workflow_id`` is
        added to it (steps read it through ``current_step().idempotency_key``).
        """
        self._check_open()
        return await _ops.start(
            self._ctx, script_name, list(args), workflow_id, entry_point, version, metadata
        )

    async def aget(self, workflow_id: str) -> WorkflowInstance:
        """The instance; ``UnknownWorkflowError`` if there is none."""
        self._check_open()
        return _ops.get(self._ctx, workflow_id)

    async def alist(
        self,
        *,
        status: str | list[str] | None = None,
        script: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkflowInstance]:
        """Instances, oldest first; ``created_after`` inclusive, ``created_before`` exclusive."""
        self._check_open()
        return _ops.list_instances(self._ctx, status, script, created_after, created_before, limit, offset)

    async def acancel(
        self, workflow_id: str, reason: str | None = None, cleanup: bool = True
    ) -> WorkflowInstance:
        """Cancel a running or suspended instance; ``WorkflowFinishedError`` if it finished.

        With ``cleanup`` (the default) the cancellation is delivered into the
        script: every pending wait rejects with a JS ``CancelledError``
        (``reason`` on it), catch/finally blocks may run steps to compensate
        (within the time budget and at most 100 journal entries), and the
        instance ends "cancelled" with the cleanup in its timeline. It runs in
        this call when this process can run the instance, else on the next
        pass of a worker that can. ``cleanup=False`` cancels at once: no script
        code runs. Either way its waits and tokens die with it."""
        self._check_open()
        return await _cancel.cancel(self._ctx, workflow_id, reason, cleanup)

    async def aquery(self, workflow_id: str, name: str, *args: Any) -> Any:
        """Answer query ``name`` (a script's ``defineQuery`` handler) with ``args``
        from the instance's current state (a finished one from its final state),
        without journaling or changing anything. ``QueryNotFoundError`` for an
        unknown name; ``QueryError`` (carrying the script's ``TypeError``) when
        the handler throws, is async, or calls a step, suspend or wait.
        Bounded by the engine's time budget."""
        self._check_open()
        return _queries.query(self._ctx, workflow_id, name, list(args))

    async def alist_queries(self, workflow_id: str) -> list[str]:
        """The names of the queries the instance's script defines (``defineQuery``)."""
        self._check_open()
        return _queries.list_queries(self._ctx, workflow_id)

    async def achildren(self, workflow_id: str) -> list[str]:
        """The ids of the child workflows the instance started (``startWorkflow``), in order."""
        self._check_open()
        _load.load_record(self._ctx, workflow_id)
        return [child for child, _ in _children.children_of(self._ctx, workflow_id)]

    async def ahistory(self, workflow_id: str) -> list[HistoryItem]:
        """The timeline: lifecycle events and journal entries, in time order."""
        self._check_open()
        return _ops.history(self._ctx, workflow_id)

    async def ajournal(self, workflow_id: str) -> list[JournalEntry]:
        """The journal of the instance's current run, as stored (createHook tokens
        are never part of it): what a replay delivers to the script, in order."""
        self._check_open()
        state = _load.load(self._ctx, workflow_id).state
        assert state is not None
        return self._ctx.hooks.strip(list(state.journal))

    # -- delivery (async) -----------------------------------------------------------
    async def asend_event(
        self,
        workflow_id: str,
        name: str,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        start: StartSpec | None = None,
    ) -> EventReceipt:
        """Persist the event, then deliver it to a waiting ``waitForEvent(name)``.

        ``start``: start-with-event. If no instance ``workflow_id`` exists, it is
        started from ``start`` (a ``StartSpec``) in the same transaction that
        stores the event, so concurrent calls start it once and every event
        arrives; an existing id under another script is ``WorkflowExistsError``.

        If nothing waits for ``name`` yet, the event stays buffered and is
        delivered (FIFO per name) when the workflow starts waiting for it.
        ``idempotency_key``: at most one event is stored per key and instance;
        sending again with the same key returns the first event's receipt
        (``duplicate=True``) and stores nothing. ``UnknownWorkflowError``/
        ``WorkflowFinishedError`` for unknown or finished instances,
        ``InvalidPayloadError``/``PayloadTooLargeError`` for bad payloads: in
        those cases nothing is stored.
        """
        self._check_open()
        if start is not None:
            return await _start_event.send_event_with_start(
                self._ctx, workflow_id, name, payload, idempotency_key, start
            )
        return await _inbox.send_event(self._ctx, workflow_id, name, payload, idempotency_key)

    async def astore_event(
        self, workflow_id: str, name: str, payload: Any = None, *, idempotency_key: str | None = None
    ) -> EventReceipt:
        """Persist the event like ``asend_event`` (same checks, same idempotency)
        but run no workflow code: for a caller that answers as soon as the event
        is stored (the HTTP server) and delivers it afterwards with
        ``adeliver_events``. If nothing delivers it, the worker's sweep does."""
        self._check_open()
        return _inbox.store_event(self._ctx, workflow_id, name, payload, idempotency_key)

    async def adeliver_events(self, workflow_id: str) -> int:
        """Deliver the instance's buffered events to its pending ``waitForEvent``
        waits, oldest first, running the script as far as they take it; returns
        how many were delivered. Events stay buffered when the instance is busy
        in another process or cannot run here."""
        self._check_open()
        delivered: dict[int, int] = {}
        await _inbox.deliver(self._ctx, workflow_id, delivered)
        return len(delivered)

    def token_used(self, token: str) -> bool:
        """Whether ``token`` is a known resume token that has been used: its
        resume is stored (consumed with the journal write that delivers it)."""
        self._check_open()
        if not isinstance(token, str) or not token or len(token) > 512:
            return False
        record = self.store.read(lambda tx: tx.get_token(hash_token(token)))
        return record is not None and record.used_at is not None

    async def aresume(
        self, workflow_id: str, value: Any = None, wait_id: int | None = None
    ) -> WorkflowInstance:
        """Complete ``wait_id`` with ``value``.

        Without ``wait_id``: the single pending suspend or token wait; with none
        or several, ``WaitSelectionError`` lists the pending waits and their ids.
        Timers (sleeps, retries, event timeouts) complete early only by an
        explicit ``wait_id``. ``AlreadyResumedError`` if the wait is no longer
        pending. The returned instance carries any tokens the advance issued
        (``tokens``)."""
        self._check_open()
        return await _deliveries.resume(self._ctx, workflow_id, value, wait_id)

    async def areissue_token(self, workflow_id: str, wait_id: int) -> TokenInfo:
        """A fresh resume token for pending token wait ``wait_id`` (a Python token
        suspend function); the old token stops working (``TokenNotFoundError``)
        and the expiry stays. The new token also goes to ``before_suspend`` and the
        token listeners. ``ValueError`` for a wait that is not a token wait,
        ``AlreadyResumedError`` if it is not pending, ``WorkflowFinishedError``."""
        self._check_open()
        return await _reissue.reissue_token(self._ctx, workflow_id, wait_id)

    async def aresume_with_token(self, token: str, payload: Any = None) -> WorkflowInstance:
        """Resume the wait a token belongs to, once. ``TokenNotFoundError`` (forged),
        ``TokenUsedError``, ``TokenExpiredError``, ``WorkflowFinishedError``."""
        self._check_open()
        return await _deliveries.resume_with_token(self._ctx, token, payload)

    # -- operations (async) -----------------------------------------------------------
    async def arun_due(self, now: datetime | None = None, *, limit: int = 100) -> int:
        """One worker pass: fire waits due at ``now`` (default: the clock) and recover
        instances stuck in "running" past the lease. Returns how many were fired
        or recovered. Safe to run in several workers at once."""
        self._check_open()
        return await _timers.run_due(self._ctx, now, limit)

    async def aworker(
        self,
        poll_interval: float = 1.0,
        stop_event: threading.Event | None = None,
        *,
        limit: int = 100,
    ) -> None:
        """Loop ``run_due`` until ``stop_event`` is set, sleeping until the next
        due timer or ``poll_interval`` seconds, whichever comes first."""
        self._check_open()
        await _timers.worker(self._ctx, poll_interval, stop_event, limit)

    async def arecover(self, workflow_id: str) -> WorkflowInstance:
        """Finish an instance left "running" (its process died): replay, then run
        only the steps that were in flight. No-op for other statuses."""
        self._check_open()
        return await _deliveries.recover(self._ctx, workflow_id)

    async def aretry(
        self, workflow_id: str, *, version: str | None = None, metadata: dict[str, str] | None = None
    ) -> WorkflowInstance:
        """Run a faulted instance again from its last good state: the journal
        without the trailing failed step results, so failing steps run again.
        ``version`` (a script hash of the same name) retries on another version,
        checked by replay first. The instance's requirements are recorded again
        from this process's registrations, as ``start`` does; ``metadata`` is
        merged into the instance's metadata (what a tool records for later runs)."""
        self._check_open()
        return await _deliveries.retry(self._ctx, workflow_id, version, metadata)

    async def aupgrade(self, workflow_id: str, new_hash: str) -> WorkflowInstance:
        """Move a live instance to another version of its script, after checking
        by replay that the new source accepts its journal (``UpgradeError`` if not)."""
        self._check_open()
        return await _ops.upgrade(self._ctx, workflow_id, new_hash)

    async def areplay_check(
        self,
        script_source: str,
        workflow_ids: list[str] | None = None,
        *,
        script_name: str | None = None,
        include_finished: bool = False,
    ) -> list[ReplayReport]:
        """Replay stored journals against ``script_source`` without running anything.

        ``workflow_ids`` None: every instance of ``script_name`` (every
        instance if None too), unfinished ones unless ``include_finished``.
        """
        self._check_open()
        return _replay.replay_check(self._ctx, script_source, workflow_ids, script_name, include_finished)

    # -- schedules (issue 20; see ``_schedules``) -------------------------------------
    def add_schedule(
        self,
        name: str,
        cron: str,
        script: str,
        args: Sequence[Any] = (),
        *,
        timezone: str = "UTC",
        overlap: str = "skip",
        catch_up: str = "latest",
    ) -> Schedule:
        """Start ``script`` (a registered name, latest version) with ``args`` at every
        slot of ``cron`` in ``timezone``; workers and ``run_due`` start due slots.

        Each slot is started once across processes, as instance
        ``{name}@{YYYYMMDDTHHMMSSZ}`` (UTC). A slot seen more than a minute late
        is missed: ``catch_up`` "latest" starts the most recent missed slot,
        "all" every one, "none" none. ``overlap="skip"`` skips a slot (with a
        history line) while the previous slot's instance is unfinished.
        Adding an existing name replaces its definition. ``InvalidScheduleError``
        for a bad cron, zone or option; ``UnknownScriptError`` for an unknown script."""
        self._check_open()
        return _schedules.add(self._ctx, name, cron, script, list(args), timezone, overlap, catch_up)

    def pause_schedule(self, name: str) -> Schedule:
        """Stop starting slots; slots that fall while paused are never started."""
        self._check_open()
        return _schedules.pause(self._ctx, name)

    def resume_schedule(self, name: str) -> Schedule:
        """Start slots again, from the next one after now."""
        self._check_open()
        return _schedules.resume(self._ctx, name)

    def remove_schedule(self, name: str) -> None:
        """Delete the schedule (its instances stay). ``UnknownScheduleError`` if absent."""
        self._check_open()
        _schedules.remove(self._ctx, name)

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name, each with its ``next_run``."""
        self._check_open()
        return _schedules.list_all(self._ctx)

    def get_schedule(self, name: str) -> Schedule:
        """One schedule; ``UnknownScheduleError`` if absent."""
        self._check_open()
        return _schedules.get(self._ctx, name)

    def schedule_history(self, name: str, limit: int = 100) -> list[ScheduleEvent]:
        """The schedule's history lines (added, started, skipped, missed, paused...), oldest first."""
        self._check_open()
        _schedules.get(self._ctx, name)
        return self.store.read(lambda tx: tx.list_schedule_history(name, limit))

    # -- paged reads (async) ---------------------------------------------------------
    async def alist_page(
        self,
        *,
        status: str | list[str] | None = None,
        script: str | None = None,
        waiting_on: str | list[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> InstancePage:
        """One page of instances, newest first (``created_at`` then id, descending).

        ``waiting_on``: a category ("timer", "event", "token", "suspend") or a
        wait kind (``WaitKind``: "sleep", "retry", "hook", ...), or a list;
        ``search``: a substring of the workflow id (ASCII case-insensitive);
        ``cursor``: a previous page's ``next_cursor`` (``InvalidCursorError``
        if it is not one). ``limit`` 1..1000, else ``ValueError``.
        """
        self._check_open()
        return _query.list_page(
            self._ctx,
            status=status,
            script=script,
            waiting_on=waiting_on,
            created_after=created_after,
            created_before=created_before,
            search=search,
            limit=limit,
            cursor=cursor,
        )

    async def ahistory_page(
        self, workflow_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> HistoryPage:
        """One page of ``history(workflow_id)``, oldest first."""
        self._check_open()
        return _query.history_page(self._ctx, workflow_id, limit=limit, cursor=cursor)

    async def acount_by_status(self) -> dict[str, int]:
        """Instances per status (every status present, zero when none)."""
        self._check_open()
        return _query.count_by_status(self._ctx)

    async def afork(
        self, workflow_id: str, *, step: int | None = None, new_id: str | None = None
    ) -> WorkflowInstance:
        """A new instance (``new_id``, default generated) whose journal is the first
        ``step`` entries of ``workflow_id``'s (default: all), run from there: the
        prefix is replayed, everything after it runs live (DBOS ``fork``, Temporal
        ``reset``). The source is only read. Idempotent on ``new_id``, like
        ``start``. See ``_fork`` for what is not copied."""
        self._check_open()
        return await _fork.fork(self._ctx, workflow_id, step, new_id)

    async def apurge(self, workflow_ids: list[str]) -> list[str]:
        """Delete finished instances (retention): each with its history, waits,
        events and tokens. Unfinished and unknown ids are skipped, never deleted;
        returns the ids deleted."""
        self._check_open()
        deleted = self._ctx.store.write(lambda tx: tx.delete_workflows(list(workflow_ids)))
        for wid in deleted:  # a later instance under the same id never meets their warm runs
            self._ctx.warm.discard(wid)
        return deleted

    # -- reads for tools (the CLI, the server) -----------------------------------------
    def pending_events(self, workflow_id: str) -> list[InboxEvent]:
        """The instance's buffered events (stored, not yet delivered), oldest first."""
        self._check_open()
        return self.store.read(lambda tx: tx.pending_events(workflow_id))

    def arguments(self, workflow_id: str) -> list[Any] | None:
        """The arguments the instance was started with (None if its state is unreadable)."""
        self._check_open()
        return _ops.arguments(self._ctx, workflow_id)

    def get_script(self, name: str, version: str | None = None) -> ScriptVersion:
        """A stored script version (the newest of ``name`` without ``version``);
        ``UnknownScriptError`` if there is none."""
        self._check_open()
        return _replay.get_script(self._ctx, name, version)

    def list_scripts(self, name: str | None = None) -> list[ScriptVersion]:
        """Every stored script version (of ``name`` if given)."""
        self._check_open()
        return self.store.read(lambda tx: tx.list_scripts(name))

    def token_workflow_id(self, token: str) -> str | None:
        """The id of the instance a resume token belongs to (used or not), or None."""
        self._check_open()
        if not isinstance(token, str) or not token or len(token) > 512:
            return None
        record = self.store.read(lambda tx: tx.get_token(hash_token(token)))
        return record.workflow_id if record is not None else None

    def hook_token(self, workflow_id: str, wait: WaitInfo) -> str | None:
        """The token of a JS ``createHook`` wait (derived again from the host secret;
        it is never stored), or None for other waits."""
        if wait.kind != "hook" or not wait.arguments:
            return None
        return self.hooks.derive_token(workflow_id, str(wait.arguments[0]))

    def hook_url(self, workflow_id: str, wait: WaitInfo) -> str | None:
        """Where an external system posts to resume a ``createHook`` wait, or None."""
        token = self.hook_token(workflow_id, wait)
        return None if token is None else f"{self.hook_base_url}/{token}"

    def ping(self) -> None:
        """One indexed read of the store: raises if the store is unreachable."""
        self._check_open()
        self.store.read(lambda tx: tx.get_script("healthz"))

    def next_due_time(self) -> datetime | None:
        """When the earliest pending timer of any instance, or the next schedule
        slot, is due (None: nothing is)."""
        self._check_open()
        dues = (self._ctx.store.next_due_time(), _schedules.next_due(self._ctx))
        return min((t for t in dues if t is not None), default=None)

    def change_marker(self) -> int:
        """A marker to pass as ``since`` to ``wait_for_change``/``wait_for_timers``,
        taken before a read so a change after the read is not missed."""
        return self.store.change_marker()

    def wait_for_change(self, workflow_id: str, timeout: float, *, since: int) -> bool:
        """Block up to ``timeout`` seconds until the instance changes (another
        process's change too, on PostgreSQL); True if it did."""
        return self.store.wait_for_change(timeout, workflow_key(workflow_id), since=since)

    def wait_for_timers(self, timeout: float, *, since: int) -> bool:
        """Block up to ``timeout`` seconds until a timer is stored or changed; True if one was."""
        return self.store.wait_for_change(timeout, timers_key(), since=since)

    def adopt_registrations(self, other: WorkflowHost) -> WorkflowHost:
        """Take over ``other``'s token suspend functions (with their hooks) and its
        token listeners: for a tool that runs an application's host on its own store."""
        for spec in list(other.hooks.specs.values()):
            if spec.name not in self.hooks.specs:
                self.register_suspend_function(
                    spec.name,
                    before_suspend=spec.before_suspend,
                    before_resume=spec.before_resume,
                    before_timeout_resume=spec.before_timeout_resume,
                    expires_in=spec.expires_in,
                    resume_at=spec.resume_at,
                )
        for listener in other.token_listeners:
            if listener not in self.token_listeners:
                self.token_listeners.append(listener)
        return self

"""Engine work off the event loop, one advance per instance at a time.

Why a bounded thread pool: advancing an instance runs JavaScript and SQL
synchronously; on the event loop it would stall every other request. The
pool bounds how many advances run at once (each holds a QuickJS runtime and
a store connection). Reads (a page, an instance, ``?wait``'s look) have a
pool of their own, so a slow step filling the engine pool never holds up an
answer.

Events (``accept``): when the instance is idle and an engine thread is free,
one engine job stores the event and then delivers it (the reply goes out as
soon as the store returns: two thread hops and a task fewer than storing and
delivering apart); otherwise one store thread stores it and its delivery is
queued as a background task, at most one queued per instance.

Why a per-instance lock on top of the store's optimistic version check: two
requests for one instance would both run the engine and one would lose the
race and run again; serializing them in the process means each runs once,
and the loser of a single-use token sees "already used" at once instead of
after a wasted run. The lock is released when the thread finishes, not when
the request is cancelled (a client that hangs up does not let a second
advance start beside the first).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from jsflow.host import WorkflowHost, WorkflowInstance

T = TypeVar("T")
log = logging.getLogger("jsflow.server")
#: how often ``?wait`` looks at an instance that is still running
POLL_SECONDS = 0.25
#: how often a request that waits for its change to be stored looks again
STORED_POLL_SECONDS = 0.05
#: threads that store events while their instance or every engine thread is busy.
#: One: on SQLite writers take turns anyway, and stores running side by side in
#: the read pool collided with the deliveries' writes (the busy handler sleeps)
#: and with each other for the GIL (bench/server.py, 8 clients: 260-270 events/s
#: delivered through the read pool, 380-390 through one store thread)
STORE_THREADS = 1
#: how much longer than its ``?wait`` a reply may take to read the state it returns
WAIT_MARGIN = 0.5


class Runner:
    """Runs host calls in a pool, serialized per key (a workflow id)."""

    def __init__(self, host: WorkflowHost, threads: int) -> None:
        self.host = host
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="jsflow-engine")
        self.threads = threads
        self._engine_jobs = 0  # submitted to ``pool`` and not finished (event-loop thread only)
        self.reads = ThreadPoolExecutor(max_workers=max(4, 2 * threads), thread_name_prefix="jsflow-read")
        self.stores = ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="jsflow-store")
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._queued: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the read pool, without a per-instance lock."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.reads, functools.partial(fn, *args, **kwargs))

    async def work(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` in the engine pool without a lock (a start with a fresh id)."""
        return await self._engine(functools.partial(fn, *args, **kwargs))

    def _engine(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """``call()`` in the engine pool, counted while it runs."""
        fut = asyncio.get_running_loop().run_in_executor(self.pool, call)
        self._engine_jobs += 1
        fut.add_done_callback(self._engine_done)
        return fut

    def _engine_done(self, _: object) -> None:
        self._engine_jobs -= 1

    async def accept(self, key: str, store: Callable[[], T], deliver: Callable[[], Any]) -> T:
        """``store()``'s result as soon as it returns; then ``deliver()`` runs like
        ``later(key, ...)``. Nothing stored is lost if the delivery fails or never
        runs: the worker's sweep delivers buffered events.

        When nothing runs or waits for ``key`` and an engine thread is free, one
        engine job does both (the reply is handed back between the two); else the
        store runs in the store thread (``STORE_THREADS``) and the delivery is
        queued (at most one per instance: one ``deliver`` drains every event
        stored before it starts)."""
        if key in self._queued or key in self._locks or self._engine_jobs >= self.threads:
            result = await asyncio.get_running_loop().run_in_executor(self.stores, store)
            self.later(key, deliver)
            return result
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[T] = loop.create_future()
        lock = self._acquire_ref(key)
        await lock.acquire()  # free (no holder, no waiter): returns at once

        def job() -> None:
            try:
                result = store()
            except BaseException as exc:
                loop.call_soon_threadsafe(_settle, stored, None, exc)
                return
            loop.call_soon_threadsafe(_settle, stored, result, None)
            try:
                deliver()
            except Exception as exc:  # the instance keeps it (faulted or buffered); the worker retries
                log.warning("background delivery for an instance failed: %s: %s", type(exc).__name__, exc)

        try:
            self._engine(job).add_done_callback(lambda _: self._release(key, lock))
        except BaseException:
            self._release(key, lock)
            raise
        return await stored

    def later(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` like ``advance`` in a background task; nothing waits for
        it. While one is queued for ``key`` (not started yet) another is not added:
        the queued one will see whatever the later caller stored."""
        if key in self._queued:
            return
        self._queued.add(key)
        task = asyncio.get_running_loop().create_task(self._later(key, fn, *args))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def until_stored(
        self, key: str, stored: Callable[[], bool], fn: Callable[..., T], *args: Any
    ) -> T | None:
        """Start ``fn(*args)`` like ``advance`` and return its result if it ends
        first, or None as soon as ``stored()`` (a read) says its first write is
        committed (from then on the instance keeps the change whatever the
        workflow code does next, and the advance goes on in the background).
        Errors raised before that point (unknown, used, finished) propagate.
        ``stored`` counts only if it was false when ``fn`` started (holding the
        instance's lock): a token another request used first is not this one's."""
        armed = threading.Event()

        def call() -> T:
            if not stored():
                armed.set()
            return fn(*args)

        task = self.spawn(key, call)
        while True:
            done, _ = await asyncio.wait({task}, timeout=STORED_POLL_SECONDS)
            if done:
                return task.result()
            if armed.is_set() and await self.run(stored):
                return None

    def spawn(self, key: str, fn: Callable[..., T], *args: Any) -> asyncio.Task[T]:
        """``advance(key, fn, *args)`` as a task that runs to its end even when
        the request that started it stops waiting for it."""
        task = asyncio.get_running_loop().create_task(self.advance(key, fn, *args))
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.debug("background advance ended with %s", type(exc).__name__)

    async def _later(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            await self.advance(key, fn, *args, on_start=lambda: self._queued.discard(key))
        except Exception as exc:  # the instance keeps it (faulted or buffered); the worker retries
            log.warning("background %s for an instance failed: %s: %s", fn.__name__, type(exc).__name__, exc)
        finally:
            self._queued.discard(key)

    async def advance(
        self, key: str, fn: Callable[..., T], *args: Any, on_start: Callable[[], Any] | None = None
    ) -> T:
        """``fn(*args)`` in the engine pool while holding ``key``'s lock (until ``fn``
        returns); ``on_start`` is called once the lock is held."""
        lock = self._acquire_ref(key)
        try:
            await lock.acquire()
        except BaseException:
            self._drop_ref(key)
            raise
        if on_start is not None:
            on_start()
        try:
            fut = self._engine(functools.partial(fn, *args))
        except BaseException:
            self._release(key, lock)
            raise
        fut.add_done_callback(lambda _: self._release(key, lock))
        return await asyncio.shield(fut)

    async def token_owner(self, token: str) -> str | None:
        """The id of the instance ``token`` belongs to (used or not), or None."""
        return await self.run(self.host.token_workflow_id, token)

    async def settle(self, inst: WorkflowInstance, wait: float | None) -> WorkflowInstance:
        """For ``?wait``: the instance once it has settled, at most ``wait`` seconds on."""
        if not wait:
            return inst
        found, _ = await self.settle_id(inst.workflow_id, wait, inst)
        return found or inst

    async def settle_id(
        self, workflow_id: str, wait: float, seen: WorkflowInstance | None = None
    ) -> tuple[WorkflowInstance | None, set[int]]:
        """Wait until the instance has settled (it suspended or finished, and no
        buffered event is about to reach it), at most ``wait`` seconds (a read
        that hangs counts too: ``WAIT_MARGIN``); returns the last state seen and
        the ids of its buffered events. A status change wakes the wait
        (``store.wait_for_change``: within milliseconds from another process on
        PostgreSQL); re-reading every ``POLL_SECONDS`` is the fallback."""
        deadline = time.monotonic() + max(wait, 0.0)
        host = self.host
        inst, pending = seen, set[int]()
        while True:
            mark = host.change_marker()  # before the read: a change after it wakes us
            left = deadline - time.monotonic()
            try:
                inst, settled, pending = await asyncio.wait_for(
                    self.run(self._observe, workflow_id), max(left, 0.0) + WAIT_MARGIN
                )
            except TimeoutError:
                return inst, pending
            left = deadline - time.monotonic()
            if settled or left <= 0:
                return inst, pending
            nap = min(POLL_SECONDS, left)
            with contextlib.suppress(TimeoutError):  # a busy thread pool must not stretch the wait
                await asyncio.wait_for(
                    asyncio.to_thread(host.wait_for_change, workflow_id, nap, since=mark), nap + 0.05
                )

    def _observe(self, workflow_id: str) -> tuple[WorkflowInstance, bool, set[int]]:
        """The instance, whether it has settled (not running, and no buffered
        event about to reach one of its waits: the advancing process delivers it
        right after its save), and its buffered events' ids. Buffered events are
        read before the instance, so a delivery between the two reads shows as
        "running", never as a stale "suspended"."""
        events = self.host.pending_events(workflow_id)
        buffered = {e.name for e in events}
        inst = self.host.get(workflow_id)
        ids = {e.event_id for e in events}
        if inst.status == "running":
            return inst, False, ids
        names = {n for w in inst.waits if w.kind == "event" for n in (w.event_names or ())}
        return inst, not (inst.status == "suspended" and names & buffered), ids

    def close(self) -> None:
        """Finish running advances, drop queued ones (the worker delivers what
        they would have: the events are stored)."""
        for task in list(self._background):
            task.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.reads.shutdown(wait=True, cancel_futures=True)
        self.stores.shutdown(wait=True, cancel_futures=True)

    # -- lock bookkeeping (event-loop thread only) ------------------------------------
    def _acquire_ref(self, key: str) -> asyncio.Lock:
        lock, refs = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, refs + 1)
        return lock

    def _drop_ref(self, key: str) -> None:
        lock, refs = self._locks[key]
        if refs <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, refs - 1)

    def _release(self, key: str, lock: asyncio.Lock) -> None:
        lock.release()
        self._drop_ref(key)


def _settle(fut: asyncio.Future[T], result: T | None, exc: BaseException | None) -> None:
    """Complete ``fut`` unless its waiter has gone (a request cancelled meanwhile)."""
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)  # type: ignore[arg-type]

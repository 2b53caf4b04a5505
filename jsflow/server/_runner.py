"""Engine work off the event loop, one advance per instance at a time.

Why a bounded thread pool: advancing an instance runs JavaScript and SQL
synchronously; on the event loop it would stall every other request. The
pool bounds how many advances run at once (each holds a QuickJS runtime and
a store connection). Why a per-instance lock on top of the store's
optimistic version check: two requests for one instance would both run the
engine and one would lose the race and run again; serializing them in the
process means each runs once, and the loser of a single-use token sees
"already used" at once instead of after a wasted run. The lock is released
when the thread finishes, not when the request is cancelled (a client that
hangs up does not let a second advance start beside the first).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from jsflow.host import WorkflowHost, WorkflowInstance, hash_token
from jsflow.host.store import workflow_key

T = TypeVar("T")
#: how often ``?wait`` looks at an instance that is still running
POLL_SECONDS = 0.25


class Runner:
    """Runs host calls in a pool, serialized per key (a workflow id)."""

    def __init__(self, host: WorkflowHost, threads: int) -> None:
        self.host = host
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="jsflow-engine")
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the pool, without a per-instance lock (reads)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))

    async def advance(self, key: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` in the pool while holding ``key``'s lock (until ``fn`` returns)."""
        lock = self._acquire_ref(key)
        try:
            await lock.acquire()
        except BaseException:
            self._drop_ref(key)
            raise
        loop = asyncio.get_running_loop()
        try:
            fut = loop.run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))
        except BaseException:
            self._release(key, lock)
            raise
        fut.add_done_callback(lambda _: self._release(key, lock))
        return await asyncio.shield(fut)

    async def token_key(self, token: str) -> str:
        """The lock key for a token resume: its instance's id when the token is known."""
        digest = hash_token(token)
        record = await self.run(self.host.store.get_token, digest)
        return record.workflow_id if record is not None else f"token:{digest}"

    async def settle(self, inst: WorkflowInstance, wait: float | None) -> WorkflowInstance:
        """For ``?wait``: if ``inst`` is still running (another worker is advancing
        it), wait until it suspends or finishes, at most ``wait`` seconds. A status
        change wakes the wait (``store.wait_for_change``: within milliseconds from
        another process on PostgreSQL); re-reading every ``POLL_SECONDS`` is the fallback."""
        if not wait or inst.status != "running":
            return inst
        deadline = time.monotonic() + wait
        store, key = self.host.store, workflow_key(inst.workflow_id)
        while True:
            mark = store.change_marker()  # before the read: a change after it wakes us
            inst = await self.run(self.host.get, inst.workflow_id)
            left = deadline - time.monotonic()
            if inst.status != "running" or left <= 0:
                return inst
            await asyncio.to_thread(store.wait_for_change, min(POLL_SECONDS, left), key, since=mark)

    def close(self) -> None:
        """Finish running advances, drop queued ones."""
        self.pool.shutdown(wait=True, cancel_futures=True)

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

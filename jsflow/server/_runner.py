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
        owner = await self.run(self.host.token_workflow_id, token)
        return owner if owner is not None else f"token:{hash_token(token)}"

    async def settle(self, inst: WorkflowInstance, wait: float | None) -> WorkflowInstance:
        """For ``?wait``: wait until the instance has settled (it suspended or
        finished, and no buffered event is about to reach it), at most ``wait`` seconds. A status
        change wakes the wait (``store.wait_for_change``: within milliseconds from
        another process on PostgreSQL); re-reading every ``POLL_SECONDS`` is the fallback."""
        if not wait:
            return inst
        deadline = time.monotonic() + wait
        host, wid = self.host, inst.workflow_id
        while True:
            mark = host.change_marker()  # before the read: a change after it wakes us
            inst, settled = await self.run(self._observe, wid)
            left = deadline - time.monotonic()
            if settled or left <= 0:
                return inst
            await asyncio.to_thread(host.wait_for_change, wid, min(POLL_SECONDS, left), since=mark)

    def _observe(self, workflow_id: str) -> tuple[WorkflowInstance, bool]:
        """The instance, and whether it has settled: not running, and no buffered
        event about to reach one of its waits (the advancing process delivers it
        right after its save). Buffered events are read before the instance, so a
        delivery between the two reads shows as "running", never as a stale
        "suspended"."""
        buffered = {e.name for e in self.host.pending_events(workflow_id)}
        inst = self.host.get(workflow_id)
        if inst.status == "running":
            return inst, False
        names = {n for w in inst.waits if w.kind == "event" for n in (w.event_names or ())}
        return inst, not (inst.status == "suspended" and names & buffered)

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

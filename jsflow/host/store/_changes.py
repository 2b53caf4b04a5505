"""Change notifications: wake a waiting worker or long-poll instead of making it poll.

Why keys and sequence numbers: a waiter reads the database, finds nothing to
do, then waits; a change committed between the read and the wait must still
wake it. So a waiter takes a ``marker()`` before it reads and waits for a
change *after* that marker. Keys say what changed:

- ``TIMERS_KEY``: a wait that becomes due soon (``TIMER_NOTIFY_HORIZON``) was
  stored, or a claim was given back: a worker should look again;
- ``workflow_key(id)``: the instance changed status or got an inbox event
  (what a long-poll on one instance waits for).

The board is in-process. Stores post to it after each commit; the PostgreSQL
store also forwards posts to other processes with LISTEN/NOTIFY and posts
what it hears. SQLite and memory stores have no cross-process channel, so a
waiter there sleeps until its timeout: polling is the fallback everywhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import timedelta

TIMERS_KEY = "timers"
#: a stored wait due within this long notifies TIMERS_KEY; a worker polling at
#: least this often finds later ones by itself before they are due
TIMER_NOTIFY_HORIZON = timedelta(seconds=60)
#: how many distinct keys the board remembers before it forgets (and wakes spuriously)
MAX_KEYS = 10_000


def timers_key() -> str:
    """The change key a worker waits on: a timer may be due sooner than it thought."""
    return TIMERS_KEY


def workflow_key(workflow_id: str) -> str:
    """The change key of one instance."""
    return f"wf:{workflow_id}"


class ChangeBoard:
    """Per-key sequence numbers under one condition variable."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._floor = 0  # keys forgotten at this seq count as changed then
        self._last: dict[str, int] = {}

    def marker(self) -> int:
        """The current position: pass it as ``since`` to see only later changes."""
        return self._seq

    def post(self, keys: Iterable[str]) -> None:
        """Record that ``keys`` changed and wake every waiter."""
        with self._cond:
            self._seq += 1
            if len(self._last) >= MAX_KEYS:
                self._last.clear()
                self._floor = self._seq
            for key in keys:
                self._last[key] = self._seq
            self._cond.notify_all()

    def _changed(self, keys: tuple[str, ...], since: int) -> bool:
        if self._seq <= since:
            return False
        if not keys or self._floor > since:
            return True
        return any(self._last.get(key, 0) > since for key in keys)

    def wait(self, timeout: float, keys: tuple[str, ...], since: int | None) -> bool:
        """Block until one of ``keys`` (any, if empty) changed after ``since``; False at timeout."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            start = self._seq if since is None else since
            while not self._changed(keys, start):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

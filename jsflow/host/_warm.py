"""Warm runs: suspended runs kept live so the next delivery needs no replay.

Why: a cold advance boots a sandbox, loads the script and replays the whole
journal before it can deliver one event; a warm one delivers at once. The
model is Temporal's sticky cache: keep live state, and fall back to replay on
any doubt. A cached run is used only if everything it was built from still
holds: the instance's incarnation is the same (a new id at every start, so
an instance purged and started again under the same id is never served the
old run), its stored version is the version this process saved after the
run's last advance (any other writer, a retry, an upgrade or a cancel moves
it), the script version is the same, and the engine's and the host's
registrations and the limits are unchanged. ``purge`` evicts the runs of the
instances it deletes. Anything else closes the cached run and the driver
replays from the store, which stays the source of truth.

Bounds: at most ``max_runs`` runs and ``max_bytes`` of memory. A run's
memory is estimated as QuickJS's own count (``LiveRun.memory_bytes``) plus
``RUN_OVERHEAD``: what keeping a parked run costs a process that the count
does not see. Measured on an approval workflow (3 steps, then a wait; 263 KB
by QuickJS's count): the runtime's allocations that quickjs-ng leaves out
of its count (a bare context is 165 KB of RSS against 99 KB counted), the
Python side of the run (about 40 KB: the run, its journal entries, the
bridge's objects) and the allocators' holes while runs come and go (a
process that keeps N runs while others are opened and closed grows by
about 480 KB per kept run, against 335 KB when nothing else comes and
goes). Measuring walks the whole QuickJS heap, which grows with the
journal, so a run is measured again only once its journal has grown by a
quarter since the last measure: the cost per delivery stays the same at any
journal length. Eviction takes first the runs least likely to be needed
soon: those with no timer (waiting on an event or token) or with the
furthest timer, then the least recently used. Ownership is exclusive:
``take`` removes the entry, so two threads never share a run.

The defaults, decided from ``bench/compare.py --only rss`` (6 December
2026, SQLite): a process holding 1,000 suspended instances and no warm run
takes about 46 MB, DBOS holding the same about 135 MB. ``DEFAULT_MAX_BYTES``
(12 MiB, about 27 small runs) keeps that process near 60 MB, under half of
DBOS's, while the runs most likely to be needed next (the nearest timers,
the latest events) stay warm; ``DEFAULT_MAX_RUNS`` (64) bounds the count
where runs are smaller. Every warm run saves one replay of its journal: a
process with memory to spare raises ``warm_bytes`` (and ``warm_runs``), at
about 0.5 MB per small run.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jsflow import LiveRun

DEFAULT_MAX_RUNS = 64
DEFAULT_MAX_BYTES = 12 * 2**20
#: what a kept run costs a process beyond QuickJS's own count (measured, see the module doc)
RUN_OVERHEAD = 192 * 2**10


@dataclass(frozen=True)
class RunKey:
    """What a warm run was built from, on the instance's side."""

    incarnation: str
    version: int
    script_hash: str


@dataclass
class _Entry:
    run: LiveRun
    key: RunKey
    fingerprint: tuple[Any, ...]
    next_due: datetime | None
    size: int  # QuickJS's own count (the bound adds RUN_OVERHEAD)


class WarmRuns:
    """An LRU of suspended live runs, keyed by workflow id."""

    def __init__(self, fingerprint: Callable[[], tuple[Any, ...]], max_runs: int, max_bytes: int) -> None:
        for name, value in (("warm_runs", max_runs), ("warm_bytes", max_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, not {value!r}")
        self.fingerprint = fingerprint
        self.max_runs = max_runs
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0  # QuickJS's own count for the cached runs
        self._lock = threading.Lock()
        #: run -> (journal length, bytes) when it was last measured
        self._measured: weakref.WeakKeyDictionary[LiveRun, tuple[int, int]] = weakref.WeakKeyDictionary()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_runs > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """QuickJS's own count of the cached runs' memory."""
        return self._bytes

    @property
    def estimated_bytes(self) -> int:
        """What the cached runs cost the process, as ``max_bytes`` counts it:
        ``bytes`` plus ``RUN_OVERHEAD`` per run."""
        return self._estimate()

    def holds(self, workflow_id: str) -> bool:
        """Whether a run for ``workflow_id`` is cached (it may still not match)."""
        return workflow_id in self._entries

    def take(self, workflow_id: str, key: RunKey) -> LiveRun | None:
        """The cached run if it matches exactly (removed from the cache), else None."""
        if not self.enabled:
            return None
        with self._lock:
            entry = self._entries.pop(workflow_id, None)
            if entry is not None:
                self._bytes -= entry.size
        if entry is None:
            self.misses += 1
            return None
        if entry.key != key or entry.fingerprint != self.fingerprint():
            entry.run.close()
            self.misses += 1
            return None
        self.hits += 1
        return entry.run

    def put(self, workflow_id: str, run: LiveRun, key: RunKey, next_due: datetime | None) -> None:
        """Keep a suspended run; closes it instead when the cache is off or it does not fit."""
        if not self.enabled or run.closed:
            run.close()
            return
        size = self._size(run)
        if size + RUN_OVERHEAD > self.max_bytes:
            run.close()
            return
        entry = _Entry(run, key, self.fingerprint(), next_due, size)
        evicted: list[_Entry] = []
        with self._lock:
            old = self._entries.pop(workflow_id, None)
            if old is not None:
                self._bytes -= old.size
                evicted.append(old)
            self._entries[workflow_id] = entry
            self._bytes += size
            while len(self._entries) > self.max_runs or self._estimate() > self.max_bytes:
                victim = self._victim()
                gone = self._entries.pop(victim)
                self._bytes -= gone.size
                evicted.append(gone)
        for gone in evicted:
            gone.run.close()

    def _estimate(self) -> int:
        return self._bytes + RUN_OVERHEAD * len(self._entries)

    def _size(self, run: LiveRun) -> int:
        """The run's memory (QuickJS's count), measured again once its journal grew by a quarter."""
        length = run.journal_length
        seen = self._measured.get(run)
        if seen is not None and length <= seen[0] + max(16, seen[0] // 4):
            return seen[1]
        size = run.memory_bytes
        self._measured[run] = (length, size)
        return size

    def _victim(self) -> str:
        """No timer first, then the furthest timer; LRU order breaks ties (oldest first)."""
        best_key, best_rank = "", None
        for position, (key, entry) in enumerate(self._entries.items()):
            rank = (entry.next_due is None, entry.next_due.timestamp() if entry.next_due else 0.0, -position)
            if best_rank is None or rank > best_rank:
                best_key, best_rank = key, rank
        return best_key

    def discard(self, workflow_id: str) -> None:
        with self._lock:
            entry = self._entries.pop(workflow_id, None)
            if entry is not None:
                self._bytes -= entry.size
        if entry is not None:
            entry.run.close()

    def clear(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._bytes = 0
        for entry in entries:
            entry.run.close()

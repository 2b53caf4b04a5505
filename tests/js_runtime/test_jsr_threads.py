"""Concurrent sandboxes in one process do not spend each other's JS budget.

The binding's time limit reads the process-wide CPU clock; JS sections are
serialised by a process-wide lock, so a run's budget measures its own JS.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from js_runtime import Sandbox, SandboxLimits, TimeLimitExceeded

BURN = (
    "host.register('burn', n => { let x = 0; for (let i = 0; i < n; i++) x = (x + i) % 1000003; return x; })"
)
LIMIT = 0.5


def _iterations_for(seconds: float) -> int:
    """Loop iterations that take about ``seconds`` of JS on this machine now."""
    with Sandbox(SandboxLimits(time=10)) as sb:
        sb.start_budget()
        sb.install(BURN)
        n = 200_000
        while True:
            t0 = time.perf_counter()
            sb.call("burn", n)
            took = time.perf_counter() - t0
            if took > 0.05:
                return int(n * seconds / took)
            n *= 4


def _burn(n: int, limit: float = LIMIT) -> float:
    with Sandbox(SandboxLimits(time=limit)) as sb:
        sb.start_budget()
        sb.install(BURN)
        sb.call("burn", n)
        return sb.cpu_used


def test_twenty_threads_each_within_their_own_budget() -> None:
    n = _iterations_for(0.6 * LIMIT)
    with ThreadPoolExecutor(max_workers=20) as pool:
        used = list(pool.map(_burn, [n] * 20))  # raises if any run hit its limit
    assert len(used) == 20


def test_runaway_is_stopped_promptly_while_others_run() -> None:
    n = _iterations_for(0.05)
    stop = threading.Event()

    def neighbour() -> int:
        calls = 0
        while not stop.is_set():
            _burn(n, limit=2.0)
            calls += 1
        return calls

    def runaway() -> tuple[str, float, float]:
        with Sandbox(SandboxLimits(time=0.3)) as sb:
            sb.start_budget()
            sb.install("host.register('spin', () => { for (;;) {} })")
            t0, cpu0 = time.perf_counter(), time.thread_time()
            try:
                sb.call("spin")
            except TimeLimitExceeded as exc:
                outcome = type(exc).__name__
            else:
                outcome = "finished"
            return outcome, time.thread_time() - cpu0, time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=5) as pool:
        neighbours = [pool.submit(neighbour) for _ in range(4)]
        time.sleep(0.1)
        outcome, used, elapsed = pool.submit(runaway).result(timeout=30)
        stop.set()
        calls = [f.result(timeout=30) for f in neighbours]
    assert outcome == "TimeLimitExceeded"
    assert used < 0.45  # this thread's CPU: its own 0.3 s limit, not the neighbours' time
    assert elapsed < 10.0  # waiting for the neighbours' JS sections included
    assert all(c >= 1 for c in calls)

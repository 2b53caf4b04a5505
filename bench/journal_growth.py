"""Host time per step as the journal grows (issue: append-only journal storage).

One workflow runs 10,100 steps in one advance on a SQLite file; a step
records when it is called, so the gap between two step calls is the whole
cost of one step: journal write (row + version check), engine bookkeeping and
JS. Prints the median gap around journal length 10 and 10,000 and their
ratio (flat storage gives ~1.0; rewriting the whole state per step grows
with the journal).

Then the warm delivery (issue 17): an instance with a journal of 10, 1,000
and 10,000 entries waits for an event, its run kept warm by the host; the
time of ``send_event`` (store the event, deliver it to the warm run, save,
reach the next suspension) is measured over many events. A warm hit should
read only what changed, so the time should not grow with the journal
(target: 10,000 within 1.3x of 10). Printed, never asserted.

    python bench/journal_growth.py [--steps 10100] [--events 200] [--skip-steps]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from jsflow import Limits, WorkflowEngine
from jsflow.host import WorkflowHost

SCRIPT = "async function main(n) { for (let i = 0; i < n; i++) await tick(i); return n; }"
EVENT_LOOP = """
async function main(n) {
  for (let i = 0; i < n; i++) await tick(i);
  for (;;) await waitForEvent('go');
}
"""
JOURNAL_SIZES = (10, 1_000, 10_000)


def run(steps: int) -> list[float]:
    stamps: list[float] = []

    def tick(i: int) -> int:
        stamps.append(time.perf_counter())
        return i

    engine = WorkflowEngine(limits=Limits(time=600.0))
    engine.register_step_function("tick", tick)
    with (
        tempfile.TemporaryDirectory() as tmp,
        WorkflowHost(f"sqlite:///{Path(tmp) / 'bench.db'}", engine, hook_secret="bench") as host,
    ):
        host.register_script("ticks", SCRIPT)
        began = time.perf_counter()
        inst = host.start("ticks", steps)
        total = time.perf_counter() - began
        assert inst.status == "completed", inst.error
    print(f"{steps} steps in one advance: {total:.2f} s ({total / steps * 1e6:.0f} us per step overall)")
    return [b - a for a, b in itertools.pairwise(stamps)]


def event_latencies(sizes: tuple[int, ...], events: int) -> dict[int, float]:
    """Median seconds of ``send_event`` -> next suspension at each journal size, warm.

    One host holds an instance per size; events go to them in turn, so a busy
    machine slows every size alike and the ratio stays meaningful."""
    engine = WorkflowEngine(limits=Limits(time=600.0))
    engine.register_step_function("tick", lambda i: i)
    times: dict[int, list[float]] = {size: [] for size in sizes}
    with (
        tempfile.TemporaryDirectory() as tmp,
        WorkflowHost(f"sqlite:///{Path(tmp) / 'bench.db'}", engine, hook_secret="bench") as host,
    ):
        host.register_script("loop", EVENT_LOOP)
        for size in sizes:
            inst = host.start("loop", size - 1, workflow_id=f"w{size}")  # size-1 steps, then events
            assert inst.status == "suspended", inst.error
            for _ in range(10):  # warm up (caches, the first warm hit)
                host.send_event(f"w{size}", "go")
        misses = host.warm.misses
        for _ in range(events):
            for size in sizes:
                began = time.perf_counter()
                receipt = host.send_event(f"w{size}", "go")
                times[size].append(time.perf_counter() - began)
                assert receipt.delivered
        assert host.warm.misses == misses, "every measured delivery should hit a warm run"
    medians = {size: statistics.median(values) for size, values in times.items()}
    for size, median in medians.items():
        print(f"event -> next suspension, warm, journal {size:>6,}: {median * 1e3:6.2f} ms")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_100)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--skip-steps", action="store_true", help="only the warm-delivery figures")
    args = parser.parse_args()
    medians = event_latencies(JOURNAL_SIZES, args.events)
    first, last = medians[JOURNAL_SIZES[0]], medians[JOURNAL_SIZES[-1]]
    print(
        f"warm delivery ratio journal {JOURNAL_SIZES[-1]:,}/{JOURNAL_SIZES[0]}: "
        f"{last / first:.2f}x (target <= 1.3x)"
    )
    if args.skip_steps:
        return
    gaps = run(args.steps)
    early, late = gaps[10:110], gaps[-100:]
    for label, fn in (("median", statistics.median), ("mean", statistics.fmean)):
        a, b = fn(early), fn(late)
        late_at = f"{len(gaps) - 50:,}"
        print(f"{label:6} per step at journal ~10: {a * 1e6:8.1f} us, at ~{late_at}: {b * 1e6:8.1f} us")
        print(f"{label:6} ratio late/early: {b / a:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()

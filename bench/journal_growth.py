"""Host time per step as the journal grows (issue: append-only journal storage).

One workflow runs 10,100 steps in one advance on a SQLite file; a step
records when it is called, so the gap between two step calls is the whole
cost of one step: journal write (row + version check), engine bookkeeping and
JS. Prints the median gap around journal length 10 and 10,000 and their
ratio (flat storage gives ~1.0; rewriting the whole state per step grows
with the journal). Printed, never asserted.

    python bench/journal_growth.py [--steps 10100]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_100)
    args = parser.parse_args()
    gaps = run(args.steps)
    early, late = gaps[10:110], gaps[-100:]
    for label, fn in (("median", statistics.median), ("mean", statistics.fmean)):
        a, b = fn(early), fn(late)
        late_at = f"{len(gaps) - 50:,}"
        print(f"{label:6} per step at journal ~10: {a * 1e6:8.1f} us, at ~{late_at}: {b * 1e6:8.1f} us")
        print(f"{label:6} ratio late/early: {b / a:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()

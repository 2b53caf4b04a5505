"""Engine benchmark: prints figures and ratios; asserts nothing.

1. start -> first suspension of a small approval script (3 steps, then a
   suspend). Target: <= 1 ms median.
2. resume cost against journal length (10 .. 10,000 completed steps).
   Target: <= 10 us per journal entry (a 1,000-entry resume <= 10 ms).
3. Baseline: the same loop in bare QuickJS (quickjs.Context, plain async JS
   functions instead of steps, the job queue drained from Python). Target:
   replay overhead <= 3x the baseline.
4. A fresh sandbox with the prelude installed (bytecode when
   ``js_runtime.native_status()`` is enabled), a ten-step workflow through the
   engine alone, and the replay loop's own cost per journal entry (the
   sandbox's ``repeat_and_drain``, timed by wrapping it). Target: <= 3 us.

Run: ``.venv/bin/python bench/engine.py`` (``--quick`` for fewer repeats).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import quickjs

import js_runtime
from js_runtime import Sandbox
from jsflow import WorkflowEngine, WorkflowStatus

APPROVAL = """
async function main(orderId) {
  const order = await fetchOrder(orderId);
  const stock = await reserveStock(order.items);
  const quote = await priceOrder(order, stock);
  const ok = await getApproval('manager', orderId, quote.total);
  return ok ? 'shipped' : 'cancelled';
}
"""

LOOP = """
async function main(n) {
  let total = 0;
  for (let i = 0; i < n; i++) total += await work(i);
  const ok = await getApproval(total);
  return ok ? total : -1;
}
"""

TEN_STEPS = """
async function main(n) {
  let total = 0;
  for (let i = 0; i < 10; i++) total += await work(n + i);
  return total;
}
"""

BARE_LOOP = """
async function work(i) { return i; }
async function main(n) {
  let total = 0;
  for (let i = 0; i < n; i++) total += await work(i);
  return total;
}
"""


def clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


def make_engine() -> WorkflowEngine:
    engine = WorkflowEngine(clock=clock)
    engine.register_step_function("fetchOrder", lambda oid: {"id": oid, "items": [1, 2, 3]})
    engine.register_step_function("reserveStock", lambda items: {"reserved": len(items)})
    engine.register_step_function("priceOrder", lambda order, stock: {"total": 42})
    engine.register_step_function("work", lambda i: i)
    engine.register_suspend_function("getApproval")
    return engine


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bare_quickjs(n: int) -> None:
    ctx = quickjs.Context()
    ctx.eval(BARE_LOOP)
    ctx.eval(f"main({n}).then(v => {{ globalThis.result = v; }})")
    while ctx.execute_pending_job():
        pass
    assert ctx.eval("result") == n * (n - 1) // 2


def bench_start(engine: WorkflowEngine, repeats: int) -> float:
    def once() -> None:
        result = engine.run_workflow(APPROVAL, "main", "o-1")
        assert result.status is WorkflowStatus.SUSPENDED

    once()
    med = statistics.median(timed(once, repeats))
    print(
        f"start -> first suspension (3 steps + suspend): median {med * 1e3:.3f} ms "
        f"(target <= 1 ms: {'OK' if med <= 1e-3 else 'MISSED'})"
    )
    return med


def bench_resume(engine: WorkflowEngine, sizes: list[int], repeats: int) -> None:
    print("\nresume cost against journal length (replay N steps, resume, complete):")
    print(f"{'N':>7} {'resume ms':>10} {'us/entry':>9} {'bare QuickJS ms':>16} {'ratio':>6}")
    for n in sizes:
        suspended = engine.run_workflow(LOOP, "main", n)
        assert suspended.status is WorkflowStatus.SUSPENDED, suspended.error
        state = suspended.state.serialize()

        def resume(state: str = state, n: int = n) -> None:
            result = engine.resume_workflow(LOOP, state, True)
            assert result.value == n * (n - 1) // 2, result.error

        reps = max(3, repeats // max(1, n // 100))
        med = statistics.median(timed(resume, reps))
        bare = statistics.median(timed(lambda n=n: bare_quickjs(n), reps))
        per = med / n * 1e6
        print(f"{n:>7} {med * 1e3:>10.2f} {per:>9.2f} {bare * 1e3:>16.3f} {med / bare:>6.1f}x")
    print("targets: <= 10 us per entry; replay overhead over bare QuickJS <= 3x")


def bench_fixed_costs(engine: WorkflowEngine, repeats: int) -> None:
    prelude = resources.files("jsflow").joinpath("runtime", "prelude.js").read_text("utf-8")

    def fresh() -> None:
        with Sandbox() as sb:
            sb.start_budget()
            sb.install(prelude)

    def ten() -> None:
        assert engine.run_workflow(TEN_STEPS, "main", 1).status is WorkflowStatus.COMPLETED

    status = getattr(js_runtime, "native_status", None)  # absent before the native paths
    if status is not None:
        print(f"native paths: {'on' if status().enabled else 'off'} ({status().reason})")
    for label, fn in (("fresh sandbox + prelude", fresh), ("ten-step workflow, engine only", ten)):
        fn()
        times = timed(fn, repeats)
        med = statistics.median(times)
        print(f"{label + ':':<34} median {med * 1e6:8.0f} us, best {min(times) * 1e6:8.0f} us")
    n = 1000
    state = engine.run_workflow(LOOP, "main", n).state.serialize()
    spent: list[float] = []
    original = Sandbox.repeat_and_drain

    def wrapped(self: Sandbox, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(self, *args)
        finally:
            spent.append(time.perf_counter() - t0)

    Sandbox.repeat_and_drain = wrapped  # type: ignore[method-assign]
    try:
        for _ in range(max(5, repeats // 10)):
            engine.resume_workflow(LOOP, state, True)
    finally:
        Sandbox.repeat_and_drain = original  # type: ignore[method-assign]
    per, best = statistics.median(spent) / n * 1e6, min(spent) / n * 1e6
    label = "replay loop at 1,000 entries:"
    print(f"{label:<34} median {per:8.2f} us/entry, best {best:.2f} (target <= 3 us)\n")


def main() -> None:
    quick = "--quick" in sys.argv
    repeats = 20 if quick else 200
    engine = make_engine()
    bench_fixed_costs(engine, repeats)
    bench_start(engine, repeats)
    sizes = [10, 100, 1000] if quick else [10, 100, 1000, 10000]
    bench_resume(engine, sizes, 10 if quick else 30)


if __name__ == "__main__":
    main()

"""Warm runs: the cache never changes an outcome, only how fast it comes.

A property test drives random scripts through random deliveries on two hosts,
one with the warm-run cache and one without, and compares everything they
store: statuses, values, journals and pending waits.
"""

from __future__ import annotations

from typing import Any

import pytest
from _host_helpers import FakeClock, open_host
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jsflow.host import AlreadyResumedError, HostError, WorkflowHost

OPS = {
    "step": "log.push(await twice({n}));",
    "sleep": "await sleep('{n}m');",
    "event": "log.push(await waitForEvent('e{m}'));",
    "race": "log.push(await Promise.race([waitForEvent('e{m}').then(p => 'ev'), "
    "sleep('{n}m').then(() => 'tick')]));",
    "all": "log.push(await Promise.all([twice({n}), ask({m})]));",
    "ask": "log.push(await ask({n}));",
    "try": "try {{ log.push(await waitForEvent('e{m}', {{timeout: '{n}m'}})); }} "
    "catch (e) {{ log.push(e.name); }}",
}


def script_of(ops: list[tuple[str, int, int]]) -> str:
    body = "\n  ".join(OPS[op].format(n=n, m=m) for op, n, m in ops)
    return f"async function main() {{\n  const log = [];\n  {body}\n  return log;\n}}"


ops_strategy = st.lists(
    st.tuples(st.sampled_from(sorted(OPS)), st.integers(1, 9), st.integers(0, 2)), min_size=1, max_size=8
)
actions_strategy = st.lists(
    st.tuples(st.sampled_from(["event", "resume", "tick", "recover"]), st.integers(0, 2), st.integers(0, 99)),
    max_size=14,
)


def make(clock: FakeClock, warm: int) -> WorkflowHost:
    host = open_host("memory://", clock, warm_runs=warm)
    host.register_step_function("twice", lambda n: 2 * n)
    host.register_suspend_function("ask")
    return host


def apply(host: WorkflowHost, clock: FakeClock, action: tuple[str, int, int]) -> Any:
    kind, m, value = action
    try:
        if kind == "event":
            return ("event", host.send_event("w", f"e{m}", value).delivered)
        if kind == "resume":
            asks = [w for w in host.get("w").waits if w.kind == "suspend"]
            if not asks:
                return ("resume", None)
            return ("resume", host.resume("w", value, wait_id=asks[m % len(asks)].wait_id).status)
        if kind == "tick":
            clock.advance(minutes=value % 7 + 1)
            return ("tick", host.run_due())
        return ("recover", host.recover("w").status)
    except (AlreadyResumedError, HostError) as exc:
        return (kind, type(exc).__name__)


def observe(host: WorkflowHost) -> Any:
    inst = host.get("w")
    waits = [(w.wait_id, w.function_name, w.resume_at, w.event_names) for w in inst.waits]
    journal = [e.model_dump() for e in host.journal("w")]
    return inst.status, inst.value, inst.error, waits, journal


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy, actions=actions_strategy)
def test_cache_on_and_off_store_the_same(ops: list[tuple[str, int, int]], actions: list[Any]) -> None:
    source = script_of(ops)
    clocks = FakeClock(), FakeClock()
    hosts = make(clocks[0], 64), make(clocks[1], 0)
    try:
        for host in hosts:
            host.register_script("s", source)
            host.start("s", workflow_id="w")
        assert observe(hosts[0]) == observe(hosts[1])
        for action in actions:
            outcomes = [apply(host, clock, action) for host, clock in zip(hosts, clocks, strict=True)]
            assert outcomes[0] == outcomes[1], (source, action)
            assert observe(hosts[0]) == observe(hosts[1]), (source, action)
        assert hosts[0].warm.hits + hosts[0].warm.misses > 0
        assert hosts[1].warm.hits == 0
    finally:
        for host in hosts:
            host.close()


def test_a_warm_run_is_used_and_a_foreign_write_forces_a_replay(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    calls: list[int] = []
    a = open_host(url, warm_runs=8)
    a.register_step_function("twice", lambda n: calls.append(n) or 2 * n)
    script = (
        "async function main() { let t = 0; for (;;) { const e = await waitForEvent('add'); "
        "if (e === 0) return t; t += await twice(e); } }"
    )
    a.register_script("s", script)
    a.start("s", workflow_id="w")
    a.send_event("w", "add", 1)
    hits = a.warm.hits
    a.send_event("w", "add", 2)
    assert a.warm.hits == hits + 1  # delivered to the live run, no replay
    b = open_host(url, warm_runs=8)  # another process advances the instance
    b.register_step_function("twice", lambda n: calls.append(n) or 2 * n)
    b.send_event("w", "add", 3)
    misses = a.warm.misses
    a.send_event("w", "add", 0)
    assert a.warm.misses == misses + 1  # the stale run was dropped and the journal replayed
    assert a.get("w").value == 12 and calls == [1, 2, 3]
    a.close()
    b.close()


def test_the_cache_stays_within_its_bounds() -> None:
    clock = FakeClock()
    host = open_host("memory://", clock, warm_runs=5)
    host.register_script("s", "async function main(n) { await sleep(n + 'm'); return n; }")
    host.register_script("e", "async function main() { return await waitForEvent('x'); }")
    for n in range(1, 9):
        host.start("s", n, workflow_id=f"s{n}")
    host.start("e", workflow_id="untimed")
    assert len(host.warm) == 5
    host.start("s", 1, workflow_id="soon")
    assert len(host.warm) == 5 and host.warm.bytes > 0
    per_run = host.warm.estimated_bytes / len(host.warm)  # QuickJS's count plus what it misses
    assert host.warm.bytes / len(host.warm) <= 300 * 1024  # issue 22: a warm run <= 300 KB
    assert host.warm.bytes < host.warm.estimated_bytes and per_run < 600 * 1024
    small = open_host("memory://", clock, warm_runs=100, warm_bytes=int(per_run * 3))
    small.register_script("s", "async function main(n) { await sleep(n + 'm'); return n; }")
    for n in range(1, 10):
        small.start("s", n, workflow_id=f"x{n}")
    assert small.warm.estimated_bytes <= per_run * 3 and len(small.warm) <= 3
    clock.advance(hours=1)
    assert host.run_due() == 9 and small.run_due() == 9
    assert host.get("s8").value == 8
    host.close()
    small.close()


def test_runs_waiting_without_a_timer_are_evicted_first() -> None:
    clock = FakeClock()
    host = open_host("memory://", clock, warm_runs=2)
    host.register_script("s", "async function main() { await sleep('5m'); return 1; }")
    host.register_script("e", "async function main() { return await waitForEvent('x'); }")
    host.start("e", workflow_id="untimed")
    host.start("s", workflow_id="t1")
    host.start("s", workflow_id="t2")  # full: the run with no timer goes, though t1 is older
    misses = host.warm.misses
    clock.advance(minutes=10)
    assert host.run_due() == 2 and host.warm.misses == misses  # both timers hit warm runs
    assert host.send_event("untimed", "x", 7).delivered and host.warm.misses == misses + 1
    host.close()


def test_the_default_cache_is_bounded_by_memory_and_keeps_the_latest_runs_warm(tmp_path: Any) -> None:
    """The defaults keep a process with many suspended instances small (issue
    22: 1,000 of them within half of DBOS's RSS) and the runs just used warm."""
    host = open_host(f"sqlite:///{tmp_path / 'w.db'}", FakeClock())
    host.register_script("e", "async function main(n) { return await waitForEvent('go'); }")
    for n in range(60):
        host.start("e", n, workflow_id=f"w{n}")
    assert 0 < host.warm.bytes < host.warm.estimated_bytes <= 12 * 2**20
    assert 16 <= len(host.warm) <= 40  # bounded by memory, not by the 64 runs
    hits = host.warm.hits
    assert host.send_event("w59", "go", 1).delivered and host.get("w59").value == 1
    assert host.warm.hits == hits + 1
    misses = host.warm.misses
    assert host.send_event("w0", "go", 2).delivered and host.get("w0").value == 2
    assert host.warm.misses == misses + 1  # evicted long ago: replayed from the store
    host.close()


def test_warm_bytes_zero_turns_the_cache_off_and_a_run_too_large_is_not_kept() -> None:
    clock = FakeClock()
    script = (
        "async function main(n) { const big = 'x'.repeat(n); await waitForEvent('go'); return big.length; }"
    )
    off = open_host("memory://", clock, warm_bytes=0)
    off.register_script("s", script)
    off.start("s", 10, workflow_id="a")
    assert len(off.warm) == 0 and off.send_event("a", "go", 1).delivered
    assert off.get("a").value == 10
    host = open_host("memory://", clock, warm_bytes=2 * 2**20)
    host.register_script("s", script)
    host.start("s", 10, workflow_id="small")
    host.start("s", 3 * 2**20, workflow_id="large")  # about 3 MB of JS string: over the bound
    assert host.warm.holds("small") and not host.warm.holds("large")
    assert host.send_event("large", "go", 1).delivered and host.get("large").value == 3 * 2**20
    off.close()
    host.close()


def test_the_bounds_must_be_counts() -> None:
    for bad in ({"warm_runs": -1}, {"warm_bytes": -5}, {"warm_bytes": 1.5}, {"warm_runs": True}):
        with pytest.raises(ValueError, match="warm_"):
            open_host("memory://", **bad)

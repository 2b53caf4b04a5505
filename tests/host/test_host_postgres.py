"""Several worker processes on one PostgreSQL database.

Real processes (tests/host/_pg_worker.py), each with its own worker id and
connection pool, on a throwaway server (see conftest.py): timers fired
exactly once, workflows finishing while workers are SIGKILLed, FIFO inbox
under concurrent senders, and a worker stalled past its lease (SIGSTOP) that
cannot overwrite the new owner's work. Plus the PostgreSQL-only store
details: numbering under concurrency, placeholders, cross-process wake-ups.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from _host_helpers import open_host

from jsflow.host import WorkflowHost
from jsflow.host.store import (
    ConcurrencyError,
    SQLStore,
    StoreError,
    TransactionConflictError,
    WorkflowRecord,
    open_store,
    workflow_key,
)
from jsflow.testing import each

HERE = Path(__file__).parent
CHILD = HERE / "_pg_worker.py"
sys.path.insert(0, str(HERE))
from _pg_worker import CHAOS_SCRIPT, FIFO_SCRIPT, STALL_SCRIPT, TIMER_SCRIPT  # noqa: E402


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent.parent), env.get("PYTHONPATH", "")])
    return env


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, text=True, env=_env()
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"


# -- store details ------------------------------------------------------------------------
def test_concurrent_numbering_never_collides(pg_url: str) -> None:
    """history seq and script registration order were MAX()+1: safe only with one writer."""
    stores = [open_store(pg_url) for _ in range(4)]
    script = each(stores[0]).put_script("s", "x")
    each(stores[0]).create_workflow(
        WorkflowRecord(workflow_id="w", script_name="s", script_hash=script.hash, state="{}")
    )
    errors: list[BaseException] = []

    def append(store: SQLStore, n: int) -> None:
        try:
            for i in range(25):
                each(store).append_history("w", "tick", {"n": n, "i": i})
                each(store).put_script(f"s{n}", f"source {i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [h.seq for h in each(stores[0]).list_history("w")] == list(range(1, 101))
    assert len(each(stores[0]).list_scripts()) == 101
    for store in stores:
        store.close()


def test_placeholders_are_compiled_not_replaced(pg_url: str) -> None:
    with open_store(pg_url) as store:
        assert isinstance(store, SQLStore)
        with store.transaction() as tx:
            rows = tx.query(  # type: ignore[attr-defined]
                "SELECT '?' || ?, '100%' /* ? */, \"?x\".a FROM (SELECT 1 AS a) AS \"?x\" -- ?\n", ("p",)
            )
        assert rows == [("?p", "100%", 1)]


def test_change_in_one_process_wakes_another(pg_url: str) -> None:
    script = "async function main() { await waitForEvent('go'); return 1; }"
    with open_host(pg_url) as host, open_store(pg_url) as watcher:
        host.register_script("s", script)
        host.start("s", workflow_id="w")
        mark = watcher.change_marker()  # starts listening
        sent = time.perf_counter()
        threading.Timer(0.05, lambda: host.send_event("w", "go", 1)).start()
        wakes = 0
        while each(watcher).get_workflow("w").status != "completed":  # type: ignore[union-attr]
            assert watcher.wait_for_change(10, workflow_key("w"), since=mark)  # the event, then the end
            mark = watcher.change_marker()
            wakes += 1
        assert 1 <= wakes <= 3 and time.perf_counter() - sent < 5


def test_deadlock_is_a_concurrency_error(pg_url: str) -> None:
    """The database aborts one of two transactions that wait on each other: the loser
    gets TransactionConflictError, a ConcurrencyError (what the host retries)."""
    stores = [open_store(pg_url) for _ in range(2)]
    script = each(stores[0]).put_script("s", "x")
    for wid in ("a", "b"):
        each(stores[0]).create_workflow(
            WorkflowRecord(workflow_id=wid, script_name="s", script_hash=script.hash)
        )
    both_locked = threading.Barrier(2, timeout=10)
    outcomes: list[BaseException | None] = []

    def cross(store: SQLStore, first: str, second: str) -> None:
        try:
            with store.transaction() as tx:
                tx.execute("UPDATE workflows SET version = version WHERE workflow_id = ?", (first,))  # type: ignore[attr-defined]
                both_locked.wait()
                tx.execute("UPDATE workflows SET version = version WHERE workflow_id = ?", (second,))  # type: ignore[attr-defined]
            outcomes.append(None)
        except BaseException as exc:
            outcomes.append(exc)

    threads = [
        threading.Thread(target=cross, args=(stores[0], "a", "b")),
        threading.Thread(target=cross, args=(stores[1], "b", "a")),
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    errors = [e for e in outcomes if e is not None]
    assert len(outcomes) == 2 and len(errors) == 1, outcomes
    assert isinstance(errors[0], TransactionConflictError) and isinstance(errors[0], ConcurrencyError)
    assert errors[0].sqlstate == "40P01"
    for store in stores:
        store.close()


def test_idle_worker_is_woken_by_a_timer_stored_elsewhere(pg_url: str, tmp_path: Path) -> None:
    """A worker polling every 30 s fires a 200 ms sleep started by another process on
    time: the stored wait's NOTIFY wakes it to re-read the next due time."""
    with WorkflowHost(pg_url, hook_secret="s") as host:
        host.register_script("nap", "async function main() { await sleep('200ms'); return 1; }")
        proc = spawn("worker", pg_url, str(tmp_path / "log"), "30")
        try:
            wait_ready(proc)
            time.sleep(0.5)  # its first pass found nothing: it now sleeps for 30 s
            started = time.monotonic()
            host.start("nap", workflow_id="nap")
            while host.get("nap").status != "completed":
                assert time.monotonic() - started < 10, "the worker was not woken"
                time.sleep(0.02)
        finally:
            proc.kill()
            proc.wait()


def test_store_errors_are_translated(pg_url: str) -> None:
    with open_store(pg_url) as store, pytest.raises(StoreError) as info, store.transaction() as tx:
        tx.execute("SELECT no_such_column FROM workflows")  # type: ignore[attr-defined]
    assert "postgresql error [42703]" in str(info.value)


# -- several worker processes ---------------------------------------------------------------
def test_four_worker_processes_fire_1000_timers_exactly_once(pg_url: str, tmp_path: Path) -> None:
    go, log = tmp_path / "go", tmp_path / "fired.log"
    with WorkflowHost(pg_url, hook_secret="s") as host:
        host.register_step_function("mark", lambda i: None)
        host.register_script("timer", TIMER_SCRIPT)
        for i in range(1000):
            host.start("timer", i, workflow_id=f"t{i}")
    procs = [spawn("timers", pg_url, str(log), str(go)) for _ in range(4)]
    for proc in procs:
        wait_ready(proc)
    go.write_text("go")
    counts = [int(proc.communicate(timeout=120)[0].strip()) for proc in procs]
    fired = Counter(log.read_text().split())
    assert sum(counts) == 1000 and all(counts), counts  # every worker took part
    assert len(fired) == 1000 and set(fired.values()) == {1}
    with WorkflowHost(pg_url, hook_secret="s") as host:
        assert len(host.list(status="completed", limit=2000)) == 1000


def test_workflows_finish_while_workers_are_killed(pg_url: str, tmp_path: Path) -> None:
    log, count = tmp_path / "steps.log", 200
    with WorkflowHost(pg_url, hook_secret="s") as host:
        host.register_script("chaos", CHAOS_SCRIPT)
    procs = [spawn("worker", pg_url, str(log)) for _ in range(3)]
    for proc in procs:
        wait_ready(proc)
    rng = random.Random(12)
    killed = 0
    from _pg_worker import chaos_host

    # the test process starts the instances and sends the events; its step
    # executions are logged like the workers' (it runs each first step)
    with chaos_host(pg_url, log) as host:
        for i in range(count):
            host.start("chaos", i, workflow_id=f"c{i}")
            if i % 20 == 19:  # kill a worker now and then, start a fresh one
                killed += _kill_one(procs, rng, pg_url, log)
        for i in range(count):  # events race with the sleeps: some buffered, some delivered at once
            host.send_event(f"c{i}", "go", i)
            if i % 20 == 0:
                killed += _kill_one(procs, rng, pg_url, log)
        deadline = time.monotonic() + 90  # ends as soon as all are done (~10 s)
        rounds = 0
        while len(host.list(status="completed", limit=count + 1)) < count and time.monotonic() < deadline:
            rounds += 1
            if rounds % 4 == 0 and rounds <= 40:  # and while they finish the rest
                killed += _kill_one(procs, rng, pg_url, log)
            time.sleep(0.2)
        instances = host.list(limit=count + 1)
        results = {inst.workflow_id: inst.value for inst in instances if inst.status == "completed"}
        stuck = Counter(inst.status for inst in instances if inst.status != "completed")
        leftovers = [each(host.store).pending_events(f"c{i}") for i in range(count)]
    for proc in procs:
        proc.kill()
        proc.wait()
    assert killed >= 10
    assert len(results) == count, stuck
    assert all(results[f"c{i}"][1] == i for i in range(count))  # each event delivered, to its workflow
    assert not any(leftovers)  # and none left buffered (so none delivered twice either)
    runs = [line.split() for line in log.read_text().splitlines()]
    for i in range(count):
        for pos, step in ((0, "first"), (2, "second")):
            ids = [ident for name, n, ident in runs if name == step and int(n) == i]
            journaled = results[f"c{i}"][pos]
            assert journaled in ids, (i, step)
            assert ids[-1] == journaled, (i, step, ids)  # nothing ran again after it was journaled


def _kill_one(procs: list[subprocess.Popen[str]], rng: random.Random, url: str, log: Path) -> int:
    victim = rng.randrange(len(procs))
    procs[victim].send_signal(signal.SIGKILL)
    procs[victim].wait()
    procs[victim] = spawn("worker", url, str(log))
    return 1


def test_concurrent_senders_keep_fifo_per_name(pg_url: str) -> None:
    senders, each = 4, 15
    with WorkflowHost(pg_url, hook_secret="s") as host:
        host.register_script("fifo", FIFO_SCRIPT)
        host.start("fifo", senders * each, workflow_id="f")
    procs = [spawn("send", pg_url, "f", f"p{n}", str(each)) for n in range(senders)]
    sent = [pair for proc in procs for pair in json.loads(proc.communicate(timeout=60)[0])]
    with WorkflowHost(pg_url, hook_secret="s") as host:
        inst = host.get("f")
    assert inst.status == "completed"
    # every event delivered once; ordered as sent wherever one send ended before the
    # next began (each sender's sequence). Concurrent sends have no order to keep:
    # ids are drawn at insert, commits land in any order, delivery follows commits.
    assert sorted(map(tuple, inst.value)) == sorted(tuple(payload) for _, payload in sent)
    for n in range(senders):
        mine = [k for tag, k in inst.value if tag == f"p{n}"]
        assert mine == list(range(each))


def test_stalled_worker_cannot_overwrite_the_new_owner(pg_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with WorkflowHost(pg_url, hook_secret="s") as host:
        host.register_script("stall", STALL_SCRIPT)
    proc = spawn("stall", pg_url, str(marker))
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the stalling worker never started its step"
        time.sleep(0.005)
    proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.3)  # past its lease (1 s)
        from _pg_worker import LEASE

        with WorkflowHost(pg_url, hook_secret="s", lease=LEASE) as host:
            host.register_step_function("slow", lambda: "new-owner")
            assert host.run_due() == 1  # claims the stale run and recovers it
            done = host.get("stalled")
            assert done.status == "completed" and done.value == "new-owner"
            version = each(host.store).get_workflow("stalled").version  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGCONT)
    out = proc.communicate(timeout=30)[0].strip()
    assert out == "WorkflowFinishedError"  # its late journal write was refused
    with WorkflowHost(pg_url, hook_secret="s") as host:
        after = each(host.store).get_workflow("stalled")
        assert after is not None and after.version == version
        assert host.get("stalled").value == "new-owner"

"""The PostgreSQL part of bench/host.py: several worker processes on one database.

Throughput: N processes (N = 1, 2, 4) each run their share of ten-step
workflows (a commit per step: the write-ahead journal) against one database;
workflows/s = all of them / wall time from a common start signal to the last
process done. Latency: a sender process calls ``send_event``; this process
waits with ``store.wait_for_change`` (LISTEN/NOTIFY) and stops the clock when
it sees the instance's next suspension. ``time.monotonic`` is system-wide on
Linux, so the two processes' readings compare.

Children are this file run as a script (``python bench/pg.py throughput|sender URL ...``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

from workloads import EVENT_LOOP, TEN_STEPS

from jsflow.host import WorkflowHost
from jsflow.host.store import workflow_key
from jsflow.testing import each


def _host(url: str) -> WorkflowHost:
    host = WorkflowHost(url, hook_secret="bench")
    host.register_step_function("work", lambda n, i: n + i)
    host.register_step_function("note", lambda seen: seen)
    return host


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


# -- children ----------------------------------------------------------------------------
def child_throughput(url: str, prefix: str, count: int) -> None:
    with _host(url) as host:
        host.register_script("ten", TEN_STEPS)
        for i in range(10):  # warm up: connections, prepared statements, the script cache
            host.start("ten", i, workflow_id=f"{prefix}-warm{i}")
        print("ready", flush=True)
        sys.stdin.readline()
        start = time.monotonic()
        for i in range(count):
            inst = host.start("ten", i, workflow_id=f"{prefix}-{i}")
        assert inst.status == "completed"
        print(json.dumps([start, time.monotonic()]), flush=True)


def child_sender(url: str) -> None:
    with _host(url) as host:
        print("ready", flush=True)
        for line in sys.stdin:
            wid = line.strip()
            start = time.monotonic()
            host.send_event(wid, "tick", 1)
            print(start, flush=True)


# -- the benchmark ---------------------------------------------------------------------------
def throughput(url: str, procs: int, count: int) -> float:
    run = uuid.uuid4().hex[:6]
    children = [_spawn("throughput", url, f"{run}-{n}", str(count // procs)) for n in range(procs)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    spans = [json.loads(child.communicate()[0]) for child in children]
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return (count // procs) * procs / wall


def event_latency(url: str, count: int, every: int = 10) -> list[float]:
    sender = _spawn("sender", url)
    assert sender.stdin is not None and sender.stdout is not None
    assert sender.stdout.readline().strip() == "ready"
    samples = []
    with _host(url) as host:
        host.register_script("loop", EVENT_LOOP)
        store = host.store
        for i in range(count):
            wid = f"loop-{uuid.uuid4().hex[:6]}" if i % every == 0 else wid  # noqa: F821
            if i % every == 0:
                host.start("loop", workflow_id=wid)
            before = each(store).get_workflow(wid)
            assert before is not None
            mark = store.change_marker()
            sender.stdin.write(wid + "\n")
            sender.stdin.flush()
            while True:
                now = each(store).get_workflow(wid)
                assert now is not None
                if now.version > before.version and now.status == "suspended":
                    seen = time.monotonic()
                    break
                store.wait_for_change(1.0, workflow_key(wid), since=mark)
                mark = store.change_marker()
            samples.append(seen - float(sender.stdout.readline()))
    sender.stdin.close()
    sender.wait()
    return samples


class _Statements:
    """Counts what this process sends to PostgreSQL (wrapping psycopg's cursor):
    statements, and commits (BEGIN..COMMIT blocks plus autocommit writes), so
    the figures below say where the round trips go."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __enter__(self) -> _Statements:
        import psycopg

        self._execute = execute = psycopg.Cursor.execute
        sent = self.sent

        def counted(cursor: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            sent.append(query if isinstance(query, str) else str(query))
            return execute(cursor, query, params, **kw)

        psycopg.Cursor.execute = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        import psycopg

        psycopg.Cursor.execute = self._execute  # type: ignore[method-assign]

    def take(self) -> tuple[int, int]:
        """(round trips, writing commits) since the last call: a transaction that
        wrote, an autocommit write, or a notification (a commit of its own)."""
        trips = commits = 0
        inside = wrote = False
        for text in self.sent:
            head = text.lstrip()[:6].upper()
            trips += 1
            writes = head != "SELECT" or "pg_notify" in text
            if head.startswith("BEGIN"):
                inside, wrote = True, False
            elif "COMMIT" in text[-8:].upper():
                inside, commits = False, commits + (wrote or "\n" in text)  # COMMIT with writes
            elif inside:
                wrote = wrote or writes
            elif writes:
                commits += 1  # an autocommit write
        self.sent.clear()
        return trips, commits


def round_trips(url: str) -> dict[str, tuple[int, int]]:
    """Round trips and commits of one warm send_event and one ten-step workflow."""
    with _host(url) as host:
        host.register_script("loop", EVENT_LOOP)
        host.register_script("ten", TEN_STEPS)
        wid = f"loop-{uuid.uuid4().hex[:6]}"
        host.start("loop", workflow_id=wid)
        for i in range(3):
            host.send_event(wid, "tick", 1)
            host.start("ten", i, workflow_id=f"rt-{uuid.uuid4().hex[:8]}")
        with _Statements() as sent:
            host.send_event(wid, "tick", 1)
            event = sent.take()
            host.start("ten", 1, workflow_id=f"rt-{uuid.uuid4().hex[:8]}")
            ten = sent.take()
    return {"send_event (warm)": event, "ten-step workflow": ten}


def main(url: str, quick: bool) -> None:
    count = 400 if quick else 2000
    rates = {procs: throughput(url, procs, count) for procs in (1, 2, 4)}
    lat = sorted(event_latency(url, 100 if quick else 500))
    p50, p99 = statistics.median(lat) * 1e3, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
    print(f"jsflow host benchmark (PostgreSQL, {os.cpu_count()} cores, commit per step)")
    for procs, rate in rates.items():
        print(f"  ten-step workflows, {procs} process{'es' if procs > 1 else ''}: {rate:8.0f} /s")
    print(f"  scaling 1 -> 4 processes:         {rates[4] / rates[1]:8.2f} x")
    print(f"  cross-process event -> next suspension seen: {p50:.2f} ms p50, {p99:.2f} ms p99")
    for what, (trips, commits) in round_trips(url).items():
        print(f"  {what}: {trips} round trips, {commits} commits")
    print(f"  load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "throughput":
        child_throughput(target, sys.argv[3], int(sys.argv[4]))
    else:
        child_sender(target)

"""Child process for the PostgreSQL multi-process tests (run as a script, not collected).

python _pg_worker.py timers URL LOG GO        wait for GO, fire due timers until none remain
python _pg_worker.py worker URL LOG [POLL]    run ``host.worker`` until killed (chaos test)
python _pg_worker.py send URL WID TAG COUNT   send COUNT events named "x"; print (event_id, payload) JSON
python _pg_worker.py stall URL MARKER         start a workflow whose step hangs after writing MARKER

Step functions append one line per execution to LOG (O_APPEND: whole lines
from every process) so the test can count executions.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jsflow.host import WorkflowHost

TIMER_SCRIPT = "async function main(i) { await sleep('1s'); await mark(i); return i; }"
CHAOS_SCRIPT = """
async function main(i) {
  const a = await first(i);
  await sleep('300ms');
  const e = await waitForEvent('go', {timeout: '1h'});
  const b = await second(i, e);
  return [a, e, b];
}"""
FIFO_SCRIPT = """
async function main(n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await waitForEvent('x'));
  return out;
}"""
STALL_SCRIPT = "async function main() { const a = await slow(); return a; }"
LEASE = timedelta(seconds=1)


def log_line(log: Path, text: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def chaos_host(url: str, log: Path) -> WorkflowHost:
    """Each execution of a step gets a unique id (pid:n), logged and returned."""
    host = WorkflowHost(url, hook_secret="s", lease=LEASE)
    counter = itertools.count()

    def step(name: str) -> Callable[..., str]:
        def run(i: int, *_: object) -> str:
            ident = f"{os.getpid()}:{next(counter)}"
            log_line(log, f"{name} {i} {ident}")
            return ident

        return run

    host.register_step_function("first", step("first"))
    host.register_step_function("second", step("second"))
    return host


def timers(url: str, log: Path, go: Path) -> None:
    host = WorkflowHost(url, hook_secret="s")
    host.register_step_function("mark", lambda i: log_line(log, str(i)))
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.002)
    future = datetime.now(UTC) + timedelta(hours=1)
    idle = count = 0
    while idle < 3:
        n = host.run_due(future, limit=20)
        count += n
        idle = 0 if n else idle + 1
    print(count, flush=True)


def worker(url: str, log: Path, poll: float) -> None:
    host = chaos_host(url, log)
    print("ready", flush=True)
    host.worker(poll_interval=poll)


def send(url: str, wid: str, tag: str, count: int) -> None:
    with WorkflowHost(url, hook_secret="s") as host:
        sent = [(host.send_event(wid, "x", [tag, k]).event_id, [tag, k]) for k in range(count)]
    print(json.dumps(sent), flush=True)


def stall(url: str, marker: Path) -> None:
    host = WorkflowHost(url, hook_secret="s", lease=LEASE)

    def slow() -> str:
        marker.write_text("started")
        time.sleep(0.5)  # the test SIGSTOPs us in here, past the lease
        return "stalled-worker"

    host.register_step_function("slow", slow)
    try:
        host.start("stall", workflow_id="stalled")
        print("finished", flush=True)
    except Exception as exc:
        print(type(exc).__name__, flush=True)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "timers":
        timers(args[0], Path(args[1]), Path(args[2]))
    elif mode == "worker":
        worker(args[0], Path(args[1]), float(args[2]) if len(args) > 2 else 0.1)
    elif mode == "send":
        send(args[0], args[1], args[2], int(args[3]))
    else:
        stall(args[0], Path(args[1]))

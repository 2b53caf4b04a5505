"""Child process for the host crash and multi-worker tests (run as a script).

python _host_worker.py crash DB LOG MARKER   start a workflow; its second step
                                             writes MARKER and hangs (to be SIGKILLed)
python _host_worker.py timers DB LOG GO      wait for GO, then fire due timers until none remain
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jsflow.host import WorkflowHost

CRASH_SCRIPT = """
async function main() {
  const a = await record('one');
  const b = await record('two');
  const c = await record('three');
  return [a, b, c];
}"""
TIMER_SCRIPT = "async function main(i) { await sleep('1s'); await mark(i); return i; }"


def appender(log: Path, hang_on: str | None = None, marker: Path | None = None):
    def record(name: str) -> str:
        with log.open("a") as fh:
            fh.write(name + "\n")
        if name == hang_on and marker is not None and not marker.exists():
            marker.write_text("started")
            time.sleep(60)  # killed here, mid-step
        return name

    return record


def crash(db: str, log: Path, marker: Path) -> None:
    host = WorkflowHost(f"sqlite:///{db}", hook_secret="s")
    host.register_step_function("record", appender(log, "two", marker))
    host.register_script("crashy", CRASH_SCRIPT)
    host.start("crashy", workflow_id="crash-1")


def timers(db: str, log: Path, go: Path) -> None:
    host = WorkflowHost(f"sqlite:///{db}", hook_secret="s")
    fired: list[int] = []
    host.register_step_function("mark", lambda i: fired.append(i))
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.002)
    future = datetime.now(UTC) + timedelta(hours=1)
    idle = 0
    count = 0
    while idle < 3:
        n = host.run_due(future, limit=10)
        count += n
        idle = 0 if n else idle + 1
    with log.open("a") as fh:
        fh.write("".join(f"{i}\n" for i in fired))
    print(count, flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "crash":
        crash(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        timers(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))

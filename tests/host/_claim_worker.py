"""Child process for the multiprocess claim test (run as a script, not collected).

Usage: python _claim_worker.py DB_PATH WORKER_ID GO_FILE
Prints "ready", waits for GO_FILE to exist, claims due timers in small
batches until none are left, then prints the claimed keys as one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from jsflow.host.store import SQLiteStore


def main() -> None:
    db_path, worker_id, go_file = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    store = SQLiteStore(db_path)
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    while not go_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit("go file never appeared")
        time.sleep(0.002)
    now = datetime(2100, 1, 1, tzinfo=UTC)
    claimed: list[list[object]] = []
    while batch := store.claim_due_timers(now, 5, worker_id, 600):
        claimed.extend([c.workflow_id, c.wait.wait_id] for c in batch)
        time.sleep(0.002)  # stands in for firing the timers, as a real worker would
    store.close()
    print(json.dumps(claimed), flush=True)


if __name__ == "__main__":
    main()

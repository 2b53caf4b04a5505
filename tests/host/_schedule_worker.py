"""A worker process for the schedule test: a fast clock shared through a start
epoch (one real second is one workflow minute from 2030-01-01T00:00Z)."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from jsflow.host import WorkflowHost

BASE = datetime(2030, 1, 1, tzinfo=UTC)


def main() -> None:
    url, epoch, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

    def clock() -> datetime:
        return BASE + timedelta(minutes=max(0.0, time.time() - epoch))

    stop = threading.Event()
    threading.Timer(max(0.0, epoch + seconds - time.time()), stop.set).start()
    with WorkflowHost(url, clock=clock, hook_secret="s") as host:
        host.worker(poll_interval=0.05, stop_event=stop)


if __name__ == "__main__":
    main()

"""The host worker (timers, recovery of stuck runs, buffered-event sweep)
inside the server process.

Why a thread with a stop event: ``WorkflowHost.worker`` is a loop that
sleeps until the next due timer; in its own thread it never blocks the event
loop, and the app's lifespan sets the event on shutdown (uvicorn turns
SIGINT/SIGTERM into a lifespan shutdown), so the worker finishes the pass it
is in and stops before the store is closed.
"""

from __future__ import annotations

import logging
import threading

from jsflow.host import WorkflowHost

log = logging.getLogger("jsflow.server")


class WorkerThread:
    """``host.worker(poll_interval, stop)`` in a daemon thread; ``stop()`` joins it."""

    def __init__(self, host: WorkflowHost, poll_interval: float) -> None:
        self.host = host
        self.poll_interval = poll_interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="jsflow-worker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.host.worker(self.poll_interval, self.stop_event)
        except Exception:
            log.exception("the jsflow worker stopped on an error")

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

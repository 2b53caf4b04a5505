"""A "still working" line on stderr while a host call replays a long journal.

Why: advancing an instance replays its whole journal first, and a journal
of thousands of entries takes seconds; silence looks like a hang. The engine
reports no progress from inside a replay, so this shows what is known (which
instance, how many journal entries, time so far), rewritten in place once a
second. Only on a terminal, only after ``$JSFLOW_PROGRESS_AFTER`` seconds
(default 1), and erased when the call returns, so pipes, logs and ``--json``
never see it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from ._text import safe

DELAY_ENV = "JSFLOW_PROGRESS_AFTER"


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get(DELAY_ENV, "1")))
    except ValueError:
        return 1.0


def enabled() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress(label: Callable[[], str]) -> Iterator[None]:
    """Show ``label()`` with the elapsed time. ``label`` is called only on a
    terminal, before the work starts (on this thread: it may read the store)."""
    if not enabled():
        yield
        return
    text = safe(label())
    stop = threading.Event()
    started = time.monotonic()
    shown = threading.Event()

    def draw() -> None:
        click.echo(f"\r\x1b[K{text} ({time.monotonic() - started:.0f}s)", err=True, nl=False)
        shown.set()

    def tick() -> None:
        if stop.wait(_delay()):
            return
        while not stop.is_set():
            draw()
            stop.wait(1.0)

    if _delay() == 0:
        draw()  # synchronously: the line is there before the work starts
    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if shown.is_set():
            click.echo("\r\x1b[K", err=True, nl=False)

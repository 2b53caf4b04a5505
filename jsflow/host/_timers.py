"""Timers and workers: fire due waits exactly once, recover abandoned runs.

``run_due`` claims due waits (``store.claim_due_timers``: a lease, so two
workers never fire the same wait at the same time) and fires each by its
kind: sleep and plain suspends resume with None; a ``waitForEvent`` timeout
and a createHook expiry reject with ``TimeoutError``; a retry re-runs its
step; a token expiry resumes with ``before_timeout_resume(args)``. The claim
is not what makes firing exactly-once: the fire is a journal write with the
version check, and a wait that is no longer pending (another worker or a
delivery won) raises ``AlreadyResumedError``, after which the stale claim is
deleted. A claim whose instance is busy or broken is left to lapse, which
doubles as a back-off.

Abandoned runs: each pass also claims instances in "running" whose last
write (``updated_at``) is older than ``host.lease`` (``store.claim_stale_runs``:
each goes to one worker, re-stamped so the stalled owner is fenced off) and
recovers them, least recently updated first; the claim updates the row, so a
stuck instance goes to the back of the line and every stale instance is
eventually looked at. Timer claims last at most ``host.lease`` too, so the
claims of a worker that died lapse as soon as its runs do. Staleness
is judged by the host clock, not by ``now``, so tests that pass a future
``now`` to fire timers do not steal runs that live workers are advancing.

Stranded events: each pass delivers buffered events whose wait is pending
(a sender that died between storing and delivering).

Capabilities: a worker claims only timers, stale runs and stranded events of
instances whose required step and suspend names it has registered.

Between idle passes ``worker`` waits for the next timer, the poll interval,
or a change notification (``store.wait_for_change``: a wait due soon stored
by another process wakes it within milliseconds on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import _schedules
from ._deliveries import fire as fire_wait
from ._deliveries import recover, settle
from ._errors import (
    AlreadyResumedError,
    MissingRegistrationError,
    UnknownWorkflowError,
    WorkflowBusyError,
    WorkflowFinishedError,
)
from ._inbox import deliver_stranded
from .store import StoreUnavailableError, TimerClaim, timers_key

if TYPE_CHECKING:
    from ._host import WorkflowHost

log = logging.getLogger("jsflow.host")
CLAIM_LEASE_SECONDS = 60.0


def default_worker_id() -> str:
    """host:pid:random, so claims name the process that holds them."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def run_due(host: WorkflowHost, now: datetime | None, limit: int) -> int:
    now = now if now is not None else host.clock()
    caps = host.capabilities()
    lease = min(CLAIM_LEASE_SECONDS, host.lease.total_seconds())
    claims = host.store.claim_due_timers(now, limit, host.worker_id, lease, caps)
    fired = 0
    for claim in claims:
        fired += await fire(host, claim)
    fired += await recover_stale(host, limit)
    fired += await _schedules.run_due(host, now)
    return fired + await deliver_stranded(host, now + timedelta(milliseconds=1), limit)


async def recover_stale(host: WorkflowHost, limit: int) -> int:
    count = 0
    for record in host.store.claim_stale_runs(host.clock() - host.lease, limit, host.capabilities()):
        try:
            await recover(host, record.workflow_id)
            count += 1
        except Exception:
            log.exception("recovering workflow %r failed", record.workflow_id)
    return count


async def fire(host: WorkflowHost, claim: TimerClaim) -> int:
    """Fire one claimed wait; 1 if it fired, 0 if someone else already did or it must wait."""
    wid, wait = claim.workflow_id, claim.wait
    try:
        advanced = await fire_wait(host, claim)
    except (AlreadyResumedError, WorkflowFinishedError, UnknownWorkflowError):
        host.store.complete_claim(wid, wait.wait_id, host.worker_id)
        return 0
    except (WorkflowBusyError, MissingRegistrationError):
        return 0
    except Exception:
        log.exception(
            "firing wait %s of workflow %r failed; retried when the claim lapses", wait.wait_id, wid
        )
        return 0
    await settle(host, wid, advanced)
    return 1


async def worker(host: WorkflowHost, poll_interval: float, stop: threading.Event | None, limit: int) -> None:
    """Loop passes; between idle passes sleep until the next timer or ``poll_interval``."""
    stop = stop or threading.Event()
    while not stop.is_set():
        mark = host.store.change_marker()  # before the pass: a change during it still wakes us
        try:
            busy = await run_due(host, None, limit)
        except Exception:
            log.exception("worker pass failed")
            busy = 0
        if busy:
            continue
        delay = poll_interval
        try:
            nxt = min(
                (t for t in (host.store.next_due_time(), _schedules.next_due(host)) if t is not None),
                default=None,
            )
        except StoreUnavailableError as exc:  # the database is away: poll again later
            log.warning("worker: store unavailable, polling again in %.1f s: %s", delay, exc.reason)
            nxt = None
        if nxt is not None:
            delay = max(0.0, min(delay, (nxt - host.clock()).total_seconds()))
        await _sleep_unless(host, stop, delay, mark)


async def _sleep_unless(host: WorkflowHost, stop: threading.Event, seconds: float, mark: int) -> None:
    """Sleep ``seconds`` unless stopped or a timer change is announced after ``mark``."""
    end = asyncio.get_running_loop().time() + seconds
    while not stop.is_set():
        left = end - asyncio.get_running_loop().time()
        if left <= 0:
            return
        wait = host.store.wait_for_change
        if await asyncio.to_thread(wait, min(left, 0.05), timers_key(), since=mark):
            return

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
one worker each, re-stamped so the stalled owner is fenced off) and recovers
them. Staleness is judged by the host clock, not by ``now``, so tests that
pass a future ``now`` to fire timers do not steal runs that live workers are
advancing.

Between idle passes ``worker`` waits for the next timer, the poll interval,
or a change notification (``store.wait_for_change``: a wait due soon stored
by another process wakes it within milliseconds on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._advance import Act, deliver_inbox, drive, recover
from ._errors import AlreadyResumedError, UnknownWorkflowError, WorkflowBusyError, WorkflowFinishedError
from ._hooks import maybe_await
from ._inbox import drain
from .store import TimerClaim, timers_key

if TYPE_CHECKING:
    from ._host import WorkflowHost

log = logging.getLogger("jsflow.host")
CLAIM_LEASE_SECONDS = 60.0
STRANDED_AFTER = timedelta(seconds=1)


def default_worker_id() -> str:
    """host:pid:random, so claims name the process that holds them."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def run_due(host: WorkflowHost, now: datetime | None, limit: int) -> int:
    now = now if now is not None else host.clock()
    lease = min(CLAIM_LEASE_SECONDS, host.lease.total_seconds())  # a dead worker's claims lapse with it
    claims = host.store.claim_due_timers(now, limit, host.worker_id, lease)
    fired = 0
    for claim in claims:
        fired += await fire(host, claim)
    return fired + await recover_stale(host, limit) + await deliver_stranded(host, limit)


async def deliver_stranded(host: WorkflowHost, limit: int) -> int:
    """Hand over buffered events that a killed process left undelivered (see
    ``store.stranded_events``); events younger than ``STRANDED_AFTER`` are
    still their sender's to deliver."""
    count = 0
    for wid in host.store.stranded_events(host.clock() - STRANDED_AFTER, limit):
        with contextlib.suppress(WorkflowBusyError, WorkflowFinishedError, UnknownWorkflowError):
            count += 1 if await drain(host, wid) is not None else 0
    return count


async def recover_stale(host: WorkflowHost, limit: int) -> int:
    count = 0
    for record in host.store.claim_stale_runs(host.clock() - host.lease, limit):
        try:
            await recover(host, record.workflow_id)
            count += 1
        except Exception:
            log.exception("recovering workflow %r failed", record.workflow_id)
    return count


def _act_for(host: WorkflowHost, claim: TimerClaim) -> Act:
    wait = claim.wait
    detail = {"wait_id": wait.wait_id, "kind": wait.kind, "worker": host.worker_id}
    history = ("timer_fired", detail)
    if wait.kind in ("event", "hook"):
        return Act("timeout", wait.wait_id, history=history)
    return Act("resume", wait.wait_id, history=history)


async def fire(host: WorkflowHost, claim: TimerClaim) -> int:
    """Fire one claimed wait; 1 if it fired, 0 if someone else already did or it must wait."""
    wid, wait = claim.workflow_id, claim.wait
    act = _act_for(host, claim)

    def prepare(loaded: Any) -> list[Any]:
        current = loaded.wait(wait.wait_id)
        if (
            current is None
            or current.function_name != wait.function_name
            or current.resume_at != wait.resume_at
        ):
            raise AlreadyResumedError(wid, wait.wait_id, [w.wait_id for w in loaded.waits])
        return []

    try:
        if wait.kind == "token":
            act.value = await _timeout_value(host, wait.function_name, wait.arguments_json)
        view = await drive(host, wid, act, prepare=prepare)
    except (AlreadyResumedError, WorkflowFinishedError, UnknownWorkflowError):
        host.store.complete_claim(wid, wait.wait_id, host.worker_id)
        return 0
    except WorkflowBusyError:
        return 0
    except Exception:
        log.exception(
            "firing wait %s of workflow %r failed; retried when the claim lapses", wait.wait_id, wid
        )
        return 0
    await deliver_inbox(host, wid, view)
    return 1


async def _timeout_value(host: WorkflowHost, function_name: str, arguments_json: str) -> Any:
    spec = host.hooks.specs.get(function_name)
    if spec is None or spec.before_timeout_resume is None:
        return None
    return await maybe_await(spec.before_timeout_resume(json.loads(arguments_json)))


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
        nxt = host.store.next_due_time()
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

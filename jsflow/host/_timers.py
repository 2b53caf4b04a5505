"""Timers and workers: fire due waits exactly once, recover abandoned runs.

``run_due`` claims due waits (``store.claim_due_timers``: a lease, so two
workers never fire the same wait at the same time) and fires each by its
kind: sleep and plain suspends resume with None; a ``waitForEvent`` timeout
and a createHook expiry reject with ``TimeoutError``; a retry re-runs its
step; a token expiry resumes with ``before_timeout_resume(args)``; a parked
``continueAsNew`` chain runs its next generations. The claim
is not what makes firing exactly-once: the fire is a journal write with the
version check, and a wait that is no longer pending (another worker or a
delivery won) raises ``AlreadyResumedError``, after which the stale claim is
deleted. A claim whose instance is busy or broken is left to lapse, which
doubles as a back-off. A due timer never disappears without a trace: if the
store still holds the wait but the replayed script no longer has it pending,
the instance is faulted with the reason in its history.

Abandoned runs: each pass also claims instances in "running" whose last
write (``updated_at``) is older than ``ctx.lease`` (``store.claim_stale_runs``:
each goes to one worker, re-stamped so the stalled owner is fenced off) and
recovers them, least recently updated first; the claim updates the row, so a
stuck instance goes to the back of the line and every stale instance is
eventually looked at. Timer claims last at most ``ctx.lease`` too, so the
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
import threading
from dataclasses import replace
from datetime import datetime, timedelta

from . import _schedules
from ._context import HostContext
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
from ._outcome import dump
from .store import ConcurrencyError, InstanceStatus, StoreUnavailableError, TimerClaim, timers_key

log = logging.getLogger("jsflow.host")
CLAIM_LEASE_SECONDS = 60.0


async def run_due(ctx: HostContext, now: datetime | None, limit: int) -> int:
    now = now if now is not None else ctx.clock()
    caps = ctx.capabilities()
    lease = min(CLAIM_LEASE_SECONDS, ctx.lease.total_seconds())
    claims = ctx.store.claim_due_timers(now, limit, ctx.worker_id, lease, caps)
    fired = 0
    for claim in claims:
        fired += await fire(ctx, claim)
    fired += await recover_stale(ctx, limit)
    fired += await _schedules.run_due(ctx, now)
    return fired + await deliver_stranded(ctx, now + timedelta(milliseconds=1), limit)


async def recover_stale(ctx: HostContext, limit: int) -> int:
    count = 0
    for record in ctx.store.claim_stale_runs(ctx.clock() - ctx.lease, limit, ctx.capabilities()):
        try:
            await recover(ctx, record.workflow_id)
            count += 1
        except Exception:
            log.exception("recovering workflow %r failed", record.workflow_id)
    return count


async def fire(ctx: HostContext, claim: TimerClaim) -> int:
    """Fire one claimed wait; 1 if it fired, 0 if someone else already did or it must wait."""
    wid, wait = claim.workflow_id, claim.wait
    try:
        advanced = await fire_wait(ctx, claim)
    except AlreadyResumedError as exc:
        if _still_pending(ctx, claim):
            _fault_stuck(ctx, claim, str(exc))
        ctx.store.complete_claim(wid, wait.wait_id, ctx.worker_id)
        return 0
    except (WorkflowFinishedError, UnknownWorkflowError):
        ctx.store.complete_claim(wid, wait.wait_id, ctx.worker_id)
        return 0
    except (WorkflowBusyError, MissingRegistrationError):
        return 0
    except Exception:
        log.exception(
            "firing wait %s of workflow %r failed; retried when the claim lapses", wait.wait_id, wid
        )
        return 0
    await settle(ctx, wid, advanced)
    return 1


def _still_pending(ctx: HostContext, claim: TimerClaim) -> bool:
    """Whether the store still holds the claimed wait, unchanged, on a live instance."""
    with ctx.store.transaction(write=False) as tx:
        record = tx.get_workflow(claim.workflow_id)
        if record is None or InstanceStatus.is_terminal(record.status):
            return False
        waits = tx.list_waits(claim.workflow_id)
    wait = claim.wait
    return any(
        w.wait_id == wait.wait_id and w.function_name == wait.function_name and w.resume_at == wait.resume_at
        for w in waits
    )


def _fault_stuck(ctx: HostContext, claim: TimerClaim, why: str) -> None:
    """A due wait the store holds but the script no longer has pending cannot fire:
    fault the instance with the reason, instead of dropping the wait silently."""
    wid, wait = claim.workflow_id, claim.wait
    message = (
        f"due wait {wait.wait_id} ({wait.kind} {wait.function_name}) cannot fire: the replayed "
        f"script does not have it pending ({why}); fix the cause, then retry the instance"
    )[:1000]
    error = {"type": "TimerCannotFireError", "message": message, "wait_id": wait.wait_id}
    log.error("workflow %r: %s", wid, message)
    try:
        with ctx.store.transaction() as tx:
            record = tx.get_workflow(wid)
            if record is None or InstanceStatus.is_terminal(record.status):
                return
            tx.save_workflow(replace(record, status=InstanceStatus.FAULTED, error_json=dump(error)))
            tx.replace_waits(wid, [])
            tx.append_history(wid, "faulted", {"error": message, "stage": "timer", "wait_id": wait.wait_id})
    except ConcurrencyError:
        pass  # someone else moved it: their outcome stands


async def worker(ctx: HostContext, poll_interval: float, stop: threading.Event | None, limit: int) -> None:
    """Loop passes; between idle passes sleep until the next timer or ``poll_interval``."""
    stop = stop or threading.Event()
    while not stop.is_set():
        mark = ctx.store.change_marker()  # before the pass: a change during it still wakes us
        try:
            busy = await run_due(ctx, None, limit)
        except Exception:
            log.exception("worker pass failed")
            busy = 0
        if busy:
            continue
        delay = poll_interval
        try:
            nxt = min(
                (t for t in (ctx.store.next_due_time(), _schedules.next_due(ctx)) if t is not None),
                default=None,
            )
        except StoreUnavailableError as exc:  # the database is away: poll again later
            log.warning("worker: store unavailable, polling again in %.1f s: %s", delay, exc.reason)
            nxt = None
        if nxt is not None:
            delay = max(0.0, min(delay, (nxt - ctx.clock()).total_seconds()))
        await _sleep_unless(ctx, stop, delay, mark)


async def _sleep_unless(ctx: HostContext, stop: threading.Event, seconds: float, mark: int) -> None:
    """Sleep ``seconds`` unless stopped or a timer change is announced after ``mark``."""
    end = asyncio.get_running_loop().time() + seconds
    while not stop.is_set():
        left = end - asyncio.get_running_loop().time()
        if left <= 0:
            return
        wait = ctx.store.wait_for_change
        if await asyncio.to_thread(wait, min(left, 0.05), timers_key(), since=mark):
            return

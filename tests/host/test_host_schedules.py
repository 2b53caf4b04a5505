"""Cron schedules (issue 20): slots, catch-up, overlap, pause, and two worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _host_helpers import FakeClock, open_host
from conftest import Backend

from jsflow.host import InvalidScheduleError, UnknownScheduleError, UnknownScriptError, WorkflowHost

QUICK = "function main(n) { return n; }"
SLOW = "async function main(n) { await waitForEvent('done'); return n; }"
T0 = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)


def host_on(backend: Backend, clock: FakeClock) -> WorkflowHost:
    host = open_host(backend("s", clock), clock)
    host.register_script("quick", QUICK)
    host.register_script("slow", SLOW)
    return host


def ids(host: WorkflowHost, script: str) -> list[str]:
    return sorted(i.workflow_id for i in host.list(script=script, limit=1000))


def test_on_time_slots_start_once_with_slot_ids(backend: Backend) -> None:
    clock = FakeClock(T0)
    with host_on(backend, clock) as host:
        sched = host.add_schedule("tick", "*/5 * * * *", "quick", [7])
        assert sched.next_run == datetime(2030, 1, 1, 0, 5, tzinfo=UTC) and not sched.paused
        assert host.run_due() == 0
        clock.advance(minutes=4, seconds=40)  # 00:05:10: on time
        host.run_due()
        host.run_due()
        assert ids(host, "quick") == ["tick@20300101T000500Z"]
        inst = host.get("tick@20300101T000500Z")
        assert inst.status == "completed" and inst.value == 7
        assert [s.name for s in host.list_schedules()] == ["tick"]
        assert host.list_schedules()[0].next_run == datetime(2030, 1, 1, 0, 10, tzinfo=UTC)
        kinds = [e.kind for e in host.schedule_history("tick")]
        assert kinds == ["added", "started"]


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("latest", ["tick@20300101T001000Z"]),
        ("all", ["tick@20300101T000500Z", "tick@20300101T001000Z"]),
        ("none", []),
    ],
)
def test_missed_slots_follow_catch_up(backend: Backend, catch_up: str, expected: list[str]) -> None:
    clock = FakeClock(T0)
    with host_on(backend, clock) as host:
        host.add_schedule("tick", "*/5 * * * *", "quick", catch_up=catch_up, overlap="allow")
        clock.advance(minutes=12)  # 00:12:30: 00:05 and 00:10 are missed
        host.run_due()
        assert ids(host, "quick") == expected
        if catch_up != "all":
            assert "missed" in [e.kind for e in host.schedule_history("tick")]


def test_catch_up_all_with_overlap_skip_starts_each_quick_slot_in_turn(backend: Backend) -> None:
    clock = FakeClock(T0)
    with host_on(backend, clock) as host:
        host.add_schedule("tick", "*/5 * * * *", "quick", catch_up="all")  # overlap="skip"
        host.add_schedule("slow", "*/5 * * * *", "slow", catch_up="all")
        clock.advance(minutes=12)
        host.run_due()
        assert ids(host, "quick") == ["tick@20300101T000500Z", "tick@20300101T001000Z"]  # each ended first
        assert ids(host, "slow") == ["slow@20300101T000500Z"]  # the first still waits: the next is skipped
        assert [e.kind for e in host.schedule_history("slow")] == ["added", "started", "skipped"]


def test_run_due_now_argument_and_timezone(backend: Backend) -> None:
    clock = FakeClock(T0)
    with host_on(backend, clock) as host:
        host.add_schedule("paris", "0 9 * * *", "quick", timezone="Europe/Paris")
        assert host.get_schedule("paris").next_run == datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
        host.run_due(datetime(2030, 1, 1, 8, 0, 20, tzinfo=UTC))
        assert ids(host, "quick") == ["paris@20300101T080000Z"]


def test_overlap_skip_and_allow(backend: Backend) -> None:
    clock = FakeClock(T0)
    with host_on(backend, clock) as host:
        host.add_schedule("slow", "* * * * *", "slow")
        for _ in range(3):
            clock.advance(minutes=1)
            host.run_due()
        assert ids(host, "slow") == ["slow@20300101T000100Z"]  # the next two skipped: it is suspended
        skipped = [e for e in host.schedule_history("slow") if e.kind == "skipped"]
        assert len(skipped) == 2 and skipped[0].detail["running"] == "slow@20300101T000100Z"
        host.send_event("slow@20300101T000100Z", "done")
        clock.advance(minutes=1)
        host.run_due()
        assert ids(host, "slow")[-1] == "slow@20300101T000400Z"
        host.add_schedule("slow", "* * * * *", "slow", overlap="allow")  # replaces the definition
        clock.advance(minutes=1)
        host.run_due()
        assert "slow@20300101T000500Z" in ids(host, "slow")


def test_pause_resume_remove_and_errors(backend: Backend) -> None:
    clock = FakeClock(T0)
    with host_on(backend, clock) as host:
        host.add_schedule("tick", "* * * * *", "quick", catch_up="all")
        paused = host.pause_schedule("tick")
        assert paused.paused and paused.next_run is None
        clock.advance(minutes=3)
        host.run_due()
        host.resume_schedule("tick")
        host.run_due()
        assert ids(host, "quick") == []  # slots while paused never start, even with catch_up="all"
        clock.advance(minutes=1)
        host.run_due()
        assert ids(host, "quick") == ["tick@20300101T000400Z"]
        host.remove_schedule("tick")
        assert host.list_schedules() == []
        with pytest.raises(UnknownScheduleError):
            host.pause_schedule("tick")
        with pytest.raises(UnknownScheduleError):
            host.remove_schedule("tick")
        with pytest.raises(InvalidScheduleError) as bad:
            host.add_schedule("x", "not cron", "quick")
        assert bad.value.field == "cron"
        with pytest.raises(InvalidScheduleError):
            host.add_schedule("x", "* * * * *", "quick", timezone="Mars/Base")
        with pytest.raises(InvalidScheduleError):
            host.add_schedule("x", "0 0 31 2 *", "quick")  # February 31st never comes
        with pytest.raises(InvalidScheduleError):
            host.add_schedule("x", "* * * * *", "quick", overlap="maybe")
        with pytest.raises(UnknownScriptError):
            host.add_schedule("x", "* * * * *", "missing")


WORKER = Path(__file__).with_name("_schedule_worker.py")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_worker_processes_start_each_slot_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A shared fast clock (one real second = one minute) and two worker processes."""
    url = f"sqlite:///{tmp_path / 'sched.db'}" if kind == "sqlite" else request.getfixturevalue("pg_schema")()
    epoch = time.time() + 1.0
    with WorkflowHost(url, clock=lambda: datetime(2030, 1, 1, tzinfo=UTC), hook_secret="s") as setup:
        setup.register_script("quick", QUICK)
        setup.add_schedule("fast", "* * * * *", "quick", catch_up="all", overlap="allow")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), str(url), str(epoch), "9"], env=env) for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    with WorkflowHost(url, clock=lambda: datetime(2030, 1, 1, 0, 8, tzinfo=UTC), hook_secret="s") as host:
        started = ids(host, "quick")
        history = host.schedule_history("fast", limit=1000)
    expected = [f"fast@20300101T00{m:02d}00Z" for m in range(1, len(started) + 1)]
    assert len(started) >= 5
    assert started == expected  # every slot once, none twice, none skipped
    assert len([e for e in history if e.kind == "started"]) == len(started)

"""Concurrency over HTTP: one winner among 100 resumes of one wait, 200
idempotent events sent twice each, ``?wait``, and JS time budgets that hold
while 20 advances run at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _server_helpers import ADMIN, Served, serve

from jsflow import Limits, WorkflowEngine
from jsflow.host import WorkflowHost


async def _eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Replies come once a delivery is stored, and the delivery itself runs in
    the server after the reply: poll until ``check()`` is truthy (or time out)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_100_concurrent_resumes_of_one_wait(served: Served) -> None:
    async with served.aclient() as c, served.aclient(key=None) as anon:
        inst = (
            await c.post("/v1/workflows", json={"script": "hooked", "args": [1], "workflow_id": "race"})
        ).json()
        url = inst["waits"][0]["url"]
        codes = await asyncio.gather(*(anon.post(url, json={"n": i}) for i in range(100)))
        statuses = sorted(r.status_code for r in codes)
        assert statuses.count(204) == 1, statuses
        assert set(statuses) == {204, 409}

        async def completed() -> bool:
            return (await c.get("/v1/workflows/race")).json()["status"] == "completed"

        assert await _eventually(completed)
        assert [h["kind"] for h in (await c.get("/v1/workflows/race/history")).json()["items"]].count(
            "resume"
        ) == 1


async def test_200_events_with_idempotency_keys_sent_twice(served: Served, host: WorkflowHost) -> None:
    async with served.aclient() as c:
        await c.post("/v1/workflows", json={"script": "collect", "args": [1000], "workflow_id": "bag"})

        async def send(i: int):
            return await c.post(
                "/v1/workflows/bag/events/item", json={"i": i}, headers={"Idempotency-Key": f"k{i}"}
            )

        first, second = await asyncio.gather(
            asyncio.gather(*(send(i) for i in range(200))), asyncio.gather(*(send(i) for i in range(200)))
        )
        assert all(r.status_code == 202 for r in first + second)
        for a, b in zip(first, second, strict=True):
            assert a.json()["event_id"] == b.json()["event_id"]
            assert sorted([a.json()["duplicate"], b.json()["duplicate"]]) == [False, True]

        async def delivered_events() -> list:
            found = [h for h in host.history("bag") if h.source == "journal" and h.kind == "event"]
            return found if len(found) >= 200 else []

        delivered = await _eventually(delivered_events)
        assert len(delivered) == 200
        assert sorted(h.detail["result"]["i"] for h in delivered) == list(range(200))


def test_wait_returns_the_next_suspension(served: Served) -> None:
    with served.client() as c:
        c.post("/v1/workflows", json={"script": "events", "workflow_id": "w"})
        r = c.post("/v1/workflows/w/events/go", json=1, params={"wait": 3})
        inst = r.json()["instance"]
        assert inst["status"] == "suspended" and inst["waits"][0]["names"] == ["next"]
        # a second request for the same instance waits for the first to finish
        r = c.post("/v1/workflows/w/events/next", json=2, params={"wait": 3})
        assert r.json()["instance"]["status"] == "completed"


def test_wait_holds_the_reply_while_the_worker_runs_the_instance(tmp_path: Path) -> None:
    """The in-process worker fires a timer and runs a slow step (the instance is
    "running"); an event sent meanwhile is stored, and ``?wait`` answers with
    the state after the run, which has taken the event."""
    source = "async function main() { await sleep('1s'); await slow(); return await waitForEvent('x'); }"
    with WorkflowHost(f"sqlite:///{tmp_path / 'w.db'}") as host:
        host.register_step_function("slow", lambda: time.sleep(1) or 1)
        with serve(host, worker_poll_interval=0.05) as s, s.client() as c:
            c.post("/v1/scripts", json={"name": "w", "source": source})
            assert (
                c.post("/v1/workflows", json={"script": "w", "workflow_id": "a"}).json()["status"]
                == "suspended"
            )
            deadline = time.monotonic() + 10
            while c.get("/v1/workflows/a").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            r = c.post("/v1/workflows/a/events/x", json=5, params={"wait": 10})
            assert r.status_code == 202
            assert r.json()["instance"]["status"] == "completed" and r.json()["instance"]["value"] == 5


def _busy_script(iterations: int) -> str:
    loop = f"for (let i = 0; i < {iterations}; i++) {{ x = (x + i * 7) % 1000003; }}"
    return f"function main() {{ let x = 0; {loop} return x; }}"


async def test_js_budget_holds_for_20_concurrent_advances(tmp_path: Path) -> None:
    """Each run uses about 30% of its JS time budget; twenty at once must all complete
    (a shared budget would be spent six times over; 30%, not more, leaves room for a
    loaded machine running slower than when the calibration ran)."""
    budget = 0.5
    engine = WorkflowEngine(limits=Limits(time=budget))
    with WorkflowHost(f"sqlite:///{tmp_path / 'b.db'}", engine=engine) as host:
        iterations = 200_000
        host.register_script("calibrate", _busy_script(iterations))
        t0 = time.perf_counter()
        host.start("calibrate")
        per_iteration = (time.perf_counter() - t0) / iterations
        target = int(0.3 * budget / per_iteration)
        host.register_script("busy", _busy_script(target))
        with serve(host, threads=20) as s:
            async with s.aclient(ADMIN) as c:
                replies = await asyncio.gather(
                    *(
                        c.post("/v1/workflows", json={"script": "busy", "workflow_id": f"b{i}"})
                        for i in range(20)
                    )
                )
        statuses = [r.json()["status"] for r in replies]
        errors = [r.json().get("error") for r in replies if r.json()["status"] != "completed"]
        assert statuses.count("completed") == 20, errors[:3]
